"""The library's errors: everything it raises derives from :class:`MilvusBackupError`.

The tree is grouped by what went wrong (as httpx groups its own errors). Each class also derives from
the fitting builtin, so ``except ValueError`` or ``except OSError`` work too; a group derives from a
builtin only when all its members share it. The "retry" column is ``retryable`` (whether trying
again can help); "cause" marks the classes that :mod:`milvus_backup_lib.retry` judges by the error
they were raised from (permanent without one).

::

    class (builtin)                                        retry  raised when
    MilvusBackupError (Exception)                          cause  base of everything below
     +-- UsageError (ValueError)                           no     the caller asked for something unusable
     |    +-- InvalidNameError (ValueError)                no     a backup, collection or database name is bad
     |    +-- InvalidFilterError (ValueError)              no     a collection filter or rename is unparsable
     |    +-- InvalidConfigError (ValueError)              no     a milvus-backup config key cannot be used
     |    +-- InvalidOptionError (ValueError)              no     an option value is not a valid choice
     |         +-- InvalidOptionTypeError (TypeError)      no     ... nor of the right type
     +-- MilvusError                                       cause  Milvus cannot be reached, refused or failed
     |    +-- MilvusConnectionError (ConnectionError)      yes    the Milvus server cannot be reached
     |    +-- MilvusAuthenticationError (PermissionError)  no     wrong user, password or token
     |    +-- MilvusPermissionError (PermissionError)      no     the user lacks a privilege
     |    +-- MilvusOperationError (RuntimeError)          cause  Milvus answered an RPC with an error
     |    +-- DatabaseNotFoundError (LookupError)          no     a database named by a filter is missing
     |    +-- CollectionNotFoundError (LookupError)        no     a collection named by a filter is missing
     |    +-- FlushTimeoutError (TimeoutError)             yes    a flush did not finish in time
     |    +-- GcPauseError (RuntimeError)                  yes    pausing GC failed (pause_gc=True only)
     |    +-- InconsistentSegmentError (RuntimeError)      no     a segment's binlogs disagree or are missing
     |         +-- UnsupportedSegmentFormatError          no     ... or are in a format it cannot back up
     +-- StorageError (OSError)                            cause  an fsspec storage call failed
     |    +-- StorageCredentialsError (PermissionError)    no     the store refused the key, secret or token
     |    +-- StorageUnreachableError (ConnectionError)    no     the storage endpoint does not answer
     |    +-- StorageRootNotFoundError (OSError)           no     the root directory or prefix does not exist
     |         +-- BucketNotFoundError (OSError)           no     the bucket (Azure: container) does not exist
     +-- BackupError                                       cause  a backup cannot be written or read as asked
     |    +-- BackupExistsError (FileExistsError)          no     a backup of that name already exists
     |    +-- BackupLockedError (FileExistsError)          yes    another writer holds the lock on that name
     |    |    +-- LockLostError (FileExistsError)         no     our lock was taken over (or expired) mid-run
     |    |    +-- RepositoryLockedError (FileExistsError) yes    the repository lock stayed held too long
     |    +-- BackupNotFoundError (LookupError)            no     no backup of that name
     |    +-- ManifestError (ValueError)                   no     a manifest file is missing or malformed
     |    +-- BackupCorruptError (ValueError)              no     a backup's files are missing, short, corrupt
     |    +-- CorruptBinlogError (ValueError)              no     a segment file cannot be decoded (file, byte)
     |    +-- IncrementalBaseError (ValueError)            no     the base of an incremental backup cannot be used
     +-- MissingDependencyError (ImportError)              no     an optional package (an extra) is not installed
     +-- RestoreError                                      cause  a restore was refused or failed
          +-- RestorePlanError (ValueError)                no     the request conflicts with the target
          +-- ImportFailedError (RuntimeError)             no     an import failed or brought too few rows
               +-- InsertFailedError (RuntimeError)        no     an insert restore failed or left other rows

Messages name the thing that is wrong and never carry a credential.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "BackupCorruptError",
    "BackupError",
    "BackupExistsError",
    "BackupLockedError",
    "BackupNotFoundError",
    "BucketNotFoundError",
    "CollectionNotFoundError",
    "CorruptBinlogError",
    "DatabaseNotFoundError",
    "FlushTimeoutError",
    "GcPauseError",
    "ImportFailedError",
    "InconsistentSegmentError",
    "IncrementalBaseError",
    "InsertFailedError",
    "InvalidConfigError",
    "InvalidFilterError",
    "InvalidNameError",
    "InvalidOptionError",
    "InvalidOptionTypeError",
    "LockLostError",
    "ManifestError",
    "MilvusAuthenticationError",
    "MilvusBackupError",
    "MilvusConnectionError",
    "MilvusError",
    "MilvusOperationError",
    "MilvusPermissionError",
    "MissingDependencyError",
    "RepositoryLockedError",
    "RestoreError",
    "RestorePlanError",
    "StorageCredentialsError",
    "StorageError",
    "StorageRootNotFoundError",
    "StorageUnreachableError",
    "UnsupportedSegmentFormatError",
    "UsageError",
]


class MilvusBackupError(Exception):
    """Base of every error raised by :mod:`milvus_backup_lib`."""

    #: Whether the same call may succeed if tried again later.
    retryable: bool = False


# --------------------------------------------------------------------------- groups


class UsageError(MilvusBackupError, ValueError):
    """The caller asked for something that cannot be done: a bad name, filter, config or option value.

    Nothing was changed; fix the call (or the command line, or the config file) and try again.
    """


class MilvusError(MilvusBackupError):
    """The Milvus server could not be reached, refused the request, or failed while serving it."""


class BackupError(MilvusBackupError):
    """A backup cannot be written or read as asked: it exists, is locked, is missing or is damaged."""


class RestoreError(MilvusBackupError):
    """A restore was refused before anything changed, or failed while importing."""


# --------------------------------------------------------------------------- usage errors


class InvalidNameError(UsageError, ValueError):
    """A backup, collection or database name does not follow the naming rules."""


class InvalidFilterError(UsageError, ValueError):
    """A collection filter (``db.coll``, ``coll``, ``db.*``) or a rename rule cannot be parsed."""


class InvalidConfigError(UsageError, ValueError):
    """A milvus-backup config file or value cannot be used. The message names the key, never a secret."""


class InvalidOptionError(UsageError, ValueError):
    """An option value is not valid; the message names the option, the bad value and the valid choices.

    ``strategy='bulk_flush' is not valid; choose one of: serial_flush, skip_flush, meta_only``.
    ``choices`` is either the valid values (strings shown as they are, other values by their repr) or
    a phrase that follows "choose" (``"a number of seconds > 0"``). ``detail`` follows "is not valid"
    (``"with drop_existing=True"``). ``hide_value`` shows only the value's type, for a value that may
    hold a credential (a URI); :attr:`value` is then None.
    """

    def __init__(
        self,
        option: str,
        value: object,
        choices: Iterable[object] | str,
        *,
        detail: str = "",
        hide_value: bool = False,
    ) -> None:
        self.option = option
        self.value = None if hide_value else value
        self.choices: tuple[object, ...] | str = choices if isinstance(choices, str) else tuple(choices)
        shown = f"{option} (a {type(value).__name__})" if hide_value else f"{option}={value!r}"
        if isinstance(self.choices, str):
            choose = f"choose {self.choices}"
        else:
            choose = "choose one of: " + ", ".join(c if isinstance(c, str) else repr(c) for c in self.choices)
        super().__init__(f"{shown} is not valid" + (f" {detail}" if detail else "") + f"; {choose}")


class InvalidOptionTypeError(InvalidOptionError, TypeError):
    """An option value of the wrong type (``load="yes"``).

    Also a :class:`TypeError`, as the type checks it replaces were, so ``except TypeError`` still works.
    """


# --------------------------------------------------------------------------- Milvus errors


class MilvusConnectionError(MilvusError, ConnectionError):
    """The Milvus server could not be reached."""

    retryable = True


class MilvusAuthenticationError(MilvusError, PermissionError):
    """Milvus refused the credentials (wrong user, password or token)."""


class MilvusPermissionError(MilvusError, PermissionError):
    """The authenticated user lacks a privilege needed for the operation."""


class MilvusOperationError(MilvusError, RuntimeError):
    """Milvus answered a request with an error status."""

    def __init__(self, operation: str, reason: str, code: int = 0) -> None:
        super().__init__(f"Milvus {operation} failed: {reason}" + (f" (code {code})" if code else ""))
        self.operation = operation
        self.reason = reason
        self.code = code


class DatabaseNotFoundError(MilvusError, LookupError):
    """A database named in a filter does not exist on the server."""

    def __init__(self, database: str) -> None:
        super().__init__(f"database {database!r} does not exist")
        self.database = database


class CollectionNotFoundError(MilvusError, LookupError):
    """A collection named in a filter does not exist on the server (or in the backup)."""

    def __init__(self, database: str, collection: str, where: str = "on the Milvus server") -> None:
        super().__init__(f"collection {database}.{collection} does not exist {where}")
        self.database = database
        self.collection = collection


class InconsistentSegmentError(MilvusError, RuntimeError):
    """A segment's binlog files are inconsistent (per-field file counts differ, or a file is missing)."""

    def __init__(self, segment_id: int, detail: str) -> None:
        super().__init__(f"segment {segment_id}: {detail}")
        self.segment_id = segment_id


class UnsupportedSegmentFormatError(InconsistentSegmentError):
    """A segment is stored in a format the library cannot back up (storage v3 "Loon" manifests, or a
    storage version it does not know)."""

    def __init__(self, segment_id: int, storage_format: str, detail: str) -> None:
        super().__init__(segment_id, f"is stored in {storage_format}, which cannot be backed up: {detail}")
        self.storage_format = storage_format


class FlushTimeoutError(MilvusError, TimeoutError):
    """A collection flush did not complete in the allowed time."""

    retryable = True


class GcPauseError(MilvusError, RuntimeError):
    """Pausing Milvus garbage collection failed on a server that has GC control (or may have it).

    Raised only with ``pause_gc=True``; the default ``pause_gc="auto"`` warns, records the failure
    and goes on. ``problem`` is what went wrong without the advice (what ``"auto"`` records).
    """

    retryable = True

    def __init__(self, message: str, *, problem: str = "") -> None:
        super().__init__(message)
        self.problem = problem or message


# --------------------------------------------------------------------------- storage errors


class StorageError(MilvusBackupError, OSError):
    """An operation on a storage location failed."""


class StorageRootNotFoundError(StorageError):
    """The root of a storage location does not exist: a local directory that is absent, or a prefix
    below the bucket that holds nothing. Its subclass :class:`BucketNotFoundError` is a missing bucket."""


class BucketNotFoundError(StorageRootNotFoundError):
    """The bucket (S3, GCS) or container (Azure) of a storage location does not exist."""


class StorageCredentialsError(StorageError, PermissionError):
    """The store refused the credentials: an unknown key, a wrong secret, an expired token, or a
    key without the right to the bucket (S3 ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``,
    ``AccessDenied``; GCS 401/403; Azure ``AuthenticationFailed``)."""


class StorageUnreachableError(StorageError, ConnectionError):
    """The storage endpoint cannot be reached: the connection is refused, the name does not resolve,
    or connecting times out. The message names the endpoint URL.

    Not retryable: it is raised after the library already tried for a few seconds.
    """


# --------------------------------------------------------------------------- backup errors


class BackupExistsError(BackupError, FileExistsError):
    """A backup with the requested name already exists in the backup root."""

    def __init__(self, name: str, root: str, detail: str = "") -> None:
        super().__init__(
            f"a backup named {name!r} already exists under {root}" + (f": {detail}" if detail else "")
        )
        self.name = name


class BackupLockedError(BackupError, FileExistsError):
    """Another writer holds the lock on this backup name (and its lock is not stale)."""

    retryable = True

    def __init__(self, name: str, holder: str, age: float) -> None:
        super().__init__(
            f"backup {name!r} is being written by {holder} (lock refreshed {age:.0f} s ago); "
            "wait for it to finish or pick another name"
        )
        self.name = name
        self.holder = holder


class LockLostError(BackupLockedError):
    """The writer's own lock on the backup name was taken over, or could not be refreshed within its lease.

    Raised by the writer that lost it, which then writes nothing more (no manifest): the other writer
    (``holder``) owns the name now.
    """

    retryable = False

    def __init__(self, name: str, holder: str, why: str) -> None:
        BackupError.__init__(
            self,
            f"backup {name!r} was not finished: this writer lost its lock on the name ({why}); it is now "
            f"held by {holder}. Nothing more was written (no manifest). Let that writer finish, then check "
            "the backup with verify_backup(); if a run stalls for longer than lock_stale_after seconds "
            "(a suspended machine, an overloaded host), raise lock_stale_after",
        )
        self.name = name
        self.holder = holder


class RepositoryLockedError(BackupLockedError):
    """The repository lock (``{root}/milvus_backup_lib.repository.lock``), under which deletes, prunes,
    materializes and incremental commits change which files are referenced, stayed held longer than a
    delete, prune or materialize waits for it."""

    def __init__(self, root: str, holder: str, waited: float) -> None:
        BackupError.__init__(
            self,
            f"the repository lock of {root} is held by {holder} (waited {waited:.0f} s): another delete, "
            "prune, materialize or incremental backup is changing which files backups reference; try "
            "again when it is done (a lock whose holder died is taken over after lock_stale_after seconds)",
        )
        self.name = "milvus_backup_lib.repository"
        self.holder = holder


class BackupNotFoundError(BackupError, LookupError):
    """No complete backup with the requested name exists in the backup root."""

    def __init__(self, name: str, root: str) -> None:
        super().__init__(f"no backup named {name!r} under {root}")
        self.name = name


class ManifestError(BackupError, ValueError):
    """A backup manifest file is missing, is not JSON, or has missing or mistyped fields."""

    def __init__(self, file: str, detail: str, field: str | None = None) -> None:
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + detail)
        self.file = file
        self.field = field
        self.detail = detail


class BackupCorruptError(BackupError, ValueError):
    """A backup failed verification; :attr:`problems` names every missing, short or corrupt file."""

    def __init__(self, name: str, problems: Sequence[str]) -> None:
        self.name = name
        self.problems = tuple(problems)
        shown = "\n  - ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"backup {name!r} is damaged, refusing to use it:\n  - {shown}{more}")


class IncrementalBaseError(BackupError, ValueError):
    """The base named for an incremental backup cannot be used: missing, made by the Go tool, holding no
    binlogs, or of another cluster or storage root. Raised before anything is written."""

    def __init__(self, base: str, root: str, reason: str) -> None:
        super().__init__(f"cannot make an incremental backup against {base!r} in {root}: {reason}")
        self.base = base
        self.reason = reason


class CorruptBinlogError(BackupError, ValueError):
    """A segment file of a backup (insert or delete log) cannot be decoded.

    :attr:`file` is the file's path inside the backup storage, :attr:`offset` the byte offset where
    decoding failed (0 for the whole file), :attr:`detail` what was found there.
    """

    def __init__(self, file: str, offset: int, detail: str) -> None:
        super().__init__(
            f"segment file {file} cannot be read at byte {offset}: {detail}; the backup is damaged or was "
            "written in a format this version does not know: run verify_backup, or read it with a newer "
            "milvus-backup-lib"
        )
        self.file = file
        self.offset = offset
        self.detail = detail


class MissingDependencyError(MilvusBackupError, ImportError):
    """An optional package the call needs is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str | None, feature: str) -> None:
        install = f"'milvus-backup-lib[{extra}]'" if extra else package
        super().__init__(
            f"{feature} needs {package}, which is not installed: pip install {install}", name=package
        )
        self.package = package
        self.extra = extra


# --------------------------------------------------------------------------- restore errors


class RestorePlanError(RestoreError, ValueError):
    """A restore cannot be planned; :attr:`conflicts` lists every reason, nothing was changed."""

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__("restore refused, nothing was changed:\n  - " + "\n  - ".join(self.conflicts))


class ImportFailedError(RestoreError, RuntimeError):
    """A bulk import failed, or brought fewer rows than the backup holds."""


class InsertFailedError(ImportFailedError):
    """A restore by inserts (``method="insert"``) failed: a batch could not be converted or inserted, or
    the target does not hold the backup's live rows afterwards."""
