"""Logical backups (``strategy="logical"``) of the in-memory cluster: rows read by query into Parquet,
no Milvus storage, read back by the offline reader exactly as a physical backup of the same collection."""

from __future__ import annotations

import builtins
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pyarrow.parquet as pq
import pytest
from memory_data import DB, expected_pks, populate

from cli_logging import logging_restored
from milvus_backup_lib import (
    BackupClient,
    InsertFailedError,
    InvalidOptionError,
    MilvusConnection,
    MilvusOperationError,
    MissingDependencyError,
    RestorePlanError,
    StorageLocation,
    open_backup,
)
from milvus_backup_lib.backup.logical import LOGICAL_DIR, LogicalWriter, partition_dir, read_ahead
from milvus_backup_lib.backup.logical_rows import PAGE_BUDGET, RowConverter, page_rows_for
from milvus_backup_lib.backup.snapshot import ListingSnapshotter
from milvus_backup_lib.cli import main
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    CollectionSchema,
    DataType,
    FieldSchema,
    PartitionBackupInfo,
)
from milvus_backup_lib.milvus.grpc_rows import query_rows
from milvus_backup_lib.options import BackupStrategy, CollectionFilter
from milvus_backup_lib.progress import NULL_PROGRESS
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

LINES = ["2.3.5", "2.4.10", "2.6.11"]


def _loaded(version: str, *, float16: bool = False) -> InMemoryMilvus:
    cluster = InMemoryMilvus(version)
    populate(cluster, float16=float16)
    params = [("index_type", "FLAT"), ("metric_type", "L2")]
    cluster.create_index(DB, "c", "vec", "vec_ix", params)
    if float16:
        cluster.create_index(DB, "c", "half", "half_ix", params)
    cluster.load_collection(DB, "c")
    return cluster


def _logical_client(cluster: InMemoryMilvus, backups: StorageLocation | None = None) -> BackupClient:
    """A client with no Milvus storage at all: what a Lite or managed-cluster user has."""
    backups = backups or StorageLocation(f"memory://bk-{uuid.uuid4().hex}")
    return BackupClient(MilvusConnection(), None, backups, milvus_factory=cluster.factory)


def _sorted_rows(table: Any) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: r["pk"])


@pytest.mark.parametrize("version", LINES)
def test_a_logical_backup_reads_back_as_the_physical_backup_does(version: str) -> None:
    float16 = version != "2.3.5"  # 2.3 allows one vector field per collection
    cluster = _loaded(version, float16=float16)
    backups = StorageLocation(f"memory://bk-{uuid.uuid4().hex}")
    _logical_client(cluster, backups).create_backup("logical", ["default.c"], strategy="logical")
    physical = BackupClient(MilvusConnection(), cluster.storage, backups, milvus_factory=cluster.factory)
    physical.create_backup("physical", ["default.c"])

    logical_reader, physical_reader = open_backup(backups, "logical"), open_backup(backups, "physical")
    assert logical_reader.logical and not physical_reader.logical
    assert logical_reader.collections == physical_reader.collections
    logical_table, physical_table = logical_reader.read("default.c"), physical_reader.read("default.c")
    # The contract with the insert restore: same columns, same Arrow types, same metadata, same rows.
    assert logical_table.schema.equals(physical_table.schema, check_metadata=True)
    assert logical_table.schema.names[-1] == "$meta"
    assert [r["pk"] for r in _sorted_rows(logical_table)] == expected_pks()  # deletes applied by the query
    assert _sorted_rows(logical_table) == _sorted_rows(physical_table)  # vectors bit for bit, $meta...
    for partition in ("_default", "p1"):
        mine = logical_reader.read("default.c", partitions=[partition], columns=["pk", "$meta"])
        theirs = physical_reader.read("default.c", partitions=[partition], columns=["pk", "$meta"])
        assert _sorted_rows(mine) == _sorted_rows(theirs), partition


def test_the_stored_layout_meta_and_listing() -> None:
    cluster = _loaded("2.4.10")
    client = _logical_client(cluster)
    report = client.create_backup("nightly", ["default.c"], strategy="logical")
    assert report.strategy.value == "logical" and report.files == 2 and not report.gc.paused
    repository = BackupRepository(client.backup_storage)
    library = repository.read_library_meta("nightly")
    assert library is not None and library.is_logical and library.strategy == "logical"
    assert sorted(library.files) == sorted(library.checksums) == sorted(library.file_rows())
    assert all(key.startswith(f"{LOGICAL_DIR}/default/c/") for key in library.files)
    stored = client.backup_storage.list_files(repository.backup_dir("nightly"))
    for key, size in library.files.items():
        assert stored[repository.path("nightly", key)] == size
    rows = library.partition_rows("default.c")
    live = cluster.rows(DB, "c")
    assert rows == {"_default": sum(r["pk"] < 1000 for r in live), "p1": sum(r["pk"] >= 1000 for r in live)}
    info = client.get_backup("nightly")
    coll = info.collection_backups[0]
    assert [p.partition_name for p in coll.partition_backups] == ["_default", "p1"]
    assert not any(p.segment_backups for p in coll.partition_backups) and not coll.l0_segments
    assert [ix.index_name for ix in coll.index_infos] == ["vec_ix"]
    assert coll.size == info.size == sum(library.files.values()) > 0
    (summary,) = client.list_backups()
    assert summary.logical and summary.strategy == "logical"
    assert client.list_backups().table().splitlines()[-1].split()[-1] == "logical"
    assert client.verify_backup("nightly", "checksum").ok


def test_files_roll_over_and_batches_stay_bounded() -> None:
    cluster = InMemoryMilvus("2.4.10")
    schema = CollectionSchema(
        fields=(field("id", DataType.INT64, primary=True), field("v", DataType.FLOAT_VECTOR, dim=2))
    )
    cluster.create_collection(DB, "big", schema, shards_num=1, consistency_level=2)
    cluster.insert(DB, "big", [{"id": i, "v": [float(i), 1.0]} for i in range(1000)])
    cluster.create_index(DB, "big", "v", "ix", [("index_type", "FLAT"), ("metric_type", "L2")])
    cluster.load_collection(DB, "big")
    client = _logical_client(cluster)
    repository = BackupRepository(client.backup_storage)
    with cluster.factory(client.milvus) as milvus, BackupLock(client.backup_storage, "b") as lock:
        writer = LogicalWriter(milvus, repository, "b", lock, page_rows=64, file_rows=300)
        snap = ListingSnapshotter(None).snapshot(
            milvus, CollectionFilter.parse(["default.big"]), BackupStrategy.META_ONLY
        )
        result = writer.write(BackupInfo(name="b", collection_backups=snap.collections), NULL_PROGRESS)
    rows = result.logical["default.big"]["_default"]
    assert rows["rows"] == 1000
    assert list(rows["files"].values()) == [256, 256, 256, 232]  # pages of 64, files of at most 300
    for key in rows["files"]:
        with client.backup_storage.fs.open(repository.path("b", key), "rb") as fh:
            meta = pq.ParquetFile(fh).metadata
            assert meta.num_rows == rows["files"][key]
            assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 64


def test_the_reader_pages_a_logical_backup_by_batch_rows() -> None:
    cluster = _loaded("2.4.10")
    client = _logical_client(cluster)
    client.create_backup("b", ["default.c"], strategy="logical")
    reader = open_backup(client.backup_storage, "b")
    batches = list(reader.iter_batches("default.c", batch_rows=4))
    assert max(b.num_rows for b in batches) <= 4 and sum(b.num_rows for b in batches) == len(expected_pks())
    parts = [(p, n) for p, n, _ in reader.segment_batches("default.c", 4)]
    assert parts == [("_default", 0), ("p1", 0)]
    assert reader.read("default.c", columns=["name", "pk"]).schema.names == ["name", "pk"]
    with pytest.raises(InvalidOptionError, match="system_fields"):
        reader.read("default.c", system_fields=True)


def test_no_milvus_storage_refuses_a_physical_backup_naming_the_option() -> None:
    cluster = _loaded("2.4.10")
    client = _logical_client(cluster)
    with pytest.raises(InvalidOptionError) as caught:
        client.create_backup("b", ["default.c"])
    assert caught.value.option == "milvus_storage" and "strategy='logical'" in str(caught.value)
    client.create_backup("m", ["default.c"], strategy="meta_only")  # no data: no storage needed
    with pytest.raises(InvalidOptionError, match="resume"):
        client.create_backup("b", ["default.c"], strategy="logical", resume=True)


def test_a_collection_that_is_not_loaded_is_refused_before_anything_is_written() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    client = _logical_client(cluster)
    with pytest.raises(MilvusOperationError, match=r"default\.c is not loaded.*load_collection"):
        client.create_backup("b", ["default.c"], strategy="logical")
    assert not client.list_backups() and not client.list_unfinished()


def test_verify_finds_a_damaged_file_and_a_wrong_row_count() -> None:
    cluster = _loaded("2.4.10")
    client = _logical_client(cluster)
    client.create_backup("b", ["default.c"], strategy="logical")
    repository = BackupRepository(client.backup_storage)
    library = repository.read_library_meta("b")
    assert library is not None
    first, second = sorted(library.files)
    path = repository.path("b", first)
    data = bytearray(client.backup_storage.read_bytes(path))
    data[len(data) // 2] ^= 0xFF
    client.backup_storage.write_bytes(path, bytes(data))
    report = client.verify_backup("b", "checksum")
    assert [c[0] for c in report.corrupt] == [first] and client.verify_backup("b", "size").ok
    # A file whose bytes match the checksum recorded but whose rows do not (a meta edited by hand):
    lying = {**library.logical}
    lying["default.c"]["p1"]["files"][second] += 1
    meta = attrs.evolve(library, logical=lying)
    client.backup_storage.write_bytes(repository.meta_path("b", "milvus_backup_lib.json"), meta.to_json())
    report = client.verify_backup("b", "checksum")
    assert (
        second,
        f"{lying['default.c']['p1']['files'][second]} rows",
        f"{meta.file_rows()[second] - 1} rows",
    ) in (report.corrupt)
    client.backup_storage.remove_file(path)
    assert client.verify_backup("b", "exists").missing == (first,)


def test_partition_directories_stay_unique_when_the_server_reports_every_id_as_zero() -> None:
    """Milvus Lite reports every collection and partition ID as 0."""
    coll = CollectionBackupInfo(
        collection_id=0,
        db_name="default",
        collection_name="c",
        partition_backups=(
            PartitionBackupInfo(partition_id=0, partition_name="_default"),
            PartitionBackupInfo(partition_id=0, partition_name="p1"),
        ),
    )
    dirs = {partition_dir(coll, i, p) for i, p in enumerate(coll.partition_backups)}
    assert len(dirs) == 2


def test_a_partition_key_collection_is_read_whole_into_its_first_partition() -> None:
    cluster = InMemoryMilvus("2.4.10")
    schema = CollectionSchema(
        fields=(
            field("id", DataType.INT64, primary=True),
            field("tenant", DataType.VARCHAR, max_length=8, partition_key=True),
            field("v", DataType.FLOAT_VECTOR, dim=2),
        )
    )
    cluster.create_collection(DB, "pk", schema, shards_num=1, consistency_level=2, num_partitions=3)
    cluster.insert(DB, "pk", [{"id": i, "tenant": f"t{i % 5}", "v": [1.0, 2.0]} for i in range(40)])
    cluster.create_index(DB, "pk", "v", "ix", [("index_type", "FLAT"), ("metric_type", "L2")])
    cluster.load_collection(DB, "pk")
    client = _logical_client(cluster)
    client.create_backup("b", ["default.pk"], strategy="logical")
    reader = open_backup(client.backup_storage, "b")
    assert sorted(reader.read("default.pk").column("id").to_pylist()) == list(range(40))
    library = reader.library
    assert library is not None
    counts = library.partition_rows("default.pk")
    assert sum(counts.values()) == 40 and list(counts.values()).count(40) == 1


def test_query_pages_of_every_shape_pymilvus_gives_convert_bit_for_bit() -> None:
    half = np.array([0.5, -1.25, 2.0, 0.0], dtype=np.float16)
    fields = [
        field("id", DataType.VARCHAR, primary=True, max_length=8),
        field("f", DataType.FLOAT_VECTOR, dim=2),
        field("b", DataType.BINARY_VECTOR, dim=16),
        field("h", DataType.FLOAT16_VECTOR, dim=4),
        field("bf", DataType.BFLOAT16_VECTOR, dim=2),
        field("s", DataType.SPARSE_FLOAT_VECTOR),
        field("j", DataType.JSON),
        field("a", DataType.ARRAY, element_type=DataType.INT32, max_capacity=3),
        field("n", DataType.INT32, nullable=True),
        FieldSchema(field_id=200, name="$meta", data_type=DataType.JSON, is_dynamic=True),
    ]
    converter = RowConverter(fields)
    rows = [
        # pymilvus's one-element lists of bytes, and a numpy float16 array
        {
            "id": "a",
            "f": [1.5, -2.0],
            "b": [b"\x01\xff"],
            "h": [half.tobytes()],
            "bf": [b"\x80\x3f\x00\x40"],
            "s": {7: 0.5, 2: 1.0},
            "j": {"k": [1, "x"]},
            "a": [1, 2],
            "n": None,
            "extra": "é",
        },
        {
            "id": "b",
            "f": np.array([0.25, 4.0], dtype=np.float32),
            "b": b"\x00\x0f",
            "h": half,
            "bf": [1.0, 2.0],
            "s": {},
            "j": None,
            "a": [],
            "n": 3,
        },
    ]
    batch = converter.batch(rows)
    assert batch.schema.names == [f.name for f in fields]
    got = batch.to_pylist()
    assert got[0]["f"] == [1.5, -2.0] and got[1]["f"] == [0.25, 4.0]
    assert got[0]["b"] == b"\x01\xff" and got[1]["b"] == b"\x00\x0f"
    assert got[0]["h"] == got[1]["h"] == half.tobytes()
    assert got[0]["bf"] == got[1]["bf"] == b"\x80\x3f\x00\x40"  # bfloat16 1.0 and 2.0, little endian
    assert got[0]["s"] == bytes.fromhex("020000000000803f070000000000003f") and got[1]["s"] == b""
    assert json.loads(got[0]["j"]) == {"k": [1, "x"]} and got[1]["j"] is None
    assert got[0]["a"] == [1, 2] and got[1]["a"] == []
    assert got[0]["n"] is None and got[1]["n"] == 3
    assert json.loads(got[0]["$meta"]) == {"extra": "é"} and json.loads(got[1]["$meta"]) == {}
    with pytest.raises(MilvusOperationError, match="'f'"):
        converter.batch([{**rows[0], "f": [1.0, 2.0, 3.0]}])


def test_read_ahead_overlaps_hands_on_errors_and_stops_its_thread() -> None:
    started = threading.Event()

    def pages() -> Iterator[list[dict[str, Any]]]:
        for i in range(100):
            started.set()
            yield [{"i": i}]

    # Leaving early: the reader thread ends (it was blocked on a full queue).
    before = threading.active_count()
    for page in read_ahead(pages(), depth=2):
        assert page == [{"i": 0}]
        break
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before

    def failing() -> Iterator[list[dict[str, Any]]]:
        yield [{"i": 0}]
        raise MilvusOperationError("Query", "boom")

    ahead = read_ahead(failing())
    assert next(ahead) == [{"i": 0}]
    with pytest.raises(MilvusOperationError, match="boom"):
        next(ahead)


def test_the_cli_lists_and_describes_a_logical_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = _loaded("2.4.10")
    backups = tmp_path / "backups"
    backups.mkdir()
    _logical_client(cluster, StorageLocation(backups.as_uri())).create_backup(
        "lg", ["default.c"], strategy="logical"
    )
    (tmp_path / "milvus").mkdir()
    (tmp_path / "backup.yaml").write_text(
        "configVersion: v2\n"
        f"milvus:\n  storage:\n    provider: local\n    rootPath: {tmp_path / 'milvus'}\n"
        f"backup:\n  storage:\n    provider: local\n    rootPath: {backups}\n"
    )
    monkeypatch.chdir(tmp_path)
    with logging_restored():
        assert main(["list"]) == 0
        listed = capsys.readouterr().out
        assert main(["get", "-n", "lg"]) == 0
        described = capsys.readouterr().out
        assert main(["--json", "list"]) == 0
        as_json = json.loads(capsys.readouterr().out)
    assert listed.splitlines()[-1].split()[0] == "lg" and listed.splitlines()[-1].split()[-1] == "logical"
    assert (
        "logical backup: rows as Parquet; restore it with milvus-backup-lib (the Go tool cannot)" in described
    )
    assert [b["strategy"] for b in as_json] == ["logical"]


class _FakeIterator:
    def __init__(self, pages: list[list[dict[str, Any]]], fail: str = "") -> None:
        self.pages, self.fail, self.closed = pages, fail, False

    def next(self) -> list[dict[str, Any]]:
        if self.fail and not self.pages:
            raise RuntimeError(self.fail)
        return self.pages.pop(0) if self.pages else []

    def close(self) -> None:
        self.closed = True


class _FakeMilvusClient:
    """Stands for pymilvus's ``MilvusClient``: records how it was built and what it was asked."""

    made: ClassVar[list[dict[str, Any]]] = []
    iterators: ClassVar[list[_FakeIterator]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.made.append(kwargs)
        self.closed = False

    def query_iterator(self, name: str, **kwargs: Any) -> _FakeIterator:
        self.made[-1]["query"] = (name, kwargs)
        return self.iterators.pop(0)

    def close(self) -> None:
        self.made[-1]["closed"] = True


def test_rows_are_read_with_the_connections_credentials_which_no_error_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pymilvus

    monkeypatch.setattr(pymilvus, "MilvusClient", _FakeMilvusClient)
    _FakeMilvusClient.made.clear()
    token = "db_admin:s3cret-Token"
    connection = MilvusConnection(uri="https://cloud.example:19530", token=token, timeout=7)
    first = _FakeIterator([[{"id": 1}], [{"id": 2}]])
    _FakeMilvusClient.iterators[:] = [first, _FakeIterator([[{"id": 3}]], fail=f"server down ({'x' * 3})")]
    pages = list(query_rows(connection, "db1", "c", "p1", 100))
    assert pages == [[{"id": 1}], [{"id": 2}]] and first.closed
    made = _FakeMilvusClient.made[0]
    assert (
        made["uri"] == "https://cloud.example:19530" and made["token"] == token and made["db_name"] == "db1"
    )
    assert made["query"] == (
        "c",
        {"batch_size": 100, "output_fields": ["*"], "partition_names": ["p1"], "consistency_level": "Strong"},
    )
    assert made["closed"]
    with pytest.raises(MilvusOperationError) as caught:
        list(query_rows(connection, "db1", "c", "", 100))  # "": the whole collection
    assert _FakeMilvusClient.made[1]["query"][1]["partition_names"] is None
    assert "db1.c partition (all): server down" in str(caught.value) and token not in str(caught.value)
    assert _FakeMilvusClient.made[1]["closed"]


def test_without_pyarrow_a_logical_backup_names_the_extra_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = _loaded("2.4.10")
    client = _logical_client(cluster)
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(
        MissingDependencyError, match=r"a logical backup .* pip install 'milvus-backup-lib\[arrow\]'"
    ):
        client.create_backup("b", ["default.c"], strategy="logical")
    monkeypatch.undo()
    assert not client.list_backups() and not client.list_unfinished()


def test_a_bulk_import_restore_of_a_logical_backup_is_refused_before_anything_changes() -> None:
    cluster = _loaded("2.4.10")
    populate(cluster, "d")
    cluster.create_index(DB, "d", "vec", "vec_ix", [("index_type", "FLAT"), ("metric_type", "L2")])
    cluster.load_collection(DB, "d")
    backups = StorageLocation(f"memory://bk-{uuid.uuid4().hex}")
    _logical_client(cluster, backups).create_backup("lg", ["default.c", "default.d"], strategy="logical")
    target = InMemoryMilvus("2.4.10")
    client = BackupClient(MilvusConnection(), target.storage, backups, milvus_factory=target.factory)
    for call in (client.plan_restore, client.restore):
        with pytest.raises(
            RestorePlanError, match=r"backup lg is a logical backup .*method='insert'"
        ) as caught:
            call("lg", suffix="_r", method="import")
        # refused by the planner, once for the whole backup (not once per collection)
        assert [c for c in caught.value.conflicts if "logical" in c] == [
            "cannot import: backup lg is a logical backup (rows in Parquet files, no binlogs); "
            "restore with method='insert' (or 'auto')"
        ]
    assert target.list_collections(DB) == []
    # the default, method="auto", restores it by inserts
    plan = client.plan_restore("lg", suffix="_r")
    assert "insert" in plan.table()
    # the plan counts the rows the logical backup records (its manifest has no segments)
    assert [c.backup_rows for c in plan.collections] == [len(cluster.rows(DB, n)) for n in ("c", "d")]
    client.restore("lg", suffix="_r")
    assert target.rows(DB, "c_r") == cluster.rows(DB, "c")
    assert target.rows(DB, "d_r") == cluster.rows(DB, "d")


def test_a_failure_mid_partition_stops_the_reader_and_commits_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = _loaded("2.4.10")
    real = InMemoryMilvus.iter_rows

    def bad_second_page(
        self: InMemoryMilvus, db: str, name: str, partition: str, batch_rows: int, fields: Any
    ) -> Iterator[list[dict[str, Any]]]:
        pages = real(self, db, name, partition, 2, fields)  # pages of 2 rows
        yield next(pages)
        yield [{**row, "vec": [1.0]} for row in next(pages)]  # a vector of the wrong dim
        yield from pages

    monkeypatch.setattr(InMemoryMilvus, "iter_rows", bad_second_page)
    client = _logical_client(cluster)
    before = threading.active_count()
    with pytest.raises(MilvusOperationError, match="'vec'"):
        client.create_backup("b", ["default.c"], strategy="logical")
    assert threading.active_count() == before  # the reader thread ended with the failure
    assert not client.list_backups()


def test_pages_of_wide_rows_are_smaller_so_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    narrow = [field("id", DataType.INT64, primary=True), field("v", DataType.FLOAT_VECTOR, dim=8)]
    wide = [field("id", DataType.INT64, primary=True), field("v", DataType.FLOAT_VECTOR, dim=4096)]
    assert page_rows_for(narrow, 8192) == 8192
    rows = page_rows_for(wide, 8192)
    assert 16 <= rows < 8192
    # What such a page really takes in Python objects (pymilvus gives floats in lists) fits the budget:
    import sys

    one_row = {"id": 1, "v": [float(i) + 0.5 for i in range(4096)]}
    size = sys.getsizeof(one_row) + sys.getsizeof(one_row["v"]) + sum(sys.getsizeof(x) for x in one_row["v"])
    assert rows * size <= PAGE_BUDGET
    asked: list[int] = []
    real = InMemoryMilvus.iter_rows

    def spy(self: InMemoryMilvus, db: str, name: str, partition: str, batch_rows: int, fields: Any) -> Any:
        asked.append(batch_rows)
        return real(self, db, name, partition, batch_rows, fields)

    monkeypatch.setattr(InMemoryMilvus, "iter_rows", spy)
    cluster = _loaded("2.4.10")
    _logical_client(cluster).create_backup("b", ["default.c"], strategy="logical")
    assert len(asked) == 2 and len(set(asked)) == 1 and 1000 < asked[0] <= 8192  # two partitions


def test_an_insert_restore_of_a_logical_backup_short_of_its_recorded_rows_is_an_error() -> None:
    cluster = _loaded("2.4.10")
    backups = StorageLocation(f"memory://bk-{uuid.uuid4().hex}")
    _logical_client(cluster, backups).create_backup("lg", ["default.c"], strategy="logical")
    repository = BackupRepository(backups)
    meta = repository.read_library_meta("lg")
    assert meta is not None
    logical = json.loads(json.dumps(meta.logical))
    logical["default.c"]["p1"]["rows"] += 1  # the record says one row more than the files hold
    info = repository.read("lg")
    repository.write_manifest(info, attrs.evolve(meta, logical=logical))
    target = InMemoryMilvus("2.4.10")
    client = BackupClient(MilvusConnection(), target.storage, backups, milvus_factory=target.factory)
    with pytest.raises(InsertFailedError, match=r"partition 'p1' of the logical backup, which records"):
        client.restore("lg", suffix="_r")
    assert target.list_collections(DB) == []  # the half-restored collection is dropped
