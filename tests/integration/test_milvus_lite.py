"""The metadata path against Milvus Lite 3.2.2: a schema of today's Milvus round trips through meta_only.

Milvus Lite (``milvus-lite`` 3.2.2, what ``pymilvus[milvus-lite]`` installs) is a server without binlogs
that speaks the current MilvusService API over gRPC: BM25 functions, nullable fields, default values,
analyzer params, sparse vectors, the dynamic field and partitions, none of which Milvus 2.3.5 has. It
reports every field, partition and collection ID as 0 and answers ShowPartitions without IDs. The
test starts its gRPC server in this process (``milvus_lite.adapter.grpc.server.start_server_in_thread``,
what ``MilvusClient("./x.db")`` does underneath), backs a collection up with ``meta_only``, restores it
under another name with ``meta_only`` and compares the recreated schema field for field, its indexes
(BM25 sparse inverted index, HNSW) and load state, as Milvus Lite itself describes both. (Milvus Lite's
DescribeIndex reports no build params such as ``M``, so only index type and metric are compared.)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from pymilvus import DataType, Function, FunctionType, MilvusClient

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

pytest.importorskip("milvus_lite.adapter.grpc.server")

ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}


def _create_source(uri: str, name: str) -> None:
    c = MilvusClient(uri)
    try:
        s = MilvusClient.create_schema(
            auto_id=False, enable_dynamic_field=True, description="lite round trip"
        )
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=256, enable_analyzer=True, analyzer_params=ANALYZER)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        s.add_field("score", DataType.DOUBLE, nullable=True)
        s.add_field("count", DataType.INT32, default_value=7)
        s.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True, default_value="none")
        s.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        ip = c.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        ip.add_index("vec", index_type="HNSW", metric_type="COSINE", params={"M": 8, "efConstruction": 64})
        c.create_collection(name, schema=s, index_params=ip)  # indexed, hence loaded
        c.create_partition(name, "p1")
        c.create_partition(name, "p2")
    finally:
        c.close()


def _describe(uri: str, name: str) -> dict[str, Any]:
    c = MilvusClient(uri)
    try:
        indexes = {}
        for index in sorted(c.list_indexes(name)):
            described = c.describe_index(name, index)
            indexes[index] = {k: described[k] for k in ("field_name", "index_type", "metric_type")}
        return dict(c.describe_collection(name)) | {
            "partitions": sorted(c.list_partitions(name)),
            "indexes": indexes,
            "load_state": str(c.get_load_state(name)["state"]),
        }
    finally:
        c.close()


def _field_view(field: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in field.items() if k != "field_id"}


def test_a_bm25_nullable_default_schema_round_trips_meta_only(lite_uri: str, tmp_path: Path) -> None:
    _create_source(lite_uri, "lite_src")
    (tmp_path / "milvus").mkdir()
    (tmp_path / "backups").mkdir()
    client = BackupClient(
        milvus=MilvusConnection(uri=lite_uri),
        # Milvus Lite keeps no binlogs: its "storage" is never read by a meta_only backup or restore.
        milvus_storage=StorageLocation(f"file://{tmp_path / 'milvus'}"),
        backup_storage=StorageLocation(f"file://{tmp_path / 'backups'}"),
    )
    with client:
        report = client.create_backup("lite_meta", ["lite_src"], strategy="meta_only")
        assert report.files == 0
        info = client.get_backup("lite_meta")
        assert info.milvus_version == "milvus_lite-3.2.2"
        schema = info.collection_backups[0].schema
        assert [f.name for f in schema.fields] == ["id", "text", "sparse", "vec", "score", "count", "tag"]
        assert [
            (fn.name, fn.type, fn.input_field_names, fn.output_field_names) for fn in schema.functions
        ] == [("bm25", 1, ("text",), ("sparse",))]
        assert [p.partition_name for p in info.collection_backups[0].partition_backups] == [
            "_default",
            "p1",
            "p2",
        ]

        client.restore("lite_meta", rename={"lite_src": "lite_dst"}, meta_only=True)

    source, restored = _describe(lite_uri, "lite_src"), _describe(lite_uri, "lite_dst")
    assert restored["collection_name"] == "lite_dst"
    assert source["indexes"] == {
        "sparse": {"field_name": "sparse", "index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25"},
        "vec": {"field_name": "vec", "index_type": "HNSW", "metric_type": "COSINE"},
    }
    for key in (
        "auto_id",
        "description",
        "enable_dynamic_field",
        "num_shards",
        "consistency_level",
        "partitions",
        "indexes",
        "load_state",
    ):
        assert restored[key] == source[key], key
    assert [_field_view(f) for f in restored["fields"]] == [_field_view(f) for f in source["fields"]]
    assert restored["functions"] == source["functions"]
    by_name = {f["name"]: f for f in restored["fields"]}
    # What the source was created with, read back from the recreated collection.
    assert json.loads(by_name["text"]["params"]["analyzer_params"]) == ANALYZER
    assert by_name["text"]["params"]["enable_analyzer"] == "true"
    assert by_name["sparse"].get("is_function_output") is True
    assert by_name["score"].get("nullable") is True and "default_value" not in by_name["score"]
    # pymilvus hands default values over as schema_pb2.ValueField messages.
    assert by_name["count"]["default_value"].int_data == 7
    assert by_name["tag"]["default_value"].string_data == "none" and by_name["tag"]["nullable"] is True
    assert restored["functions"][0]["type"] == 1  # BM25
