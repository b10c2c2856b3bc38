"""A logical backup of Milvus Lite (``milvus-lite`` 3.2.2, what ``pymilvus[milvus-lite]`` installs): no
storage to reach, every ID reported as 0. Backed up with ``strategy="logical"`` by URI alone, read back
offline and compared row by row with what Lite's own query returns: INT64 and VARCHAR keys, JSON, ARRAY,
the dynamic field, partitions, deleted rows, float and sparse vectors (Lite supports no binary or
float16 vectors: "Phase 10.2 supports ... FLOAT_VECTOR, SPARSE_FLOAT_VECTOR")."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from dataset import offline_rows, plain_value
from pymilvus import DataType, MilvusClient

from milvus_backup_lib import BackupClient, open_backup

pytestmark = pytest.mark.integration

pytest.importorskip("milvus_lite.adapter.grpc.server")


def _populate(uri: str) -> dict[str, list[Any]]:
    """``ints`` (INT64 key, JSON, ARRAY, dynamic keys, float and sparse vectors, partitions p1 and p2)
    and ``words`` (VARCHAR key); some rows of each deleted. The deleted keys, by collection."""
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
        s.add_field("nums", DataType.ARRAY, element_type=DataType.INT32, max_capacity=4)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        ip = c.prepare_index_params()
        ip.add_index("vec", index_type="FLAT", metric_type="L2")
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        c.create_collection("ints", schema=s, index_params=ip)
        for p in ("p1", "p2"):
            c.create_partition("ints", p)
        for batch, part in enumerate(("_default", "p1", "p2")):
            rows = []
            for i in range(150):
                k = batch * 1000 + i
                row: dict[str, Any] = {
                    "id": k,
                    "title": f"title {k} <&> é",
                    "score": k / 7.0,
                    "ratio": struct.unpack("<f", struct.pack("<f", k / 3.0))[0],
                    "flag": k % 3 == 0,
                    "meta": {"k": k, "nested": {"even": k % 2 == 0}, "list": [k, "x"]},
                    "tags": [f"t{k % 3}", "all"][: k % 3],
                    "nums": [k, -k],
                    "vec": [struct.unpack("<f", struct.pack("<f", (k * 7 + j) / 101))[0] for j in range(8)],
                    "sparse": {k % 50: 0.5, 100 + k % 7: 1.25},
                }
                if k % 2:
                    row["extra"] = f"dyn{k}"
                if k % 5 == 0:
                    row["weight"] = k * 0.25
                rows.append(row)
            c.insert("ints", rows, partition_name=part)
        deleted_ints = [0, 7, 1001, 2149]
        c.delete("ints", ids=deleted_ints)

        s = MilvusClient.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
        s.add_field("n", DataType.INT64)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        ip = c.prepare_index_params()
        ip.add_index("vec", index_type="FLAT", metric_type="COSINE")
        c.create_collection("words", schema=s, index_params=ip)
        c.insert("words", [{"key": f"w{i}", "n": i, "vec": [1.0, float(i), 0.5, -1.0]} for i in range(200)])
        deleted_words = [f"w{i}" for i in range(0, 200, 9)]
        c.delete("words", ids=deleted_words)
        return {"ints": deleted_ints, "words": deleted_words}
    finally:
        c.close()


def _query_rows(uri: str, coll: str, partition: str | None = None) -> dict[Any, dict[str, Any]]:
    c = MilvusClient(uri)
    try:
        pk = next(f["name"] for f in c.describe_collection(coll)["fields"] if f.get("is_primary"))
        it = c.query_iterator(
            coll, batch_size=100, output_fields=["*"], partition_names=[partition] if partition else None
        )
        rows: dict[Any, dict[str, Any]] = {}
        while page := it.next():
            for row in page:
                rows[row[pk]] = {k: plain_value(v) for k, v in row.items()}
        it.close()
        return rows
    finally:
        c.close()


@pytest.fixture(scope="module")
def backed_up(lite_uri: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Any]]]:
    deleted = _populate(lite_uri)
    root = tmp_path_factory.mktemp("lite-logical")
    # By URI alone, as a Lite or managed-cluster user has it: no milvus_storage.
    with BackupClient(uri=lite_uri, backup_storage=f"file://{root}") as client:
        report = client.create_backup("lite", ["ints", "words"], strategy="logical")
        assert report.strategy.value == "logical"
        (summary,) = client.list_backups()
        assert summary.logical
        assert client.verify_backup("lite", "checksum").ok
    return root, deleted


def test_a_logical_backup_of_milvus_lite_reads_back_equal_to_its_rows(
    lite_uri: str, backed_up: tuple[Path, dict[str, list[Any]]]
) -> None:
    root, deleted = backed_up
    reader = open_backup(f"file://{root}", "lite")
    assert sorted(reader.collections) == ["default.ints", "default.words"]
    for coll in ("ints", "words"):
        source = _query_rows(lite_uri, coll)
        offline = offline_rows(reader, f"default.{coll}")
        assert not set(deleted[coll]) & set(offline)
        assert sorted(offline, key=str) == sorted(source, key=str)
        for pk, row in source.items():
            assert offline[pk] == row, f"{coll} row {pk!r}"  # every scalar, vectors bit for bit, dynamic keys
    ints = reader.read("default.ints")
    assert ints.schema.names[-1] == "$meta" and ints.num_rows == 450 - len(deleted["ints"])


def test_partitions_are_kept_with_their_rows(
    lite_uri: str, backed_up: tuple[Path, dict[str, list[Any]]]
) -> None:
    root, _ = backed_up
    reader = open_backup(f"file://{root}", "lite")
    coll = reader.info.collection_backups[0]
    assert [p.partition_name for p in coll.partition_backups] == ["_default", "p1", "p2"]
    assert {p.partition_id for p in coll.partition_backups} == {0}  # Lite reports every ID as 0
    library = reader.library
    assert library is not None
    counts = library.partition_rows("default.ints")
    for partition in ("_default", "p1", "p2"):
        offline = offline_rows(reader, "default.ints", partition)
        assert offline == _query_rows(lite_uri, "ints", partition), partition
        assert counts[partition] == len(offline)
    assert len(set(library.files)) == len(library.files) == 4  # unique keys although every ID is 0
