"""What the library needs from a Milvus cluster (:class:`MilvusCluster`), its gRPC implementation and
the typed records that cross the boundary."""

from milvus_backup_lib.milvus.gc import GcPause, GcPauseOutcome
from milvus_backup_lib.milvus.grpc import GrpcMilvus, open_milvus
from milvus_backup_lib.milvus.protocol import MilvusCluster, MilvusFactory
from milvus_backup_lib.milvus.records import (
    ChannelCheckpoint,
    CollectionDescription,
    FlushResult,
    GcAnswer,
    GrantInfo,
    ImportState,
    PartitionInfo,
    SegmentInfo,
)

__all__ = [
    "ChannelCheckpoint",
    "CollectionDescription",
    "FlushResult",
    "GcAnswer",
    "GcPause",
    "GcPauseOutcome",
    "GrantInfo",
    "GrpcMilvus",
    "ImportState",
    "MilvusCluster",
    "MilvusFactory",
    "PartitionInfo",
    "SegmentInfo",
    "open_milvus",
]
