"""Restore by inserts (``method="insert"``) and how ``method="auto"`` chooses, on in-memory clusters:
the method and its reason in the plan, row equality with the source, the row check, bounded batches."""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

import attrs
import pyarrow as pa
import pytest
from memory_data import DB, client, expected_pks, populate

from milvus_backup_lib import BackupClient, MilvusConnection, RestoreOptions
from milvus_backup_lib.errors import InsertFailedError, InvalidOptionError, RestorePlanError
from milvus_backup_lib.manifest.model import CollectionSchema, DataType
from milvus_backup_lib.progress import Progress
from milvus_backup_lib.repository.store import LIBRARY_META_FILE
from milvus_backup_lib.restore.capability_check import capability_problems
from milvus_backup_lib.restore.inserts import pipeline, slices
from milvus_backup_lib.restore.plan import TargetState
from milvus_backup_lib.restore.planner import DefaultRestorePlanner
from milvus_backup_lib.testing.memory import InMemoryMilvus, field


def _half_collection(cluster: InMemoryMilvus, name: str = "h") -> list[dict[str, Any]]:
    """A Float16 collection 2.3 can hold (one vector field), with deletes and two partitions."""
    schema = CollectionSchema(
        fields=(
            field("pk", DataType.INT64, primary=True),
            field("half", DataType.FLOAT16_VECTOR, dim=4),
            field("doc", DataType.JSON),
        ),
        enable_dynamic_field=True,
    )
    cluster.create_collection(DB, name, schema, shards_num=1)
    cluster.create_partition(DB, name, "p1")
    rows = [
        {
            "pk": i,
            "half": struct.pack("<4e", 0.5, -1.0, 2.0, i),
            "doc": {"i": i},
            **({"dyn": i} if i % 2 else {}),
        }
        for i in range(40)
    ]
    cluster.insert(DB, name, rows[:25])
    cluster.insert(DB, name, rows[25:], partition="p1")
    cluster.flush(DB, name)
    cluster.delete(DB, name, [3, 30])
    cluster.flush(DB, name)
    return cluster.rows(DB, name)


def test_auto_inserts_a_float16_collection_into_2_3_and_says_why() -> None:
    source = InMemoryMilvus("2.4.10")
    expected = _half_collection(source)
    bk = client(source)
    bk.create_backup("half", "h")
    target = InMemoryMilvus("2.3.5")
    bk2 = client(target, bk.backup_storage)
    plan = bk2.plan_restore("half")
    (coll,) = plan.collections
    assert coll.method == "insert"
    assert "Float16Vector" in coll.method_reason and "2.3.5" in coll.method_reason
    assert [s.kind for s in coll.steps if s.kind.endswith("_data")] == ["insert_data", "insert_data"]
    assert "h: insert (" in plan.table()
    report = bk2.restore("half")
    assert target.rows(DB, "h") == expected
    assert target.import_tasks == {}
    assert report.collections[0].imported_rows == len(expected) == 38
    # import asked for: refused before anything is created
    other = InMemoryMilvus("2.3.5")
    with pytest.raises(RestorePlanError, match="Float16Vector"):
        client(other, bk.backup_storage).restore("half", method="import")
    assert other.list_collections(DB) == []


def test_auto_imports_where_the_server_can_and_insert_is_row_equal_to_it() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    expected = source.rows(DB, "c")
    bk = client(source)
    bk.create_backup("b", "c")
    by_import, by_insert = InMemoryMilvus("2.5.3"), InMemoryMilvus("2.5.3")
    plan = client(by_import, bk.backup_storage).plan_restore("b")
    assert plan.collections[0].method == "import"
    assert "can bulk-import" in plan.collections[0].method_reason
    client(by_import, bk.backup_storage).restore("b")
    report = client(by_insert, bk.backup_storage).restore("b", method="insert")
    assert report.plan.collections[0].method_reason == "method='insert' was asked for"
    assert by_insert.import_tasks == {}
    assert by_import.rows(DB, "c") == by_insert.rows(DB, "c") == expected
    assert [r["pk"] for r in expected] == expected_pks()
    assert [p.name for p in by_insert.show_partitions(DB, "c")] == ["_default", "p1"]


def test_a_storage_v2_backup_goes_into_2_5_by_inserts() -> None:
    source = InMemoryMilvus("2.6.11")
    populate(source)
    bk = client(source)
    bk.create_backup("v2", "c")
    target = InMemoryMilvus("2.5.3")
    report = client(target, bk.backup_storage).restore("v2")
    assert "storage v2" in report.plan.collections[0].method_reason
    assert target.rows(DB, "c") == source.rows(DB, "c")


def test_a_partition_key_collection_is_inserted_without_partition_names() -> None:
    source = InMemoryMilvus("2.5.3")
    schema = CollectionSchema(
        fields=(
            field("pk", DataType.VARCHAR, primary=True, max_length=16),
            field("tenant", DataType.INT64, partition_key=True),
            field("vec", DataType.FLOAT_VECTOR, dim=2),
        )
    )
    source.create_collection(DB, "pk", schema, num_partitions=4)
    source.insert(DB, "pk", [{"pk": f"k{i}", "tenant": i % 5, "vec": [i, -i]} for i in range(30)])
    source.flush(DB, "pk")
    bk = client(source)
    bk.create_backup("pk", "pk")
    target = InMemoryMilvus("2.5.3")
    calls: list[str | None] = []
    original = target.insert_rows

    def spy(db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema) -> int:
        calls.append(partition)
        return original(db, name, partition, batch, schema)

    target.insert_rows = spy  # type: ignore[method-assign]
    plan = client(target, bk.backup_storage).restore("pk", method="insert").plan
    assert {s.into for s in plan.collections[0].inserts} == {""}
    assert calls and set(calls) == {None}
    assert sorted(r["pk"] for r in target.rows(DB, "pk")) == sorted(f"k{i}" for i in range(30))


def test_import_is_refused_without_milvus_storage_and_auto_inserts() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("b", "c")
    target = InMemoryMilvus("2.5.3")
    inserts_only = BackupClient(MilvusConnection(), None, bk.backup_storage, milvus_factory=target.factory)
    with pytest.raises(RestorePlanError, match="no milvus_storage was given.*method='insert'"):
        inserts_only.restore("b", method="import")
    assert target.list_collections(DB) == []
    report = inserts_only.restore("b")
    assert "no milvus_storage" in report.plan.collections[0].method_reason
    assert target.rows(DB, "c") == source.rows(DB, "c")
    with pytest.raises(InvalidOptionError, match="milvus_storage"):
        inserts_only.create_backup("again", "c")


def test_a_logical_backup_is_inserted_and_never_imported() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("b", "c")
    meta = bk.repository.read_library_meta("b")
    assert meta is not None
    bk.backup_storage.write_bytes(
        bk.repository.meta_path("b", LIBRARY_META_FILE), attrs.evolve(meta, strategy="logical").to_json()
    )
    target = InMemoryMilvus("2.5.3")
    # the record says logical but the files are binlogs: the check of the backup would refuse it first
    with pytest.raises(RestorePlanError, match=r"backup b is a logical backup .*method='insert'"):
        client(target, bk.backup_storage).restore("b", method="import", check_backup="none")
    assert target.list_collections(DB) == []
    plan = client(target, bk.backup_storage).plan_restore("b")
    assert plan.collections[0].method == "insert" and "logical backup" in plan.collections[0].method_reason


class _Dropping(InMemoryMilvus):
    """Says it took every row of a batch but keeps all but the first."""

    def insert_rows(
        self, db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema
    ) -> int:
        super().insert_rows(db, name, partition, batch.slice(1), schema)
        return int(batch.num_rows)


def test_a_target_short_of_rows_fails_the_restore_and_drops_what_it_created() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("b", "c")
    target = _Dropping("2.5.3")
    with pytest.raises(
        InsertFailedError, match=r"default\.c holds \d+ rows after inserting \d+ live rows"
    ) as caught:
        client(target, bk.backup_storage).restore("b", method="insert")
    assert "dropped the collections it had created" in "".join(getattr(caught.value, "__notes__", []))
    assert target.list_collections(DB) == []


class _Counting(Progress):
    def __init__(self) -> None:
        self.rows: list[int] = []

    def rows_inserted(self, target: str, partition: str, rows: int) -> None:
        self.rows.append(rows)


def test_batches_are_bounded_by_rows_and_bytes_and_progress_counts_them() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("b", "c")
    target = InMemoryMilvus("2.5.3")
    sizes: list[tuple[int, int]] = []
    original = target.insert_rows

    def spy(db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema) -> int:
        sizes.append((batch.num_rows, batch.nbytes))
        return original(db, name, partition, batch, schema)

    target.insert_rows = spy  # type: ignore[method-assign]
    progress = _Counting()
    client(target, bk.backup_storage).restore(
        "b", method="insert", insert_batch_rows=4, insert_batch_bytes=1500, progress=progress
    )
    assert sizes and max(rows for rows, _ in sizes) <= 4
    per_row = max(nbytes / rows for rows, nbytes in sizes)
    assert max(nbytes for _, nbytes in sizes) <= max(1500, per_row)
    assert sum(progress.rows) == sum(rows for rows, _ in sizes) == len(expected_pks())


def test_slices_cut_by_rows_and_by_bytes() -> None:
    batch = pa.record_batch({"a": pa.array(range(100), pa.int64())})  # 800 bytes
    assert [b.num_rows for b in slices(iter([batch]), 30, 10_000)] == [30, 30, 30, 10]
    assert [b.num_rows for b in slices(iter([batch]), 1000, 400)] == [50, 50]
    assert [b.num_rows for b in slices(iter([batch]), 1000, 1)] == [1] * 100  # never less than a row


def test_the_pipeline_holds_at_most_depth_plus_workers_items_and_stops_at_the_first_failure() -> None:
    drawn, done = [0], [0]
    lock = threading.Lock()
    peak = [0]

    def items() -> Any:
        for i in range(50):
            with lock:
                drawn[0] += 1
                peak[0] = max(peak[0], drawn[0] - done[0])
            yield i

    def consume(item: int) -> None:
        time.sleep(0.002)
        with lock:
            done[0] += 1

    pipeline(items(), consume, workers=2, depth=3, check=lambda: None)
    assert done[0] == 50
    assert peak[0] <= 3 + 2 + 1  # queued + in the workers' hands + the one being put

    def failing(item: int) -> None:
        if item == 5:
            raise InsertFailedError("boom")

    drawn[0] = 0
    with pytest.raises(InsertFailedError, match="boom"):
        pipeline(items(), failing, workers=2, depth=2, check=lambda: None)
    assert drawn[0] < 50


def test_method_is_validated() -> None:
    with pytest.raises(InvalidOptionError, match="choose one of: auto, import, insert"):
        RestoreOptions(method="copy")
    with pytest.raises(InvalidOptionError, match="64 MiB"):
        RestoreOptions(insert_batch_bytes=100 << 20)
    assert RestoreOptions().method == "auto"


def test_an_insert_restore_into_lite_needs_no_import_capability() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("b", "c")
    info = bk.get_backup("b")
    lite = TargetState(frozenset({"default"}), frozenset(), server_version="milvus_lite-3.2.2")
    plan = DefaultRestorePlanner().plan(info, RestoreOptions(), lite)
    assert plan.collections[0].method == "insert"
    assert "Milvus Lite (milvus_lite-3.2.2) keeps no binlogs" in plan.collections[0].method_reason
    assert capability_problems(plan, info, "milvus_lite-3.2.2") == []
    with pytest.raises(RestorePlanError, match="Milvus Lite"):
        DefaultRestorePlanner().plan(info, RestoreOptions(method="import"), lite)


def test_lite_is_refused_the_field_types_it_cannot_create() -> None:
    source = InMemoryMilvus("2.4.10")
    _half_collection(source)
    bk = client(source)
    bk.create_backup("half", "h")
    info = bk.get_backup("half")
    lite = TargetState(frozenset({"default"}), frozenset(), server_version="milvus_lite-3.2.2")
    plan = DefaultRestorePlanner().plan(info, RestoreOptions(), lite)
    (problem,) = capability_problems(plan, info, "milvus_lite-3.2.2")
    assert (
        "Float16Vector field 'half': Milvus Lite (milvus_lite-3.2.2) has no Float16Vector fields" in problem
    )
