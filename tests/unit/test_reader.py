"""The offline reader against backups of the in-memory cluster: every version line's storage (2.3: v1
with segment delta logs; 2.4 and 2.5: v1 with L0 deletes, 2.5's stream-written delete logs; 2.6: storage v2
column groups and Parquet delete logs), compared row by row with what a query of the cluster returns."""

from __future__ import annotations

import builtins
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from memory_data import DB, DELETED_EVERYWHERE, DELETED_IN_P1, DIM, client, expected_pks, populate, rows

from milvus_backup_lib import (
    BackupReader,
    CollectionNotFoundError,
    CorruptBinlogError,
    InvalidOptionError,
    MissingDependencyError,
    StorageLocation,
    open_backup,
)
from milvus_backup_lib.manifest.model import CollectionSchema, DataType
from milvus_backup_lib.storage.layout import binlog_files
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

LINES = ["2.3.5", "2.4.10", "2.5.10", "2.6.11"]


def _backup(cluster: InMemoryMilvus, collections: list[str]) -> tuple[BackupReader, StorageLocation]:
    facade = client(cluster)
    facade.create_backup("b1", collections=collections)
    location = facade.backup_storage
    return open_backup(location, "b1"), location


def _as_query_rows(table: Any, schema: CollectionSchema) -> list[dict[str, Any]]:
    """The reader's rows in the shape of ``InMemoryMilvus.rows``: vectors as the stored bytes, JSON
    parsed, dynamic keys under their own names."""
    types = {f.name: f for f in schema.fields}
    out = []
    for row in table.to_pylist():
        shaped: dict[str, Any] = {}
        for name, value in row.items():
            spec = types.get(name)
            if name == "$meta":
                shaped.update(json.loads(value) if value else {})
            elif spec is not None and spec.data_type == DataType.JSON and value is not None:
                shaped[name] = json.loads(value)
            elif spec is not None and spec.data_type == DataType.FLOAT_VECTOR:
                shaped[name] = struct.pack(f"<{len(value)}f", *value)
            else:
                shaped[name] = value
        out.append(shaped)
    pk = schema.primary_field.name
    return sorted(out, key=lambda r: r[pk])


@pytest.mark.parametrize("version", LINES)
def test_a_backup_reads_back_equal_to_the_collection(version: str) -> None:
    cluster = InMemoryMilvus(version)
    float16 = version != "2.3.5"  # 2.3 allows one vector field per collection
    populate(cluster, float16=float16)
    reader, _ = _backup(cluster, ["default.c"])
    schema = reader.collections["default.c"]
    table = reader.read("default.c")
    assert table.schema.field("vec").type == pa.list_(pa.float32(), 8)
    if float16:
        assert table.schema.field("half").type == pa.binary(16)
    assert table.schema.field("doc").type == pa.string()
    assert table.schema.field("tags").type == pa.list_(pa.string())
    rows = _as_query_rows(table, schema)
    assert [r["pk"] for r in rows] == expected_pks()  # deletes of both kinds applied
    assert rows == cluster.rows(DB, "c")  # every value, vectors bit for bit, dynamic keys included


def test_the_storage_layouts_are_the_ones_meant() -> None:
    """The lines above do exercise what they claim: segment delta logs, L0 deletes, storage v2."""
    seen = {}
    for version in LINES:
        cluster = InMemoryMilvus(version)
        populate(cluster)
        reader, _ = _backup(cluster, ["default.c"])
        coll = reader.info.collection_backups[0]
        segments = [s for p in coll.partition_backups for s in p.segment_backups]
        seen[version] = (
            any(s.deltalogs for s in segments if not s.is_l0),
            any(s.is_l0 for s in segments) or bool(coll.l0_segments),
            {s.storage_version for s in segments if not s.is_l0},
        )
    assert seen["2.3.5"] == (True, False, {0})
    assert seen["2.4.10"][1:] == (True, {0})
    assert seen["2.6.11"][1:] == (True, {2})


@pytest.mark.parametrize("version", ["2.5.10", "2.6.11"])
def test_varchar_keys_binary_vectors_and_nullable_fields(version: str) -> None:
    cluster = InMemoryMilvus(version)
    schema = CollectionSchema(
        fields=(
            field("id", DataType.VARCHAR, primary=True, max_length=32),
            field("bits", DataType.BINARY_VECTOR, dim=16),
            field("maybe", DataType.INT32, nullable=True),
            field("flags", DataType.ARRAY, element_type=DataType.BOOL, max_capacity=3),
        )
    )
    cluster.create_collection(DB, "v", schema)
    cluster.insert(
        DB,
        "v",
        [
            {"id": f"k{i}", "bits": bytes([i, 255 - i]), "maybe": i if i % 2 else None, "flags": [i % 2 == 0]}
            for i in range(12)
        ],
    )
    cluster.flush(DB, "v")
    cluster.delete(DB, "v", ["k3", "k10"])
    cluster.flush(DB, "v")
    reader, _ = _backup(cluster, ["default.v"])
    table = reader.read("default.v")
    assert table.schema.field("bits").type == pa.binary(2)
    assert table.column("maybe").null_count == 5
    assert _as_query_rows(table, reader.collections["default.v"]) == cluster.rows(DB, "v")
    assert "k3" not in table.column("id").to_pylist()


def test_bfloat16_int8_and_sparse_vectors_on_storage_v2() -> None:
    cluster = InMemoryMilvus("2.6.11")
    schema = CollectionSchema(
        fields=(
            field("pk", DataType.INT64, primary=True),
            field("bf", DataType.BFLOAT16_VECTOR, dim=4),
            field("i8", DataType.INT8_VECTOR, dim=4),
            field("sp", DataType.SPARSE_FLOAT_VECTOR),
        )
    )
    cluster.create_collection(DB, "vx", schema)
    sparse = [struct.pack("<IfIf", i, 0.5, i + 7, -1.25) for i in range(6)]
    cluster.insert(
        DB,
        "vx",
        [
            {"pk": i, "bf": bytes(range(i, i + 8)), "i8": [i, -i, 127, -128], "sp": sparse[i]}
            for i in range(6)
        ],
    )
    cluster.flush(DB, "vx")
    reader, _ = _backup(cluster, ["default.vx"])
    table = reader.read("default.vx")
    assert table.schema.field("bf").type == pa.binary(8)
    assert table.schema.field("i8").type == pa.list_(pa.int8(), 4)
    assert table.schema.field("sp").type == pa.binary()
    got = {row["pk"]: row for row in table.to_pylist()}
    for row in cluster.rows(DB, "vx"):
        mine = got[row["pk"]]
        assert mine["bf"] == row["bf"] and mine["sp"] == row["sp"]
        assert struct.pack("<4b", *mine["i8"]) == row["i8"]


@pytest.mark.parametrize("version", LINES)
def test_a_delete_removes_only_the_rows_written_before_it(version: str) -> None:
    """A key deleted and then inserted again is live (filter.go: dropped only when the delete's
    timestamp is greater than the row's)."""
    cluster = InMemoryMilvus(version)
    populate(cluster)
    cluster.insert(DB, "c", rows(range(3, 4), seed=5))  # 3 was deleted by populate
    cluster.flush(DB, "c")
    reader, _ = _backup(cluster, ["default.c"])
    table = reader.read("default.c")
    assert table.column("pk").to_pylist().count(3) == 1
    assert _as_query_rows(table, reader.collections["default.c"]) == cluster.rows(DB, "c")


def test_a_field_added_after_the_segments_reads_as_null() -> None:
    """2.6 AddCollectionField: older segments have no binlogs of the new field (nulls there), and the
    dynamic field, numbered before it, is still found (the first gap in the field IDs)."""
    cluster = InMemoryMilvus("2.6.11")
    populate(cluster)
    cluster.add_collection_field(DB, "c", field("late", DataType.INT64, nullable=True))
    cluster.insert(DB, "c", [{**row, "late": row["pk"] * 3} for row in rows(range(50, 53), seed=3)])
    cluster.flush(DB, "c")
    reader, _ = _backup(cluster, ["default.c"])
    table = reader.read("default.c")
    assert table.column_names[-2:] == ["late", "$meta"]
    late = dict(zip(table.column("pk").to_pylist(), table.column("late").to_pylist(), strict=True))
    assert late[50] == 150 and late[0] is None
    assert _as_query_rows(table, reader.collections["default.c"]) == cluster.rows(DB, "c")


@pytest.mark.parametrize("version", ["2.3.5", "2.6.11"])
def test_partitions_columns_and_system_fields(version: str) -> None:
    cluster = InMemoryMilvus(version)
    populate(cluster)
    reader, _ = _backup(cluster, ["default.c"])
    p1 = reader.read("default.c", partitions=["p1"], columns=["pk", "name"])
    assert p1.column_names == ["pk", "name"]
    kept = [pk for pk in range(1000, 1010) if pk not in DELETED_EVERYWHERE + DELETED_IN_P1]
    assert sorted(p1.column("pk").to_pylist()) == kept
    with_system = reader.read("default.c", columns=["pk"], system_fields=True)
    assert with_system.column_names == ["RowID", "Timestamp", "pk"]
    assert with_system.column("Timestamp").null_count == 0 and with_system.num_rows == len(expected_pks())
    frame = reader.to_pandas("default.c", columns=["pk", "f64"])
    assert sorted(frame["pk"]) == expected_pks()


@pytest.mark.parametrize("version", ["2.3.5", "2.6.11"])
def test_export_parquet_writes_import_ready_files(version: str, tmp_path: Path) -> None:
    cluster = InMemoryMilvus(version)
    float16 = version != "2.3.5"
    populate(cluster, float16=float16)
    reader, _ = _backup(cluster, ["default.c"])
    written = reader.export_parquet("default.c", f"file://{tmp_path}/out")
    assert written and all(p.endswith(".parquet") for p in written)
    assert {Path(p).parent.name for p in written} == {"_default", "p1"}
    table = pa.concat_tables([pq.read_table(p) for p in written])
    assert table.schema.field("vec").type == pa.list_(pa.float32())
    assert table.schema.field("doc").type == pa.string() and table.schema.field("$meta").type == pa.string()
    if float16:
        assert table.schema.field("half").type == pa.list_(pa.uint8())
        table = table.set_column(
            table.schema.get_field_index("half"),
            "half",
            pa.array([bytes(v) for v in table.column("half").to_pylist()], type=pa.binary(2 * DIM)),
        )
    assert _as_query_rows(table, reader.collections["default.c"]) == cluster.rows(DB, "c")


_MEASURE = """
import json, sys, tracemalloc
import pyarrow as pa
import pyarrow.parquet as pq
from milvus_backup_lib import open_backup
reader = open_backup(sys.argv[1], "b1")
tracemalloc.start()
rows = batches = 0
for batch in reader.iter_batches("default.big", batch_rows=1000):
    assert batch.num_rows <= 1000
    rows += batch.num_rows
    batches += 1
print(json.dumps({"rows": rows, "batches": batches, "arrow_peak": pa.default_memory_pool().max_memory(),
                  "python_peak": tracemalloc.get_traced_memory()[1]}))
"""


def test_iter_batches_keeps_memory_bounded(tmp_path: Path) -> None:
    """A collection ~40 times bigger than a batch, read in batches by a fresh process: the peak of Arrow's
    allocations and of Python's stays a small part of the whole table (one row group of each field at a
    time). A child process, because Arrow's peak counter cannot be reset."""
    cluster = InMemoryMilvus("2.6.11", rows_per_file=2000)
    dim = 64
    schema = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True), field("vec", DataType.FLOAT_VECTOR, dim=dim))
    )
    cluster.create_collection(DB, "big", schema)
    vector = struct.pack(f"<{dim}f", *range(dim))
    for start in range(0, 40000, 10000):
        cluster.insert(DB, "big", [{"pk": pk, "vec": vector} for pk in range(start, start + 10000)])
        cluster.flush(DB, "big")
    cluster.delete(DB, "big", [5, 39999])
    cluster.flush(DB, "big")
    client(cluster, StorageLocation(str(tmp_path))).create_backup("b1", collections=["default.big"])
    whole = open_backup(str(tmp_path), "b1").read("default.big")
    assert whole.num_rows == 40000 - 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path)], capture_output=True, text=True, env=env, check=True
    )
    measured = json.loads(done.stdout)
    assert measured["rows"] == 40000 - 2 and measured["batches"] >= 40
    assert measured["arrow_peak"] < whole.nbytes / 8, (measured, whole.nbytes)
    assert measured["python_peak"] < whole.nbytes / 8, (measured, whole.nbytes)


def test_errors_name_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    reader, location = _backup(cluster, ["default.c"])
    with pytest.raises(CollectionNotFoundError, match="nope"):
        reader.read("default.nope")
    with pytest.raises(InvalidOptionError, match="columns"):
        reader.read("default.c", columns=["pk", "missing"])
    with pytest.raises(InvalidOptionError, match="batch_rows"):
        next(reader.iter_batches("default.c", batch_rows=0))
    # A truncated insert binlog: the error names the file and the byte where it breaks.
    victim = next(
        f
        for f in binlog_files(reader.info)
        if not f.is_delta and f.key.endswith(f"/{101}/" + f.key.rsplit("/", 1)[1])
    )
    path = location.join("b1", victim.key)
    data = location.read_bytes(path)
    location.write_bytes(path, data[: len(data) - 40])
    with pytest.raises(CorruptBinlogError, match=r"101/\d+ cannot be read at byte \d+") as caught:
        reader.read("default.c")
    assert caught.value.file == path and caught.value.offset > 0
    location.write_bytes(path, b"\x00" * 12)
    with pytest.raises(CorruptBinlogError, match="magic number"):
        reader.read("default.c")

    real_import = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(MissingDependencyError, match="pip install pandas"):
        reader.to_pandas("default.c")


def test_without_pyarrow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(MissingDependencyError, match=r"milvus-backup-lib\[arrow\]") as caught:
        open_backup("memory://nowhere", "b1")
    assert isinstance(caught.value, ImportError)
