"""How each Milvus field type is presented in Arrow, from the cells its binlogs store.

The stored cells follow ``milvusDataTypeToArrowType`` and the payload writers in milvus-io/milvus
``internal/storage/payload_writer.go`` (v1) and ``internal/storage/arrow_util.go`` (v2): scalars as their
Arrow type, VarChar as string, JSON (and the dynamic field ``$meta``) as binary JSON text, Array as the
serialized ``schemapb.ScalarField`` of its elements (``AddOneArrayToPayload``), fixed-size vectors as
fixed-size binary (float: 4 x dim bytes, float16 and bfloat16: 2 x dim, binary: dim / 8, int8: dim),
sparse vectors as binary (``AddOneSparseFloatVectorToPayload``: the row's ``uint32`` indices and
``float32`` values, interleaved, little endian).

What this module returns (documented in docs/reader.md):

- JSON and ``$meta``: ``string`` (the JSON text); Array: ``list<element>``;
- FloatVector: ``fixed_size_list<float32>[dim]`` and Int8Vector ``fixed_size_list<int8>[dim]`` (the stored
  bytes reinterpreted, no copy); BinaryVector, Float16Vector, BFloat16Vector: ``fixed_size_binary`` (the
  stored bytes); SparseFloatVector: ``binary`` (the stored bytes);
- everything else as stored; nulls where the Parquet column has them (nullable fields).
"""

from __future__ import annotations

from typing import Any

from milvus_backup_lib.errors import CorruptBinlogError, MissingDependencyError
from milvus_backup_lib.manifest.model import DataType, FieldSchema

__all__ = ["arrow", "arrow_type", "constant_column", "present"]


def arrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or :class:`MissingDependencyError` naming the ``arrow`` extra."""
    try:
        import pyarrow  # type: ignore[import-untyped, unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise MissingDependencyError("pyarrow", "arrow", "reading a backup offline") from None
    return pyarrow, pyarrow.parquet


_ELEMENTS = {
    DataType.BOOL: ("bool_", "bool_data"),
    DataType.INT8: ("int8", "int_data"),
    DataType.INT16: ("int16", "int_data"),
    DataType.INT32: ("int32", "int_data"),
    DataType.INT64: ("int64", "long_data"),
    DataType.FLOAT: ("float32", "float_data"),
    DataType.DOUBLE: ("float64", "double_data"),
    DataType.VARCHAR: ("string", "string_data"),
    DataType.STRING: ("string", "string_data"),
}
_SCALARS = {
    DataType.BOOL: "bool_",
    DataType.INT8: "int8",
    DataType.INT16: "int16",
    DataType.INT32: "int32",
    DataType.INT64: "int64",
    DataType.FLOAT: "float32",
    DataType.DOUBLE: "float64",
    DataType.VARCHAR: "string",
    DataType.STRING: "string",
    DataType.TEXT: "string",
    DataType.JSON: "string",
    DataType.SPARSE_FLOAT_VECTOR: "binary",
    DataType.TIMESTAMPTZ: "int64",
    DataType.GEOMETRY: "binary",
}


def _dim(field: FieldSchema) -> int:
    return int(field.type_param("dim") or 0)


def arrow_type(field: FieldSchema) -> Any:
    """The Arrow type of ``field``'s column in what the reader returns."""
    pa, _ = arrow()
    dt = field.data_type
    if dt in _SCALARS:
        return getattr(pa, _SCALARS[dt])()
    if dt == DataType.ARRAY and field.element_type in _ELEMENTS:
        return pa.list_(getattr(pa, _ELEMENTS[field.element_type][0])())
    if dt == DataType.FLOAT_VECTOR:
        return pa.list_(pa.float32(), _dim(field))
    if dt == DataType.INT8_VECTOR:
        return pa.list_(pa.int8(), _dim(field))
    if dt == DataType.BINARY_VECTOR:
        return pa.binary(_dim(field) // 8)
    if dt in (DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        return pa.binary(_dim(field) * 2)
    return None  # returned as stored (struct array members, array of vectors)


def _reinterpret(pa: Any, array: Any, value_type: Any, dim: int) -> Any:
    """Fixed-size binary rows of ``dim`` values each as a ``fixed_size_list``, sharing the buffer."""
    values = pa.Array.from_buffers(value_type, (len(array) + array.offset) * dim, [None, array.buffers()[1]])
    values = values.slice(array.offset * dim, len(array) * dim)
    mask = array.is_null() if array.null_count else None
    return pa.FixedSizeListArray.from_arrays(values, dim, mask=mask)


def _decode_arrays(pa: Any, field: FieldSchema, array: Any, path: str) -> Any:
    from pymilvus.grpc_gen import schema_pb2

    _, slot = _ELEMENTS[field.element_type]
    rows: list[list[Any] | None] = []
    scalar = schema_pb2.ScalarField()
    for cell in array.to_pylist():
        if cell is None:
            rows.append(None)
            continue
        try:
            scalar.ParseFromString(cell)
        except Exception:
            raise CorruptBinlogError(
                path, 0, f"an Array cell of {field.name!r} is not a ScalarField"
            ) from None
        rows.append(list(getattr(scalar, slot).data))
    return pa.array(rows, type=arrow_type(field))


def present(field: FieldSchema, array: Any, path: str) -> Any:
    """A stored column of ``field`` (one chunk) as the reader returns it."""
    pa, _ = arrow()
    dt = field.data_type
    target = arrow_type(field)
    try:
        if target is None:
            return array
        if dt in (DataType.FLOAT_VECTOR, DataType.INT8_VECTOR):
            width = _dim(field) * (4 if dt == DataType.FLOAT_VECTOR else 1)
            if not pa.types.is_fixed_size_binary(array.type) or array.type.byte_width != width:
                raise CorruptBinlogError(
                    path, 0, f"{field.name!r} holds {array.type}, not {width}-byte vectors"
                )
            return _reinterpret(pa, array, target.value_type, _dim(field))
        if dt == DataType.ARRAY:
            return _decode_arrays(pa, field, array, path)
        if array.type == target:
            return array
        return array.cast(target)  # JSON binary -> string checks UTF-8; integer widths check ranges
    except CorruptBinlogError:
        raise
    except Exception as exc:  # pyarrow's ArrowInvalid / ArrowNotImplementedError
        raise CorruptBinlogError(
            path, 0, f"the {field.type_name} field {field.name!r} holds {array.type} values: {exc}"
        ) from None


def constant_column(field: FieldSchema, rows: int) -> Any:
    """The column of a field a segment has no binlogs for (added after the segment was written): its
    default value (the ``schemapb.ValueField`` in the schema) in every row, else nulls."""
    pa, _ = arrow()
    value = None
    raw = field.default_value_bytes
    if raw:
        from pymilvus.grpc_gen import schema_pb2

        message = schema_pb2.ValueField()
        message.ParseFromString(raw)
        slot = message.WhichOneof("data")
        value = getattr(message, slot) if slot else None
    target = arrow_type(field)
    return pa.array([value] * rows, type=target if target is not None else pa.null())
