"""The data plane of :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus`: insert, delete, flush,
compaction and garbage collection, and the segment files they write.

Where a flush puts deletes, by version line:

- 2.3: into a delta log of every flushed segment that holds the primary key (the 2.3 datanode buffers a
  delete for the segments whose bloom filter has the key), written with ``DeleteCodec.Serialize``;
- 2.4 and later: into L0 segments, one per partition the delete named and one with partition ID -1 for a
  delete that named none (``common.AllPartitionsID``); milvus-backup ``core/backup/coll_dml_task.go``
  records the latter as collection-level ``l0_segments``.

Storage v2 (2.6) segments are written as column groups following ``internal/storagecommon``
``DefaultPolicies`` (``column_group_splitter.go`` and ``split_policy.go`` at 02bb2cce):
``NewSystemColumnPolicy(true)`` puts the system fields 0 and 1 and the primary key in group 0,
``NewSelectedDataTypePolicy`` gives every vector and Text field a group of its own whose ID is the
field ID, and ``NewRemanentShortPolicy(-1)`` puts every other field in the next group, 1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymilvus.grpc_gen import msg_pb2

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.manifest.model import DataType, FieldSchema
from milvus_backup_lib.milvus.records import ChannelCheckpoint
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing import _memory_binlog as codec
from milvus_backup_lib.testing._memory_state import (
    ROW_ID_FIELD,
    TIMESTAMP_FIELD,
    Clock,
    Collection,
    DeleteRecord,
    Segment,
    VersionLine,
    float32,
    pack_vector,
    system_fields,
)

__all__ = ["DataPlane"]

_INTEGERS = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64})
_STRINGS = frozenset({DataType.VARCHAR, DataType.STRING, DataType.TEXT})


class DataPlane:
    """Rows, deletes and segment files of the collections of one cluster."""

    def __init__(
        self, storage: StorageLocation, line: VersionLine, clock: Clock, rows_per_file: int | None = None
    ) -> None:
        self.storage = storage
        self.line = line
        self.clock = clock
        #: Rows per insert file: a bigger segment gets several files per field (v1) or per column group
        #: (v2), as Milvus's writers roll over at ``dataNode.segment.binlog.maxsize``-like limits.
        self.rows_per_file = rows_per_file

    # -- rows -------------------------------------------------------------------------------------

    def normalize(self, coll: Collection, row: Mapping[str, Any]) -> dict[int, Any]:
        """A row given by field name as field ID -> stored value; unknown keys go to ``$meta``."""
        out: dict[int, Any] = {}
        extra = dict(row)
        for spec in coll.schema.fields:
            if spec.is_dynamic:
                continue
            if spec.is_primary_key and spec.auto_id:
                if spec.name in extra:
                    raise MilvusOperationError("Insert", f"the primary key {spec.name!r} is auto-generated")
                continue
            if spec.name not in extra:
                if spec.nullable:
                    out[spec.field_id] = None
                    continue
                raise MilvusOperationError("Insert", f"the field {spec.name!r} is missing from a row")
            out[spec.field_id] = self._value(spec, extra.pop(spec.name))
        for struct in coll.schema.struct_array_fields:
            # An array of structs is stored as one array per sub-field, each under its own field ID.
            elements = extra.pop(struct.name, None)
            if not isinstance(elements, list):
                raise MilvusOperationError("Insert", f"the struct array field {struct.name!r} needs a list")
            for sub in struct.fields:
                out[sub.field_id] = self._value(sub, [element[sub.name] for element in elements])
        dynamic = coll.dynamic_field
        if extra and dynamic is None:
            raise MilvusOperationError("Insert", f"unknown fields {sorted(extra)} and no dynamic field")
        if dynamic is not None:
            out[dynamic.field_id] = json.dumps(extra, separators=(",", ":")).encode()
        return out

    def _value(self, spec: FieldSchema, value: Any) -> Any:
        dt = spec.data_type
        if value is None:
            if not spec.nullable:
                raise MilvusOperationError("Insert", f"the field {spec.name!r} is not nullable")
            return None
        if dt == DataType.BOOL:
            return bool(value)
        if dt in _INTEGERS:
            return int(value)
        if dt == DataType.FLOAT:
            return float32(value)
        if dt == DataType.DOUBLE:
            return float(value)
        if dt in _STRINGS:
            return str(value)
        if dt == DataType.JSON:
            return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
        if dt == DataType.ARRAY:
            element = FieldSchema(name=spec.name, data_type=spec.element_type)
            return [self._value(element, v) for v in value]
        if dt == DataType.SPARSE_FLOAT_VECTOR:
            return bytes(value)
        if dt in DataType.VECTORS:
            packed = pack_vector(spec, value)
            if len(packed) != codec.vector_width(spec):
                raise MilvusOperationError("Insert", f"the dim of {spec.name!r} does not match its schema")
            return packed
        raise MilvusOperationError("Insert", f"{spec.type_name} fields are not supported here")

    def insert(self, coll: Collection, rows: Sequence[Mapping[str, Any]], partition_id: int) -> list[Any]:
        """Append ``rows`` to the partition's growing segment; one timestamp for the batch, like a proxy."""
        stored = [self.normalize(coll, row) for row in rows]
        ts = self.clock.now()
        row_ids = self.clock.ids(len(stored))
        pk = coll.pk_field
        if pk.auto_id:
            for row, pk_value in zip(stored, self.clock.ids(len(stored)), strict=True):
                row[pk.field_id] = pk_value
        segment = self._growing(coll, partition_id)
        for row, row_id in zip(stored, row_ids, strict=True):
            row[ROW_ID_FIELD] = row_id
            row[TIMESTAMP_FIELD] = ts
            segment.rows.append(row)
        return [row[pk.field_id] for row in stored]

    def _growing(self, coll: Collection, partition_id: int) -> Segment:
        for seg in coll.segments.values():
            if seg.state == "Growing" and seg.partition_id == partition_id and not seg.is_l0:
                return seg
        seg = Segment(
            segment_id=self.clock.next_id(),
            collection_id=coll.collection_id,
            partition_id=partition_id,
            channel=coll.channels[0],
            storage_version=self.line.storage_version,
        )
        coll.segments[seg.segment_id] = seg
        return seg

    def delete(self, coll: Collection, pks: Iterable[Any], partition_id: int) -> int:
        ts = self.clock.now()
        records = [DeleteRecord(pk, ts, partition_id) for pk in pks]
        coll.deletes.extend(records)
        return len(records)

    def live_rows(self, coll: Collection, partition_id: int | None = None) -> list[dict[str, Any]]:
        """What a query returns: rows not deleted, by field name, dynamic keys under their own names
        (of partition ``partition_id`` only, when given)."""
        out = []
        for seg in coll.live_segments(level="L1"):
            if partition_id is not None and seg.partition_id != partition_id:
                continue
            for row in seg.rows:
                if not coll.is_deleted(row, seg.partition_id):
                    out.append(self.present(coll, row))
        pk = coll.pk_field.name
        return sorted(out, key=lambda r: r[pk])

    def present(self, coll: Collection, row: Mapping[int, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for spec in coll.schema.fields:
            value = row.get(spec.field_id)
            if spec.is_dynamic:
                result.update(json.loads(value) if value else {})
            elif spec.data_type == DataType.JSON and value is not None:
                result[spec.name] = json.loads(value)
            else:
                result[spec.name] = value
        for struct in coll.schema.struct_array_fields:
            columns = [(sub.name, row.get(sub.field_id) or []) for sub in struct.fields]
            count = len(columns[0][1]) if columns else 0
            result[struct.name] = [{name: values[i] for name, values in columns} for i in range(count)]
        return result

    # -- flush, compaction, GC ----------------------------------------------------------------------

    def channel_checkpoints(self, coll: Collection) -> tuple[ChannelCheckpoint, ...]:
        """What a Flush answers in ``channel_cps``: each vchannel's checkpoint as datacoord holds it.

        Datacoord's ``Flush`` reads them from its meta before allocating the flush timestamp, and the
        proxy passes them on (milvus-io/milvus ``internal/datacoord/services.go`` ``Flush``,
        ``internal/proxy/task_flush.go`` ``ChannelCps: channelCps``), so each lags the flush timestamp;
        here each is a time tick of its own. The real 2.3.5 server answers an empty map (measured with
        its Flush RPC), so the 2.3 line sends none.
        """
        if self.line.version < (2, 4):
            return ()
        cps = []
        for ch in sorted(coll.channels):
            ts = self.clock.now()
            position = msg_pb2.MsgPosition(channel_name=ch, msgID=ts.to_bytes(8, "little"), timestamp=ts)
            cps.append(ChannelCheckpoint(channel=ch, position=position.SerializeToString(), timestamp=ts))
        return tuple(cps)

    def flush(self, coll: Collection) -> tuple[list[int], list[int]]:
        """Seal and persist the growing segments, then the pending deletes; (sealed, already flushed)."""
        already = [s.segment_id for s in coll.live_segments() if s.state == "Flushed"]
        sealed = []
        for seg in list(coll.segments.values()):
            if seg.state != "Growing":
                continue
            if not seg.rows:  # Milvus drops a segment that holds nothing
                seg.state = "Dropped"
                continue
            self.write_rows(coll, seg)
            seg.state = "Flushed"
            sealed.append(seg.segment_id)
        pending = [d for d in coll.deletes if not d.flushed]
        if pending:
            if self.line.has_l0:
                sealed.extend(self._flush_l0(coll, pending))
            else:
                self._flush_into_segments(coll, pending)
            coll.deletes = [
                d if d.flushed else DeleteRecord(d.pk, d.ts, d.partition_id, True) for d in coll.deletes
            ]
        return sealed, already

    def _flush_l0(self, coll: Collection, pending: Sequence[DeleteRecord]) -> list[int]:
        by_partition: dict[int, list[tuple[Any, int]]] = defaultdict(list)
        for d in pending:
            by_partition[d.partition_id].append((d.pk, d.ts))
        created = []
        for partition_id, entries in sorted(by_partition.items()):
            created.append(self.new_l0_segment(coll, partition_id, entries).segment_id)
        return created

    def _flush_into_segments(self, coll: Collection, pending: Sequence[DeleteRecord]) -> None:
        pk_id = coll.pk_field.field_id
        for seg in coll.live_segments(level="L1"):
            if seg.state != "Flushed":
                continue
            entries = [
                (d.pk, d.ts)
                for d in pending
                if d.partition_id in (-1, seg.partition_id)
                and any(r[pk_id] == d.pk and r[TIMESTAMP_FIELD] < d.ts for r in seg.rows)
            ]
            if entries:
                seg.deletes.extend(entries)
                self.write_deletes(coll, seg, entries)

    def compact(self, coll: Collection) -> list[int]:
        """Mix compaction: merge each partition's flushed segments into one without the deleted rows.

        The merged segments, and the L0 segments whose deletes were applied, are marked Dropped; their
        files stay until :meth:`collect_garbage`. Pending (unflushed) deletes are not applied.
        """
        created = []
        flushed_l1 = [s for s in coll.live_segments(level="L1") if s.state == "Flushed"]
        for partition in coll.partitions:
            inputs = [s for s in flushed_l1 if s.partition_id == partition.partition_id]
            if not inputs:
                continue
            seg = Segment(
                segment_id=self.clock.next_id(),
                collection_id=coll.collection_id,
                partition_id=partition.partition_id,
                channel=coll.channels[0],
                state="Flushed",
                storage_version=self.line.storage_version,
            )
            for old in inputs:
                seg.rows.extend(
                    r for r in old.rows if not coll.is_deleted(r, partition.partition_id, flushed_only=True)
                )
                old.state = "Dropped"
            coll.segments[seg.segment_id] = seg
            if seg.rows:
                self.write_rows(coll, seg)
                created.append(seg.segment_id)
            else:
                seg.state = "Dropped"
        for l0 in coll.live_segments(level="L0"):
            l0.state = "Dropped"
        return created

    def collect_garbage(self, segments: Iterable[tuple[Collection, Segment]]) -> int:
        """Remove the files of the given (dropped) segments; how many files were removed."""
        removed = 0
        for coll, seg in segments:
            for key in seg.files:
                self.storage.remove_file(self.storage.join(key))
                removed += 1
            coll.segments.pop(seg.segment_id, None)
        return removed

    # -- files ------------------------------------------------------------------------------------

    def _write(self, seg: Segment, key: str, data: bytes) -> None:
        self.storage.write_bytes(self.storage.join(key), data)
        seg.files.append(key)

    def write_rows(self, coll: Collection, seg: Segment) -> None:
        """The insert files of a segment: per chunk of :attr:`rows_per_file` rows, one binlog per field
        (v1) or one file per column group (v2), each with its own log ID."""
        fields = [*system_fields(), *coll.schema.stored_fields]
        prefix = f"insert_log/{coll.collection_id}/{seg.partition_id}/{seg.segment_id}"
        step = self.rows_per_file or max(len(seg.rows), 1)
        for start in range(0, len(seg.rows), step):
            chunk = seg.rows[start : start + step]
            columns = {f.field_id: [row.get(f.field_id) for row in chunk] for f in fields}
            if seg.storage_version >= 2:
                groups = column_groups(fields, coll.pk_field.field_id)
                for (group_id, members), log_id in zip(groups, self.clock.ids(len(groups)), strict=True):
                    data = codec.column_group_file(members, columns)
                    self._write(seg, f"{prefix}/{group_id}/{log_id}", data)
                continue
            tss = [int(ts) for ts in columns[TIMESTAMP_FIELD] if ts is not None]
            ts_range = (min(tss), max(tss))
            for spec, log_id in zip(fields, self.clock.ids(len(fields)), strict=True):
                data = codec.insert_binlog(
                    spec,
                    columns[spec.field_id],
                    ids=(coll.collection_id, seg.partition_id, seg.segment_id),
                    ts_range=ts_range,
                    header_ts=self.clock.now(),
                    nullable_extra=self.line.nullable_extra,
                )
                self._write(seg, f"{prefix}/{spec.field_id}/{log_id}", data)

    def new_l0_segment(self, coll: Collection, partition_id: int, entries: list[tuple[Any, int]]) -> Segment:
        """A flushed L0 segment of ``coll`` holding ``entries`` (pk, ts), its delete log written."""
        seg = Segment(
            segment_id=self.clock.next_id(),
            collection_id=coll.collection_id,
            partition_id=partition_id,
            channel=coll.channels[0],
            level="L0",
            state="Flushed",
            storage_version=self.line.storage_version,
            deletes=entries,
        )
        coll.segments[seg.segment_id] = seg
        self.write_deletes(coll, seg, entries)
        return seg

    def write_deletes(self, coll: Collection, seg: Segment, entries: Sequence[tuple[Any, int]]) -> None:
        pk_type = coll.pk_field.data_type
        ids = (coll.collection_id, seg.partition_id, seg.segment_id)
        if seg.storage_version >= 2:
            data = codec.delete_parquet(entries, pk_type)
        elif self.line.stream_delta_logs:
            data = codec.delete_log_stream(entries, pk_type, ids=ids, header_ts=self.clock.now())
        else:
            data = codec.delete_log_codec(entries, pk_type, ids=ids, header_ts=self.clock.now())
        log_id = self.clock.next_id()
        self._write(seg, f"delta_log/{coll.collection_id}/{seg.partition_id}/{seg.segment_id}/{log_id}", data)


def column_groups(fields: Sequence[FieldSchema], pk_id: int) -> list[tuple[int, list[FieldSchema]]]:
    """Storage v2 column groups of ``fields`` (system fields first), per ``DefaultPolicies``."""
    system = [f for f in fields if f.field_id < 100 or f.field_id == pk_id]
    wide = [
        f
        for f in fields
        if f not in system and (f.data_type in DataType.VECTORS or f.data_type == DataType.TEXT)
    ]
    rest = [f for f in fields if f not in system and f not in wide]
    groups = [(0, system), *((f.field_id, [f]) for f in wide)]
    if rest:
        groups.append((1, rest))
    return groups
