"""The ``backup.yaml`` settings beyond the connection and the two storages: logging, the copy, restores.

What each becomes (v1 key / v2 key):

- ``log.level`` (both): the log level, ``debug``/``info``/``warn``/``error`` (zap's names; ``dpanic``,
  ``panic`` and ``fatal`` count as ``error``); ``log.console`` (both): log records on stderr;
  ``log.file.filename`` / ``log.file.path``: a file the records are appended to as well.
- ``backup.parallelism.copydata`` / ``transfer.concurrency``: the files copied at once
  (``FsspecCopier(concurrency=...)``; the library's default, 16, when unset).
- ``minio.crossStorage: true`` / ``transfer.mode: streaming``: stream every file through this process,
  even within one store (``FsspecCopier(force_streaming=True)``). ``transfer.mode: direct`` and
  ``auto`` are the default: a server-side copy within one store, streaming across stores.
- ``backup.keepTempFiles`` / ``restore.keepTempFiles``: keep the binlogs a restore staged in the Milvus
  bucket (``RestoreOptions(keep_staged=True)``).
- ``backup.gcPause.seconds`` (v0.4): how long each GC pause lasts (``BackupClient(gc_pause_seconds=...)``).
- ``backup.parallelism.restoreCollection`` / ``restore.concurrency.collections``: collections restored
  at once (``RestoreOptions(parallel_collections=...)``); ``backup.parallelism.importJob`` /
  ``restore.concurrency.importJobs``: import jobs in flight at once over all collections
  (``parallel_imports``); ``restore.maxSegmentsPerImportJob`` (v2): segment groups per import job on
  Milvus 2.4+ (``segments_per_import``). Unset: the library's defaults (2, 8 and 256).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs

from milvus_backup_lib.backup_yaml.sources import _bool, _Field, _Hit, _Sources, _text
from milvus_backup_lib.errors import InvalidConfigError

__all__ = ["LogSettings", "Tuning", "read_log_settings", "read_tuning"]

#: zap's level names (what the Go tool accepts) -> the logging level name.
_LOG_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "dpanic": "ERROR",
    "panic": "ERROR",
    "fatal": "ERROR",
}
_TRANSFER_MODES = ("auto", "direct", "streaming")


@attrs.frozen
class LogSettings:
    """``log.*``: where log records go and from which level. ``None``: the key was not set."""

    #: ``"DEBUG"``, ``"INFO"``, ``"WARNING"`` or ``"ERROR"`` (a :mod:`logging` level name).
    level: str | None = None
    #: ``log.console``: records on stderr (the Go tool's default, true).
    console: bool = True
    #: ``log.file.filename`` (v1) / ``log.file.path`` (v2): append the records to this file too.
    file: str | None = None

    @property
    def level_number(self) -> int | None:
        """:attr:`level` as a :mod:`logging` number."""
        return None if self.level is None else int(logging.getLevelName(self.level))


@attrs.frozen
class Tuning:
    """How copies and restores run: the copy and restore knobs of the config file."""

    #: Files copied at once; None: the copier's default.
    copy_concurrency: int | None = None
    #: Stream every file through this process, even within one store.
    force_streaming: bool = False
    #: Keep the binlogs a restore staged in the Milvus bucket.
    keep_temp_files: bool = False
    #: Seconds each GC pause lasts (v0.4 ``backup.gcPause.seconds``); None: the library's default.
    gc_pause_seconds: int | None = None
    #: Collections restored at once; None: the library's default.
    restore_collections: int | None = None
    #: Import jobs in flight at once, over all collections; None: the library's default.
    import_jobs: int | None = None
    #: Segment groups per import job on Milvus 2.4+; None: the library's default.
    segments_per_import: int | None = None

    def restore_options(self) -> dict[str, Any]:
        """The ``RestoreOptions`` keywords these settings give (only those set)."""
        chosen = {
            "parallel_collections": self.restore_collections,
            "parallel_imports": self.import_jobs,
            "segments_per_import": self.segments_per_import,
        }
        return {key: value for key, value in chosen.items() if value is not None}


def _positive_int(hit: _Hit) -> int:
    value = hit.value
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        raise InvalidConfigError(f"{hit.origin}: {value!r} is not a positive whole number")
    return number


def _optional_int(src: _Sources, field: _Field) -> int | None:
    hit = src.get(field)
    return None if hit is None else _positive_int(hit)


def _log_fields(version: str) -> Mapping[str, _Field]:
    if version == "v2":
        return {
            "level": _Field(("log.level",)),
            "console": _Field(("log.console",)),
            "file": _Field(("log.file.path",)),
        }
    return {
        "level": _Field(("log.level",)),
        "console": _Field(("log.console",)),
        "file": _Field(("log.file.filename",)),
    }


def read_log_settings(src: _Sources, version: str) -> LogSettings:
    """``log.level``, ``log.console`` and the log file; raises :class:`InvalidConfigError` naming the key."""
    fields = _log_fields(version)
    level: str | None = None
    level_hit = src.get(fields["level"])
    if level_hit is not None:
        wanted = _text(level_hit).strip().lower()
        if wanted not in _LOG_LEVELS:
            raise InvalidConfigError(
                f"{level_hit.origin}: unknown value {level_hit.value!r}; use one of debug, info, warn, error"
            )
        level = _LOG_LEVELS[wanted]
    console_hit = src.get(fields["console"])
    file_hit = src.get(fields["file"])
    file = _text(file_hit).strip() if file_hit is not None else ""
    return LogSettings(
        level=level,
        console=_bool(console_hit) if console_hit is not None else True,
        file=file or None,
    )


def read_tuning(src: _Sources, version: str) -> Tuning:
    """The copy and restore knobs; raises :class:`InvalidConfigError` naming the key of a bad value."""
    if version == "v2":
        streaming = False
        mode_hit = src.get(_Field(("transfer.mode",)))
        if mode_hit is not None:
            mode = _text(mode_hit).strip().lower()
            if mode not in _TRANSFER_MODES:
                raise InvalidConfigError(
                    f"{mode_hit.origin}: unknown value {mode_hit.value!r}; use one of {', '.join(_TRANSFER_MODES)}"
                )
            streaming = mode == "streaming"
        keep_hit = src.get(_Field(("restore.keepTempFiles",)))
        return Tuning(
            copy_concurrency=_optional_int(src, _Field(("transfer.concurrency",))),
            force_streaming=streaming,
            keep_temp_files=_bool(keep_hit) if keep_hit is not None else False,
            restore_collections=_optional_int(src, _Field(("restore.concurrency.collections",))),
            import_jobs=_optional_int(src, _Field(("restore.concurrency.importJobs",))),
            segments_per_import=_optional_int(src, _Field(("restore.maxSegmentsPerImportJob",))),
        )
    cross_hit = src.get(_Field(("minio.crossStorage",)))
    keep_hit = src.get(_Field(("backup.keepTempFiles",), ("BACKUP_KEEP_TEMP_FILES",)))
    return Tuning(
        copy_concurrency=_optional_int(
            src, _Field(("backup.parallelism.copydata",), ("BACKUP_PARALLELISM_COPYDATA",))
        ),
        force_streaming=_bool(cross_hit) if cross_hit is not None else False,
        keep_temp_files=_bool(keep_hit) if keep_hit is not None else False,
        gc_pause_seconds=_optional_int(src, _Field(("backup.gcPause.seconds",))),
        restore_collections=_optional_int(
            src,
            _Field(("backup.parallelism.restoreCollection",), ("BACKUP_PARALLELISM_RESTORE_COLLECTION",)),
        ),
        import_jobs=_optional_int(src, _Field(("backup.parallelism.importJob",))),
    )
