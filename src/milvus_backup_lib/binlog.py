"""Just enough of Milvus's binlog format to count the entries of a delta log.

Why: a binlog import reports "Completed" even when it read nothing, and with delta logs the number of
rows it imports is legitimately lower than the segment's row count. Knowing how many delete entries
a segment carries turns "some rows" into a checkable range: ``rows - deletes <= imported <= rows``.

A binlog is a magic number (``0xfffabc`` little endian), a descriptor event, then data events. Each
event starts with a 17-byte header ``timestamp:i64, type_code:i8, event_length:i32, next_position:i32``;
a data event's body is ``start_ts:i64, end_ts:i64`` and a Parquet file. The row count of a Parquet
file is field 3 (``num_rows``) of its Thrift-compact ``FileMetaData`` footer.

Storage v2 and v3 delta logs (Milvus 2.6) are bare Parquet files, without the envelope (see
../shared/reference/binlog-format.md, from milvus-io/milvus ``internal/storage``): their entries are
the Parquet file's rows.
"""

from __future__ import annotations

import struct

__all__ = ["BinlogFormatError", "count_binlog_rows"]

_MAGIC = 0xFFFABC
_HEADER = struct.Struct("<qbii")


class BinlogFormatError(ValueError):
    """The bytes are not a binlog this reader understands."""


def count_binlog_rows(data: bytes) -> int:
    """The number of entries in all data events of a binlog file (or in a bare Parquet delta log)."""
    if data[:4] == b"PAR1":
        return _parquet_rows(data)
    if len(data) < 4 or struct.unpack_from("<i", data, 0)[0] != _MAGIC:
        raise BinlogFormatError("not a Milvus binlog (bad magic number)")
    pos = 4
    total = 0
    first = True
    while pos < len(data):
        if pos + _HEADER.size > len(data):
            raise BinlogFormatError(f"truncated event header at byte {pos}")
        _ts, _type, length, _next_pos = _HEADER.unpack_from(data, pos)
        # Events are walked by their length alone, as Milvus's own reader does: its stream writer
        # (internal/storage/serde_events.go, the delete logs of 2.5+) leaves next_position at -1.
        end = pos + length
        if length < _HEADER.size or end > len(data):
            raise BinlogFormatError(f"bad event at byte {pos}")
        if not first:
            total += _parquet_rows(data[pos + _HEADER.size + 16 : end])
        first = False
        pos = end
    return total


def _parquet_rows(blob: bytes) -> int:
    if len(blob) < 12 or blob[-4:] != b"PAR1" or blob[:4] != b"PAR1":
        raise BinlogFormatError("event payload is not a Parquet file")
    (footer_len,) = struct.unpack_from("<i", blob, len(blob) - 8)
    start = len(blob) - 8 - footer_len
    if footer_len <= 0 or start < 4:
        raise BinlogFormatError("bad Parquet footer length")
    reader = _Compact(blob, start)
    return reader.struct_field_i64(3)


class _Compact:
    """A minimal Thrift compact-protocol reader: walk a struct and return one i64 field."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise BinlogFormatError("truncated Parquet footer")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def _varint(self) -> int:
        shift = result = 0
        while True:
            b = self._byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise BinlogFormatError("varint too long")

    def _zigzag(self) -> int:
        n = self._varint()
        return (n >> 1) ^ -(n & 1)

    def struct_field_i64(self, wanted: int) -> int:
        field_id = 0
        while True:
            header = self._byte()
            if header == 0:
                raise BinlogFormatError(f"field {wanted} missing from Parquet footer")
            ftype = header & 0x0F
            delta = header >> 4
            field_id = field_id + delta if delta else self._zigzag()
            if field_id == wanted and ftype == 6:
                return self._zigzag()
            self._skip(ftype)

    def _skip(self, ftype: int) -> None:
        if ftype in (1, 2):  # bool true/false, value in the type nibble
            return
        if ftype == 3:
            self.pos += 1
        elif ftype in (4, 5, 6):
            self._varint()
        elif ftype == 7:
            self.pos += 8
        elif ftype == 8:
            length = self._varint()  # read before moving: `self.pos += self._varint()` would lose it
            self.pos += length
        elif ftype in (9, 10):
            header = self._byte()
            size = header >> 4
            if size == 15:
                size = self._varint()
            etype = header & 0x0F
            for _ in range(size):
                self._skip_element(etype)
        elif ftype == 11:
            size = self._varint()
            if size:
                types = self._byte()
                for _ in range(size):
                    self._skip_element(types >> 4)
                    self._skip_element(types & 0x0F)
        elif ftype == 12:
            self._skip_struct()
        else:
            raise BinlogFormatError(f"unknown Thrift type {ftype}")

    def _skip_element(self, etype: int) -> None:
        if etype in (1, 2):  # bools inside containers take one byte
            self.pos += 1
        else:
            self._skip(etype)

    def _skip_struct(self) -> None:
        while True:
            header = self._byte()
            if header == 0:
                return
            if not header >> 4:
                self._zigzag()
            self._skip(header & 0x0F)
