"""The library's errors: everything it raises derives from :class:`MilvusBackupError`.

::

    MilvusBackupError (Exception)                 base; .retryable says whether trying again can help
     +-- InvalidNameError (ValueError)            a backup/collection/database name breaks the rules
     +-- InvalidFilterError (ValueError)          a collection filter or rename cannot be parsed
     +-- InvalidConfigError (ValueError)          a milvus-backup config file or value cannot be used
     +-- MilvusConnectionError (ConnectionError)  the Milvus server cannot be reached           retryable
     +-- MilvusAuthenticationError (PermissionError)  wrong user, password or token
     +-- MilvusPermissionError (PermissionError)  the user lacks a privilege
     +-- MilvusOperationError (RuntimeError)      Milvus answered an RPC with an error
     +-- DatabaseNotFoundError (LookupError)      a database named by a filter does not exist
     +-- CollectionNotFoundError (LookupError)    a collection named by a filter does not exist
     +-- StorageError (OSError)                   an fsspec storage call failed
     |    +-- StorageRootNotFoundError            the storage root (local dir, bucket) does not exist
     +-- BackupExistsError (FileExistsError)      a backup of that name already exists
     +-- BackupLockedError (FileExistsError)      another writer holds the lock on that backup name   retryable
     +-- BackupNotFoundError (LookupError)        no backup of that name
     +-- ManifestError (ValueError)               a manifest file is missing, not JSON or malformed
     +-- BackupCorruptError (ValueError)          a backup's files are missing, short or corrupt (all listed)
     +-- InconsistentSegmentError (RuntimeError)  a segment's binlogs disagree (orphan files) or are missing
     +-- FlushTimeoutError (TimeoutError)         a flush did not finish in time                 retryable
     +-- GcPauseError (RuntimeError)              the server has GC control but pausing GC failed   retryable
     +-- RestorePlanError (ValueError)            a restore request conflicts with the target (all conflicts listed)
     +-- ImportFailedError (RuntimeError)         a bulk import failed or imported fewer rows than backed up

Messages name the thing that is wrong and never carry a credential.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BackupCorruptError",
    "BackupExistsError",
    "BackupLockedError",
    "BackupNotFoundError",
    "CollectionNotFoundError",
    "DatabaseNotFoundError",
    "FlushTimeoutError",
    "GcPauseError",
    "ImportFailedError",
    "InconsistentSegmentError",
    "InvalidConfigError",
    "InvalidFilterError",
    "InvalidNameError",
    "ManifestError",
    "MilvusAuthenticationError",
    "MilvusBackupError",
    "MilvusConnectionError",
    "MilvusOperationError",
    "MilvusPermissionError",
    "RestorePlanError",
    "StorageError",
    "StorageRootNotFoundError",
]


class MilvusBackupError(Exception):
    """Base of every error raised by :mod:`milvus_backup_lib`."""

    #: Whether the same call may succeed if tried again later.
    retryable: bool = False


class InvalidNameError(MilvusBackupError, ValueError):
    """A backup, collection or database name does not follow the naming rules."""


class InvalidFilterError(MilvusBackupError, ValueError):
    """A collection filter (``db.coll``, ``coll``, ``db.*``) or a rename rule cannot be parsed."""


class InvalidConfigError(MilvusBackupError, ValueError):
    """A milvus-backup config file or value cannot be used. The message names the key, never a secret."""


class MilvusConnectionError(MilvusBackupError, ConnectionError):
    """The Milvus server could not be reached."""

    retryable = True


class MilvusAuthenticationError(MilvusBackupError, PermissionError):
    """Milvus refused the credentials (wrong user, password or token)."""


class MilvusPermissionError(MilvusBackupError, PermissionError):
    """The authenticated user lacks a privilege needed for the operation."""


class MilvusOperationError(MilvusBackupError, RuntimeError):
    """Milvus answered a request with an error status."""

    def __init__(self, operation: str, reason: str, code: int = 0) -> None:
        super().__init__(f"Milvus {operation} failed: {reason}" + (f" (code {code})" if code else ""))
        self.operation = operation
        self.reason = reason
        self.code = code


class DatabaseNotFoundError(MilvusBackupError, LookupError):
    """A database named in a filter does not exist on the server."""

    def __init__(self, database: str) -> None:
        super().__init__(f"database {database!r} does not exist")
        self.database = database


class CollectionNotFoundError(MilvusBackupError, LookupError):
    """A collection named in a filter does not exist on the server (or in the backup)."""

    def __init__(self, database: str, collection: str, where: str = "on the Milvus server") -> None:
        super().__init__(f"collection {database}.{collection} does not exist {where}")
        self.database = database
        self.collection = collection


class StorageError(MilvusBackupError, OSError):
    """An operation on a storage location failed."""


class StorageRootNotFoundError(StorageError):
    """The root of a storage location (a local directory, a bucket) does not exist."""


class BackupExistsError(MilvusBackupError, FileExistsError):
    """A backup with the requested name already exists in the backup root."""

    def __init__(self, name: str, root: str, detail: str = "") -> None:
        super().__init__(
            f"a backup named {name!r} already exists under {root}" + (f": {detail}" if detail else "")
        )
        self.name = name


class BackupLockedError(MilvusBackupError, FileExistsError):
    """Another writer holds the lock on this backup name (and its lock is not stale)."""

    retryable = True

    def __init__(self, name: str, holder: str, age: float) -> None:
        super().__init__(
            f"backup {name!r} is being written by {holder} (lock refreshed {age:.0f} s ago); "
            "wait for it to finish or pick another name"
        )
        self.name = name
        self.holder = holder


class BackupNotFoundError(MilvusBackupError, LookupError):
    """No complete backup with the requested name exists in the backup root."""

    def __init__(self, name: str, root: str) -> None:
        super().__init__(f"no backup named {name!r} under {root}")
        self.name = name


class ManifestError(MilvusBackupError, ValueError):
    """A backup manifest file is missing, is not JSON, or has missing or mistyped fields."""

    def __init__(self, file: str, detail: str, field: str | None = None) -> None:
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + detail)
        self.file = file
        self.field = field
        self.detail = detail


class BackupCorruptError(MilvusBackupError, ValueError):
    """A backup failed verification; :attr:`problems` names every missing, short or corrupt file."""

    def __init__(self, name: str, problems: Sequence[str]) -> None:
        self.name = name
        self.problems = tuple(problems)
        shown = "\n  - ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"backup {name!r} is damaged, refusing to use it:\n  - {shown}{more}")


class InconsistentSegmentError(MilvusBackupError, RuntimeError):
    """A segment's binlog files are inconsistent (per-field file counts differ, or a file is missing)."""

    def __init__(self, segment_id: int, detail: str) -> None:
        super().__init__(f"segment {segment_id}: {detail}")
        self.segment_id = segment_id


class FlushTimeoutError(MilvusBackupError, TimeoutError):
    """A collection flush did not complete in the allowed time."""

    retryable = True


class GcPauseError(MilvusBackupError, RuntimeError):
    """Pausing Milvus garbage collection failed on a server that has GC control (or may have it).

    Copying without the pause risks losing segments that compaction and GC remove meanwhile; pass
    ``pause_gc=False`` to :class:`BackupClient` to back up anyway.
    """

    retryable = True


class RestorePlanError(MilvusBackupError, ValueError):
    """A restore cannot be planned; :attr:`conflicts` lists every reason, nothing was changed."""

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__("restore refused, nothing was changed:\n  - " + "\n  - ".join(self.conflicts))


class ImportFailedError(MilvusBackupError, RuntimeError):
    """A bulk import failed, or brought fewer rows than the backup holds."""
