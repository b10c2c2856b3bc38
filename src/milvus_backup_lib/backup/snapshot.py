"""Metadata snapshotter: reads a cluster's collections into manifest records.

For each selected collection it records the schema (field IDs, types, params, defaults, functions),
shards, consistency level, properties, partitions, indexes, aliases, load state and, unless the
strategy is ``meta_only``, every flushed segment with its binlog files. Milvus 2.3's public API does
not list a segment's binlogs, so they are read from the segment's own prefix in the cluster storage
(as milvus-backup does before Milvus 2.5.8) and checked: every field must have the same number of
files, otherwise orphan files from a retried flush would make the backup unrestorable.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections import defaultdict
from typing import Any, Protocol

import attrs
from pymilvus.grpc_gen import common_pb2, msg_pb2

from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    InconsistentSegmentError,
    StorageError,
)
from milvus_backup_lib.manifest.model import (
    Binlog,
    CollectionBackupInfo,
    CollectionSchema,
    FieldBinlog,
    FieldSchema,
    FunctionSchema,
    IndexInfo,
    KeyValue,
    PartitionBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_lib.milvus.grpc import GrpcMilvus
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.retry import call_with_retries
from milvus_backup_lib.storage.layout import milvus_delta_log_prefix, milvus_insert_log_prefix
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["ClusterSnapshot", "MetadataSnapshotter", "PymilvusSnapshotter", "resolve_collections"]

log = logging.getLogger(__name__)

_INSERT_RE = re.compile(r"(?:^|/)insert_log/(\d+)/(-?\d+)/(\d+)/(\d+)/(\d+)$")
_DELTA_RE = re.compile(r"(?:^|/)delta_log/(\d+)/(-?\d+)/(\d+)/(\d+)$")


@attrs.frozen
class ClusterSnapshot:
    """What the snapshotter read: server version, databases and collections (with source binlog keys)."""

    milvus_version: str
    databases: tuple[str, ...]
    collections: tuple[CollectionBackupInfo, ...]


class MetadataSnapshotter(Protocol):
    """Reads a cluster's metadata (and segment file lists) for a backup."""

    def snapshot(
        self, selection: CollectionFilter, strategy: BackupStrategy, progress: Progress = ...
    ) -> ClusterSnapshot:
        """Snapshot the selected collections; raise before any side effect if a named one is missing."""
        ...


def resolve_collections(milvus: GrpcMilvus, selection: CollectionFilter) -> list[QualifiedName]:
    """The collections that ``selection`` names, checking that every explicitly named one exists."""
    databases = milvus.list_databases()
    wanted_dbs = set(selection.databases) | {n.database for n in selection.collections}
    for db in sorted(wanted_dbs):
        if db not in databases:
            raise DatabaseNotFoundError(db)
    result: list[QualifiedName] = []
    for db in databases:
        if not selection.select_all and db not in wanted_dbs:
            continue
        names = milvus.list_collections(db)
        for coll in names:
            qn = QualifiedName(db, coll)
            if selection.matches(qn):
                result.append(qn)
        for qn in selection.collections:
            if qn.database == db and qn.collection not in names:
                raise CollectionNotFoundError(db, qn.collection)
    return sorted(set(result))


class PymilvusSnapshotter:
    """:class:`MetadataSnapshotter` over :class:`GrpcMilvus` and the cluster's storage location."""

    def __init__(
        self, milvus: GrpcMilvus, milvus_storage: StorageLocation, flush_timeout: float = 600.0
    ) -> None:
        self.milvus = milvus
        self.storage = milvus_storage
        self.flush_timeout = flush_timeout

    def snapshot(
        self, selection: CollectionFilter, strategy: BackupStrategy, progress: Progress = NULL_PROGRESS
    ) -> ClusterSnapshot:
        version = self.milvus.server_version()
        names = resolve_collections(self.milvus, selection)
        databases = tuple(sorted({n.database for n in names}))
        collections = []
        for name in names:
            progress.collection_started(str(name))
            collections.append(self.snapshot_collection(name, strategy, progress))
            progress.collection_done(str(name))
        return ClusterSnapshot(version, databases, tuple(collections))

    def snapshot_collection(
        self, name: QualifiedName, strategy: BackupStrategy, progress: Progress = NULL_PROGRESS
    ) -> CollectionBackupInfo:
        """Snapshot one collection (flushing it first with ``serial_flush``)."""
        db, coll = name.database, name.collection
        desc = self.milvus.describe_collection(db, coll)
        partitions = self.milvus.show_partitions(db, coll)
        indexes = [_index_info(d) for d in self.milvus.describe_indexes(db, coll)]
        load_state = self.milvus.load_state(db, coll)
        partition_loads: dict[str, str] = {}
        if load_state in ("Loaded", "Loading"):
            for part in partitions:
                partition_loads[part.name] = self.milvus.load_state(db, coll, [part.name])

        checkpoints: dict[str, str] = {}
        backup_ts = 0
        physical_ts = 0
        segments: list[SegmentBackupInfo] = []
        if strategy is BackupStrategy.SERIAL_FLUSH:
            progress.phase("flush", str(name))
            flush = self.milvus.flush(db, coll)
            raw_cps = self.milvus.wait_flushed(
                db,
                coll,
                flush,
                timeout=self.flush_timeout,
                on_wait=lambda s: progress.waiting(f"flush of {name}", s),
            )
            checkpoints = {k: base64.b64encode(v).decode() for k, v in sorted(raw_cps.items())}
            cp_ts = [_position_ts(v) for v in raw_cps.values()]
            backup_ts = max(cp_ts) if cp_ts else flush.flush_ts
            physical_ts = flush.seal_time
        if strategy is not BackupStrategy.META_ONLY:
            for info in self.milvus.persistent_segments(db, coll):
                if info.state != common_pb2.Flushed:
                    continue
                segments.append(self._segment(info))

        progress.segments_found(str(name), len(segments))
        by_partition: dict[int, list[SegmentBackupInfo]] = defaultdict(list)
        l0_segments: list[SegmentBackupInfo] = []
        for seg in sorted(segments, key=lambda s: s.segment_id):
            if seg.partition_id == -1:
                l0_segments.append(seg)
            else:
                by_partition[seg.partition_id].append(seg)
        known = {p.id for p in partitions}
        orphans = set(by_partition) - known
        if orphans:
            raise InconsistentSegmentError(
                by_partition[min(orphans)][0].segment_id,
                f"belongs to partition {min(orphans)} which {name} no longer lists",
            )
        partition_backups = tuple(
            PartitionBackupInfo(
                partition_id=p.id,
                partition_name=p.name,
                collection_id=desc.collectionID,
                segment_backups=tuple(by_partition.get(p.id, ())),
                size=sum(s.size for s in by_partition.get(p.id, ())),
                load_state=partition_loads.get(p.name, ""),
            )
            for p in partitions
        )
        size = sum(p.size for p in partition_backups) + sum(s.size for s in l0_segments)
        return CollectionBackupInfo(
            id=str(uuid.uuid4()),
            collection_id=desc.collectionID,
            db_name=db,
            collection_name=coll,
            schema=_schema(desc.schema),
            shards_num=desc.shards_num,
            consistency_level=int(desc.consistency_level),
            partition_backups=partition_backups,
            backup_timestamp=backup_ts,
            size=size,
            has_index=bool(indexes),
            index_infos=tuple(indexes),
            load_state=load_state,
            backup_physical_timestamp=physical_ts,
            channel_checkpoints=checkpoints,
            l0_segments=tuple(l0_segments),
            properties=tuple(KeyValue(key=kv.key, value=kv.value) for kv in desc.properties),
            db_id=int(getattr(desc, "db_id", 0) or 0),
            created_timestamp=int(desc.created_timestamp),
            virtual_channel_names=tuple(desc.virtual_channel_names),
            physical_channel_names=tuple(desc.physical_channel_names),
            aliases=tuple(desc.aliases),
        )

    def _list(self, prefix: str) -> dict[str, int]:
        path = self.storage.join(prefix)
        try:
            found = call_with_retries(f"list {path}", self.storage.find_files, path)
        except FileNotFoundError:
            return {}
        except Exception as exc:
            raise StorageError(
                f"cannot list {path!r} in the Milvus storage: {type(exc).__name__}: {scrub(str(exc), self.storage)}"
            ) from exc
        return {str(k): int(v.get("size") or 0) for k, v in found.items() if v.get("type", "file") == "file"}

    def _segment(self, info: Any) -> SegmentBackupInfo:
        seg_id, coll_id, part_id = int(info.segmentID), int(info.collectionID), int(info.partitionID)
        is_l0 = int(getattr(info, "level", 0)) == common_pb2.L0
        fields: dict[int, list[Binlog]] = defaultdict(list)
        if not is_l0:
            for path, size in self._list(milvus_insert_log_prefix(coll_id, part_id, seg_id)).items():
                m = _INSERT_RE.search(path)
                if not m or int(m.group(3)) != seg_id:
                    raise InconsistentSegmentError(
                        seg_id, f"unexpected file {path!r} under its insert_log prefix"
                    )
                fields[int(m.group(4))].append(
                    Binlog(log_path=self.storage.bucket_key(path), log_size=size, log_id=int(m.group(5)))
                )
        deltas: list[Binlog] = []
        for path, size in self._list(milvus_delta_log_prefix(coll_id, part_id, seg_id)).items():
            m = _DELTA_RE.search(path)
            if not m or int(m.group(3)) != seg_id:
                raise InconsistentSegmentError(seg_id, f"unexpected file {path!r} under its delta_log prefix")
            deltas.append(
                Binlog(log_path=self.storage.bucket_key(path), log_size=size, log_id=int(m.group(4)))
            )

        if not is_l0:
            if info.num_rows > 0 and not fields:
                raise InconsistentSegmentError(
                    seg_id,
                    f"Milvus reports {info.num_rows} rows but no insert binlogs exist under "
                    f"{self.storage.join(milvus_insert_log_prefix(coll_id, part_id, seg_id))!r}",
                )
            counts = {f: len(logs) for f, logs in fields.items()}
            if len(set(counts.values())) > 1:
                raise InconsistentSegmentError(
                    seg_id,
                    "fields have different numbers of binlog files (orphan files?): "
                    + ", ".join(f"field {f}: {n}" for f, n in sorted(counts.items())),
                )
            if fields and not {0, 1} <= set(fields):
                raise InconsistentSegmentError(
                    seg_id, "the system fields 0 (RowID) and 1 (Timestamp) have no binlogs"
                )

        binlogs = tuple(
            FieldBinlog(field_id=f, binlogs=tuple(sorted(logs, key=lambda b: b.log_id)))
            for f, logs in sorted(fields.items())
        )
        deltalogs = (FieldBinlog(binlogs=tuple(sorted(deltas, key=lambda b: b.log_id))),) if deltas else ()
        size = sum(b.log_size for fb in binlogs for b in fb.binlogs) + sum(b.log_size for b in deltas)
        return SegmentBackupInfo(
            segment_id=seg_id,
            collection_id=coll_id,
            partition_id=part_id,
            num_of_rows=int(info.num_rows),
            binlogs=binlogs,
            deltalogs=deltalogs,
            size=size,
            group_id=0 if part_id == -1 else seg_id,
            is_l0=is_l0,
            v_channel=str(getattr(info, "insert_channel", "") or ""),
            storage_version=int(getattr(info, "storage_version", 0) or 0),
        )


def _position_ts(serialized: bytes) -> int:
    pos = msg_pb2.MsgPosition()
    pos.ParseFromString(serialized)
    return int(pos.timestamp)


def _kvs(pairs: Any) -> tuple[KeyValue, ...]:
    return tuple(KeyValue(key=kv.key, value=kv.value) for kv in pairs)


def _schema(schema: Any) -> CollectionSchema:
    fields = []
    for f in schema.fields:
        default = ""
        if f.HasField("default_value"):
            default = base64.b64encode(f.default_value.SerializeToString()).decode()
        fields.append(
            FieldSchema(
                field_id=int(f.fieldID),
                name=f.name,
                is_primary_key=f.is_primary_key,
                description=f.description,
                data_type=int(f.data_type),
                type_params=_kvs(f.type_params),
                index_params=_kvs(f.index_params),
                auto_id=f.autoID,
                state=int(f.state),
                element_type=int(f.element_type),
                is_dynamic=f.is_dynamic,
                is_partition_key=f.is_partition_key,
                nullable=bool(getattr(f, "nullable", False)),
                is_function_output=bool(getattr(f, "is_function_output", False)),
                default_value_base64=default,
            )
        )
    functions = tuple(
        FunctionSchema(
            name=fn.name,
            id=int(fn.id),
            description=fn.description,
            type=int(fn.type),
            input_field_names=tuple(fn.input_field_names),
            input_field_ids=tuple(int(i) for i in fn.input_field_ids),
            output_field_names=tuple(fn.output_field_names),
            output_field_ids=tuple(int(i) for i in fn.output_field_ids),
            params=_kvs(fn.params),
        )
        for fn in getattr(schema, "functions", ())
    )
    return CollectionSchema(
        name=schema.name,
        description=schema.description,
        auto_id=schema.autoID,
        fields=tuple(fields),
        enable_dynamic_field=schema.enable_dynamic_field,
        properties=_kvs(getattr(schema, "properties", ())),
        functions=functions,
    )


def _index_info(desc: Any) -> IndexInfo:
    params = {kv.key: kv.value for kv in desc.params}
    return IndexInfo(
        field_name=desc.field_name,
        index_name=desc.index_name,
        index_type=params.get("index_type", ""),
        params=params,
        index_id=int(desc.indexID),
    )
