"""What the library needs from a Milvus cluster: gRPC calls and GC control."""

from milvus_backup_lib.milvus.gc import GcPause, GcPauseOutcome
from milvus_backup_lib.milvus.grpc import FlushResult, GrpcMilvus, ImportState, PartitionInfo, open_milvus

__all__ = [
    "FlushResult",
    "GcPause",
    "GcPauseOutcome",
    "GrpcMilvus",
    "ImportState",
    "PartitionInfo",
    "open_milvus",
]
