"""Typed records a Milvus cluster answers with: what crosses the :class:`MilvusCluster` boundary.

No protobuf message crosses it: the gRPC implementation converts every answer into these records (or
into the manifest's own records, :class:`~milvus_backup_lib.manifest.model.CollectionSchema` and
:class:`~milvus_backup_lib.manifest.model.IndexInfo`) in :mod:`milvus_backup_lib.milvus.convert`.
"""

from __future__ import annotations

import attrs

from milvus_backup_lib.manifest.model import CollectionSchema, KeyValue
from milvus_backup_lib.options import DEFAULT_DATABASE

__all__ = [
    "ChannelCheckpoint",
    "CollectionDescription",
    "FlushResult",
    "GcAnswer",
    "GrantInfo",
    "ImportState",
    "PartitionInfo",
    "SegmentBinlogList",
    "SegmentInfo",
    "flush_poll_pause",
]


@attrs.frozen
class ChannelCheckpoint:
    """A virtual channel's checkpoint after a flush: the serialized ``msgpb.MsgPosition`` and its TSO."""

    channel: str
    position: bytes
    timestamp: int


@attrs.frozen
class FlushResult:
    """What a flush returned: the segments it sealed, the flush timestamp (TSO) and, where the server
    sends them (``FlushResponse.channel_cps``), the channel checkpoints, sorted by channel."""

    segment_ids: tuple[int, ...]
    flushed_segment_ids: tuple[int, ...]
    flush_ts: int
    seal_time: int
    channel_checkpoints: tuple[ChannelCheckpoint, ...] = ()


def flush_poll_pause(waited: float, interval: float) -> float:
    """Seconds to sleep before the next ``GetFlushState`` poll, ``waited`` seconds into the wait: a
    tenth of what was waited (so a poll notices durability at most ~10% late), at least 0.02 s and at
    most ``interval``. A flush with nothing to write is durable one time tick later (0.23 s measured
    on 2.3.5, ``proxy.timeTickInterval`` 200 ms by default): a coarser schedule (0.05 s doubling: polls
    at 0.05, 0.15, 0.35 s) saw it at 0.35 s, adding half again to every backup's flush."""
    return min(interval, max(0.02, waited / 10))


@attrs.frozen
class PartitionInfo:
    """A partition's name and ID."""

    name: str
    id: int


@attrs.frozen(kw_only=True)
class CollectionDescription:
    """What ``DescribeCollection`` says about a collection (the hidden ``$meta`` field is not listed)."""

    collection_id: int
    name: str
    schema: CollectionSchema
    shards_num: int = 1
    consistency_level: int = 0
    properties: tuple[KeyValue, ...] = ()
    db_id: int = 0
    created_timestamp: int = 0
    virtual_channel_names: tuple[str, ...] = ()
    physical_channel_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class SegmentInfo:
    """A persisted segment, as ``GetPersistentSegmentInfo`` reports it."""

    segment_id: int
    collection_id: int
    partition_id: int
    num_rows: int
    #: ``Growing``, ``Sealed``, ``Flushing``, ``Flushed``, ``Dropped``... (``commonpb.SegmentState`` names)
    state: str
    #: L0 segments (Milvus 2.4+) hold only delete logs, for every segment of their channel.
    is_l0: bool = False
    insert_channel: str = ""
    #: 0 or 1: one binlog directory per field; 2 (Milvus 2.6): Parquet column groups; 3: Loon manifests.
    storage_version: int = 0

    @property
    def flushed(self) -> bool:
        return self.state == "Flushed"


@attrs.frozen(kw_only=True)
class SegmentBinlogList:
    """A segment's binlogs as Milvus's own meta lists them (REST ``POST /v2/vectordb/segments/describe``,
    Milvus 2.5.8+): insert log IDs by field (storage v2: by column group), delta log IDs, the vchannel.

    The files are ``insert_log/{coll}/{part}/{seg}/{field_or_group}/{log_id}`` and
    ``delta_log/{coll}/{part}/{seg}/{log_id}`` below the storage root (milvus-backup
    ``core/backup/coll_dml_task.go`` ``listInsertLogByAPI``/``listDeltaLogByAPI`` build them so).
    """

    segment_id: int
    #: ``(field ID or column group ID, log IDs)`` pairs, in the order Milvus answered them.
    insert_logs: tuple[tuple[int, tuple[int, ...]], ...] = ()
    delta_logs: tuple[int, ...] = ()
    v_channel: str = ""


@attrs.frozen
class ImportState:
    """State of a bulk import task."""

    task_id: int
    state: str  # Pending, Started, Persisted, Completed, Failed, ...
    row_count: int
    reason: str
    segment_ids: tuple[int, ...]
    #: What the job was asked to import, where the server says (ListImportTasks): its files, its
    #: partition, and when it was created (Unix seconds; 0 when unknown).
    files: tuple[str, ...] = ()
    partition: str = ""
    created: float = 0.0


@attrs.frozen
class GcAnswer:
    """What the cluster answered to a request to pause garbage collection.

    ``supported`` is False when the server has no GC control (Milvus 2.3.5 answers HTTP 404); then
    ``paused`` is False and ``note`` says why.
    """

    paused: bool
    supported: bool
    note: str


@attrs.frozen
class GrantInfo:
    """One privilege granted to a role: ``privilege`` on ``object_type`` ``object_name`` in ``db_name``.

    ``object_type`` is ``Global``, ``Collection`` or ``User``; ``object_name`` a name or ``*``;
    ``db_name`` a database or ``*`` (every database). ``grantor`` is who granted it (informational).
    """

    role: str
    object_type: str
    object_name: str
    privilege: str
    db_name: str = DEFAULT_DATABASE
    grantor: str = ""

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a grant (everything but the grantor)."""
        return (self.role, self.object_type, self.object_name, self.privilege, self.db_name)

    def __str__(self) -> str:
        return f"{self.privilege} on {self.object_type} {self.db_name}.{self.object_name} to role {self.role}"
