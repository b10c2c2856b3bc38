"""Decoding the segment files of a backup into Arrow, one Parquet row group at a time.

Every rule is taken from Milvus's public source (paths in milvus-io/milvus; ``milvus-backup`` is
zilliztech/milvus-backup):

- v1 envelope (storage versions 0 and 1): ``internal/storage/binlog_reader.go`` (``NewBinlogReader``:
  the int32 magic ``0xfffabc``, then a descriptor event, then data events), ``event_header.go``
  (``baseEventHeader``: ``Timestamp uint64, TypeCode int8, EventLength int32, NextPosition int32``, 17
  bytes), ``event_data.go`` (``DescriptorEventDataFixPart``: collection, partition, segment, field IDs,
  start and end timestamps, ``PayloadDataType int32``, 52 bytes; then one post-header length per event
  type, ``ExtraLength int32`` and the JSON extras; ``insertEventData``/``deleteEventData``: ``StartTimestamp,
  EndTimestamp``, 16 bytes) and ``event_reader.go`` (the payload is the rest of the event). Events are
  walked by ``EventLength``: the stream writer of 2.5+ (``serde_events.go``) leaves ``NextPosition`` at -1.
- v1 payloads: ``payload_reader.go`` reads column 0 of the event's Parquet file.
- delete logs: ``data_codec.go`` ``DeleteCodec.Deserialize``: each string is a JSON ``DeleteLog``
  ``{"pk", "ts", "pkType"}`` or, from versions with only int64 keys, ``"pk,ts"``; the ``MULTI_FIELD``
  version extra (``serde_events.go`` ``newDeltalogMultiFieldReader``) holds pk and ts columns; storage v2
  delete logs are bare Parquet, pk then ts (``rw.go`` ``NewDeltalogWriter``, milvus-backup
  ``internal/l0compact/parquet.go``). ``internal/util/importutilv2/binlog/reader.go`` ``readDelete``
  reads a file that is not v1 as storage v2, as :func:`read_deletes` does.
- storage v2 insert files: bare Parquet per column group, each column tagged ``PARQUET:field_id``
  (``internal/storagev2/packed``; milvus-backup ``internal/l0compact/parquet.go`` ``fieldIndexByID``, which
  falls back to a column named by its field ID).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from typing import Any

from milvus_backup_lib.errors import CorruptBinlogError, StorageError
from milvus_backup_lib.reader._arrow import arrow
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["DeleteMap", "read_deletes", "v1_arrays", "v2_batches"]

MAGIC = 0xFFFABC
_HEADER = struct.Struct("<QbiI")  # timestamp, type_code, event_length, next_position (not used)
_FIX = struct.Struct("<qqqqQQi")  # descriptor fixed part (52 bytes)
_DATA_FIX = 16  # start_ts, end_ts of an insert or delete event
_DESCRIPTOR_EVENT, _INSERT_EVENT, _DELETE_EVENT = 0, 1, 2
_FIELD_ID_KEY = b"PARQUET:field_id"
#: Bytes read at once while walking the headers of a v1 file (the descriptor is far smaller).
_HEAD_READ = 64 * 1024

#: Primary key -> the latest delete timestamp of that key.
DeleteMap = dict[Any, int]


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``[start, start + length)`` of an open file: one event's Parquet
    payload, handed to pyarrow without reading it into memory."""

    def __init__(self, handle: Any, start: int, length: int) -> None:
        super().__init__()
        self._handle, self._start, self._length, self._pos = handle, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(base + offset, 0), self._length)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        # pyarrow's PythonFile calls read() and wraps the bytes it gets without copying them; the
        # inherited read() would copy each (tens of MiB for a vector payload) through readinto.
        wanted = self._length - self._pos if size is None or size < 0 else size
        wanted = min(wanted, self._length - self._pos)
        if wanted <= 0:
            return b""
        self._handle.seek(self._start + self._pos)
        data: bytes = self._handle.read(wanted)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._length - self._pos)
        if wanted <= 0:
            return 0
        self._handle.seek(self._start + self._pos)
        data = self._handle.read(wanted)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _open(location: StorageLocation, path: str) -> Any:
    try:
        return location.fs.open(path, "rb")
    except FileNotFoundError:
        raise CorruptBinlogError(path, 0, "the file is missing") from None
    except Exception as exc:
        raise StorageError(
            f"cannot read {path} in {location.url}: {type(exc).__name__}: {scrub(str(exc), location)}"
        ) from exc


def _parquet(source: Any, path: str, offset: int) -> Any:
    _, pq = arrow()
    try:
        return pq.ParquetFile(source)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError subclasses
        raise CorruptBinlogError(path, offset, f"the payload is not a Parquet file ({exc})") from None


def _batches(parquet: Any, path: str, offset: int, columns: list[int] | None = None) -> Iterator[Any]:
    try:
        names = parquet.schema_arrow.names
        wanted = None if columns is None else [names[i] for i in columns]
        for group in range(parquet.num_row_groups):
            yield parquet.read_row_group(group, columns=wanted)
    except CorruptBinlogError:
        raise
    except Exception as exc:
        raise CorruptBinlogError(path, offset, f"a Parquet row group cannot be decoded ({exc})") from None


def _events(handle: Any, path: str, size: int) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """``(type_code, payload_start, payload_length, extras)`` of each data event of a v1 file."""
    head = handle.read(min(size, _HEAD_READ))
    if len(head) < 4 or struct.unpack_from("<I", head, 0)[0] != MAGIC:
        raise CorruptBinlogError(
            path, 0, f"not a Milvus binlog: the magic number is {head[:4].hex() or 'missing'}"
        )
    pos = 4
    if len(head) < pos + _HEADER.size + _FIX.size + 12:
        raise CorruptBinlogError(path, pos, "truncated descriptor event")
    _, code, length, _ = _HEADER.unpack_from(head, pos)
    if code != _DESCRIPTOR_EVENT:
        raise CorruptBinlogError(path, pos, f"the first event has type {code}, not a descriptor (0)")
    # After the fixed part: one post-header length per event type, then the int32 extras length.
    lengths_at = pos + _HEADER.size + _FIX.size
    extra_at = lengths_at + 8
    (extra_len,) = struct.unpack_from("<i", head, extra_at)
    end = pos + length
    if length < extra_at + 4 - pos or extra_len < 0 or extra_at + 4 + extra_len > end or end > len(head):
        raise CorruptBinlogError(path, pos, f"bad descriptor event (length {length}, extras {extra_len})")
    try:
        extras = json.loads(head[extra_at + 4 : extra_at + 4 + extra_len] or b"{}")
    except ValueError:
        raise CorruptBinlogError(path, extra_at + 4, "the descriptor extras are not JSON") from None
    pos = end
    while pos < size:
        handle.seek(pos)
        header = handle.read(_HEADER.size)
        if len(header) < _HEADER.size or pos + _HEADER.size + _DATA_FIX > size:
            raise CorruptBinlogError(path, pos, "truncated event header")
        _, code, length, _ = _HEADER.unpack_from(header, 0)
        if length < _HEADER.size + _DATA_FIX or pos + length > size:
            raise CorruptBinlogError(
                path, pos, f"event length {length} runs past the end of the file ({size} bytes)"
            )
        if code not in (_INSERT_EVENT, _DELETE_EVENT):
            raise CorruptBinlogError(path, pos, f"unknown event type {code}")
        start = pos + _HEADER.size + _DATA_FIX
        yield code, start, pos + length - start, extras
        pos += length


def _size(location: StorageLocation, path: str) -> int:
    try:
        return int(location.fs.size(path))
    except FileNotFoundError:
        raise CorruptBinlogError(path, 0, "the file is missing") from None
    except Exception as exc:
        raise StorageError(
            f"cannot read {path} in {location.url}: {type(exc).__name__}: {scrub(str(exc), location)}"
        ) from exc


def v1_arrays(location: StorageLocation, path: str) -> Iterator[Any]:
    """The values of a v1 insert binlog, as Arrow arrays of column 0 of each payload's row groups."""
    size = _size(location, path)
    with _open(location, path) as handle:
        for code, start, length, _ in list(_events(handle, path, size)):
            if code != _INSERT_EVENT:
                raise CorruptBinlogError(path, start, f"an insert log holds an event of type {code}")
            parquet = _parquet(_Window(handle, start, length), path, start)
            for table in _batches(parquet, path, start, [0]):
                yield from table.column(0).chunks


def _field_ids(schema: Any) -> list[int | None]:
    out: list[int | None] = []
    for field in schema:
        raw = (field.metadata or {}).get(_FIELD_ID_KEY, str(field.name).encode())
        out.append(int(raw) if raw.lstrip(b"-").isdigit() else None)
    return out


def v2_batches(location: StorageLocation, path: str, wanted: set[int]) -> Iterator[dict[int, Any]]:
    """The columns of a storage v2 column-group file, one row group at a time, by field ID."""
    with _open(location, path) as handle:
        parquet = _parquet(handle, path, 0)
        ids = _field_ids(parquet.schema_arrow)
        picked = [(i, fid) for i, fid in enumerate(ids) if fid is not None and fid in wanted]
        indices = [i for i, _ in picked]
        if not indices:
            return
        for table in _batches(parquet, path, 0, indices):
            columns = table.combine_chunks()
            yield {fid: columns.column(n).chunk(0) for n, (_, fid) in enumerate(picked) if columns.num_rows}


def _pk_ts(text: str, path: str) -> tuple[Any, int]:
    if text.startswith("{"):
        record = json.loads(text)
        return record["pk"], int(record["ts"])
    pk, ts = text.split(",")  # versions with only int64 keys: "pk,ts"
    return int(pk), int(ts)


def _merge(into: DeleteMap, pks: list[Any], tss: list[int]) -> None:
    for pk, ts in zip(pks, tss, strict=True):
        if ts > into.get(pk, -1):
            into[pk] = ts


def read_deletes(location: StorageLocation, path: str, into: DeleteMap) -> None:
    """Add the ``(pk, ts)`` entries of a delete log of any generation to ``into`` (latest ts per key)."""
    with _open(location, path) as handle:
        magic = handle.read(4)
        handle.seek(0)
        if magic == b"PAR1":
            for table in _batches(_parquet(handle, path, 0), path, 0, [0, 1]):
                _merge(into, table.column(0).to_pylist(), table.column(1).to_pylist())
            return
        size = _size(location, path)
        for code, start, length, extras in list(_events(handle, path, size)):
            if code != _DELETE_EVENT:
                raise CorruptBinlogError(path, start, f"a delete log holds an event of type {code}")
            parquet = _parquet(_Window(handle, start, length), path, start)
            multi = extras.get("version") == "MULTI_FIELD"
            for table in _batches(parquet, path, start, [0, 1] if multi else [0]):
                if multi:
                    _merge(into, table.column(0).to_pylist(), table.column(1).to_pylist())
                    continue
                try:
                    pairs = [_pk_ts(text, path) for text in table.column(0).to_pylist()]
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise CorruptBinlogError(
                        path, start, "a delete entry is neither JSON nor 'pk,ts'"
                    ) from None
                _merge(into, [p for p, _ in pairs], [t for _, t in pairs])
