"""The backup write lock on local disk and on the fsspec memory filesystem."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from milvus_backup_lib import BackupLockedError
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
    old = {
        "owner": "dead",
        "host": "elsewhere",
        "pid": 1,
        "name": "nightly",
        "created": 0,
        "refreshed": time.time() - 1000,
    }
    location.fs.pipe_file(path, json.dumps(old).encode())
    with BackupLock(location, "nightly", stale_after=300) as lock:
        assert lock.read()["owner"] == lock.owner  # type: ignore[index]
    fresh = {**old, "refreshed": time.time()}
    location.fs.pipe_file(path, json.dumps(fresh).encode())
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
