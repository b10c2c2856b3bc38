"""Parquet files for Milvus's Parquet bulk import, from the reader's batches.

The column types follow what milvus-io/milvus ``internal/util/importutilv2/parquet/field_reader.go``
accepts: FloatVector as ``list<float32>`` (``ReadIntegerOrFloatArrayData``), BinaryVector, Float16Vector
and BFloat16Vector as ``list<uint8>`` (``ReadBinaryData``), Int8Vector as ``list<int8>``, JSON and the
dynamic field ``$meta`` as strings of JSON text (``ReadJSONData``), SparseFloatVector as a JSON string
``{"indices": [...], "values": [...]}`` (``ReadSparseFloatVectorData``, string form), Array as ``list``,
scalars as themselves. ``list`` rather than ``fixed_size_list``, which only newer importers read.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from milvus_backup_lib.errors import MilvusBackupError, StorageError
from milvus_backup_lib.manifest.model import DataType, FieldSchema
from milvus_backup_lib.reader._arrow import arrow
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["export_parquet"]


def _sparse_json(cell: bytes | None) -> str | None:
    if cell is None:
        return None
    pairs = [struct.unpack_from("<If", cell, i) for i in range(0, len(cell), 8)]
    return json.dumps({"indices": [i for i, _ in pairs], "values": [v for _, v in pairs]})


def _import_column(pa: Any, field: FieldSchema, column: Any) -> Any:
    dt = field.data_type
    if dt == DataType.FLOAT_VECTOR:
        return column.cast(pa.list_(pa.float32()))
    if dt == DataType.INT8_VECTOR:
        return column.cast(pa.list_(pa.int8()))
    if dt in (DataType.BINARY_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        width = column.type.byte_width
        values = pa.Array.from_buffers(
            pa.uint8(), (len(column) + column.offset) * width, [None, column.buffers()[1]]
        )
        values = values.slice(column.offset * width, len(column) * width)
        return pa.FixedSizeListArray.from_arrays(values, width).cast(pa.list_(pa.uint8()))
    if dt == DataType.SPARSE_FLOAT_VECTOR:
        return pa.array([_sparse_json(c) for c in column.to_pylist()], type=pa.string())
    return column


def export_parquet(
    location: StorageLocation,
    fields: Sequence[FieldSchema],
    segments: Iterator[tuple[str, int, Iterator[Any]]],
) -> list[str]:
    """Write each segment's batches to ``{location}/{partition}/{segment}.parquet``; return the paths."""
    pa, pq = arrow()
    written = []
    for partition, segment_id, batches in segments:
        path = location.join(partition, f"{segment_id}.parquet")
        writer = None
        handle = None
        try:
            for batch in batches:
                columns = [_import_column(pa, f, batch.column(i)) for i, f in enumerate(fields)]
                table = pa.Table.from_arrays(columns, names=[f.name for f in fields])
                if writer is None:
                    location.fs.makedirs(location.join(partition), exist_ok=True)
                    handle = location.fs.open(path, "wb")
                    writer = pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
        except MilvusBackupError:
            raise
        except OSError as exc:
            raise StorageError(
                f"cannot write {path} in {location.url}: {type(exc).__name__}: {scrub(str(exc), location)}"
            ) from exc
        finally:
            if writer is not None:
                writer.close()
            if handle is not None:
                handle.close()
        if writer is not None:
            written.append(path)
    return written
