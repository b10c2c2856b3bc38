"""Backup: the runner, the metadata snapshotter (cluster -> manifest records) and the segment copier.

Data flows one way: cluster -> snapshot -> copier -> repository. Mirrors :mod:`milvus_backup_lib.restore`.
"""

from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.runner import BackupReport, BackupRunner, default_backup_name
from milvus_backup_lib.backup.snapshot import ClusterSnapshot, ListingSnapshotter, MetadataSnapshotter

__all__ = [
    "BackupReport",
    "BackupRunner",
    "ClusterSnapshot",
    "CopyJob",
    "CopyResult",
    "FsspecCopier",
    "ListingSnapshotter",
    "MetadataSnapshotter",
    "SegmentCopier",
    "default_backup_name",
]
