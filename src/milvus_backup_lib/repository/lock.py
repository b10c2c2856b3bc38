"""A writer's lock on one backup name, kept as an object in the backup root: a lease with a fencing token.

``{root}/{name}.lock`` holds JSON ``{owner, host, pid, name, created, refreshed, lease, seq}``. The Go
tool lists only directories of the root, so it ignores the file. ``owner`` is a random token: the
writer that finds its own token in the lock holds it (an exclusive create whose reply was lost and
that the store's client retried, for instance).

Every write is conditional, decided by the store itself (:mod:`milvus_backup_lib.storage.conditional`):
the lock is created only where none exists, and replaced (refreshed, or taken over) only at the exact
version that was read, so of two writers breaking one stale lock exactly one wins, and a delayed
refresh can never overwrite another writer's lock.

The holder refreshes it every ``lease / 3`` seconds. The lock is stale once it has not been written
for ``lease`` seconds (``stale_after``, default 300), measured on the store's own clock (its
Last-Modified against the time of the same answer; on local disk the file's mtime against this
machine's clock), so skew between the writers' clocks never breaks a fresh lock; host names and
process ids are only shown, never trusted. A lock that cannot be parsed (a torn or damaged write) is
read again, then judged by its age alone.

The holder proves it still holds the lock before committing (:meth:`BackupLock.ensure_held`: a
conditional refresh at the version it last wrote) and checks between copy batches
(:meth:`BackupLock.check`). When the refresher finds the lock taken over, or cannot refresh it for
``lease`` seconds, the lock is *lost*: both raise :class:`LockLostError` from then on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from milvus_backup_lib.errors import BackupLockedError, LockLostError, StorageError
from milvus_backup_lib.storage.conditional import (
    Versioned,
    create_exclusive,
    read_versioned,
    remove_if,
    replace_if,
)
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["DEFAULT_STALE_AFTER", "BackupLock"]

log = logging.getLogger(__name__)

#: Seconds after its last refresh at which a lock counts as abandoned (its lease).
DEFAULT_STALE_AFTER = 300.0
#: Reads of a lock that cannot be parsed before it is judged by its age alone.
_GARBLED_REREADS = 3


class BackupLock:
    """Context manager holding the write lock on backup ``name`` in ``location``."""

    def __init__(
        self, location: StorageLocation, name: str, *, stale_after: float = DEFAULT_STALE_AFTER
    ) -> None:
        self.location = location
        self.name = name
        self.stale_after = stale_after
        self.path = location.join(f"{name}.lock")
        #: The fencing token: ours alone, written into the lock.
        self.owner = uuid.uuid4().hex
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()  # one conditional write at a time (refresher and ensure_held)
        self._version: str | None = None
        self._written_at = 0.0  # time.monotonic() when our last successful write began
        self._created = 0.0
        self._seq = 0
        self._lost: tuple[str, str] | None = None  # (holder now, why)

    def __repr__(self) -> str:
        return f"BackupLock({self.name!r}, held={self.held})"

    @property
    def lost(self) -> bool:
        """Whether the lock was taken over or expired while held."""
        return self._lost is not None

    def _margin(self) -> float:
        # Stores keep Last-Modified and Date to the second: stop trusting the lease a little early.
        return min(2.0, self.stale_after / 10)

    def _record(self) -> bytes:
        self._seq += 1
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "name": self.name,
                "created": self._created,
                "refreshed": time.time(),
                "lease": self.stale_after,
                "seq": self._seq,
            },
            sort_keys=True,
        ).encode()

    def _storage_error(self, what: str, exc: BaseException) -> StorageError:
        return StorageError(
            f"cannot {what} the lock {self.path}: {type(exc).__name__}: {scrub(str(exc), self.location)}"
        )

    def _read_versioned(self) -> Versioned | None:
        try:
            return read_versioned(self.location, self.path)
        except Exception as exc:
            raise self._storage_error("read", exc) from exc

    def read(self) -> dict[str, Any] | None:
        """The current lock record, None if there is none, ``{}`` if it cannot be parsed."""
        current = self._read_versioned()
        return None if current is None else _parse(current.data)

    def acquire(self) -> None:
        """Take the lock or raise :class:`BackupLockedError`; a stale lock is taken over atomically."""
        self._created = time.time()
        for _ in range(5):
            started = time.monotonic()
            try:
                version = create_exclusive(self.location, self.path, self._record())
            except Exception as exc:
                raise self._storage_error("create", exc) from exc
            if version is not None:
                self._hold(version, started)
                return
            current = self._read_versioned()
            if current is None:
                continue  # released between our create and our read: try again
            record = _parse(current.data)
            rereads = 0
            while not record and rereads < _GARBLED_REREADS:
                # Empty or garbled: a write caught half-way (or a damaged object). Held, age unknown:
                # read again before judging it by its age alone.
                rereads += 1
                time.sleep(0.05 * rereads)
                current = self._read_versioned()
                if current is None:
                    break
                record = _parse(current.data)
            if current is None:
                continue
            if record.get("owner") == self.owner:
                # Ours: an exclusive create retried after a lost reply had already succeeded.
                self._hold(current.version, started)
                return
            age = _age(current, record)
            lease = _lease(record, self.stale_after)
            if age <= lease:
                raise BackupLockedError(self.name, _holder(record), age)
            log.warning(
                "taking over the stale lock on %s (last written %.0f s ago by %s, lease %.0f s)",
                self.name,
                age,
                _holder(record),
                lease,
            )
            try:
                version = replace_if(self.location, self.path, self._record(), current.version)
            except Exception as exc:
                raise self._storage_error("take over", exc) from exc
            if version is not None:
                self._hold(version, started)
                return
            # another writer took it over (or released it) first: read again
        raise BackupLockedError(self.name, "another writer (the lock kept changing hands)", 0.0)

    def _hold(self, version: str, started: float) -> None:
        self._version = version
        self._written_at = started
        self._lost = None
        self.held = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._refresh_loop, name=f"lock-{self.name}", daemon=True)
        self._thread.start()

    def _mark_lost(self, holder: str, why: str) -> None:
        if self._lost is None:
            self._lost = (holder, why)
            log.error("lost the lock on %s: %s; now held by %s", self.name, why, holder)

    def _refresh(self) -> bool:
        """One conditional refresh at the version we last wrote; False (and the lock lost) if not ours."""
        with self._io:
            if self._lost is not None or self._version is None:
                return False
            started = time.monotonic()
            version = replace_if(self.location, self.path, self._record(), self._version)
            if version is not None:
                self._version, self._written_at = version, started
                return True
            current = self._read_versioned()
            record = {} if current is None else _parse(current.data)
            if current is not None and record.get("owner") == self.owner:
                # Our previous write landed but its reply was lost: that version is ours.
                self._version = current.version
                version = replace_if(self.location, self.path, self._record(), current.version)
                if version is not None:
                    self._version, self._written_at = version, started
                    return True
            holder = "nobody (the lock object is gone)" if current is None else _holder(record)
            self._mark_lost(holder, "it was taken over by another writer")
            return False

    def _refresh_loop(self) -> None:
        interval = max(0.5, self.stale_after / 3)
        while not self._stop.wait(interval):
            try:
                if not self._refresh():
                    return
            except Exception as exc:  # keep trying until the lease runs out
                # No traceback (exc_info): a chained cause may quote a credential.
                why = scrub(f"{type(exc).__name__}: {exc}", self.location)
                log.warning("refreshing the lock on %s failed: %s", self.name, why)
            if self._expired():
                return

    def _expired(self) -> bool:
        elapsed = time.monotonic() - self._written_at
        if self._lost is None and elapsed >= self.stale_after - self._margin():
            self._mark_lost(
                "whoever takes it over next",
                f"it could not be refreshed for {elapsed:.0f} s, past its lease of {self.stale_after:.0f} s",
            )
        return self._lost is not None

    def check(self) -> None:
        """Raise :class:`LockLostError` if the lock was lost or its lease ran out (no request)."""
        if not self.held:
            raise LockLostError(self.name, "nobody", "it is not held (never acquired, or released)")
        if self._expired() and self._lost is not None:
            raise LockLostError(self.name, *self._lost)

    def ensure_held(self) -> None:
        """Prove we hold the lock now, with a full lease ahead: a conditional refresh at our version.

        Raises :class:`LockLostError` if another writer holds it or the lease ran out.
        """
        try:
            self.check()
            try:
                self._refresh()
            except Exception as exc:
                why = scrub(f"{type(exc).__name__}: {exc}", self.location)
                log.warning("refreshing the lock on %s before committing failed: %s", self.name, why)
            self.check()
        except LockLostError as exc:
            raise LockLostError(
                self.name, self._holder_now(exc.holder), self._lost[1] if self._lost else ""
            ) from None

    def _holder_now(self, known: str) -> str:
        """Who holds the lock now, read from the store (``known`` if it cannot be read)."""
        try:
            current = self._read_versioned()
        except StorageError:
            return known
        if current is None:
            return "nobody (the lock object is gone)"
        record = _parse(current.data)
        return known if record.get("owner") == self.owner else _holder(record)

    def release(self) -> None:
        """Stop refreshing and delete the lock if it is still ours (at the version we last wrote)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if not self.held:
            return
        self.held = False
        if self._lost is not None or self._version is None:
            return
        try:
            with self._io:
                if not remove_if(self.location, self.path, self._version):
                    current = self._read_versioned()
                    if current is not None and _parse(current.data).get("owner") == self.owner:
                        remove_if(self.location, self.path, current.version)
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


def _parse(data: bytes) -> dict[str, Any]:
    """The lock record, or ``{}`` for an empty, torn or foreign object."""
    try:
        record = json.loads(data)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _lease(record: dict[str, Any], default: float) -> float:
    """The lease its holder promised to refresh within; ``default`` for a lock without one."""
    lease = record.get("lease")
    if isinstance(lease, int | float) and not isinstance(lease, bool) and lease > 0:
        return float(lease)
    return default


def _age(current: Versioned, record: dict[str, Any]) -> float:
    """Seconds since the lock was last written, on the store's clock where it has one.

    A store that cannot tell (a backend without conditional support) falls back to the record's own
    ``refreshed`` time against our clock; a lock unreadable on such a store counts as fresh.
    """
    if current.age is not None:
        return current.age
    refreshed = record.get("refreshed")
    if isinstance(refreshed, int | float) and not isinstance(refreshed, bool):
        return max(0.0, time.time() - refreshed)
    return 0.0


def _holder(record: dict[str, Any]) -> str:
    host, pid = record.get("host", "?"), record.get("pid", "?")
    owner = record.get("owner")
    token = f", lock token {str(owner)[:8]}" if owner else ""
    return f"pid {pid} on {host}{token}" if record else "an unknown writer (the lock cannot be parsed)"
