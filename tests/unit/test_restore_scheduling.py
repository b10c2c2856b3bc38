"""How a restore runs its imports: multi-segment jobs on 2.4+, bounded parallelism, L0 jobs after the data
jobs, exactly one job per import even when its reply is lost, and cleanup after a failure.

Every restore is compared row by row with the source (:meth:`InMemoryMilvus.rows`: primary keys, every
scalar, vectors as bytes, dynamic fields, deletes applied)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs
import pytest
from memory_data import DB, client, populate, rows

from milvus_backup_lib import RestoreOptions
from milvus_backup_lib.errors import (
    ImportFailedError,
    InvalidOptionError,
    MilvusConnectionError,
    RestorePlanError,
)
from milvus_backup_lib.milvus.records import ImportState
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.jobs import batch_jobs
from milvus_backup_lib.restore.journal import JOURNAL_DIR, RestoreJournal
from milvus_backup_lib.restore.plan import ImportData
from milvus_backup_lib.testing.memory import InMemoryMilvus


def many_segments(cluster: InMemoryMilvus, name: str = "c", flushes: int = 6) -> None:
    """``flushes`` data segments per partition (plus deletes), so that batching has something to batch."""
    populate(cluster, name)
    for i in range(flushes):
        base = 2000 + 10 * i
        cluster.insert(DB, name, rows(range(base, base + 5), seed=i))
        cluster.insert(DB, name, rows(range(base + 5, base + 10), seed=i), partition="p1")
        cluster.flush(DB, name)
    cluster.delete(DB, name, [2001, 2017])
    cluster.flush(DB, name)


class Recording(InMemoryMilvus):
    """Counts the import requests and the most that ran at once (each is slowed down a little)."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.requests: list[tuple[str, int]] = []  # (kind, segment groups)
        self.in_flight = 0
        self.most_in_flight = 0
        self._count = threading.Lock()

    def _enter(self, kind: str, groups: int) -> None:
        with self._count:
            self.requests.append((kind, groups))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._count:
            self.in_flight -= 1

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        self._enter("single", 1)
        try:
            threading.Event().wait(0.05)
            return super().start_import(db, name, partition, files, options)
        finally:
            self._leave()

    def start_batch_import(
        self,
        db: str,
        name: str,
        partition: str,
        files: Sequence[Sequence[str]],
        options: Sequence[tuple[str, str]],
    ) -> list[int]:
        self._enter("batch", len(files))
        try:
            threading.Event().wait(0.05)
            return super().start_batch_import(db, name, partition, files, options)
        finally:
            self._leave()


def test_2_4_imports_several_segments_per_job_and_l0_deletes_in_their_own_jobs() -> None:
    source = InMemoryMilvus("2.4.10")
    many_segments(source)
    bk = client(source)
    bk.create_backup("b")
    coll = bk.get_backup("b").collection_backups[0]
    data_segments = sum(1 for p in coll.partition_backups for s in p.segment_backups if not s.is_l0)
    assert data_segments >= 12

    target = Recording("2.4.10")
    report = client(target, bk.backup_storage).restore("b")
    assert target.rows(DB, "c") == source.rows(DB, "c")
    batches = [n for kind, n in target.requests if kind == "batch"]
    # one data job per partition (all segments share one vchannel and storage version), each with
    # every segment group of its partition; every L0 segment its own single-path job
    assert sorted(batches) == sorted(
        sum(1 for s in p.segment_backups if not s.is_l0) for p in coll.partition_backups
    )
    outcomes = report.collections[0].imports
    l0 = [o for o in outcomes if o.l0]
    assert l0 and all(len(o.files) == 1 for o in l0)
    assert [o.l0 for o in outcomes] == sorted(o.l0 for o in outcomes)  # data jobs first, then L0
    assert sum(o.imported_rows for o in outcomes if not o.l0) == report.collections[0].imported_rows


def test_segments_per_import_bounds_a_job_and_1_means_one_job_per_segment() -> None:
    source = InMemoryMilvus("2.5.3")
    many_segments(source)
    bk = client(source)
    bk.create_backup("b")

    chunked = Recording("2.5.3")
    client(chunked, bk.backup_storage).restore("b", segments_per_import=3)
    assert chunked.rows(DB, "c") == source.rows(DB, "c")
    groups = [n for kind, n in chunked.requests if kind == "batch"]
    assert groups and max(groups) == 3

    per_segment = Recording("2.5.3")
    client(per_segment, bk.backup_storage).restore("b", segments_per_import=1)
    assert per_segment.rows(DB, "c") == source.rows(DB, "c")
    assert {kind for kind, _ in per_segment.requests} == {"single"}
    assert len(per_segment.requests) > len(chunked.requests)


def test_2_3_runs_one_segment_group_per_job_several_at_once_within_the_bound() -> None:
    source = InMemoryMilvus("2.3.5")
    many_segments(source)
    bk = client(source)
    bk.create_backup("b")

    target = Recording("2.3.5")
    client(target, bk.backup_storage).restore("b", parallel_imports=3)
    assert target.rows(DB, "c") == source.rows(DB, "c")
    assert {kind for kind, _ in target.requests} == {"single"}
    assert target.most_in_flight == 3  # several at once, never more than asked

    sequential = Recording("2.3.5")
    client(sequential, bk.backup_storage).restore("b", parallel_imports=1)
    assert sequential.rows(DB, "c") == source.rows(DB, "c")
    assert sequential.most_in_flight == 1


def test_several_collections_restore_at_once_each_row_equal() -> None:
    source = InMemoryMilvus("2.4.10")
    names = [f"c{i}" for i in range(4)]
    for name in names:
        many_segments(source, name, flushes=2)
    bk = client(source)
    bk.create_backup("b")
    target = Recording("2.4.10")
    report = client(target, bk.backup_storage).restore("b", parallel_collections=4, parallel_imports=2)
    assert [c.target for c in report.collections] == [f"{DB}.{n}" for n in names]  # the plan's order
    for name in names:
        assert target.rows(DB, name) == source.rows(DB, name)
    assert target.most_in_flight == 2  # the import bound holds over all collections


class LosesTheFirstReply(InMemoryMilvus):
    """The server takes the first import request, then the connection drops before the reply arrives."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.lost = 0

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        tasks = super().start_import(db, name, partition, files, options)
        if not self.lost:
            self.lost = tasks[0]
            raise MilvusConnectionError("Import: UNAVAILABLE: connection reset by peer (127.0.0.1:19530)")
        return tasks


def test_a_lost_import_reply_is_adopted_never_sent_twice() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = LosesTheFirstReply("2.3.5")
    report = client(target, bk.backup_storage).restore("b", parallel_imports=1)
    # one job for the lost reply (adopted), one set of rows: no duplicates
    assert target.lost
    assert target.rows(DB, "c") == source.rows(DB, "c")
    jobs = target.list_import_tasks(DB, "c")
    assert len(jobs) == len(report.collections[0].imports)
    files = [t.files for t in jobs]
    assert len(set(files)) == len(files)


class RefusedBeforeArrival(InMemoryMilvus):
    """The first import request never reaches the server (connection refused)."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.refused = 0

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        if not self.refused:
            self.refused += 1
            raise MilvusConnectionError("Import: UNAVAILABLE: connection refused (127.0.0.1:19530)")
        return super().start_import(db, name, partition, files, options)


def test_an_import_that_never_arrived_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("milvus_backup_lib.restore.jobs.time.sleep", lambda s: None)
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = RefusedBeforeArrival("2.3.5")
    client(target, bk.backup_storage).restore("b", parallel_imports=1)
    assert target.refused == 1
    assert target.rows(DB, "c") == source.rows(DB, "c")


class FailsOnPartition(InMemoryMilvus):
    """Imports into partition ``p1`` fail on the server (while :attr:`failing`)."""

    failing = True

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        if partition == "p1" and self.failing:
            raise ImportFailedError(f"injected: import into {name} partition p1 refused")
        return super().start_import(db, name, partition, files, options)


def test_a_failed_restore_drops_the_collections_it_created_and_says_so() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source, "c")
    populate(source, "d")
    bk = client(source)
    bk.create_backup("b")
    target = FailsOnPartition("2.3.5")
    target.create_collection(DB, "mine", source.describe_collection(DB, "c").schema)
    with pytest.raises(ImportFailedError, match="injected") as caught:
        client(target, bk.backup_storage).restore("b")
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "dropped the collections it had created and not finished" in notes
    assert "default.c" in notes
    # nothing half-restored is left; what was there before is untouched
    assert target.list_collections(DB) == ["mine"]


def test_keep_partial_leaves_the_unfinished_collections_and_names_them() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = FailsOnPartition("2.3.5")
    with pytest.raises(ImportFailedError) as caught:
        client(target, bk.backup_storage).restore("b", keep_partial=True)
    assert "left unfinished" in "\n".join(getattr(caught.value, "__notes__", []))
    assert target.list_collections(DB) == ["c"]
    # once the server imports again, a rerun that drops it restores the collection row by row
    target.failing = False
    client(target, bk.backup_storage).restore("b", drop_existing=True)
    assert target.rows(DB, "c") == source.rows(DB, "c")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("parallel_collections", 0),
        ("parallel_imports", -1),
        ("segments_per_import", 0),
        ("parallel_imports", "8"),
    ],
)
def test_parallelism_options_are_checked_at_construction(option: str, value: object) -> None:
    with pytest.raises(InvalidOptionError, match=rf"{option}=.*whole number >= 1"):
        RestoreOptions(**{option: value})  # type: ignore[arg-type]


def _step(
    partition: str, seg: int, *, channel: str = "ch0", version: int = 0, l0: bool = False
) -> ImportData:
    name = QualifiedName(DB, "c")
    return ImportData(
        target=name,
        source=name,
        partition=partition,
        insert_prefix="" if l0 else f"i/{seg}/",
        delta_prefix=f"d/{seg}/" if l0 else "",
        segment_ids=(seg,),
        rows=10,
        l0=l0,
        storage_version=version,
        channel=channel,
    )


def test_batches_never_mix_partitions_channels_or_storage_versions() -> None:
    steps = [
        _step("p", 1),
        _step("p", 2, channel="ch1"),
        _step("q", 3),
        _step("p", 4),
        _step("p", 5, version=2),
        _step("p", 6, l0=True),
        _step("p", 7),
    ]
    jobs = batch_jobs(steps, batched=True, max_segments=2)
    shapes = [tuple(s.segment_ids[0] for s in job.steps) for job in jobs]
    assert shapes == [(1, 4), (7,), (2,), (3,), (5,), (6,)]
    assert [job.l0 for job in jobs] == [False] * 5 + [True]
    assert [
        tuple(s.segment_ids[0] for s in j.steps) for j in batch_jobs(steps, batched=False, max_segments=9)
    ] == [
        (1,),
        (2,),
        (3,),
        (4,),
        (5,),
        (7,),
        (6,),
    ]


class Killed(FailsOnPartition):
    """As if the restoring process died mid-import (kill -9): the failure escapes with no cleanup."""


def _kill_during_restore(monkeypatch: pytest.MonkeyPatch, target: Killed, storage: object) -> None:
    from milvus_backup_lib.restore.executor import RestoreExecutor

    with monkeypatch.context() as m:
        m.setattr(RestoreExecutor, "_clean_up", lambda self, exc: None)  # a dead process cleans nothing
        with pytest.raises(ImportFailedError):
            client(target, storage).restore("b")  # type: ignore[arg-type]


def test_a_rerun_after_a_killed_restore_drops_what_it_left_and_restores_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = Killed("2.3.5")
    _kill_during_restore(monkeypatch, target, bk.backup_storage)
    assert target.list_collections(DB) == ["c"]  # half restored, left behind
    target.failing = False
    # right after the kill the entry looks alive: the rerun refuses rather than drop a running restore
    with pytest.raises(RestorePlanError, match="still running"):
        client(target, bk.backup_storage).restore("b")
    monkeypatch.setattr("milvus_backup_lib.restore.journal.LEASE", 0.0)  # the lease has run out
    client(target, bk.backup_storage).restore("b")  # a plain rerun: no drop_existing needed
    assert target.rows(DB, "c") == source.rows(DB, "c")
    assert RestoreJournal(target.storage).entries() == []


def test_a_journal_entry_never_drops_a_collection_somebody_else_made(monkeypatch: pytest.MonkeyPatch) -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = Killed("2.3.5")
    _kill_during_restore(monkeypatch, target, bk.backup_storage)
    # somebody replaced the half-restored collection with their own
    target.drop_collection(DB, "c")
    target.create_collection(DB, "c", source.describe_collection(DB, "c").schema)
    theirs = target.describe_collection(DB, "c").collection_id
    monkeypatch.setattr("milvus_backup_lib.restore.journal.LEASE", 0.0)
    with pytest.raises(RestorePlanError, match="exists"):
        client(target, bk.backup_storage).restore("b")
    assert target.describe_collection(DB, "c").collection_id == theirs


def test_a_complete_restore_leaves_no_journal_entry() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = InMemoryMilvus("2.4.10")
    client(target, bk.backup_storage).restore("b")
    assert RestoreJournal(target.storage).entries() == []
    assert not target.storage.has_anything(target.storage.join(JOURNAL_DIR))


class ListsJobsWithoutFiles(LosesTheFirstReply):
    """As a server whose job list does not name each job's files (the reply of the first is lost)."""

    def list_import_tasks(self, db: str, name: str) -> list[ImportState]:
        return [attrs.evolve(t, files=()) for t in super().list_import_tasks(db, name)]


def test_a_lost_reply_that_cannot_be_matched_is_never_sent_again() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = ListsJobsWithoutFiles("2.3.5")
    with pytest.raises(ImportFailedError, match="does not say which files"):
        client(target, bk.backup_storage).restore("b", parallel_imports=1)
    assert len(target.import_tasks) == 1  # the lost one only: nothing was sent twice
