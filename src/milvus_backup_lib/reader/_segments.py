"""One segment of a backup as a stream of Arrow record batches, deletes applied.

A segment's fields (storage v1: one directory per field) or column groups (storage v2: one directory per
group, several fields a file) are read side by side, one Parquet row group of each at a time, and cut to
a common length: memory holds one row group of each field, never a whole segment.

Deletes follow ``internal/util/importutilv2/binlog/filter.go`` ``FilterWithDelete`` in milvus-io/milvus:
a row is dropped when a delete of its primary key has a timestamp greater than the row's (field 1,
``common.TimeStampField``). A segment's own delta logs apply to it; L0 segments (Milvus 2.4+,
``internal/datanode/compaction/l0_compactor.go``) apply to every segment of their partition, and those of
partition -1 to every segment of the collection.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from milvus_backup_lib.errors import CorruptBinlogError
from milvus_backup_lib.manifest.model import FieldSchema, SegmentBackupInfo
from milvus_backup_lib.reader._arrow import arrow, constant_column, present
from milvus_backup_lib.reader._files import DeleteMap, v1_arrays, v2_batches
from milvus_backup_lib.storage.layout import backup_insert_log_key, log_id_of
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["ROW_ID_FIELD", "TIMESTAMP_FIELD", "SegmentSource"]

ROW_ID_FIELD = 0
TIMESTAMP_FIELD = 1


class _Cursor:
    """The current chunk (field ID -> array) of one stream, and how far into it we are."""

    def __init__(self, chunks: Iterator[dict[int, Any]]) -> None:
        self.chunks = chunks
        self.chunk: dict[int, Any] = {}
        self.length = self.pos = 0
        #: Whether the stream held any column at all (a v2 group with none of the wanted fields does not).
        self.has_columns = False

    def fill(self) -> bool:
        """Move to a chunk with rows left; False at the end of the stream."""
        while self.pos >= self.length:
            nxt = next(self.chunks, None)
            if nxt is None:
                return False
            self.chunk, self.pos = nxt, 0
            self.length = len(next(iter(nxt.values()))) if nxt else 0
            self.has_columns = self.has_columns or bool(nxt)
        return True

    def take(self, rows: int) -> dict[int, Any]:
        out = {fid: array.slice(self.pos, rows) for fid, array in self.chunk.items()}
        self.pos += rows
        return out


class SegmentSource:
    """Reads one segment of a backup (see the module docstring)."""

    def __init__(
        self,
        location: StorageLocation,
        backup_dir: str,
        segment: SegmentBackupInfo,
        fields: Sequence[FieldSchema],
        pk_field: FieldSchema,
    ) -> None:
        self.location = location
        self.segment = segment
        self.fields = fields
        self.pk_field = pk_field
        s = segment
        first = backup_insert_log_key(s.collection_id, s.partition_id, s.group_id, s.segment_id, 0, 0)
        #: The segment's insert directory inside the backup storage (for error messages).
        self.where = f"{backup_dir}/{first.rsplit('/', 2)[0]}"
        self._backup_dir = backup_dir

    def _path(self, field_id: int, log: Any) -> str:
        s = self.segment
        key = backup_insert_log_key(s.collection_id, s.partition_id, s.group_id, s.segment_id, field_id, log)
        return f"{self._backup_dir}/{key}"

    def _v1_stream(self, field_id: int, log_ids: list[int]) -> Iterator[dict[int, Any]]:
        for log_id in log_ids:
            for array in v1_arrays(self.location, self._path(field_id, log_id)):
                yield {field_id: array}

    def _v2_stream(self, group_id: int, log_ids: list[int], wanted: set[int]) -> Iterator[dict[int, Any]]:
        for log_id in log_ids:
            yield from v2_batches(self.location, self._path(group_id, log_id), wanted)

    def _streams(self, wanted: set[int]) -> list[Iterator[dict[int, Any]]]:
        streams = []
        for fb in self.segment.binlogs:
            log_ids = [log_id_of(b) for b in fb.binlogs]
            if self.segment.storage_version >= 2:
                streams.append(self._v2_stream(fb.field_id, log_ids, wanted))
            elif fb.field_id in wanted:
                streams.append(self._v1_stream(fb.field_id, log_ids))
        return streams

    def batches(
        self, batch_rows: int, deletes: DeleteMap, system: Sequence[int], schema: Any
    ) -> Iterator[Any]:
        """Record batches of at most ``batch_rows`` rows: ``system`` fields (IDs 0 and 1) then
        ``self.fields``, without the deleted rows."""
        pa, _ = arrow()
        pc = _compute()
        pk_id = self.pk_field.field_id
        wanted = {f.field_id for f in self.fields} | set(system) | {TIMESTAMP_FIELD}
        if deletes:
            wanted.add(pk_id)
        deleted = pa.array(list(deletes), type=_pk_type(pa, self.pk_field)) if deletes else None
        cursors = [_Cursor(s) for s in self._streams(wanted)]
        while cursors:
            states = [(c, c.fill()) for c in cursors]
            cursors = [c for c, alive in states if alive or c.has_columns]
            if not any(alive for _, alive in states):
                return
            if not all(alive for c, alive in states if c in cursors):
                raise CorruptBinlogError(self.where, 0, "the segment's fields hold different numbers of rows")
            rows = min(batch_rows, *(c.length - c.pos for c in cursors))
            merged: dict[int, Any] = {}
            for cursor in cursors:
                merged.update(cursor.take(rows))
            keep = self._survivors(pc, merged, deletes, deleted, rows)
            if keep is not None:
                merged = {fid: array.filter(keep) for fid, array in merged.items()}
                rows = keep.true_count
                if not rows:
                    continue
            columns = [merged[f] if f in merged else self._missing_system(f) for f in system]
            columns += [self._column(f, merged, rows) for f in self.fields]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    def _missing_system(self, field_id: int) -> Any:
        raise CorruptBinlogError(self.where, 0, f"the segment has no binlogs of system field {field_id}")

    def _survivors(
        self, pc: Any, merged: Mapping[int, Any], deletes: DeleteMap, deleted: Any, rows: int
    ) -> Any:
        """A boolean mask of the rows no delete removes, or None when none is removed."""
        if deleted is None:
            return None
        pa, _ = arrow()
        pks, tss = merged.get(self.pk_field.field_id), merged.get(TIMESTAMP_FIELD)
        if pks is None or tss is None:
            raise CorruptBinlogError(self.where, 0, "the segment has no primary key or timestamp binlogs")
        hits = pc.is_in(pks, value_set=deleted)
        if not hits.true_count:
            return None
        # Only the rows whose key has a delete are looked at one by one.
        indices = pc.indices_nonzero(hits)
        mask = [True] * rows
        found = zip(
            indices.to_pylist(), pks.take(indices).to_pylist(), tss.take(indices).to_pylist(), strict=True
        )
        for index, pk, ts in found:
            if deletes[pk] > ts:
                mask[index] = False
        return pa.array(mask, type=pa.bool_())

    def _column(self, field: FieldSchema, merged: Mapping[int, Any], rows: int) -> Any:
        array = merged.get(field.field_id)
        if array is not None:
            return present(field, array, f"{self.where}/{field.field_id}")
        if field.nullable or field.default_value_bytes:
            return constant_column(field, rows)
        raise CorruptBinlogError(
            self.where, 0, f"the segment has no binlogs of field {field.name!r} ({field.field_id})"
        )


def _compute() -> Any:
    arrow()
    import pyarrow.compute  # type: ignore[import-untyped, unused-ignore]

    return pyarrow.compute


def _pk_type(pa: Any, pk_field: FieldSchema) -> Any:
    from milvus_backup_lib.manifest.model import DataType

    return pa.int64() if pk_field.data_type == DataType.INT64 else pa.string()
