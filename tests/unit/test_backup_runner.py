"""The backup runner against in-memory clusters: GC pause, the write lock, resume after an interrupted copy,
and segments whose files disagree."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from memory_data import DB, client, expected_pks, populate

from milvus_backup_lib.backup import runner as runner_module
from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier
from milvus_backup_lib.errors import (
    BackupExistsError,
    BackupLockedError,
    InconsistentSegmentError,
    LockLostError,
    StorageError,
)
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing.memory import InMemoryMilvus

Hook = Callable[[StorageLocation, StorageLocation, Sequence[CopyJob]], None]


class HookedCopier:
    """The real copier, with a hook run before each copy and every job list recorded."""

    def __init__(self, before: Hook | None = None, *, fail_after: int | None = None) -> None:
        self.inner = FsspecCopier(concurrency=1)
        self.before = before
        self.fail_after = fail_after
        self.calls: list[list[CopyJob]] = []

    def copy(
        self,
        source: StorageLocation,
        destination: StorageLocation,
        jobs: Sequence[CopyJob],
        progress: Progress = NULL_PROGRESS,
    ) -> CopyResult:
        jobs = list(jobs)
        self.calls.append(jobs)
        if self.before is not None:
            self.before(source, destination, jobs)
        if self.fail_after is not None:
            self.inner.copy(source, destination, jobs[: self.fail_after], progress)
            raise StorageError(f"injected: connection lost after {self.fail_after} files")
        return self.inner.copy(source, destination, jobs, progress)


def test_gc_is_paused_renewed_while_copying_and_resumed_on_2_4() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    seen: dict[str, object] = {}

    def slow_copy(source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
        seen["paused"] = cluster.gc_paused
        deadline = time.monotonic() + 5
        while len(cluster.gc_pause_requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the runner renews the pause every gc_pause_seconds / 3 (at least 1 s)
        seen["requests"] = list(cluster.gc_pause_requests)

    bk = client(cluster, copier=HookedCopier(slow_copy), gc_pause_seconds=3)
    report = bk.create_backup("paused")
    assert seen["paused"] is True and seen["requests"] == [3, 3]
    assert report.gc.paused and cluster.gc_resumes == 1 and not cluster.gc_paused
    meta = bk.repository.read_library_meta("paused")
    assert meta is not None and meta.gc_paused


def test_gc_is_recorded_as_not_paused_on_2_3() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster)
    report = bk.create_backup("unpaused")
    assert not report.gc.paused and "HTTP 404" in report.gc.note
    assert cluster.gc_pause_requests == [3600] and cluster.gc_resumes == 0
    meta = bk.repository.read_library_meta("unpaused")
    assert meta is not None and not meta.gc_paused and "HTTP 404" in meta.gc_note
    assert bk.verify_backup("unpaused", level="checksum").ok


def _compact_and_collect(cluster: InMemoryMilvus) -> Hook:
    def hook(source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
        cluster.compact(DB, "c")  # compaction drops the segments the snapshot listed...
        cluster.run_gc()  # ...and GC deletes their files unless it is paused

    return hook


def test_the_gc_pause_keeps_the_listed_files_while_they_are_copied() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster, copier=HookedCopier(_compact_and_collect(cluster)))
    bk.create_backup("safe")
    assert bk.verify_backup("safe", level="checksum").ok
    target = InMemoryMilvus("2.4.10")
    client(target, bk.backup_storage).restore("safe")
    assert [r["pk"] for r in target.rows(DB, "c")] == expected_pks()

    unprotected = InMemoryMilvus("2.4.10")
    populate(unprotected)
    bk = client(unprotected, copier=HookedCopier(_compact_and_collect(unprotected)), pause_gc=False)
    with pytest.raises(StorageError):
        bk.create_backup("lost")
    assert bk.list_backups() == []


def test_the_backup_name_is_locked_during_the_run() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    outcome: list[BaseException] = []
    bk = client(cluster)

    def second_writer(source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
        try:
            with BackupLock(bk.backup_storage, "locked"):
                pass
        except BackupLockedError as exc:
            outcome.append(exc)

    bk.copier = HookedCopier(second_writer)
    bk.create_backup("locked")
    assert len(outcome) == 1 and "locked" in str(outcome[0])
    with BackupLock(bk.backup_storage, "locked") as lock:  # released at the end
        assert lock.held


def test_resume_copies_only_what_an_interrupted_run_did_not() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster, copier=HookedCopier(fail_after=7))
    with pytest.raises(StorageError, match="injected"):
        bk.create_backup("interrupted")
    assert bk.list_backups() == []
    total = len(bk.copier.calls[0])  # type: ignore[attr-defined]

    again = HookedCopier()
    bk.copier = again
    with pytest.raises(BackupExistsError, match="unfinished"):
        bk.create_backup("interrupted")
    report = bk.create_backup("interrupted", resume=True)
    assert report.resumed_files == 7 and len(again.calls[-1]) == total - 7
    assert bk.verify_backup("interrupted", level="checksum").ok
    target = InMemoryMilvus("2.3.5")
    client(target, bk.backup_storage).restore("interrupted")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")


def test_a_segment_with_orphan_binlogs_is_refused() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    cluster.flush(DB, "c")
    seg = next(s for s in cluster.persistent_segments(DB, "c") if s.state == "Flushed")
    field_dir = cluster.storage.join(
        f"insert_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}/101"
    )
    [binlog] = cluster.storage.list_files(field_dir)
    # a retried flush left a second binlog for one field only
    cluster.storage.write_bytes(f"{field_dir}/999", cluster.storage.read_bytes(binlog))
    bk = client(cluster)
    with pytest.raises(InconsistentSegmentError, match="different numbers of binlog files") as raised:
        bk.create_backup("orphans")
    assert raised.value.segment_id == seg.segment_id
    assert bk.list_backups() == []


class _AfterCopy:
    """The real copier, then ``after`` once (the stalled writer's last moment before it commits)."""

    def __init__(self, after: Callable[[], None]) -> None:
        self.inner = FsspecCopier(concurrency=1)
        self.after: Callable[[], None] | None = after

    def copy(
        self,
        source: StorageLocation,
        destination: StorageLocation,
        jobs: Sequence[CopyJob],
        progress: Progress = NULL_PROGRESS,
    ) -> CopyResult:
        result = self.inner.copy(source, destination, jobs, progress)
        after, self.after = self.after, None
        if after is not None:
            after()
        return result


def test_a_stalled_writer_whose_lock_was_taken_over_never_commits(tmp_path: Path) -> None:
    """Writer A stalls past its lease after copying; B takes the lock over, resumes (removing A's files
    of segments compacted away meanwhile) and commits. A's commit is refused; B's backup is whole."""
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    storage = StorageLocation(str(tmp_path))
    survivor: dict[str, object] = {}

    def stall_then_b_takes_over() -> None:
        cluster.compact(DB, "c")  # B's snapshot lists other segments than A's
        # A stalls (a suspended VM): no refresh for far longer than its lease, on the store's clock.
        then = time.time() - 1000
        os.utime(tmp_path / "taken.lock", (then, then))
        b = client(cluster, storage, lock_stale_after=30)
        survivor["report"] = b.create_backup("taken", resume=True)

    a = client(cluster, storage, copier=_AfterCopy(stall_then_b_takes_over), lock_stale_after=30)
    with pytest.raises(LockLostError, match="'taken' was not finished") as err:
        a.create_backup("taken")
    assert "nobody (the lock object is gone)" in str(err.value)  # B finished and released it
    assert "report" in survivor
    b = client(cluster, storage)
    assert [s.name for s in b.list_backups()] == ["taken"]
    assert b.verify_backup("taken", level="checksum").ok  # the manifest is B's, and its files all there
    target = InMemoryMilvus("2.4.10")
    client(target, storage).restore("taken")
    assert [r["pk"] for r in target.rows(DB, "c")] == expected_pks()
    assert not (tmp_path / "taken.lock").exists()


def test_the_copy_stops_at_the_next_batch_once_the_lock_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_module, "COPY_BATCH_FILES", 2)
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster, lock_stale_after=1.5)  # refreshed every 0.5 s
    batches: list[int] = []

    def lose_it(source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
        batches.append(len(jobs))
        if len(batches) == 2:  # another writer takes the lock over during the second batch
            path = bk.backup_storage.join("cut.lock")
            bk.backup_storage.fs.pipe_file(path, b'{"owner": "other", "host": "h2", "pid": 7}')
            time.sleep(1.0)  # the loser's refresher finds it taken over and marks the lock lost

    bk.copier = HookedCopier(lose_it)
    with pytest.raises(LockLostError, match="pid 7 on h2"):
        bk.create_backup("cut")
    # the check before the third batch stopped the copy: nothing more was written, no manifest
    assert batches == [2, 2] and not bk.repository.exists("cut")
