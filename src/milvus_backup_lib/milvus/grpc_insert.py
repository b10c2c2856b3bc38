"""``Insert`` over gRPC: Arrow record batches (as :class:`~milvus_backup_lib.reader.BackupReader` yields
them) turned into ``milvus_pb2.InsertRequest`` column by column, without a row-by-row detour.

Each column becomes one ``schemapb.FieldData`` shaped as pymilvus's ``entity_helper`` builds them
(``pymilvus/client/entity_helper.py`` ``entity_to_field_data``, the version installed here, 3.0.2):

- nullable fields and fields with a default value: ``valid_data`` per row, values of the valid rows only;
- JSON and the dynamic field (``$meta``, ``is_dynamic``): the JSON text as bytes; a missing ``$meta``
  cell is ``{}``;
- Array: one ``ScalarField`` per row in ``array_data`` with the element type;
- FloatVector: ``float_vector``; BinaryVector, Float16Vector, BFloat16Vector, Int8Vector: the stored
  little-endian bytes as they are (``binary_vector``, ``float16_vector``...), so nothing is rounded;
- SparseFloatVector: ``sparse_float_vector.contents``, one row's ``uint32`` indices and ``float32``
  values interleaved (the binlog cell as it is, ``schemapb.SparseFloatArray``), ``dim`` the largest
  index + 1.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from milvus_backup_lib.errors import InsertFailedError
from milvus_backup_lib.manifest.model import CollectionSchema, DataType, FieldSchema
from milvus_backup_lib.milvus._grpc_channel import GrpcChannel

__all__ = ["GrpcInserts", "field_data", "insert_request"]

_SCALAR_SLOTS = {
    DataType.BOOL: "bool_data",
    DataType.INT8: "int_data",
    DataType.INT16: "int_data",
    DataType.INT32: "int_data",
    DataType.INT64: "long_data",
    DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
    DataType.STRING: "string_data",
    DataType.TEXT: "string_data",
    DataType.TIMESTAMPTZ: "long_data",
}
_BYTE_VECTORS = {
    DataType.BINARY_VECTOR: "binary_vector",
    DataType.FLOAT16_VECTOR: "float16_vector",
    DataType.BFLOAT16_VECTOR: "bfloat16_vector",
}


def _fixed_bytes(column: Any, width: int) -> bytes:
    """The contiguous bytes of a fixed-size binary column (``width`` bytes a row), offset honoured."""
    start = column.offset * width
    return bytes(column.buffers()[1][start : start + len(column) * width])


def _vector(field: FieldSchema, column: Any, out: Any) -> None:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    dt = field.data_type
    dim = int(field.type_param("dim") or 0)
    vectors = out.vectors
    if dt == DataType.FLOAT_VECTOR:
        vectors.dim = dim
        vectors.float_vector.data.extend(column.flatten().to_numpy(zero_copy_only=False).tolist())
    elif dt in _BYTE_VECTORS:
        vectors.dim = dim
        setattr(vectors, _BYTE_VECTORS[dt], _fixed_bytes(column, column.type.byte_width))
    elif dt == DataType.INT8_VECTOR:
        vectors.dim = dim
        vectors.int8_vector = column.flatten().cast(pa.int8()).to_numpy(zero_copy_only=False).tobytes()
    elif dt == DataType.SPARSE_FLOAT_VECTOR:
        import numpy as np

        rows = column.to_pylist()
        vectors.sparse_float_vector.contents.extend(rows)
        largest = max((int(np.frombuffer(r, dtype="<u4")[0::2].max()) for r in rows if r), default=0)
        vectors.dim = vectors.sparse_float_vector.dim = largest + 1
    else:
        raise InsertFailedError(f"field {field.name!r}: {field.type_name} vectors cannot be inserted")


def _element_slot(field: FieldSchema) -> str:
    slot = _SCALAR_SLOTS.get(field.element_type)
    if slot is None:
        raise InsertFailedError(
            f"field {field.name!r}: arrays of {DataType.NAMES.get(field.element_type, field.element_type)} "
            "cannot be inserted"
        )
    return slot


def field_data(field: FieldSchema, column: Any) -> Any:
    """One ``schemapb.FieldData`` for ``column`` (an Arrow array) of ``field``."""
    # No field_id: the proxy matches fields by name (Milvus Lite reports every field ID as 0).
    out = schema_pb2.FieldData(field_name=field.name, type=field.data_type)
    dt = field.data_type
    if field.is_dynamic:
        out.is_dynamic = True
        out.scalars.json_data.data.extend(b"{}" if v is None else v.encode() for v in column.to_pylist())
        return out
    if field.nullable or field.default_value_bytes:
        out.valid_data.extend(column.is_valid().to_pylist())
        column = column.drop_null()
    if dt in DataType.VECTORS:
        _vector(field, column, out)
    elif dt in _SCALAR_SLOTS:
        getattr(out.scalars, _SCALAR_SLOTS[dt]).data.extend(column.to_pylist())
    elif dt == DataType.JSON:
        out.scalars.json_data.data.extend(v.encode() for v in column.to_pylist())
    elif dt == DataType.ARRAY:
        slot = _element_slot(field)
        array = out.scalars.array_data
        array.element_type = field.element_type
        for row in column.to_pylist():
            cell = array.data.add()
            getattr(cell, slot).data.extend(row)
    else:
        raise InsertFailedError(f"field {field.name!r}: {field.type_name} values cannot be inserted")
    return out


def insert_request(
    db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema, dynamic_id: int = 0
) -> Any:
    """The ``InsertRequest`` of ``batch`` (columns named after ``schema``'s fields, ``$meta`` for the
    dynamic field) into ``partition`` (``None``: the server routes, as for partition-key collections)."""
    by_name = {f.name: f for f in schema.fields}
    fields = []
    for column_name, column in zip(batch.schema.names, batch.columns, strict=True):
        spec = by_name.get(column_name)
        if spec is None and column_name == "$meta":
            spec = FieldSchema(field_id=dynamic_id, name="$meta", data_type=DataType.JSON, is_dynamic=True)
        if spec is None:
            raise InsertFailedError(f"column {column_name!r} is not a field of {db}.{name}")
        fields.append(field_data(spec, column))
    return milvus_pb2.InsertRequest(
        db_name=db,
        collection_name=name,
        partition_name=partition or "",
        fields_data=fields,
        num_rows=batch.num_rows,
    )


class GrpcInserts(GrpcChannel):
    """The insert RPC of :class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus`."""

    def insert_rows(
        self, db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema
    ) -> int:
        """Insert ``batch`` (a ``pyarrow.RecordBatch``); the number of rows the server took."""
        request = insert_request(db, name, partition, batch, schema)
        resp = self._call("Insert", self._stub.Insert, request, db, idempotent=False)
        self._ok("Insert", resp.status, db=db, coll=name)
        return int(resp.insert_cnt)
