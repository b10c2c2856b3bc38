"""Restore by inserts against real servers: a physical backup of the embedded Milvus 2.3.5 server
restored into Milvus Lite 3.2.2 (no binlogs, no bulk import) and, for a Float16 collection, back into
2.3.5 itself, whose binlog importer has no Float16 (``method="auto"`` picks insert and says why).

Milvus Lite 3.2.2 has no BinaryVector or Float16Vector fields: those collections are refused before
anything is created (the float16 case is shown against 2.3.5). The others compare the restored
collection with the source row by row, as the servers' queries return them:
primary keys, every scalar, JSON, arrays, the dynamic field, vectors bit for bit (float, binary,
float16), deletes applied; and the schema and partitions. The ``full`` collection has an auto-ID
primary key: Milvus assigns new keys to inserted rows of an auto-ID collection (it refuses given ones),
so its rows are matched by their unique title.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from dataset import Matrix, make_client, query_rows

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib.errors import RestorePlanError

pytestmark = pytest.mark.integration

pytest.importorskip("milvus_lite.adapter.grpc.server")


@pytest.fixture(scope="module")
def backup_root(milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insert-backups")
    names = [f"{matrix.db_a}.{c}" for c in (matrix.full, matrix.varchar, matrix.half, matrix.pkey)]
    make_client(milvus_server, root).create_backup("physical", collections=names)
    return root


def _fields(uri: str, db: str, coll: str) -> list[tuple[str, int, bool, bool]]:
    from pymilvus import MilvusClient

    c = MilvusClient(uri, db_name=db)
    try:
        desc = c.describe_collection(coll)
        return [
            (f["name"], int(f["type"]), bool(f.get("is_primary")), bool(f.get("is_partition_key")))
            for f in desc["fields"]
        ] + [("$dynamic", 0, bool(desc.get("enable_dynamic_field")), False)]
    finally:
        c.close()


def _partitions(uri: str, db: str, coll: str) -> list[str]:
    from pymilvus import MilvusClient

    c = MilvusClient(uri, db_name=db)
    try:
        return sorted(c.list_partitions(coll))
    finally:
        c.close()


def test_a_float16_collection_of_2_3_5_restores_into_2_3_5_by_inserts(
    milvus_server: Any, matrix: Matrix, backup_root: Path
) -> None:
    # 2.3.5 has Float16Vector fields (the matrix creates one) but its binlog importer refuses their
    # binlogs ("Import util: unsupported data type", milvus/capabilities.py): auto must insert.
    target = f"half_{uuid.uuid4().hex[:6]}"
    client = make_client(milvus_server, backup_root)
    plan = client.plan_restore(
        "physical",
        collections=f"{matrix.db_a}.{matrix.half}",
        rename={f"{matrix.db_a}.{matrix.half}": f"default.{target}"},
    )
    (coll,) = plan.collections
    assert coll.method == "insert", plan.table()
    assert "Float16Vector" in coll.method_reason and "2.3.5" in coll.method_reason
    report = client.restore(
        "physical",
        collections=f"{matrix.db_a}.{matrix.half}",
        rename={f"{matrix.db_a}.{matrix.half}": f"default.{target}"},
    )
    (done,) = report.collections
    assert done.imports and all(not o.files for o in done.imports)  # inserts, no import job
    source = query_rows(matrix.uri, matrix.db_a, matrix.half)
    restored = query_rows(matrix.uri, "default", target)
    assert len(restored) == len(source) > 0
    assert restored == source
    assert done.target_rows == len(source)
    assert _fields(matrix.uri, "default", target) == _fields(matrix.uri, matrix.db_a, matrix.half)


def test_types_milvus_lite_lacks_are_refused_before_anything_is_created(
    matrix: Matrix, backup_root: Path, lite_uri: str
) -> None:
    from pymilvus import MilvusClient

    lite = BackupClient(
        milvus=MilvusConnection(uri=lite_uri), backup_storage=StorageLocation(f"file://{backup_root}")
    )
    names = [f"{matrix.db_a}.{matrix.varchar}", f"{matrix.db_a}.{matrix.half}"]
    c = MilvusClient(lite_uri)
    before = sorted(c.list_collections())
    with lite, pytest.raises(RestorePlanError) as caught:
        lite.restore("physical", collections=names, rename={f"{matrix.db_a}.*": "default.*"})
    message = str(caught.value)
    assert "BinaryVector field 'bits': Milvus Lite (milvus_lite-3.2.2) has no BinaryVector fields" in message
    assert "Float16Vector field 'half'" in message
    assert sorted(c.list_collections()) == before
    c.close()


@pytest.mark.parametrize("kind", ["full", "pkey"])
def test_a_2_3_5_backup_restores_into_milvus_lite_by_inserts(
    matrix: Matrix, backup_root: Path, lite_uri: str, kind: str, tmp_path: Path
) -> None:
    coll = {"full": matrix.full, "pkey": matrix.pkey}[kind]
    target = f"{kind}_{uuid.uuid4().hex[:6]}"
    # Milvus Lite needs no milvus_storage: it has no binlogs to import; the restore inserts.
    lite = BackupClient(
        milvus=MilvusConnection(uri=lite_uri), backup_storage=StorageLocation(f"file://{backup_root}")
    )
    with lite:
        report = lite.restore(
            "physical",
            collections=f"{matrix.db_a}.{coll}",
            rename={f"{matrix.db_a}.{coll}": f"default.{target}"},
            method="insert",
            # Milvus Lite 3.2.2 refuses full's Trie index ("scalar index_type 'TRIE' is not
            # implemented; supported: INVERTED"): that collection is restored without its indexes.
            rebuild_indexes=kind != "full",
        )
    (plan,) = report.plan.collections
    assert plan.method == "insert"
    key = "title" if kind == "full" else None  # auto-ID keys are assigned anew
    source = query_rows(matrix.uri, matrix.db_a, coll, key)
    restored = query_rows(lite_uri, "default", target, key)
    assert len(restored) == len(source) > 0
    for k, row in source.items():
        assert restored[k] == row, f"{kind} row {k!r}"
    assert report.collections[0].target_rows == len(source)
    assert _fields(lite_uri, "default", target) == _fields(matrix.uri, matrix.db_a, coll)
    if kind == "pkey":  # Milvus Lite routes partition keys into partitions of its own naming (_pk_N)
        assert _partitions(lite_uri, "default", target) != ["_default"]
    else:
        assert _partitions(lite_uri, "default", target) == _partitions(matrix.uri, matrix.db_a, coll)
