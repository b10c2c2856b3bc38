"""The backup repository: backups stored under one root, their locks, checksums and verification."""

from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.store import BackupList, BackupRepository, BackupSummary, LibraryMeta
from milvus_backup_lib.repository.verify import VerifyReport, verify_backup

__all__ = [
    "DEFAULT_STALE_AFTER",
    "BackupList",
    "BackupLock",
    "BackupRepository",
    "BackupSummary",
    "LibraryMeta",
    "VerifyReport",
    "verify_backup",
]
