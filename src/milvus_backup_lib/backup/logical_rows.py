"""Rows as pymilvus's ``query_iterator`` gives them -> Arrow record batches typed as the offline reader
returns a collection (:mod:`milvus_backup_lib.reader._arrow`).

What a query page holds (pymilvus ``client/entity_helper.py`` ``extract_row_data_from_fields_data_v2``):
scalars as Python values (a Float may be a numpy ``float32``), VarChar as ``str``, JSON parsed, Array
as a list, float vectors as a list of floats, binary, float16 and bfloat16 vectors as their bytes (a
one-element list of bytes, or a numpy array in some pymilvus versions), int8 vectors as a list or numpy
array, sparse vectors as ``{index: value}``, the dynamic field's keys under their own names. Each is
turned into the stored bytes or values the reader gives: vectors bit for bit, JSON as compact text,
the dynamic keys as one JSON object in ``$meta``. A field the query does not return (a function output
such as a BM25 sparse vector) is stored as nulls.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.manifest.model import DataType, FieldSchema
from milvus_backup_lib.reader._arrow import arrow, arrow_type

__all__ = ["PAGE_BUDGET", "RowConverter", "arrow_schema", "page_rows_for"]

#: Bytes of Python objects one query page may take (pymilvus's row dicts: a float is 24 bytes and a list
#: slot 8 more, so a 768-d float vector costs about 24 KiB in a page, 8 times its stored size).
PAGE_BUDGET = 32 * 2**20

_BYTE_VECTORS = {
    DataType.BINARY_VECTOR: "uint8",
    DataType.FLOAT16_VECTOR: "float16",
    DataType.BFLOAT16_VECTOR: "bfloat16",
}


def arrow_schema(fields: Sequence[FieldSchema]) -> Any:
    """The ``pyarrow.Schema`` of ``fields`` as :meth:`BackupReader.schema` gives it."""
    pa, _ = arrow()
    out = []
    for f in fields:
        metadata = {b"milvus.field_id": str(f.field_id).encode(), b"milvus.type": f.type_name.encode()}
        out.append(pa.field(f.name, arrow_type(f) or pa.binary(), nullable=True, metadata=metadata))
    return pa.schema(out)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_plain)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays inside JSON values as Python ones."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _vector_bytes(field: FieldSchema, value: Any) -> bytes | None:
    """A binary, float16 or bfloat16 vector of a query page as its stored bytes."""
    if value is None:
        return None
    if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], bytes | bytearray):
        value = value[0]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and (field.data_type == DataType.BINARY_VECTOR or dtype.itemsize == 2):
        return bytes(value.tobytes())
    import numpy as np

    name = _BYTE_VECTORS[field.data_type]
    if name == "bfloat16":  # the upper half of each float32 (Milvus's and numpy-less pymilvus's rule)
        floats = np.asarray(value, dtype=np.float32)
        return bytes((floats.view(np.uint32) >> 16).astype("<u2").tobytes())
    return bytes(np.asarray(value, dtype=name).tobytes())


def _sparse_bytes(value: Any) -> bytes | None:
    """``{index: value}`` as Milvus stores a sparse row: ``uint32`` index and ``float32`` value pairs,
    little endian, by index (``AddOneSparseFloatVectorToPayload``)."""
    if value is None or isinstance(value, bytes):
        return value
    items = sorted((int(k), float(v)) for k, v in dict(value).items())
    return b"".join(struct.pack("<If", k, v) for k, v in items)


def _row_cost(field: FieldSchema) -> int:
    """About how many bytes of Python objects one value of ``field`` takes in a query page."""
    dt = field.data_type
    dim = int(field.type_param("dim") or 0)
    if dt in (DataType.FLOAT_VECTOR, DataType.INT8_VECTOR):
        return 56 + 32 * dim  # a list of Python numbers
    if dt in _BYTE_VECTORS:
        return 120 + 2 * dim  # a one-element list of bytes
    if dt in (DataType.VARCHAR, DataType.STRING, DataType.TEXT):
        return 64 + int(field.type_param("max_length") or 256)
    if dt in (DataType.JSON, DataType.ARRAY, DataType.SPARSE_FLOAT_VECTOR, DataType.GEOMETRY):
        return 1024  # unbounded; a typical value
    return 48


def page_rows_for(fields: Sequence[FieldSchema], ceiling: int, budget: int = PAGE_BUDGET) -> int:
    """Rows of a query page of ``fields`` within ``budget`` bytes: at most ``ceiling``, at least 16."""
    per_row = 232 + sum(_row_cost(f) for f in fields)  # the row's dict itself, and its keys
    return max(16, min(ceiling, budget // per_row))


class RowConverter:
    """Turns query pages of one collection into record batches with :attr:`schema`."""

    def __init__(self, fields: Sequence[FieldSchema]) -> None:
        self.fields = list(fields)
        self.schema = arrow_schema(self.fields)
        self._named = {f.name for f in self.fields if not f.is_dynamic}
        #: Columns worth dictionary-encoding: not the vectors (random floats never repeat, and trying
        #: costs more than the zstd compression of the whole file).
        self.dictionary_columns = [f.name for f in self.fields if f.data_type not in DataType.VECTORS]

    def batch(self, rows: Sequence[dict[str, Any]]) -> Any:
        """``rows`` as one ``pyarrow.RecordBatch``; :class:`MilvusOperationError` for a value that does
        not fit its field (the server answered something this version does not know)."""
        pa, _ = arrow()
        columns = []
        for spec, target in zip(self.fields, self.schema, strict=True):
            try:
                columns.append(self._column(pa, spec, target.type, rows))
            except MilvusOperationError:
                raise
            except Exception as exc:
                raise MilvusOperationError(
                    "Query", f"a {spec.type_name} value of field {spec.name!r} cannot be stored: {exc}"
                ) from None
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def _column(self, pa: Any, spec: FieldSchema, target: Any, rows: Sequence[dict[str, Any]]) -> Any:
        dt = spec.data_type
        if spec.is_dynamic:
            named = self._named
            return pa.array(
                [_json_text({k: v for k, v in row.items() if k not in named}) for row in rows], target
            )
        values = [row.get(spec.name) for row in rows]
        if dt == DataType.JSON:
            return pa.array([None if v is None else _json_text(v) for v in values], target)
        if (
            dt in (DataType.FLOAT_VECTOR, DataType.INT8_VECTOR)
            and values
            and all(v is not None for v in values)
        ):
            import numpy as np

            flat = np.asarray(values, dtype=np.float32 if dt == DataType.FLOAT_VECTOR else np.int8)
            dim = target.list_size
            if flat.ndim != 2 or flat.shape[1] != dim:
                raise MilvusOperationError("Query", f"{spec.name!r} answered vectors of shape {flat.shape}")
            return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim)
        if dt in _BYTE_VECTORS:
            return pa.array([_vector_bytes(spec, v) for v in values], target)
        if dt == DataType.SPARSE_FLOAT_VECTOR:
            return pa.array([_sparse_bytes(v) for v in values], target)
        if dt == DataType.GEOMETRY:
            return pa.array([v.encode() if isinstance(v, str) else v for v in values], target)
        if dt == DataType.ARRAY:
            return pa.array([None if v is None else list(v) for v in values], target)
        return pa.array(values, target)
