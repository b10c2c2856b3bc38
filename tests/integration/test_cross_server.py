"""The cross paths of issue 13 on real servers: a logical backup restored by inserts.

- Milvus Lite (``milvus-lite`` 3.2.2, its gRPC server started in-process) -> logical backup -> restore
  into the embedded Milvus 2.3.5 server with ``method="auto"``, which must insert (a logical backup has
  no binlogs) and say so. Types both servers have: INT64 and VARCHAR keys, DOUBLE, FLOAT, BOOL, JSON,
  ARRAY (2.3.5 has Array fields, the matrix creates one), the dynamic field, float vectors (Lite has no
  binary or float16 vectors, 2.3.5 no sparse ones).
- 2.3.5 logical backup -> insert restore into 2.3.5 under another name, including the partition-key
  collection (the logical writer stores its rows under the first partition: the per-partition row check
  against ``LibraryMeta.logical`` must hold), and ``method="import"`` of a logical backup refused before
  anything is created.

Each restored collection is compared with its source row by row as the servers' queries return them
(primary keys, every scalar, JSON, arrays, dynamic keys, vectors bit for bit, deleted rows absent), and
its schema (field names, types, type params, key flags, dynamic field) and partitions with the source's.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
from dataset import Matrix, ensure_loaded, query_rows
from pymilvus import DataType, MilvusClient

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib.errors import RestorePlanError

pytestmark = pytest.mark.integration

pytest.importorskip("milvus_lite.adapter.grpc.server")


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _populate_lite(uri: str, ints: str, words: str) -> dict[str, list[Any]]:
    """``ints`` (INT64 key, every shared scalar, JSON, arrays, dynamic keys, partitions p1 and p2) and
    ``words`` (VARCHAR key); some rows of each deleted. The deleted keys, by collection."""
    c = MilvusClient(uri)
    try:
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("title", DataType.VARCHAR, max_length=64)
        s.add_field("score", DataType.DOUBLE)
        s.add_field("ratio", DataType.FLOAT)
        s.add_field("flag", DataType.BOOL)
        s.add_field("meta", DataType.JSON)
        s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=16)
        s.add_field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
        ip = c.prepare_index_params()
        ip.add_index("vec", index_type="FLAT", metric_type="L2")
        c.create_collection(ints, schema=s, index_params=ip)
        for p in ("p1", "p2"):
            c.create_partition(ints, p)
        for batch, part in enumerate(("_default", "p1", "p2")):
            rows = []
            for i in range(400):
                k = batch * 1000 + i
                row: dict[str, Any] = {
                    "id": k,
                    "title": f"title {k} <&> é",
                    "score": k / 7.0,
                    "ratio": _f32(k / 3.0),
                    "flag": k % 3 == 0,
                    "meta": {"k": k, "nested": {"even": k % 2 == 0}, "list": [k, "x"]},
                    "tags": [f"t{k % 3}", "all"][: k % 3],
                    "nums": [k, -k, 2**40 + k][: k % 4],
                    "vec": [_f32((k * 7 + j) / 101) for j in range(8)],
                }
                if k % 2:
                    row["extra"] = f"dyn{k}"
                if k % 5 == 0:
                    row["weight"] = k * 0.25
                rows.append(row)
            c.insert(ints, rows, partition_name=part)
        deleted_ints = [0, 7, 1001, 1399, 2000, 2399]
        c.delete(ints, ids=deleted_ints)

        s = MilvusClient.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
        s.add_field("n", DataType.INT64)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        ip = c.prepare_index_params()
        ip.add_index("vec", index_type="FLAT", metric_type="COSINE")
        c.create_collection(words, schema=s, index_params=ip)
        c.insert(words, [{"key": f"w{i}", "n": i, "vec": [1.0, float(i), 0.5, -1.0]} for i in range(300)])
        deleted_words = [f"w{i}" for i in range(0, 300, 9)]
        c.delete(words, ids=deleted_words)
        return {ints: deleted_ints, words: deleted_words}
    finally:
        c.close()


def _schema(uri: str, db: str, coll: str) -> list[tuple[Any, ...]]:
    """Field names, types, type params and key flags, and the dynamic field, as ``describe_collection`` says."""
    c = MilvusClient(uri, db_name=db)
    try:
        desc = c.describe_collection(coll)
    finally:
        c.close()
    fields: list[tuple[Any, ...]] = [
        (
            f["name"],
            int(f["type"]),
            int(f["element_type"]) if f.get("element_type") is not None else None,
            sorted((k, str(v)) for k, v in (f.get("params") or {}).items()),
            bool(f.get("is_primary")),
            bool(f.get("auto_id")),
            bool(f.get("is_partition_key")),
        )
        for f in desc["fields"]
    ]
    return [*fields, ("$dynamic", bool(desc.get("enable_dynamic_field")))]


def _partitions(uri: str, db: str, coll: str) -> list[str]:
    c = MilvusClient(uri, db_name=db)
    try:
        return sorted(c.list_partitions(coll))
    finally:
        c.close()


def _assert_row_equal(
    source: dict[Any, dict[str, Any]], restored: dict[Any, dict[str, Any]], what: str
) -> None:
    assert len(source) > 0
    assert sorted(restored, key=str) == sorted(source, key=str), what
    for k, row in source.items():
        assert restored[k] == row, f"{what} row {k!r}"


# --- Milvus Lite -> logical backup -> Milvus 2.3.5 ----------------------------------------------------------


@pytest.fixture(scope="module")
def lite_backup(
    lite_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str, dict[str, Any]]:
    ints, words = f"ints_{uuid.uuid4().hex[:6]}", f"words_{uuid.uuid4().hex[:6]}"
    deleted = _populate_lite(lite_uri, ints, words)
    root = tmp_path_factory.mktemp("cross-lite")
    # By URI alone, as a Lite user has it: no milvus_storage.
    with BackupClient(uri=lite_uri, backup_storage=f"file://{root}") as lite:
        report = lite.create_backup("from_lite", [ints, words], strategy="logical")
        assert report.strategy.value == "logical"
    return root, ints, words, deleted


def test_milvus_lite_to_the_2_3_5_server_by_a_logical_backup(
    milvus_server: Any, lite_uri: str, lite_backup: tuple[Path, str, str, dict[str, Any]]
) -> None:
    root, ints, words, deleted = lite_backup
    suffix = uuid.uuid4().hex[:6]
    rename = {f"default.{ints}": f"default.{ints}_{suffix}", f"default.{words}": f"default.{words}_{suffix}"}
    # The server's own client, with its storage: auto could import a physical backup, not this one.
    server = BackupClient(
        milvus=MilvusConnection(uri=milvus_server.uri, management_url=milvus_server.management_url),
        milvus_storage=StorageLocation(milvus_server.storage_url),
        backup_storage=StorageLocation(f"file://{root}"),
    )
    with server:
        plan = server.plan_restore("from_lite", rename=rename)
        assert {c.method for c in plan.collections} == {"insert"}, plan.table()
        for coll in plan.collections:
            assert "backup from_lite is a logical backup" in coll.method_reason, plan.table()
        report = server.restore("from_lite", rename=rename)
    assert {c.method for c in report.plan.collections} == {"insert"}
    for name in (ints, words):
        target = rename[f"default.{name}"].split(".")[1]
        source = query_rows(lite_uri, "default", name)
        restored = query_rows(milvus_server.uri, "default", target)
        assert not set(deleted[name]) & set(restored)
        _assert_row_equal(source, restored, f"{name} -> {target}")
        done = next(c for c in report.collections if str(c.target).endswith(f".{target}"))
        assert done.target_rows == len(source)
        expected = [
            # Lite keeps no max_length for an Array of VarChar: the server gets its largest (restore/fields.py)
            (*f[:3], sorted([*f[3], ("max_length", "65535")]), *f[4:]) if f[0] == "tags" else f
            for f in _schema(lite_uri, "default", name)
        ]
        assert _schema(milvus_server.uri, "default", target) == expected
        assert _partitions(milvus_server.uri, "default", target) == _partitions(lite_uri, "default", name)
    assert _partitions(milvus_server.uri, "default", rename[f"default.{ints}"].split(".")[1]) == [
        "_default",
        "p1",
        "p2",
    ]


# --- Milvus 2.3.5 logical backup -> Milvus 2.3.5 by inserts --------------------------------------------------


@pytest.fixture(scope="module")
def server_logical(milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cross-logical")
    names = [f"{matrix.db_a}.{c}" for c in (matrix.full, matrix.varchar, matrix.pkey)]
    for qualified in names:  # a query needs the collection loaded
        ensure_loaded(matrix.uri, matrix.db_a, qualified.split(".")[1])
    with BackupClient(MilvusConnection(uri=milvus_server.uri), backup_storage=f"file://{root}") as client:
        client.create_backup("logical", collections=names, strategy="logical")
    return root


def _server_client(milvus_server: Any, root: Path) -> BackupClient:
    return BackupClient(
        milvus=MilvusConnection(uri=milvus_server.uri, management_url=milvus_server.management_url),
        milvus_storage=StorageLocation(milvus_server.storage_url),
        backup_storage=StorageLocation(f"file://{root}"),
    )


@pytest.mark.parametrize("kind", ["full", "varchar", "pkey"])
def test_a_2_3_5_logical_backup_restores_into_2_3_5_by_inserts(
    milvus_server: Any, matrix: Matrix, server_logical: Path, kind: str
) -> None:
    coll = {"full": matrix.full, "varchar": matrix.varchar, "pkey": matrix.pkey}[kind]
    target = f"{kind}_{uuid.uuid4().hex[:6]}"
    rename = {f"{matrix.db_a}.{coll}": f"default.{target}"}
    with _server_client(milvus_server, server_logical) as client:
        report = client.restore("logical", collections=f"{matrix.db_a}.{coll}", rename=rename, method="auto")
    (plan,) = report.plan.collections
    assert plan.method == "insert" and "logical backup" in plan.method_reason
    key = "title" if kind == "full" else None  # auto-ID keys are assigned anew: match by the unique title
    source = query_rows(matrix.uri, matrix.db_a, coll, key)
    restored = query_rows(matrix.uri, "default", target, key)
    _assert_row_equal(source, restored, f"{kind} -> {target}")
    (done,) = report.collections
    assert done.target_rows == len(source)
    # The partition-key rows are stored under the first partition: all of them go in by that step,
    # and each step's rows equal what the logical backup records for its partition.
    assert sum(o.imported_rows for o in done.imports) == len(source)
    assert all(o.imported_rows == o.expected_rows for o in done.imports)
    if kind == "full":
        assert len(restored) == matrix.rows[f"{matrix.db_a}.{coll}"] - len(matrix.deleted_full)
    if kind == "varchar":
        assert not set(matrix.deleted_varchar) & set(restored)
    assert _schema(matrix.uri, "default", target) == _schema(matrix.uri, matrix.db_a, coll)
    assert _partitions(matrix.uri, "default", target) == _partitions(matrix.uri, matrix.db_a, coll)


def test_import_of_a_logical_backup_is_refused_before_anything_is_created(
    milvus_server: Any, matrix: Matrix, server_logical: Path
) -> None:
    target = f"refused_{uuid.uuid4().hex[:6]}"
    c = MilvusClient(matrix.uri)
    before = sorted(c.list_collections())
    with _server_client(milvus_server, server_logical) as client, pytest.raises(RestorePlanError) as caught:
        client.restore(
            "logical",
            collections=f"{matrix.db_a}.{matrix.varchar}",
            rename={f"{matrix.db_a}.{matrix.varchar}": f"default.{target}"},
            method="import",
        )
    message = str(caught.value)
    assert "backup logical is a logical backup" in message and "method='insert'" in message
    assert sorted(c.list_collections()) == before
    assert not c.has_collection(target)
    c.close()
