"""The import steps of one collection's restore: one per segment group, then the L0 deletes.

milvus-backup (``core/restore/coll_task.go``) imports each segment group directory (since v0.4.4 one
segment each) with ``backup=true``, a v0.4 partition without groups as one import of the partition
directory, and then the L0 delete logs with ``l0_import=true``: partition-level first, then the
collection-level ones (partition -1, imported into every partition). One import never mixes storage
formats (the ``storage_version`` option applies to the whole job).

Each :class:`ImportData` is one directory, listed once: a group directory that v0.4.0-v0.4.3 shared
between several segments (size-based groups 1, 2, ...) is one step carrying all its segment IDs, so a
scheduler that batches steps into multi-file jobs must keep a step whole and never send its prefix
twice (milvus-backup HEAD builds one directory per segment from ``group_id``, which repeats a shared
group's directory in a batch: core/restore/coll_task.go ``notL0SegBatchesWithGroupID``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from milvus_backup_lib.manifest.model import CollectionBackupInfo, PartitionBackupInfo, SegmentBackupInfo
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.plan import ImportData, InsertData
from milvus_backup_lib.storage.layout import backup_delta_log_dir, backup_insert_log_dir

__all__ = ["has_deltas", "import_steps", "insert_steps"]

#: The partition ID under which collection-level L0 segments are stored.
_ALL_PARTITIONS_ID = -1


def has_deltas(segment: SegmentBackupInfo) -> bool:
    """Whether the segment has delete logs."""
    return any(field.binlogs for field in segment.deltalogs)


def import_steps(
    source: QualifiedName, target: QualifiedName, info: CollectionBackupInfo, conflicts: list[str]
) -> list[ImportData]:
    """The imports restoring ``info`` (backed up as ``source``) into ``target``; problems go to ``conflicts``."""
    data: list[ImportData] = []
    deletes: list[ImportData] = []
    for part in info.partition_backups:
        data.extend(_data_jobs(source, target, info, part, conflicts))
        deletes.extend(
            _l0_job(source, target, info, part.partition_name, part.partition_id, seg)
            for seg in part.segment_backups
            if seg.is_l0 and has_deltas(seg)
        )
    deletes.extend(
        _l0_job(source, target, info, "", _ALL_PARTITIONS_ID, seg)
        for seg in info.l0_segments
        if has_deltas(seg)
    )
    return data + deletes


def insert_steps(
    source: QualifiedName,
    target: QualifiedName,
    info: CollectionBackupInfo,
    reason: str,
    recorded: Mapping[str, int] | None = None,
) -> list[InsertData]:
    """The inserts restoring ``info`` into ``target``: one per backed-up partition; a partition-key
    collection's rows are routed by the server (``into=""``), as its partitions are its own.
    ``recorded``: a logical backup's rows per partition (its manifest has no segments)."""
    routed = info.schema.partition_key_field is not None
    return [
        InsertData(
            target=target,
            source=source,
            partition=part.partition_name,
            into="" if routed else part.partition_name,
            rows=recorded.get(part.partition_name, 0)
            if recorded is not None
            else sum(seg.num_of_rows for seg in part.segment_backups if not seg.is_l0),
            reason=reason,
        )
        for part in info.partition_backups
    ]


def _data_jobs(
    source: QualifiedName,
    target: QualifiedName,
    info: CollectionBackupInfo,
    part: PartitionBackupInfo,
    conflicts: list[str],
) -> list[ImportData]:
    coll_id, part_id = info.collection_id, part.partition_id
    segments = [s for s in part.segment_backups if not s.is_l0 and (s.num_of_rows > 0 or has_deltas(s))]
    groups: dict[int, list[SegmentBackupInfo]] = defaultdict(list)
    for seg in segments:
        groups[seg.group_id].append(seg)
    if 0 in groups and len(groups) > 1:
        listed = ", ".join(str(s.segment_id) for s in sorted(groups[0], key=lambda s: s.segment_id))
        conflicts.append(
            f"partition {part.partition_name} of {source} mixes segments with and without a group "
            f"directory (segments {listed}); they cannot be imported separately"
        )
        return []
    jobs = []
    for group_id in sorted(groups):
        members = sorted(groups[group_id], key=lambda s: s.segment_id)
        # Group 0 (milvus-backup < v0.4.4 without groups): the partition directory is the prefix.
        group = group_id or None
        delta = backup_delta_log_dir(coll_id, part_id, group) + "/" if any(map(has_deltas, members)) else ""
        jobs.append(
            ImportData(
                target=target,
                source=source,
                partition=part.partition_name,
                insert_prefix=backup_insert_log_dir(coll_id, part_id, group) + "/",
                delta_prefix=delta,
                segment_ids=tuple(s.segment_id for s in members),
                rows=sum(s.num_of_rows for s in members),
                storage_version=max(s.storage_version for s in members),
                channel=members[0].v_channel if len({s.v_channel for s in members}) == 1 else "",
            )
        )
        if len({s.storage_version for s in members}) > 1:
            conflicts.append(
                f"segment group {group_id} of partition {part.partition_name} of {source} mixes "
                "storage formats; one import cannot read both"
            )
    return jobs


def _l0_job(
    source: QualifiedName,
    target: QualifiedName,
    info: CollectionBackupInfo,
    partition: str,
    partition_id: int,
    seg: SegmentBackupInfo,
) -> ImportData:
    # An L0 import lists its prefix recursively (milvus importutilv2/binlog/l0_reader.go), so the v0.5
    # extra group level under a partition-level L0 segment does not matter: the segment directory is
    # always the prefix.
    return ImportData(
        target=target,
        source=source,
        partition=partition,
        insert_prefix="",
        delta_prefix=backup_delta_log_dir(info.collection_id, partition_id, seg.segment_id) + "/",
        segment_ids=(seg.segment_id,),
        rows=seg.num_of_rows,
        l0=True,
        storage_version=seg.storage_version,
    )
