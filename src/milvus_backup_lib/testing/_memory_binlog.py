"""The segment files of :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus`, written and read back.

Every layout here is taken from public source, cited where it is used (paths in milvus-io/milvus unless
another repository is named; "milvus-backup" is zilliztech/milvus-backup at f81df44f):

- v1 binlog envelope: ``internal/storage/binlog_writer.go`` (magic ``0xfffabc``, descriptor event, then
  data events), ``event_writer.go`` (event header ``timestamp, type_code, event_length, next_position``),
  ``event_data.go`` (descriptor fixed part of 52 bytes, the 8 post-header lengths, JSON extras with
  ``original_size`` as a string and ``nullable`` as a bool); milvus-backup ``internal/l0compact/envelope.go``
  reads and writes the same.
- v1 payloads: ``internal/storage/payload_writer.go`` ``NativePayloadWriter``: one Parquet column ``val``,
  zstd level 3; ``milvusDataTypeToArrowType``: vectors as fixed-size binary (float: 4 x dim, float16 and
  bfloat16: 2 x dim, binary: dim / 8, int8: dim), JSON and sparse rows as binary, arrays as the
  serialized ``schemapb.ScalarField`` (``AddOneArrayToPayload``).
- delete logs: ``internal/storage/data_codec.go`` ``DeleteCodec.Serialize`` (one string column of
  ``{"pk":..,"ts":..,"pkType":..}``, proper ``next_position``) and ``serde_events.go``
  ``DeltalogStreamWriter.writeDeltalogHeaders`` (same JSON rows, but the delete event's
  ``next_position`` is never set and stays -1, and its start/end timestamps are 1): golden bytes of it are in
  ``tests/go_client/testcases/snapshot_test.go`` ``TestSnapshotL0FixtureDecoder``. Storage v2 delete
  logs are bare Parquet with the primary key (field 0) and timestamp (field 1):
  ``internal/storage/rw.go`` ``NewDeltalogWriter`` (StorageV2: column group ``{0, 1}``) and milvus-backup
  ``internal/l0compact/parquet.go`` ``WriteParquetPKTs``.
- storage v2 insert files: bare Parquet per column group, columns tagged ``PARQUET:field_id``
  (milvus-backup ``internal/l0compact/parquet.go`` ``fieldIndexByID``, ``insertpk.go``).

pyarrow is imported where it is used, so importing :mod:`milvus_backup_lib.testing` does not need it.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from milvus_backup_lib.manifest.model import DataType, FieldSchema

__all__ = [
    "BinlogReadError",
    "arrow_modules",
    "column_group_file",
    "decode_value",
    "delete_log_codec",
    "delete_log_stream",
    "delete_parquet",
    "insert_binlog",
    "read_column_group",
    "read_delete_log",
    "read_insert_binlog",
    "vector_width",
]

MAGIC = 0xFFFABC
_HEADER = struct.Struct("<qbii")  # timestamp, type_code, event_length, next_position (17 bytes)
_DESCRIPTOR = struct.Struct("<qqqqQQi")  # collection, partition, segment, field, start_ts, end_ts, type
_DATA = struct.Struct("<QQ")  # start_ts, end_ts of a data event
# One byte per event type, DescriptorEventType .. IndexFileEventType (event_data.go newDescriptorEventData).
_POST_HEADER_LENGTHS = bytes([_DESCRIPTOR.size, 16, 16, 16, 16, 16, 16, 16])
DESCRIPTOR_EVENT, INSERT_EVENT, DELETE_EVENT = 0, 1, 2
#: The Parquet field-ID key (pyarrow maps it to the Parquet schema's field_id).
FIELD_ID_KEY = b"PARQUET:field_id"


class BinlogReadError(ValueError):
    """A file is not a segment file this module can read."""


def arrow_modules() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, imported on first use."""
    import pyarrow  # type: ignore[import-untyped]
    import pyarrow.parquet  # type: ignore[import-untyped]

    return pyarrow, pyarrow.parquet


# -- values ---------------------------------------------------------------------------------------


def vector_width(field: FieldSchema) -> int:
    """Bytes per row of a fixed-size vector field (``milvusDataTypeToArrowType``)."""
    dim = int(field.type_param("dim") or 0)
    return {
        DataType.FLOAT_VECTOR: dim * 4,
        DataType.BINARY_VECTOR: dim // 8,
        DataType.FLOAT16_VECTOR: dim * 2,
        DataType.BFLOAT16_VECTOR: dim * 2,
        DataType.INT8_VECTOR: dim,
    }[field.data_type]


def _arrow_type(field: FieldSchema) -> Any:
    pa, _ = arrow_modules()
    dt = field.data_type
    simple = {
        DataType.BOOL: pa.bool_(),
        DataType.INT8: pa.int8(),
        DataType.INT16: pa.int16(),
        DataType.INT32: pa.int32(),
        DataType.INT64: pa.int64(),
        DataType.FLOAT: pa.float32(),
        DataType.DOUBLE: pa.float64(),
        DataType.VARCHAR: pa.string(),
        DataType.STRING: pa.string(),
        DataType.TEXT: pa.string(),
        DataType.JSON: pa.binary(),
        DataType.ARRAY: pa.binary(),
        DataType.SPARSE_FLOAT_VECTOR: pa.binary(),
    }
    if dt in simple:
        return simple[dt]
    if dt in DataType.VECTORS:
        return pa.binary(vector_width(field))
    raise BinlogReadError(f"no binlog encoding for {field.type_name} field {field.name!r}")


_ARRAY_SLOTS = {
    DataType.BOOL: ("bool_data", "BoolArray"),
    DataType.INT8: ("int_data", "IntArray"),
    DataType.INT16: ("int_data", "IntArray"),
    DataType.INT32: ("int_data", "IntArray"),
    DataType.INT64: ("long_data", "LongArray"),
    DataType.FLOAT: ("float_data", "FloatArray"),
    DataType.DOUBLE: ("double_data", "DoubleArray"),
    DataType.VARCHAR: ("string_data", "StringArray"),
    DataType.STRING: ("string_data", "StringArray"),
}


def _encode_array(field: FieldSchema, value: Sequence[Any]) -> bytes:
    """An Array value as Milvus stores it: the serialized ``schemapb.ScalarField`` of its elements."""
    from pymilvus.grpc_gen import schema_pb2

    slot, message = _ARRAY_SLOTS[field.element_type]
    scalar = schema_pb2.ScalarField(**{slot: getattr(schema_pb2, message)(data=list(value))})
    return bytes(scalar.SerializeToString())


def encode_value(field: FieldSchema, value: Any) -> Any:
    """A value of the in-memory model as its Parquet cell (arrays become ScalarField bytes)."""
    if value is not None and field.data_type == DataType.ARRAY:
        return _encode_array(field, value)
    return value


def decode_value(field: FieldSchema, cell: Any) -> Any:
    """A Parquet cell back into the in-memory model (ScalarField bytes become a list)."""
    if cell is None or field.data_type != DataType.ARRAY:
        return cell
    from pymilvus.grpc_gen import schema_pb2

    scalar = schema_pb2.ScalarField()
    scalar.ParseFromString(cell)
    slot, _ = _ARRAY_SLOTS[field.element_type]
    return list(getattr(scalar, slot).data)


def _parquet(columns: Sequence[tuple[Any, Sequence[Any]]]) -> bytes:
    """A Parquet file of ``(arrow field, values)`` columns, zstd level 3 like ``NativePayloadWriter``."""
    pa, pq = arrow_modules()
    arrays = [pa.array(list(values), type=field.type) for field, values in columns]
    table = pa.Table.from_arrays(arrays, schema=pa.schema([field for field, _ in columns]))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=3)
    return sink.getvalue()


def _read_parquet(blob: bytes) -> Any:
    _, pq = arrow_modules()
    try:
        return pq.read_table(io.BytesIO(blob))
    except Exception as exc:  # pyarrow raises ArrowInvalid and OSError subclasses
        raise BinlogReadError(f"not a Parquet payload: {exc}") from exc


# -- v1 envelope ----------------------------------------------------------------------------------


def _descriptor(
    ids: tuple[int, int, int, int],
    start_ts: int,
    end_ts: int,
    payload_type: int,
    extras: Mapping[str, Any],
    ts: int,
) -> bytes:
    # Go's json.Marshal sorts map keys and writes no spaces.
    extra = json.dumps(dict(extras), sort_keys=True, separators=(",", ":")).encode()
    body = _DESCRIPTOR.pack(*ids, start_ts, end_ts, payload_type) + _POST_HEADER_LENGTHS
    body += struct.pack("<i", len(extra)) + extra
    length = _HEADER.size + len(body)
    return _HEADER.pack(ts, DESCRIPTOR_EVENT, length, 4 + length) + body


def _envelope(
    ids: tuple[int, int, int, int],
    event_type: int,
    payload_type: int,
    payload: bytes,
    *,
    ts_range: tuple[int, int],
    descriptor_range: tuple[int, int],
    extras: Mapping[str, Any],
    header_ts: int,
    set_next_position: bool = True,
) -> bytes:
    head = struct.pack("<i", MAGIC) + _descriptor(ids, *descriptor_range, payload_type, extras, header_ts)
    length = _HEADER.size + _DATA.size + len(payload)
    next_position = len(head) + length if set_next_position else -1
    return head + _HEADER.pack(header_ts, event_type, length, next_position) + _DATA.pack(*ts_range) + payload


def _events(data: bytes) -> tuple[dict[str, Any], list[tuple[int, bytes]]]:
    """The descriptor extras and the ``(type, payload)`` of each data event of a v1 file.

    Events are walked by ``event_length`` only, as Milvus's ``BinlogReader`` and milvus-backup's
    ``parseV1Envelope`` do: stream-written delete logs leave ``next_position`` at -1.
    """
    if len(data) < 4 or struct.unpack_from("<i", data, 0)[0] != MAGIC:
        raise BinlogReadError("not a v1 binlog (bad magic number)")
    pos = 4
    _, code, length, _ = _HEADER.unpack_from(data, pos)
    if code != DESCRIPTOR_EVENT:
        raise BinlogReadError("the first event is not a descriptor")
    extra_at = pos + _HEADER.size + _DESCRIPTOR.size + len(_POST_HEADER_LENGTHS)
    (extra_len,) = struct.unpack_from("<i", data, extra_at)
    extras = json.loads(data[extra_at + 4 : extra_at + 4 + extra_len] or b"{}")
    pos += length
    events = []
    while pos < len(data):
        if pos + _HEADER.size + _DATA.size > len(data):
            raise BinlogReadError(f"truncated event at byte {pos}")
        _, code, length, _ = _HEADER.unpack_from(data, pos)
        if length < _HEADER.size + _DATA.size or pos + length > len(data):
            raise BinlogReadError(f"bad event length at byte {pos}")
        events.append((code, data[pos + _HEADER.size + _DATA.size : pos + length]))
        pos += length
    return extras, events


def insert_binlog(
    field: FieldSchema,
    values: Sequence[Any],
    *,
    ids: tuple[int, int, int],
    ts_range: tuple[int, int],
    header_ts: int,
    nullable_extra: bool,
) -> bytes:
    """One field's v1 insert binlog: one insert event holding every value (``InsertCodec.Serialize``).

    ``nullable_extra`` adds the ``nullable`` descriptor extra (``NewInsertBinlogWriter`` of the Milvus
    versions with nullable fields); 2.3 writes only ``original_size``.
    """
    pa, _ = arrow_modules()
    cells = [encode_value(field, v) for v in values]
    column = pa.field("val", _arrow_type(field), nullable=field.nullable)
    size = sum(len(c) if isinstance(c, bytes | str) else 8 for c in cells if c is not None)
    extras: dict[str, Any] = {"original_size": str(size)}
    if nullable_extra:
        extras["nullable"] = field.nullable
    return _envelope(
        (*ids, field.field_id),
        INSERT_EVENT,
        field.data_type,
        _parquet([(column, cells)]),
        ts_range=ts_range,
        descriptor_range=ts_range,
        extras=extras,
        header_ts=header_ts,
    )


def read_insert_binlog(data: bytes, field: FieldSchema) -> list[Any]:
    """Every value of a v1 insert binlog, in order."""
    values: list[Any] = []
    for code, payload in _events(data)[1]:
        if code != INSERT_EVENT:
            raise BinlogReadError(f"wrong binlog type, expect:InsertEventType, actual:{code}")
        column = _read_parquet(payload).column(0).to_pylist()
        values.extend(decode_value(field, cell) for cell in column)
    return values


def _delete_rows(entries: Sequence[tuple[Any, int]], pk_type: int) -> list[str]:
    # DeleteLog{Pk, Ts, PkType} marshalled by Go in field order: pk, ts, pkType.
    return [json.dumps({"pk": pk, "ts": ts, "pkType": pk_type}, separators=(",", ":")) for pk, ts in entries]


def delete_log_codec(
    entries: Sequence[tuple[Any, int]], pk_type: int, *, ids: tuple[int, int, int], header_ts: int
) -> bytes:
    """A v1 delete log as ``DeleteCodec.Serialize`` writes it (Milvus 2.3 and 2.4 flushes)."""
    pa, _ = arrow_modules()
    rows = _delete_rows(entries, pk_type)
    tss = [ts for _, ts in entries]
    ts_range = (min(tss), max(tss))
    return _envelope(
        (*ids, -1),
        DELETE_EVENT,
        DataType.STRING,
        _parquet([(pa.field("val", pa.string(), nullable=False), rows)]),
        ts_range=ts_range,
        descriptor_range=ts_range,
        extras={"original_size": str(sum(len(r) for r in rows))},
        header_ts=header_ts,
    )


def delete_log_stream(
    entries: Sequence[tuple[Any, int]], pk_type: int, *, ids: tuple[int, int, int], header_ts: int
) -> bytes:
    """A v1 delete log as the stream writer writes it (``storage.CreateDeltalogWriter``, json format,
    used by the ``internal/flushcommon`` flush path): descriptor timestamps 0, delete event timestamps 1,
    ``next_position`` left at -1, one string column named ``0``."""
    pa, _ = arrow_modules()
    rows = _delete_rows(entries, pk_type)
    return _envelope(
        (*ids, -1),
        DELETE_EVENT,
        DataType.STRING,
        _parquet([(pa.field("0", pa.string(), nullable=False), rows)]),
        ts_range=(1, 1),
        descriptor_range=(0, 0),
        extras={"original_size": str(sum(len(r) for r in rows))},
        header_ts=header_ts,
        set_next_position=False,
    )


def _pk_arrow(pa: Any, pk_type: int) -> Any:
    return pa.int64() if pk_type == DataType.INT64 else pa.string()


def delete_parquet(entries: Sequence[tuple[Any, int]], pk_type: int) -> bytes:
    """A storage v2 delete log: bare Parquet, primary key (field 0) and timestamp (field 1)."""
    pa, _ = arrow_modules()
    pk = pa.field("0", _pk_arrow(pa, pk_type), nullable=False, metadata={FIELD_ID_KEY: b"0"})
    ts = pa.field("1", pa.int64(), nullable=False, metadata={FIELD_ID_KEY: b"1"})
    return _parquet([(pk, [p for p, _ in entries]), (ts, [t for _, t in entries])])


def read_delete_log(data: bytes) -> list[tuple[Any, int]]:
    """``(pk, ts)`` entries of a delete log of any generation: v1 JSON rows, v1 ``MULTI_FIELD`` (pk and
    ts columns) or bare Parquet. Like ``importutilv2/binlog/reader.go`` ``readDelete``, a file that is
    not v1 is read as storage v2."""
    if data[:4] == b"PAR1":
        table = _read_parquet(data)
        return list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    extras, events = _events(data)
    entries: list[tuple[Any, int]] = []
    for code, payload in events:
        if code != DELETE_EVENT:
            raise BinlogReadError(f"wrong binlog type, expect:DeleteEventType, actual:{code}")
        table = _read_parquet(payload)
        if extras.get("version") == "MULTI_FIELD":
            entries.extend(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
            continue
        for row in table.column(0).to_pylist():
            record = json.loads(row)
            entries.append((record["pk"], int(record["ts"])))
    return entries


# -- storage v2 -----------------------------------------------------------------------------------


def column_group_file(fields: Sequence[FieldSchema], columns: Mapping[int, Sequence[Any]]) -> bytes:
    """One column group of a storage v2 segment: a Parquet file, a column per field named by its ID."""
    pa, _ = arrow_modules()
    specs = []
    for field in fields:
        arrow_field = pa.field(
            str(field.field_id),
            _arrow_type(field),
            nullable=field.nullable,
            metadata={FIELD_ID_KEY: str(field.field_id).encode()},
        )
        specs.append((arrow_field, [encode_value(field, v) for v in columns[field.field_id]]))
    return _parquet(specs)


def read_column_group(data: bytes, fields: Mapping[int, FieldSchema]) -> dict[int, list[Any]]:
    """The columns of a storage v2 column-group file, by field ID (columns of unknown fields skipped)."""
    if data[:4] != b"PAR1":
        raise BinlogReadError("not a storage v2 Parquet file")
    table = _read_parquet(data)
    out: dict[int, list[Any]] = {}
    for index, arrow_field in enumerate(table.schema):
        # By PARQUET:field_id, else a column named by its field ID (milvus-backup ``fieldIndexByID``).
        raw = (arrow_field.metadata or {}).get(FIELD_ID_KEY, str(arrow_field.name).encode())
        field_id = int(raw) if raw.isdigit() else None
        if field_id is not None and field_id in fields:
            cells = table.column(index).to_pylist()
            out[field_id] = [decode_value(fields[field_id], c) for c in cells]
    return out
