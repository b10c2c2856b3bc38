"""Metadata snapshotter: reads a cluster's collections into manifest records.

For each selected collection it records the schema (field IDs, types, params, defaults, functions),
shards, consistency level, properties, partitions, indexes, aliases, load state and, unless the
strategy is ``meta_only``, every flushed segment with its binlog files. Milvus's gRPC API does not
list a segment's binlogs, so they are read from the segment's own prefix in the cluster storage (as
milvus-backup does before Milvus 2.5.8) and checked. Storage v1 segments keep one directory per field:
every field must have the same number of files (otherwise orphan files from a retried flush would make
the backup unrestorable) and the system fields 0 (row ID) and 1 (timestamp) must be there. Storage v2
segments (Milvus 2.6) keep one directory per Parquet column group instead, so those checks do not apply
to them; storage versions above 2 (v3 "Loon" manifests) are refused, naming the segment.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections import defaultdict
from typing import Protocol

import attrs

from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    InconsistentSegmentError,
)
from milvus_backup_lib.manifest.model import (
    Binlog,
    CollectionBackupInfo,
    DatabaseBackupInfo,
    FieldBinlog,
    PartitionBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.milvus.records import SegmentInfo
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.storage.layout import milvus_delta_log_prefix, milvus_insert_log_prefix
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["ClusterSnapshot", "ListingSnapshotter", "MetadataSnapshotter", "resolve_collections"]

#: The newest segment storage format whose files the snapshot knows how to list.
MAX_STORAGE_VERSION = 2

log = logging.getLogger(__name__)

_INSERT_RE = re.compile(r"(?:^|/)insert_log/(\d+)/(-?\d+)/(\d+)/(\d+)/(\d+)$")
_DELTA_RE = re.compile(r"(?:^|/)delta_log/(\d+)/(-?\d+)/(\d+)/(\d+)$")


@attrs.frozen
class ClusterSnapshot:
    """What the snapshotter read: server version, databases and collections (with source binlog keys)."""

    milvus_version: str
    databases: tuple[str, ...]
    collections: tuple[CollectionBackupInfo, ...]
    #: The databases as ``DescribeDatabase`` reports them (ID, properties, encryption-zone key), in the
    #: order of :attr:`databases`; empty from a snapshotter that does not describe them.
    database_backups: tuple[DatabaseBackupInfo, ...] = ()


class MetadataSnapshotter(Protocol):
    """Reads a cluster's metadata (and segment file lists) for a backup."""

    def snapshot(
        self,
        milvus: MilvusCluster,
        selection: CollectionFilter,
        strategy: BackupStrategy,
        progress: Progress = ...,
    ) -> ClusterSnapshot:
        """Snapshot the selected collections; raise before any side effect if a named one is missing."""
        ...


def resolve_collections(milvus: MilvusCluster, selection: CollectionFilter) -> list[QualifiedName]:
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


class ListingSnapshotter:
    """:class:`MetadataSnapshotter` that reads metadata through a :class:`MilvusCluster` and lists each
    segment's binlogs in the cluster's storage."""

    def __init__(self, milvus_storage: StorageLocation, flush_timeout: float = 600.0) -> None:
        self.storage = milvus_storage
        self.flush_timeout = flush_timeout

    def __repr__(self) -> str:
        return f"ListingSnapshotter({self.storage!r})"

    def snapshot(
        self,
        milvus: MilvusCluster,
        selection: CollectionFilter,
        strategy: BackupStrategy,
        progress: Progress = NULL_PROGRESS,
    ) -> ClusterSnapshot:
        version = milvus.server_version()
        names = resolve_collections(milvus, selection)
        databases = tuple(sorted({n.database for n in names}))
        collections = []
        for name in names:
            progress.collection_started(str(name))
            collections.append(self.snapshot_collection(milvus, name, strategy, progress))
            progress.collection_done(str(name))
        # As milvus-backup's core/backup/database_task.go: db_id and properties, and the key of an
        # encrypted database (2.3.5 has no DescribeDatabase: then only the name is recorded).
        described = tuple(milvus.describe_database(db) for db in databases)
        return ClusterSnapshot(version, databases, tuple(collections), described)

    def snapshot_collection(
        self,
        milvus: MilvusCluster,
        name: QualifiedName,
        strategy: BackupStrategy,
        progress: Progress = NULL_PROGRESS,
    ) -> CollectionBackupInfo:
        """Snapshot one collection (flushing it first with ``serial_flush``)."""
        db, coll = name.database, name.collection
        desc = milvus.describe_collection(db, coll)
        partitions = milvus.show_partitions(db, coll)
        indexes = milvus.describe_indexes(db, coll)
        load_state = milvus.load_state(db, coll)
        partition_loads: dict[str, str] = {}
        if load_state in ("Loaded", "Loading"):
            for part in partitions:
                partition_loads[part.name] = milvus.load_state(db, coll, [part.name])

        checkpoints: dict[str, str] = {}
        backup_ts = 0
        physical_ts = 0
        segments: list[SegmentBackupInfo] = []
        if strategy is BackupStrategy.SERIAL_FLUSH:
            progress.phase("flush", str(name))
            flush = milvus.flush(db, coll)
            cps = milvus.wait_flushed(
                db,
                coll,
                flush,
                timeout=self.flush_timeout,
                on_wait=lambda s: progress.waiting(f"flush of {name}", s),
            )
            # The Flush response carries the checkpoints (``channel_cps``), as the Go tool records them;
            # what wait_flushed returns is the fallback for a cluster that only reports them there.
            cps = list(flush.channel_checkpoints) or cps
            checkpoints = {cp.channel: base64.b64encode(cp.position).decode() for cp in cps}
            backup_ts = max((cp.timestamp for cp in cps), default=flush.flush_ts)
            physical_ts = flush.seal_time
        if strategy is not BackupStrategy.META_ONLY:
            for info in milvus.persistent_segments(db, coll):
                if info.flushed:
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
                collection_id=desc.collection_id,
                segment_backups=tuple(by_partition.get(p.id, ())),
                size=sum(s.size for s in by_partition.get(p.id, ())),
                load_state=partition_loads.get(p.name, ""),
            )
            for p in partitions
        )
        size = sum(p.size for p in partition_backups) + sum(s.size for s in l0_segments)
        return CollectionBackupInfo(
            id=str(uuid.uuid4()),
            collection_id=desc.collection_id,
            db_name=db,
            collection_name=coll,
            schema=desc.schema,
            shards_num=desc.shards_num,
            consistency_level=desc.consistency_level,
            partition_backups=partition_backups,
            backup_timestamp=backup_ts,
            size=size,
            has_index=bool(indexes),
            index_infos=tuple(indexes),
            load_state=load_state,
            backup_physical_timestamp=physical_ts,
            channel_checkpoints=checkpoints,
            l0_segments=tuple(l0_segments),
            properties=desc.properties,
            db_id=desc.db_id,
            created_timestamp=desc.created_timestamp,
            virtual_channel_names=desc.virtual_channel_names,
            physical_channel_names=desc.physical_channel_names,
            aliases=desc.aliases,
        )

    def _list(self, prefix: str) -> dict[str, int]:
        return self.storage.list_files(self.storage.join(prefix))

    def _segment(self, info: SegmentInfo) -> SegmentBackupInfo:
        seg_id, coll_id, part_id = info.segment_id, info.collection_id, info.partition_id
        is_l0 = info.is_l0
        if info.storage_version > MAX_STORAGE_VERSION:
            raise InconsistentSegmentError(
                seg_id,
                f"is stored in storage format v{info.storage_version}, which this version of the library "
                f"cannot back up (it knows v1 and v2)",
            )
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
            if info.storage_version < 2 and len(set(counts.values())) > 1:
                raise InconsistentSegmentError(
                    seg_id,
                    "fields have different numbers of binlog files (orphan files?): "
                    + ", ".join(f"field {f}: {n}" for f, n in sorted(counts.items())),
                )
            if info.storage_version < 2 and fields and not {0, 1} <= set(fields):
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
            num_of_rows=info.num_rows,
            binlogs=binlogs,
            deltalogs=deltalogs,
            size=size,
            group_id=0 if part_id == -1 else seg_id,
            is_l0=is_l0,
            v_channel=info.insert_channel,
            storage_version=info.storage_version,
        )
