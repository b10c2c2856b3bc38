"""Backup: the metadata snapshotter (cluster -> manifest records) and the segment copier (bytes).

Data flows one way: cluster -> snapshot -> copier -> repository.
"""

from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.snapshot import ClusterSnapshot, MetadataSnapshotter, PymilvusSnapshotter

__all__ = [
    "ClusterSnapshot",
    "CopyJob",
    "CopyResult",
    "FsspecCopier",
    "MetadataSnapshotter",
    "PymilvusSnapshotter",
    "SegmentCopier",
]
