"""A writer's lock on one backup name, kept as an object in the backup root.

``{root}/{name}.lock`` holds JSON ``{owner, host, pid, name, created, refreshed}``. The Go tool lists
only directories of the root, so it ignores the file. The lock is taken with an exclusive create
(``O_EXCL`` on local disk; fsspec's ``mode="create"`` elsewhere: If-None-Match on S3,
ifGenerationMatch=0 on GCS, overwrite=False on Azure), refreshed by a thread every ``stale_after / 3``
seconds while the writer works, and released in a ``finally``. A lock whose ``refreshed`` time is older
than ``stale_after`` seconds (default 300: five missed refreshes' worth of margin at the default) is
taken to belong to a dead writer and may be broken, and so is one taken on this very host by a process
that no longer exists (a writer killed with SIGKILL); a fresh lock of a live writer is never stolen. The loser of a race
gets :class:`BackupLockedError` naming the holder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from milvus_backup_lib.errors import BackupLockedError, StorageError
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["DEFAULT_STALE_AFTER", "BackupLock"]

log = logging.getLogger(__name__)

#: Seconds after its last refresh at which a lock counts as abandoned.
DEFAULT_STALE_AFTER = 300.0


class BackupLock:
    """Context manager holding the write lock on backup ``name`` in ``location``."""

    def __init__(
        self, location: StorageLocation, name: str, *, stale_after: float = DEFAULT_STALE_AFTER
    ) -> None:
        self.location = location
        self.name = name
        self.stale_after = stale_after
        self.path = location.join(f"{name}.lock")
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.held = False

    def __repr__(self) -> str:
        return f"BackupLock({self.name!r}, held={self.held})"

    def _record(self, created: float) -> bytes:
        now = time.time()
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "name": self.name,
                "created": created,
                "refreshed": now,
            },
            sort_keys=True,
        ).encode()

    def _create(self, data: bytes) -> bool:
        """Write the lock object only if it does not exist; False if it does."""
        fs = self.location.fs
        try:
            if self.location.is_local:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            else:
                fs.pipe_file(self.path, data, mode="create")
        except FileExistsError:
            return False
        except Exception as exc:
            if _is_precondition_failure(exc):
                return False
            raise StorageError(
                f"cannot create the lock {self.path}: {type(exc).__name__}: {scrub(str(exc), self.location)}"
            ) from exc
        return True

    def read(self) -> dict[str, Any] | None:
        """The current lock record, or None if there is none (or it is unreadable garbage)."""
        fs = self.location.fs
        try:
            fs.invalidate_cache(self.path)
            raw = fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise StorageError(
                f"cannot read the lock {self.path}: {type(exc).__name__}: {scrub(str(exc), self.location)}"
            ) from exc
        try:
            record = json.loads(raw)
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def acquire(self) -> None:
        """Take the lock or raise :class:`BackupLockedError`; a stale lock is broken first."""
        created = time.time()
        for _ in range(3):
            if self._create(self._record(created)):
                self.held = True
                self._thread = threading.Thread(
                    target=self._refresh_loop, name=f"lock-{self.name}", daemon=True
                )
                self._thread.start()
                return
            record = self.read()
            if record is None:
                continue  # released between our create and our read: try again
            refreshed = record.get("refreshed")
            age = time.time() - refreshed if isinstance(refreshed, int | float) else float("inf")
            if _holder_is_dead(record):
                age = float("inf")  # its writer is gone from this very host: no need to wait it out
            if age <= self.stale_after:
                raise BackupLockedError(self.name, _holder(record), age)
            log.warning(
                "breaking the stale lock on %s (last refreshed %.0f s ago by %s)",
                self.name,
                age,
                _holder(record),
            )
            self._remove()
        raise BackupLockedError(self.name, "another writer (the lock kept changing hands)", 0.0)

    def _refresh_loop(self) -> None:
        interval = max(0.5, self.stale_after / 3)
        created = time.time()
        while not self._stop.wait(interval):
            try:
                record = self.read()
                if not record or record.get("owner") != self.owner:
                    log.error("the lock on %s was taken over by %s", self.name, _holder(record or {}))
                    return
                created = float(record.get("created", created))
                self.location.fs.pipe_file(self.path, self._record(created))
            except Exception as exc:  # keep trying; the lock only goes stale after several misses
                # No traceback (exc_info): a chained cause may quote a credential.
                why = scrub(f"{type(exc).__name__}: {exc}", self.location)
                log.warning("refreshing the lock on %s failed: %s", self.name, why)

    def _remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.location.fs.rm_file(self.path)

    def release(self) -> None:
        """Stop refreshing and delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self.held:
            return
        self.held = False
        try:
            record = self.read()
            if record and record.get("owner") == self.owner:
                self._remove()
        except Exception as exc:  # a lock left behind goes stale; never mask the real outcome
            why = scrub(f"{type(exc).__name__}: {exc}", self.location)  # no traceback: it may quote secrets
            log.warning("could not release the lock on %s: %s", self.name, why)

    def __enter__(self) -> BackupLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _holder_is_dead(record: dict[str, Any]) -> bool:
    """Whether the lock was taken on this host by a process that no longer exists (killed, crashed)."""
    pid = record.get("pid")
    if (
        record.get("host") != socket.gethostname()
        or not isinstance(pid, int)
        or pid <= 0
        or pid == os.getpid()
    ):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _holder(record: dict[str, Any]) -> str:
    host, pid = record.get("host", "?"), record.get("pid", "?")
    return f"pid {pid} on {host}"


def _is_precondition_failure(exc: BaseException) -> bool:
    """An exclusive create that failed because the object exists (HTTP 412 / 409 from object stores)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        s in text for s in ("precondition", "412", "409", "already exists", "conditionalrequestconflict")
    )
