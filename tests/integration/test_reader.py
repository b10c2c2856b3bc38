"""A backup of the real Milvus 2.3.5 server read offline (no server involved in the reading), compared
row by row with what the server's query returns: INT64 auto-id and VARCHAR keys, every scalar kind, JSON,
Array, the dynamic field, partitions, deletes after flush (delta logs), several segments, float, binary
and float16 vectors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dataset import Matrix, ensure_loaded, fetch_rows, make_client, partition_counts

from milvus_backup_lib import BackupReader, open_backup

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reader(milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> BackupReader:
    root = tmp_path_factory.mktemp("reader-backups")
    make_client(milvus_server, root).create_backup("offline", collections=matrix.qualified())
    # Opened from the directory alone: nothing of the server is used from here on.
    return open_backup(f"file://{root}", "offline")


def _plain(value: Any) -> Any:
    """A query result value in the reader's shape: pymilvus gives a binary or float16 vector as a
    one-element list of bytes, numpy scalars and protobuf repeated fields as themselves."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], bytes):
        return value[0]
    if isinstance(value, bytes):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list | tuple) or type(value).__name__ == "RepeatedScalarContainer":
        return [_plain(v) for v in value]
    return value


def _offline_rows(reader: BackupReader, qualified: str) -> dict[Any, dict[str, Any]]:
    schema = reader.collections[qualified]
    pk = schema.primary_field.name
    json_fields = {f.name for f in schema.fields if f.type_name == "JSON"}
    out: dict[Any, dict[str, Any]] = {}
    for row in reader.read(qualified).to_pylist():
        shaped: dict[str, Any] = {}
        for name, value in row.items():
            if name == "$meta":
                shaped.update(json.loads(value) if value else {})
            elif name in json_fields and value is not None:
                shaped[name] = json.loads(value)
            else:
                shaped[name] = value
        assert shaped[pk] not in out, f"{qualified}: primary key {shaped[pk]!r} read twice"
        out[shaped[pk]] = shaped
    return out


def _server_rows(matrix: Matrix, qualified: str) -> dict[Any, dict[str, Any]]:
    db, _, coll = qualified.partition(".")
    return {
        pk: {k: _plain(v) for k, v in row.items()} for pk, row in fetch_rows(matrix.uri, db, coll).items()
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
    offline = _offline_rows(reader, qualified)
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
