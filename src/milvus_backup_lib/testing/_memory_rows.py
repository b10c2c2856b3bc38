"""Rows of the in-memory cluster in the shape pymilvus's ``query_iterator`` gives them (logical backups).

A query page (``pymilvus/client/entity_helper.py`` ``extract_row_data_from_fields_data_v2``): float
vectors as lists of floats, int8 vectors as lists of ints, binary, float16 and bfloat16 vectors as a
one-element list of their bytes, sparse vectors as ``{index: value}``, JSON parsed, dynamic keys under
their own names. Pages are cut by primary key order, as ``QueryIterator`` pages by ``pk > last``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Any

from milvus_backup_lib.manifest.model import DataType, FieldSchema
from milvus_backup_lib.testing._memory_state import Collection

__all__ = ["query_pages"]


def _shaped(spec: FieldSchema, value: Any) -> Any:
    dt = spec.data_type
    if value is None or not isinstance(value, bytes | bytearray):
        return value
    if dt == DataType.FLOAT_VECTOR:
        return list(struct.unpack(f"<{len(value) // 4}f", value))
    if dt == DataType.INT8_VECTOR:
        return list(struct.unpack(f"<{len(value)}b", value))
    if dt == DataType.SPARSE_FLOAT_VECTOR:
        pairs = struct.unpack(f"<{len(value) // 8 * 2}I", value)
        return {
            pairs[i]: struct.unpack("<f", struct.pack("<I", pairs[i + 1]))[0] for i in range(0, len(pairs), 2)
        }
    if dt in (DataType.BINARY_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        return [bytes(value)]
    return value


def query_pages(
    coll: Collection, rows: Sequence[dict[str, Any]], batch_rows: int
) -> Iterator[list[dict[str, Any]]]:
    """``rows`` (live rows as ``DataPlane.present`` gives them, sorted by primary key) in pages."""
    specs = {f.name: f for f in coll.schema.fields}
    for start in range(0, len(rows), batch_rows):
        page = rows[start : start + batch_rows]
        yield [{k: (_shaped(specs[k], v) if k in specs else v) for k, v in row.items()} for row in page]
