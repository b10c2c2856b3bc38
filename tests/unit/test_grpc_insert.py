"""The InsertRequest built from the reader's Arrow batches: each type in the shape pymilvus's insert
sends it (``pymilvus/client/entity_helper.py``), stored bytes of byte vectors passed through untouched."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest

from milvus_backup_lib.errors import InsertFailedError
from milvus_backup_lib.manifest.model import CollectionSchema, DataType
from milvus_backup_lib.milvus.grpc_insert import insert_request
from milvus_backup_lib.testing.memory import field


def _sparse(pairs: dict[int, float]) -> bytes:
    return b"".join(struct.pack("<If", i, v) for i, v in sorted(pairs.items()))


def test_every_column_becomes_the_field_data_an_insert_takes() -> None:
    schema = CollectionSchema(
        fields=(
            field("pk", DataType.VARCHAR, primary=True, max_length=8),
            field("n", DataType.INT16),
            field("score", DataType.DOUBLE, nullable=True),
            field("doc", DataType.JSON),
            field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
            field("vec", DataType.FLOAT_VECTOR, dim=2),
            field("half", DataType.FLOAT16_VECTOR, dim=2),
            field("brain", DataType.BFLOAT16_VECTOR, dim=2),
            field("bits", DataType.BINARY_VECTOR, dim=8),
            field("sparse", DataType.SPARSE_FLOAT_VECTOR),
        ),
        enable_dynamic_field=True,
    )
    half = [struct.pack("<2e", 0.5, -1.5), struct.pack("<2e", 2.0, 65504.0)]
    brain = [b"\x80\x3f\x00\x40", b"\x00\xc0\x80\xbf"]
    batch = pa.record_batch(
        {
            "pk": pa.array(["a", "b"]),
            "n": pa.array([1, -2], pa.int16()),
            "score": pa.array([None, 2.5]),
            "doc": pa.array(['{"x": 1}', "[1, 2]"]),
            "tags": pa.array([[1, 2], []], pa.list_(pa.int64())),
            "vec": pa.array([[0.25, -1.0], [3.0, 4.0]], pa.list_(pa.float32(), 2)),
            "half": pa.array(half, pa.binary(4)),
            "brain": pa.array(brain, pa.binary(4)),
            "bits": pa.array([b"\x0f", b"\xf0"], pa.binary(1)),
            "sparse": pa.array([_sparse({3: 0.5, 10: 1.0}), _sparse({7: 2.0})], pa.binary()),
            "$meta": pa.array(['{"color": "red"}', None]),
        }
    ).slice(0)  # offsets kept
    request = insert_request("db", "c", None, batch, schema)
    assert (request.db_name, request.collection_name, request.partition_name, request.num_rows) == (
        "db",
        "c",
        "",
        2,
    )
    by_name = {f.field_name: f for f in request.fields_data}
    assert list(by_name["pk"].scalars.string_data.data) == ["a", "b"]
    assert list(by_name["n"].scalars.int_data.data) == [1, -2]
    assert list(by_name["score"].valid_data) == [False, True]
    assert list(by_name["score"].scalars.double_data.data) == [2.5]
    assert list(by_name["doc"].scalars.json_data.data) == [b'{"x": 1}', b"[1, 2]"]
    tags = by_name["tags"].scalars.array_data
    assert tags.element_type == DataType.INT64 and [list(c.long_data.data) for c in tags.data] == [[1, 2], []]
    assert by_name["vec"].vectors.dim == 2 and list(by_name["vec"].vectors.float_vector.data) == [
        0.25,
        -1.0,
        3.0,
        4.0,
    ]
    assert by_name["half"].vectors.float16_vector == b"".join(half)
    assert by_name["brain"].vectors.bfloat16_vector == b"".join(brain)
    assert by_name["bits"].vectors.binary_vector == b"\x0f\xf0" and by_name["bits"].vectors.dim == 8
    sparse = by_name["sparse"].vectors.sparse_float_vector
    assert list(sparse.contents) == [_sparse({3: 0.5, 10: 1.0}), _sparse({7: 2.0})] and sparse.dim == 11
    meta = by_name["$meta"]
    assert meta.is_dynamic and list(meta.scalars.json_data.data) == [b'{"color": "red"}', b"{}"]


def test_a_sliced_batch_sends_only_its_rows_bytes() -> None:
    schema = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True), field("half", DataType.FLOAT16_VECTOR, dim=1))
    )
    batch = pa.record_batch(
        {"pk": pa.array([1, 2, 3]), "half": pa.array([b"\x01\x00", b"\x02\x00", b"\x03\x00"], pa.binary(2))}
    )
    request = insert_request("default", "c", "p1", batch.slice(1, 2), schema)
    assert request.partition_name == "p1"
    (_, half) = request.fields_data
    assert half.vectors.float16_vector == b"\x02\x00\x03\x00"


def test_an_unknown_column_is_refused() -> None:
    schema = CollectionSchema(fields=(field("pk", DataType.INT64, primary=True),))
    with pytest.raises(InsertFailedError, match="column 'ghost' is not a field of default.c"):
        insert_request("default", "c", None, pa.record_batch({"ghost": pa.array([1])}), schema)
