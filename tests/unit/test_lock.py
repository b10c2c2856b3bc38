"""The backup write lock on local disk and on the fsspec memory filesystem."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from milvus_backup_lib import BackupLockedError, LockLostError, StorageError
from milvus_backup_lib.repository import lock as lock_module
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.storage.location import StorageLocation


@pytest.fixture(params=["local", "memory"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> StorageLocation:
    if request.param == "local":
        return StorageLocation(f"file://{tmp_path}")
    return StorageLocation(f"memory://locks_{uuid.uuid4().hex[:8]}")


def test_second_writer_is_refused_naming_the_holder(location: StorageLocation) -> None:
    with BackupLock(location, "nightly") as first:
        record = first.read()
        assert record is not None and record["owner"] == first.owner and record["pid"] == os.getpid()
        with pytest.raises(
            BackupLockedError, match=rf"'nightly' is being written by pid {os.getpid()}"
        ) as err:
            BackupLock(location, "nightly").acquire()
        assert err.value.retryable
        # another name is independent
        with BackupLock(location, "other"):
            pass
    assert BackupLock(location, "nightly").read() is None  # released: the object is gone
    with BackupLock(location, "nightly"):  # and can be taken again
        pass


def test_stale_lock_is_broken_fresh_lock_never(location: StorageLocation) -> None:
    path = location.join("nightly.lock")
    _write(location, "nightly", _record(refreshed=time.time() - 1000))
    _age_lock(location, "nightly", 1000)
    with BackupLock(location, "nightly", stale_after=300) as lock:
        assert lock.read()["owner"] == lock.owner  # type: ignore[index]
    _write(location, "nightly", _record(refreshed=time.time()))
    with pytest.raises(BackupLockedError, match="pid 1 on elsewhere"):
        BackupLock(location, "nightly", stale_after=300).acquire()
    assert json.loads(location.fs.cat_file(path))["owner"] == "dead"  # untouched


def test_lock_is_refreshed_while_held(location: StorageLocation) -> None:
    with BackupLock(location, "busy", stale_after=1.5) as lock:
        first = lock.read()["refreshed"]  # type: ignore[index]
        time.sleep(1.3)
        assert lock.read()["refreshed"] > first  # type: ignore[index]
        # a competitor sees a fresh lock even after more than stale_after since creation
        time.sleep(0.5)
        with pytest.raises(BackupLockedError):
            BackupLock(location, "busy", stale_after=1.5).acquire()


def test_release_leaves_a_lock_taken_over_by_someone_else(location: StorageLocation) -> None:
    lock = BackupLock(location, "x")
    lock.acquire()
    other = {"owner": "someone", "host": "h", "pid": 2, "name": "x", "created": 0, "refreshed": time.time()}
    location.fs.pipe_file(location.join("x.lock"), json.dumps(other).encode())
    lock.release()
    assert BackupLock(location, "x").read()["owner"] == "someone"  # type: ignore[index]


def _age_lock(location: StorageLocation, name: str, seconds: float) -> None:
    """Make the lock object look ``seconds`` old on its store's clock (file mtime; memory file time)."""
    path = location.join(f"{name}.lock")
    then = time.time() - seconds
    if location.is_local:
        os.utime(path, (then, then))
    else:
        store = location.fs.store
        store[path].created = store[path].modified = dt.datetime.fromtimestamp(then, dt.timezone.utc)


def _write(location: StorageLocation, name: str, record: dict[str, object] | bytes) -> None:
    data = record if isinstance(record, bytes) else json.dumps(record).encode()
    location.fs.pipe_file(location.join(f"{name}.lock"), data)


def _record(owner: str = "dead", **extra: object) -> dict[str, object]:
    return {"owner": owner, "host": "elsewhere", "pid": 1, "name": "nightly", "created": 0, **extra}


def test_staleness_is_judged_on_the_store_clock_not_the_writers(location: StorageLocation) -> None:
    # A writer whose clock runs 1000 s late wrote this lock just now: it is fresh, whatever it says.
    _write(location, "nightly", _record(refreshed=time.time() - 1000))
    with pytest.raises(BackupLockedError, match="pid 1 on elsewhere"):
        BackupLock(location, "nightly", stale_after=300).acquire()
    # A writer whose clock runs 1000 s early wrote it long ago: it is stale, whatever it says.
    _write(location, "nightly", _record(refreshed=time.time() + 1000))
    _age_lock(location, "nightly", 1000)
    with BackupLock(location, "nightly", stale_after=300) as lock:
        assert lock.read()["owner"] == lock.owner  # type: ignore[index]


def test_the_lease_recorded_in_the_lock_decides(location: StorageLocation) -> None:
    # The holder promised to refresh within 600 s: 400 s without a write is not stale yet, even to a
    # writer that would itself use a 300 s lease.
    _write(location, "nightly", _record(lease=600))
    _age_lock(location, "nightly", 400)
    with pytest.raises(BackupLockedError):
        BackupLock(location, "nightly", stale_after=300).acquire()
    _age_lock(location, "nightly", 700)
    with BackupLock(location, "nightly", stale_after=300):
        pass


def test_a_live_lock_of_another_pid_on_this_host_is_never_broken(location: StorageLocation) -> None:
    # Another pid namespace (a container with host networking, a cloned VM): same host name, and its
    # pid means nothing here (not running in ours). Its lock is fresh, so it stands.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(gone.stdout)
    _write(location, "nightly", {**_record(), "host": socket.gethostname(), "pid": pid})
    with pytest.raises(BackupLockedError, match=rf"pid {pid} on {socket.gethostname()}"):
        BackupLock(location, "nightly", stale_after=300).acquire()


def test_acquire_recognises_its_own_lock_after_a_retried_create(
    location: StorageLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's client retried our exclusive create after a lost reply: the retry finds the object
    our first attempt wrote, and the lock in it carries our token."""
    real = lock_module.create_exclusive

    def lost_reply(loc: StorageLocation, path: str, data: bytes) -> str | None:
        assert real(loc, path, data) is not None  # the first attempt landed...
        return real(loc, path, data)  # ...and the retry answers "it exists"

    monkeypatch.setattr(lock_module, "create_exclusive", lost_reply)
    with BackupLock(location, "nightly") as lock:
        assert lock.held and lock.read()["owner"] == lock.owner  # type: ignore[index]
        lock.ensure_held()  # it is really ours: refreshed at the version found
    assert BackupLock(location, "nightly").read() is None  # and released


def test_a_lock_carrying_our_token_is_ours(location: StorageLocation) -> None:
    lock = BackupLock(location, "nightly")
    _write(location, "nightly", _record(owner=lock.owner, refreshed=time.time()))
    lock.acquire()
    try:
        assert lock.held
    finally:
        lock.release()
    assert lock.read() is None


def test_a_garbled_lock_is_held_until_it_is_old(location: StorageLocation) -> None:
    for garbage in (b"", b'{"owner": "some', b"\x00\x00\x00"):
        _write(location, "nightly", garbage)
        with pytest.raises(BackupLockedError, match="cannot be parsed"):
            BackupLock(location, "nightly", stale_after=300).acquire()
        _age_lock(location, "nightly", 1000)
        with BackupLock(location, "nightly", stale_after=300):
            pass


def test_refreshes_never_show_a_torn_lock(location: StorageLocation) -> None:
    """Readers racing the holder's refreshes always see a whole lock, and never take it over."""
    seen: list[bytes] = []
    broken: list[BackupLock] = []
    with BackupLock(location, "busy", stale_after=300) as lock:
        stop = threading.Event()

        def refresher() -> None:
            while not stop.is_set():
                lock.ensure_held()

        thread = threading.Thread(target=refresher)
        thread.start()
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                seen.append(location.fs.cat_file(location.join("busy.lock")))
                competitor = BackupLock(location, "busy", stale_after=300)
                with contextlib.suppress(BackupLockedError):
                    competitor.acquire()
                    broken.append(competitor)
        finally:
            stop.set()
            thread.join()
        assert lock.read()["owner"] == lock.owner  # type: ignore[index]
    assert not broken
    assert len({json.loads(raw)["seq"] for raw in seen}) > 3  # the refreshes did happen meanwhile
    assert all(json.loads(raw)["owner"] == lock.owner for raw in seen)


def test_a_writer_whose_lock_was_taken_over_fails_naming_the_new_holder(location: StorageLocation) -> None:
    stalled = BackupLock(location, "nightly", stale_after=30)
    stalled.acquire()
    try:
        stalled.check()  # held
        _age_lock(location, "nightly", 1000)  # it stalled: no refresh for far longer than its lease
        with BackupLock(location, "nightly", stale_after=30) as survivor:
            token = survivor.owner[:8]
            with pytest.raises(
                LockLostError, match=rf"'nightly' was not finished.*lock token {token}"
            ) as err:
                stalled.ensure_held()
            assert isinstance(err.value, BackupLockedError) and not err.value.retryable
            assert stalled.lost
            with pytest.raises(LockLostError):
                stalled.check()
            # a delayed refresh of the stalled writer cannot overwrite the survivor's lock
            assert not stalled._refresh()
            assert survivor.read()["owner"] == survivor.owner  # type: ignore[index]
    finally:
        stalled.release()
    assert BackupLock(location, "nightly").read() is None  # the survivor released it; the loser left it


def test_a_lock_that_cannot_be_refreshed_for_its_lease_is_lost(
    location: StorageLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BackupLock(location, "nightly", stale_after=1.5) as lock:

        def unreachable(*args: object) -> None:
            raise StorageError("injected: storage unreachable")

        monkeypatch.setattr(lock_module, "replace_if", unreachable)
        deadline = time.monotonic() + 5
        while not lock.lost and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(LockLostError, match="could not be refreshed"):
            lock.check()


def _race(path: str, barrier: Any, results: Any) -> None:
    """One of the processes breaking the same stale lock at once (top level: spawned)."""
    lock = BackupLock(StorageLocation(path), "race", stale_after=60)
    barrier.wait()
    try:
        lock.acquire()
    except BackupLockedError:
        results.put("refused")
    else:
        results.put("won")  # exits holding it: the lock stays, fresh, for the others to see
    results.close()
    results.join_thread()  # flushed before the hard exit
    os._exit(0)


def test_two_processes_breaking_one_stale_lock_exactly_one_wins(tmp_path: Path) -> None:
    location = StorageLocation(str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    for _ in range(2):
        _write(location, "race", _record())
        _age_lock(location, "race", 1000)
        barrier, results = ctx.Barrier(3), ctx.Queue()
        workers = [ctx.Process(target=_race, args=(str(tmp_path), barrier, results)) for _ in range(3)]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=60) for _ in workers)
        for worker in workers:
            worker.join(30)
        assert outcomes == ["refused", "refused", "won"]
        location.fs.rm_file(location.join("race.lock"))
    assert not [p for p in tmp_path.iterdir() if p.name != "race.lock"]  # no temporary files left


def test_threads_breaking_one_stale_lock_exactly_one_wins(location: StorageLocation) -> None:
    _write(location, "race", _record())
    _age_lock(location, "race", 1000)
    barrier = threading.Barrier(6)
    won: list[BackupLock] = []

    def attempt() -> None:
        lock = BackupLock(location, "race", stale_after=60)
        barrier.wait()
        with contextlib.suppress(BackupLockedError):
            lock.acquire()
            won.append(lock)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(won) == 1
        assert won[0].read()["owner"] == won[0].owner  # type: ignore[index]
    finally:
        for lock in won:
            lock.release()
