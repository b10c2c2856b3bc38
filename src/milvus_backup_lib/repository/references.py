"""Files one backup stores for another: how an incremental backup's reused binlogs are found and kept.

An incremental backup (``create_backup(..., base=...)``) does not copy a binlog that an earlier backup
of the same source already stores; its ``meta/milvus_backup_lib.json`` maps the file's backup-relative
path to the name of the backup that stores it, at the same relative path
(:attr:`LibraryMeta.references`). References never chain: when the base itself refers to a file, the
new backup names the base's holder.

Whatever changes which files are referenced (committing an incremental backup, deleting, pruning,
materializing) does so under the repository's lock (:func:`repository_lock`), a
:class:`BackupLock` on a name no backup can have, so that a sweep never removes a file another backup
is about to reference.
"""

from __future__ import annotations

from collections.abc import Iterable

from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["REPOSITORY_LOCK_NAME", "file_path", "referenced_by_others", "repository_lock"]

#: The lock file ``{root}/milvus_backup_lib.repository.lock``; a dot is not allowed in backup names.
REPOSITORY_LOCK_NAME = "milvus_backup_lib.repository"


def repository_lock(location: StorageLocation, *, stale_after: float = DEFAULT_STALE_AFTER) -> BackupLock:
    """The lock under which references are added or files other backups may reference are removed."""
    return BackupLock(location, REPOSITORY_LOCK_NAME, stale_after=stale_after)


def file_path(repository: BackupRepository, name: str, meta: LibraryMeta | None, key: str) -> str:
    """The full path of file ``key`` (backup-relative) of backup ``name``, wherever it is stored."""
    holder = meta.holder(name, key) if meta is not None else name
    return repository.path(holder, key)


def referenced_by_others(
    repository: BackupRepository, holder: str, names: Iterable[str]
) -> dict[str, list[str]]:
    """The files stored under backup ``holder`` that the backups ``names`` refer to:
    backup-relative path -> the names of the backups referring to it."""
    result: dict[str, list[str]] = {}
    for name in names:
        if name == holder:
            continue
        meta = repository.read_library_meta(name)
        if meta is None:
            continue
        for key, where in meta.references.items():
            if where == holder:
                result.setdefault(key, []).append(name)
    return result
