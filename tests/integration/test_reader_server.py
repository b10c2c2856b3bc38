"""A backup of the real Milvus 2.3.5 server read offline (no server involved in the reading), compared
row by row with what the server's query returns: INT64 auto-id and VARCHAR keys, every scalar kind, JSON,
Array, the dynamic field, partitions, deletes after flush (delta logs), several segments, float, binary
and float16 vectors."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from dataset import (
    Matrix,
    ensure_loaded,
    fetch_rows,
    make_client,
    offline_rows,
    partition_counts,
    plain_value,
)

from go_layouts import GO_SHAPES, GoShape, go_meta_files, go_path, group_of
from milvus_backup_lib import BackupReader, CorruptBinlogError, open_backup
from milvus_backup_lib.manifest.model import DataType
from milvus_backup_lib.storage.layout import binlog_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backup_root(milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reader-backups")
    make_client(milvus_server, root).create_backup("offline", collections=matrix.qualified())
    return root


@pytest.fixture(scope="module")
def reader(backup_root: Path) -> BackupReader:
    # Opened from the directory alone: nothing of the server is used from here on.
    return open_backup(f"file://{backup_root}", "offline")


def _server_rows(matrix: Matrix, qualified: str) -> dict[Any, dict[str, Any]]:
    db, _, coll = qualified.partition(".")
    return {
        pk: {k: plain_value(v) for k, v in row.items()}
        for pk, row in fetch_rows(matrix.uri, db, coll).items()
    }


@pytest.mark.parametrize("kind", ["full", "varchar", "half", "pkey", "other", "default"])
def test_a_physical_backup_reads_back_equal_to_the_server(
    reader: BackupReader, matrix: Matrix, kind: str
) -> None:
    qualified = {
        "full": f"{matrix.db_a}.{matrix.full}",
        "varchar": f"{matrix.db_a}.{matrix.varchar}",
        "half": f"{matrix.db_a}.{matrix.half}",
        "pkey": f"{matrix.db_a}.{matrix.pkey}",
        "other": f"{matrix.db_b}.{matrix.other}",
        "default": f"default.{matrix.default_coll}",
    }[kind]
    offline = offline_rows(reader, qualified)
    server = _server_rows(matrix, qualified)
    assert sorted(offline, key=str) == sorted(server, key=str)
    for pk, row in server.items():
        assert offline[pk] == row, f"{qualified} row {pk!r}"


def test_deletes_and_partitions_of_the_real_backup(reader: BackupReader, matrix: Matrix) -> None:
    full = f"{matrix.db_a}.{matrix.full}"
    ids = set(reader.read(full, columns=["id"]).column("id").to_pylist())
    assert ids and not ids & set(matrix.deleted_full)
    assert len(ids) == matrix.rows[full] - len(matrix.deleted_full)
    keys = set(reader.read(f"{matrix.db_a}.{matrix.varchar}", columns=["key"]).column("key").to_pylist())
    assert len(keys) == 400 - len(matrix.deleted_varchar) and not keys & set(matrix.deleted_varchar)
    # Partition p1 got batches 1 and 4 (its rows' titles say which); the server counts the same rows.
    ensure_loaded(matrix.uri, matrix.db_a, matrix.full)
    counts = partition_counts(matrix.uri, matrix.db_a, matrix.full)
    for partition in ("_default", "p1", "p2", "p3"):
        titles = reader.read(full, partitions=[partition], columns=["title"]).column("title").to_pylist()
        assert len(titles) == counts[partition], partition
        batches = {int(t.split()[1]) // 1000 for t in titles}
        assert batches == {"_default": {0}, "p1": {1, 4}, "p2": {2}, "p3": {3}}[partition]
    assert reader.read(f"{matrix.db_a}.{matrix.empty}").num_rows == 0


def test_the_backup_holds_what_the_comparison_claims(reader: BackupReader, matrix: Matrix) -> None:
    """The row-by-row comparisons above do cover what this module says: several segments with delta
    logs (deletes after a flush) for both key types, JSON, Array, the dynamic field, each vector kind."""
    by_name = {c.qualified_name: c for c in reader.info.collection_backups}
    for kind, pk_type, vector in (
        ("full", DataType.INT64, DataType.FLOAT_VECTOR),
        ("varchar", DataType.VARCHAR, DataType.BINARY_VECTOR),
    ):
        qualified = f"{matrix.db_a}.{getattr(matrix, kind)}"
        segments = [s for p in by_name[qualified].partition_backups for s in p.segment_backups]
        assert len(segments) >= 2, qualified
        assert any(fb.binlogs for s in segments for fb in s.deltalogs), f"{qualified}: no delta logs"
        schema = reader.collections[qualified]
        assert schema.primary_field.data_type == pk_type
        assert vector in {f.data_type for f in schema.fields}
    full = reader.collections[f"{matrix.db_a}.{matrix.full}"]
    assert {DataType.JSON, DataType.ARRAY} <= {f.data_type for f in full.fields}
    assert full.enable_dynamic_field and "$meta" in reader.read(f"{matrix.db_a}.{matrix.full}").column_names
    half = reader.collections[f"{matrix.db_a}.{matrix.half}"]
    assert DataType.FLOAT16_VECTOR in {f.data_type for f in half.fields}


def write_go_backup(root: Path, base_name: str, shape: GoShape) -> None:
    """Rewrite backup ``base_name`` into the Go release line's meta JSON and directory layout ``shape``
    (tests/go_layouts.py, from each tag's ``core/proto/backup.proto`` and writer), as ``shape.name``."""
    base = root / base_name
    full = json.loads((base / "meta" / "full_meta.json").read_text())
    groups = group_of(full, shape)
    target = root / shape.name
    for path in sorted(p for p in (base / "binlogs").rglob("*") if p.is_file()):
        dest = target / go_path(str(path.relative_to(base)), groups)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    (target / "meta").mkdir()
    for name, data in go_meta_files(full, shape).items():
        (target / "meta" / name).write_bytes(data)


def go_collections(matrix: Matrix, shape: GoShape) -> list[str]:
    full, varchar = f"{matrix.db_a}.{matrix.full}", f"{matrix.db_a}.{matrix.varchar}"
    half = f"{matrix.db_a}.{matrix.half}"  # the float16 vectors (2.3 allows one vector field a collection)
    # go_layouts.py writes a v0.5.0 default_value_proto only when its bytes are UTF-8, and the full
    # collection's Double default (0.5) is not: that line is read without the full collection.
    return [varchar, half] if shape.defaults == "proto" else [full, varchar, half]


@pytest.fixture(scope="module")
def go_base(milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Backups of collections with segments in every partition (what tests/go_layouts.py rewrites):
    ``gobase`` with the full, varchar and float16 collections, ``gobase_v`` without the full one."""
    root = tmp_path_factory.mktemp("reader-go-layouts")
    bc = make_client(milvus_server, root)
    full, varchar, half = (f"{matrix.db_a}.{c}" for c in (matrix.full, matrix.varchar, matrix.half))
    bc.create_backup("gobase", collections=[full, varchar, half])
    bc.create_backup("gobase_v", collections=[varchar, half])
    return root


@pytest.mark.parametrize("shape", GO_SHAPES, ids=lambda s: s.name)
def test_a_go_layout_backup_reads_back_equal_to_the_server(
    go_base: Path, matrix: Matrix, shape: GoShape
) -> None:
    collections = go_collections(matrix, shape)
    write_go_backup(go_base, "gobase" if len(collections) == 3 else "gobase_v", shape)
    go_reader = open_backup(f"file://{go_base}", shape.name)
    assert sorted(go_reader.collections) == sorted(collections)
    for qualified in collections:
        assert offline_rows(go_reader, qualified) == _server_rows(matrix, qualified), qualified


def test_exported_parquet_imports_into_the_server(
    reader: BackupReader, matrix: Matrix, milvus_server: Any
) -> None:
    """export_parquet's files go through Milvus 2.3.5's own Parquet bulk import (no backup option) and
    give back the source rows: VarChar keys and binary vectors; auto-ID keys (new ones), JSON, Array,
    a default value and dynamic keys."""
    from pymilvus import MilvusClient
    from pymilvus.grpc_gen import common_pb2, milvus_pb2

    for kind, key in (("varchar", "key"), ("full", "title")):
        source = f"{matrix.db_a}.{getattr(matrix, kind)}"
        target = f"{getattr(matrix, kind)}_from_parquet"
        out = milvus_server.data_dir / "parquet_export" / kind
        written = reader.export_parquet(source, f"file://{out}")
        src_client = MilvusClient(matrix.uri, db_name=matrix.db_a)
        schema = src_client.describe_collection(getattr(matrix, kind))
        src_client.close()
        c = MilvusClient(matrix.uri, db_name=matrix.db_a)
        fields = {f["name"]: f for f in schema["fields"]}
        new = MilvusClient.create_schema(
            auto_id=schema.get("auto_id", False),
            enable_dynamic_field=schema.get("enable_dynamic_field", False),
        )
        for f in fields.values():
            params = dict(f.get("params", {}))
            extra = {k: v for k, v in params.items() if k in ("dim", "max_length", "max_capacity")}
            if "element_type" in f:
                extra["element_type"] = f["element_type"]
            if "default_value" in f:
                extra["default_value"] = f["default_value"]
            new.add_field(f["name"], f["type"], is_primary=f.get("is_primary", False), **extra)
        c.create_collection(target, schema=new)
        try:
            stub = c._get_connection()._stub  # the raw Import RPC: with db_name (test-rig.md)
            for path in written:
                answer = stub.Import(
                    milvus_pb2.ImportRequest(collection_name=target, db_name=matrix.db_a, files=[path])
                )
                assert answer.status.code == 0 and answer.tasks, answer
                for _ in range(180):
                    state = stub.GetImportState(milvus_pb2.GetImportStateRequest(task=answer.tasks[0]))
                    name = common_pb2.ImportState.Name(state.state)
                    if name in ("ImportCompleted", "ImportFailed", "ImportFailedAndCleaned"):
                        break
                    time.sleep(1)
                assert name == "ImportCompleted", state
            c.flush(target)
            imported = _server_rows(matrix, f"{matrix.db_a}.{target}")
        finally:  # the matrix is shared: leave its databases as they were
            c.drop_collection(target)
            c.close()
        expected = _server_rows(matrix, source)
        by_key = {row[key]: row for row in imported.values()}
        assert len(by_key) == len(expected) > 0
        for row in expected.values():
            got = dict(by_key[row[key]])
            if kind == "full":  # auto-ID: the import gives new keys
                got.pop("id")
                row = {k: v for k, v in row.items() if k != "id"}
            assert got == row, row[key]


def _payload_start(data: bytes) -> int:
    """Where the first data event's Parquet payload starts in a v1 binlog: past the magic (4 bytes),
    the descriptor event (its length at byte 9 of its header) and the data event's header (17 bytes)
    and timestamps (16 bytes) (milvus-io/milvus internal/storage/event_header.go, event_data.go)."""
    (descriptor_length,) = struct.unpack_from("<i", data, 4 + 9)
    return 4 + descriptor_length + 17 + 16


@pytest.fixture
def damaged_root(backup_root: Path, tmp_path: Path) -> Path:
    """A copy of the real backup, to damage."""
    shutil.copytree(backup_root / "offline", tmp_path / "offline")
    return tmp_path


@pytest.mark.parametrize("damage", ["truncated", "payload", "delta", "missing", "event-type"])
def test_damaged_binlogs_of_the_real_backup_name_the_file_and_byte(
    reader: BackupReader, matrix: Matrix, damaged_root: Path, damage: str
) -> None:
    """Binlogs Milvus 2.3.5 wrote, damaged the ways storage damages files: CorruptBinlogError, whose
    message names the file and the byte where decoding stopped (docs/errors.md)."""
    full = f"{matrix.db_a}.{matrix.full}"
    coll = next(c for c in reader.info.collection_backups if c.qualified_name == full)
    vec_id = next(f.field_id for f in coll.schema.fields if f.name == "vec")
    files = list(binlog_files(coll))
    if damage == "delta":
        victim = next(f for f in files if f.is_delta)
    else:
        victim = next(f for f in files if not f.is_delta and f.key.split("/")[-2] == str(vec_id))
    path = damaged_root / "offline" / victim.key
    data = path.read_bytes()
    payload = _payload_start(data)
    if damage in ("truncated", "delta"):
        path.write_bytes(data[: len(data) - 40])
        expected_offset, detail = 4 + struct.unpack_from("<i", data, 13)[0], "runs past the end of the file"
    elif damage == "payload":  # the Parquet footer's closing magic overwritten
        path.write_bytes(data[:-4] + b"\x00" * 4)
        expected_offset, detail = payload, "not a Parquet file"
    elif damage == "missing":
        path.unlink()
        expected_offset, detail = 0, "the file is missing"
    else:  # the data event's type code (byte 8 of its header) set to one Milvus does not write
        at = payload - 33 + 8
        path.write_bytes(data[:at] + b"\x63" + data[at + 1 :])
        expected_offset, detail = payload - 33, "unknown event type 99"
    damaged = open_backup(f"file://{damaged_root}", "offline")
    with pytest.raises(CorruptBinlogError) as caught:
        for _ in damaged.iter_batches(full):
            pass
    error = caught.value
    assert Path(error.file) == path, error
    assert error.offset == expected_offset, error
    assert detail in error.detail, error
    assert f"{victim.key} cannot be read at byte {expected_offset}" in str(error)
    # The collections next to it still read.
    assert damaged.read(f"{matrix.db_a}.{matrix.varchar}").num_rows == 400 - len(matrix.deleted_varchar)
