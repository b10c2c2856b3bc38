"""A logical backup of the real Milvus 2.3.5 server (``strategy="logical"``, no access to its storage)
read offline and compared row by row with the server's query: INT64 auto-id and VARCHAR keys, every
scalar kind, JSON, Array, the dynamic field, partitions, deletes after flush, several segments, float,
binary and float16 vectors; and with a physical backup of the same collections, read by the same reader
(same columns, same Arrow types, same rows)."""

from __future__ import annotations

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

from milvus_backup_lib import BackupClient, MilvusConnection, MilvusOperationError, open_backup

pytestmark = pytest.mark.integration

KINDS = ("full", "varchar", "half", "pkey", "other", "default")


def _qualified(matrix: Matrix, kind: str) -> str:
    return {
        "full": f"{matrix.db_a}.{matrix.full}",
        "varchar": f"{matrix.db_a}.{matrix.varchar}",
        "half": f"{matrix.db_a}.{matrix.half}",
        "pkey": f"{matrix.db_a}.{matrix.pkey}",
        "other": f"{matrix.db_b}.{matrix.other}",
        "default": f"default.{matrix.default_coll}",
    }[kind]


@pytest.fixture(scope="module")
def backups(milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logical-backups")
    collections = [_qualified(matrix, kind) for kind in KINDS]
    for qualified in collections:  # a query needs the collection loaded
        db, _, coll = qualified.partition(".")
        ensure_loaded(matrix.uri, db, coll)
    # No milvus_storage: the server's files are never touched.
    logical = BackupClient(MilvusConnection(uri=milvus_server.uri), backup_storage=f"file://{root}")
    report = logical.create_backup("logical", collections=collections, strategy="logical")
    assert report.files >= len(collections) and not report.gc.paused
    assert logical.verify_backup("logical", "checksum").ok
    make_client(milvus_server, root).create_backup("physical", collections=collections)
    return root


@pytest.mark.parametrize("kind", KINDS)
def test_a_logical_backup_reads_back_equal_to_the_server(backups: Path, matrix: Matrix, kind: str) -> None:
    qualified = _qualified(matrix, kind)
    db, _, coll = qualified.partition(".")
    reader = open_backup(f"file://{backups}", "logical")
    assert reader.logical
    offline = offline_rows(reader, qualified)
    server = {
        pk: {k: plain_value(v) for k, v in row.items()}
        for pk, row in fetch_rows(matrix.uri, db, coll).items()
    }
    assert sorted(offline, key=str) == sorted(server, key=str)
    for pk, row in server.items():
        assert offline[pk] == row, f"{qualified} row {pk!r}"  # vectors bit for bit, every scalar


@pytest.mark.parametrize("kind", KINDS)
def test_logical_and_physical_backups_read_alike(backups: Path, matrix: Matrix, kind: str) -> None:
    """The contract with the insert restore: the same columns, Arrow types and rows either way."""
    qualified = _qualified(matrix, kind)
    logical = open_backup(f"file://{backups}", "logical").read(qualified)
    physical = open_backup(f"file://{backups}", "physical").read(qualified)
    assert logical.schema.equals(physical.schema, check_metadata=True)
    pk = logical.schema.names[0] if kind != "varchar" else "key"
    assert sorted(logical.to_pylist(), key=lambda r: r[pk]) == sorted(
        physical.to_pylist(), key=lambda r: r[pk]
    )


def test_partitions_deletes_and_row_counts(backups: Path, matrix: Matrix) -> None:
    full = f"{matrix.db_a}.{matrix.full}"
    reader = open_backup(f"file://{backups}", "logical")
    ids = set(reader.read(full, columns=["id"]).column("id").to_pylist())
    assert ids and not ids & set(matrix.deleted_full)
    assert len(ids) == matrix.rows[full] - len(matrix.deleted_full)
    counts = partition_counts(matrix.uri, matrix.db_a, matrix.full)
    library = reader.library
    assert library is not None
    assert library.partition_rows(full) == counts
    for partition in ("_default", "p1", "p2", "p3"):
        titles = reader.read(full, partitions=[partition], columns=["title"]).column("title").to_pylist()
        assert len(titles) == counts[partition], partition
        batches = {int(t.split()[1]) // 1000 for t in titles}
        assert batches == {"_default": {0}, "p1": {1, 4}, "p2": {2}, "p3": {3}}[partition]
    info = reader.info
    assert all(not p.segment_backups for c in info.collection_backups for p in c.partition_backups)
    assert {c.qualified_name: [ix.index_name for ix in c.index_infos] for c in info.collection_backups}[full]


def test_a_collection_that_is_not_loaded_is_refused(
    milvus_server: Any, matrix: Matrix, tmp_path: Path
) -> None:
    client = BackupClient(MilvusConnection(uri=milvus_server.uri), backup_storage=f"file://{tmp_path}")
    with pytest.raises(MilvusOperationError, match="is not loaded"):
        client.create_backup("b", collections=[f"{matrix.db_a}.{matrix.empty}"], strategy="logical")
    assert not list(tmp_path.rglob("*.parquet"))
