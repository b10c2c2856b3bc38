"""Progress for the command line: tqdm bars on a terminal, plain log lines elsewhere.

:class:`TqdmProgress` turns the library's :class:`~milvus_backup_lib.progress.Progress` events into
- a bytes bar for each copy phase (the backup copy, or the files a restore stages),
- a counting bar for bulk-import jobs,
- one status line for the current phase and for waits (flushes, imports, loads),
when stderr is a terminal; otherwise into ``INFO`` records of the ``milvus_backup_lib.cli`` logger,
throttled so a long copy logs a line every few seconds rather than one per file. ``-q`` gives the
library :data:`~milvus_backup_lib.progress.NULL_PROGRESS` instead, so nothing is shown at all.

:func:`configure_logging` sets the log levels of ``-v``/``-q`` and sends the records to stderr through
:class:`TqdmLoggingHandler`; :func:`make_progress` picks what a command shows.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

from milvus_backup_lib.backup_yaml import LogSettings
from milvus_backup_lib.cli.output import cli_message
from milvus_backup_lib.errors import InvalidConfigError
from milvus_backup_lib.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    from milvus_backup_lib.cli.parser import Settings

__all__ = ["TqdmLoggingHandler", "TqdmProgress", "close_progress", "configure_logging", "make_progress"]

log = logging.getLogger("milvus_backup_lib.cli")

#: Seconds between two log lines of one copy phase or of one wait (plain-log mode).
LOG_INTERVAL = 5.0


class TqdmLoggingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes log records through ``tqdm.write``, so they appear above the bars instead of breaking them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class TqdmProgress(Progress):
    """Shows backup and restore progress: tqdm bars when ``bars`` is true, else log lines.

    Use it as a context manager (or call :meth:`close`) so the bars are closed at the end.
    """

    def __init__(self, *, bars: bool, stream: IO[str] | None = None) -> None:
        self.bars = bars
        self._stream = stream
        self._lock = threading.Lock()
        self._status: Any = None
        self._copy: Any = None
        self._imports: Any = None
        self._inserted: Any = None
        # plain-log mode: where the current copy phase stands
        self._copy_files = 0
        self._copy_total_files = 0
        self._copy_bytes = 0
        self._copy_total_bytes = 0
        self._copy_logged = 0.0
        self._wait_logged: dict[str, float] = {}

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every bar (the last state of the copy and import bars stays on the terminal)."""
        with self._lock:
            for bar in (self._copy, self._imports, self._inserted, self._status):
                if bar is not None:
                    bar.close()
            self._copy = self._imports = self._inserted = self._status = None

    # -- helpers -------------------------------------------------------------------------------------

    def _bar(self, **kwargs: Any) -> Any:
        kwargs.setdefault("leave", True)
        return tqdm(file=self._stream, dynamic_ncols=True, **kwargs)

    def _set_status(self, text: str) -> None:
        if self._status is None:
            # The status line is cleared at the end: its last text (a wait) would be stale there.
            self._status = self._bar(bar_format="{desc}", total=0, leave=False)
        self._status.set_description_str(text, refresh=True)

    def _write(self, text: str) -> None:
        tqdm.write(text, file=self._stream)

    # -- Progress events -----------------------------------------------------------------------------

    def phase(self, name: str, detail: str = "") -> None:
        text = f"{name}: {detail}" if detail else name
        if not self.bars:
            log.info("%s", text)
            return
        with self._lock:
            self._set_status(text)

    def collection_started(self, name: str) -> None:
        if not self.bars:
            log.info("collection %s: started", name)
            return
        with self._lock:
            self._set_status(f"collection {name}")

    def collection_done(self, name: str) -> None:
        if not self.bars:
            log.info("collection %s: done", name)
            return
        with self._lock:
            self._write(f"collection {name}: done")

    def segments_found(self, collection: str, count: int) -> None:
        if not self.bars:
            log.info("collection %s: %d flushed segment(s)", collection, count)
            return
        with self._lock:
            self._set_status(f"collection {collection}: {count} flushed segment(s)")

    def files_total(self, count: int, nbytes: int) -> None:
        with self._lock:
            self._copy_files, self._copy_total_files = 0, count
            self._copy_bytes, self._copy_total_bytes = 0, nbytes
            self._copy_logged = time.monotonic()
            if not self.bars:
                log.info("copy: %d file(s), %s", count, _size(nbytes))
                return
            if self._copy is not None:
                self._copy.close()
            self._copy = self._bar(
                total=nbytes, unit="B", unit_scale=True, unit_divisor=1024, desc=f"copy {count} file(s)"
            )

    def file_done(self, path: str, nbytes: int) -> None:
        # Called from the copier's worker threads: every update happens under the lock.
        with self._lock:
            self._copy_files += 1
            self._copy_bytes += nbytes
            if self.bars:
                if self._copy is not None:
                    self._copy.update(nbytes)
                return
            now = time.monotonic()
            finished = self._copy_files >= self._copy_total_files
            if finished or now - self._copy_logged >= LOG_INTERVAL:
                self._copy_logged = now
                log.info(
                    "copy: %d/%d file(s), %s of %s",
                    self._copy_files,
                    self._copy_total_files,
                    _size(self._copy_bytes),
                    _size(self._copy_total_bytes),
                )

    def import_started(self, target: str, partition: str, files: tuple[str, ...]) -> None:
        if not self.bars:
            log.info("import into %s partition %s: started (%s)", target, partition, ", ".join(files))
            return
        with self._lock:
            if self._imports is None:
                self._imports = self._bar(desc="import jobs", unit="job", total=None)
            self._imports.set_postfix_str(f"{target}/{partition}", refresh=True)

    def import_done(self, target: str, partition: str, rows: int) -> None:
        if not self.bars:
            log.info("import into %s partition %s: %d row(s)", target, partition, rows)
            return
        with self._lock:
            if self._imports is None:
                self._imports = self._bar(desc="import jobs", unit="job", total=None)
            self._imports.update(1)
            self._imports.set_postfix_str(f"{target}/{partition}: {rows} rows", refresh=True)

    def rows_inserted(self, target: str, partition: str, rows: int) -> None:
        if not self.bars:
            log.debug("insert into %s (from partition %s): %d row(s)", target, partition, rows)
            return
        with self._lock:
            if self._inserted is None:
                self._inserted = self._bar(desc="rows inserted", unit="row", total=None)
            self._inserted.update(rows)
            self._inserted.set_postfix_str(target, refresh=False)

    def waiting(self, what: str, seconds: float) -> None:
        if not self.bars:
            now = time.monotonic()
            with self._lock:
                last = self._wait_logged.get(what)
                if last is not None and now - last < LOG_INTERVAL:
                    return
                self._wait_logged[what] = now
            log.info("waiting for %s (%.0f s)", what, seconds)
            return
        with self._lock:
            self._set_status(f"waiting for {what} ({seconds:.0f} s)")


class _CliFormatter(logging.Formatter):
    """Formats a record, then rewrites library wording into the command line's (flags, not arguments)."""

    def format(self, record: logging.LogRecord) -> str:
        return cli_message(super().format(record))


class _CliFileHandler(logging.FileHandler):
    """The ``log.file`` of the config: records appended to a file (a class of its own, to find it again)."""


def configure_logging(settings: Settings, stream: IO[str], config: LogSettings | None = None) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv (-vvv: every library's DEBUG too), ERROR with -q.

    The level applies to this library's loggers; other libraries (pymilvus, grpc, fsspec) stay at WARNING
    unless -vvv. Records go to ``stream`` (stderr) through tqdm, so they do not break progress bars.
    Retries (``milvus_backup_lib.retry``, INFO) are shown at the default level too: they say what the
    command is waiting for.

    ``config`` is the ``log.*`` of the config file, once it is read: ``log.level`` sets the level when
    neither -v nor -q is given (``info`` is -v, ``debug`` -vv), ``log.console: false`` sends no record
    to stderr (unless -v or -q), and ``log.file`` appends every record to that file as well (its
    directory is created). Called again, it replaces what an earlier call set up.
    """
    config = config or LogSettings()
    if settings.quiet:
        level, root_level = logging.ERROR, logging.ERROR
    elif settings.verbose:
        level = logging.INFO if settings.verbose == 1 else logging.DEBUG
        root_level = logging.DEBUG if settings.verbose >= 3 else logging.WARNING
    else:
        level = config.level_number or logging.WARNING
        root_level = logging.WARNING
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, TqdmLoggingHandler | _CliFileHandler)]:
        root.removeHandler(old)
        if isinstance(old, _CliFileHandler):
            old.close()
    if config.console or settings.quiet or settings.verbose:
        handler = TqdmLoggingHandler(stream)
        handler.setFormatter(_CliFormatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    if config.file:
        parent = os.path.dirname(os.path.abspath(config.file))
        try:
            os.makedirs(parent, exist_ok=True)
            file_handler = _CliFileHandler(config.file, encoding="utf-8", delay=True)
        except OSError as exc:
            raise InvalidConfigError(f"log file {config.file}: {exc.strerror or exc}") from None
        file_handler.setFormatter(_CliFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)
    root.setLevel(root_level)
    logging.getLogger("milvus_backup_lib").setLevel(level)
    # Retries are worth a line at the default level; -q (and log.level error) keep them quiet.
    retry_level = logging.INFO if level == logging.WARNING else logging.NOTSET
    logging.getLogger("milvus_backup_lib.retry").setLevel(retry_level)


def make_progress(settings: Settings, stream: IO[str]) -> Progress:
    """No progress with -q; tqdm bars when ``stream`` is a terminal; log lines otherwise."""
    if settings.quiet:
        return NULL_PROGRESS
    return TqdmProgress(bars=_isatty(stream), stream=stream)


def close_progress(progress: Progress) -> None:
    """Close the bars of what :func:`make_progress` returned."""
    if isinstance(progress, TqdmProgress):
        progress.close()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"  # pragma: no cover - the loop always returns
