"""Metadata snapshotter: reads a cluster's collections into manifest records.

For each selected collection it records the schema (field IDs, types, params, defaults, functions),
shards, consistency level, properties, partitions, indexes, aliases, load state and, unless the
strategy is ``meta_only``, every flushed segment with its binlog files. Milvus's gRPC API does not
list a segment's binlogs: on Milvus 2.5.8+ they come from its REST segment-describe API
(:meth:`MilvusCluster.segment_binlogs`), else they are read from the segment's own prefix in the
cluster storage (as milvus-backup does) and checked. Both, and the storage formats (v1 per-field
directories, v2 column groups, v3 refused), are in :mod:`milvus_backup_lib.backup.segment_files`.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections import defaultdict
from typing import Protocol

import attrs

from milvus_backup_lib.backup.segment_files import SegmentFiles, check_storage_format
from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    InconsistentSegmentError,
    InvalidOptionError,
)
from milvus_backup_lib.manifest.model import (
    CollectionBackupInfo,
    DatabaseBackupInfo,
    PartitionBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.milvus.records import FlushResult
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["ClusterSnapshot", "ListingSnapshotter", "MetadataSnapshotter", "resolve_collections"]

log = logging.getLogger(__name__)


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

    def __init__(self, milvus_storage: StorageLocation | None, flush_timeout: float = 600.0) -> None:
        self.storage = milvus_storage  # None: metadata only (meta_only and logical backups)
        self.flush_timeout = flush_timeout
        self.files = SegmentFiles(milvus_storage) if milvus_storage is not None else None

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
        flushes: dict[QualifiedName, FlushResult] = {}
        if strategy is BackupStrategy.SERIAL_FLUSH:
            # Every collection's flush is asked before any is waited for: a flush is durable one time
            # tick after it is asked (0.23 s on 2.3.5), so N collections wait about one tick, not N.
            # (The Go tool flushes 4 collections at once: backup.parallelism.backupCollection.)
            for name in names:
                progress.phase("flush", str(name))
                flushes[name] = milvus.flush(name.database, name.collection)
        collections = []
        for name in names:
            progress.collection_started(str(name))
            collections.append(
                self.snapshot_collection(milvus, name, strategy, progress, flush=flushes.get(name))
            )
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
        flush: FlushResult | None = None,
    ) -> CollectionBackupInfo:
        """Snapshot one collection. With ``serial_flush`` it waits for ``flush``, the collection's flush
        already asked, or flushes it first."""
        db, coll = name.database, name.collection
        desc = milvus.describe_collection(db, coll)
        if strategy is BackupStrategy.SERIAL_FLUSH and flush is None:
            # Asked before the other metadata reads, which then overlap the time tick the flush waits for.
            progress.phase("flush", str(name))
            flush = milvus.flush(db, coll)
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
        if flush is not None:
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
            segments = self._segments(milvus, db, coll, desc.collection_id)

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

    def _segments(
        self, milvus: MilvusCluster, db: str, coll: str, collection_id: int
    ) -> list[SegmentBackupInfo]:
        """The collection's flushed segments, each with exactly its binlogs (see :mod:`.segment_files`):
        Milvus's own lists where the server gives them (2.5.8+), else the storage listing."""
        flushed = [info for info in milvus.persistent_segments(db, coll) if info.flushed]
        for info in flushed:
            check_storage_format(info)  # before asking anything else about the segments
        lists = (
            milvus.segment_binlogs(db, collection_id, [i.segment_id for i in flushed]) if flushed else None
        )
        segments: list[SegmentBackupInfo] = []
        files = self.files
        if files is None:
            if flushed:
                raise InvalidOptionError(
                    "milvus_storage", None, "the URL of Milvus's storage", detail="for listing segment files"
                )
            return segments
        for info in flushed:
            listed = lists.get(info.segment_id) if lists is not None else None
            if lists is not None and listed is None:
                log.warning(
                    "Milvus did not describe segment %s of %s.%s; listing its files in the storage",
                    info.segment_id,
                    db,
                    coll,
                )
            segments.append(files.segment(info, listed))
        return segments
