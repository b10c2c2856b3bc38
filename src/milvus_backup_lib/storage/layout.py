"""The two path layouts: Milvus's own binlog storage, and a milvus-backup v0.5 backup root.

Milvus keeps segment files at ``{root}/insert_log/{coll}/{part}/{seg}/{field}/{log}`` and
``{root}/delta_log/{coll}/{part}/{seg}/{log}``. A backup keeps them at
``{backup_root}/{name}/binlogs/insert_log/{coll}/{part}/{group}/{seg}/{field}/{log}`` (and the delta
equivalent), where the extra ``group`` directory is a virtual partition: Milvus's binlog import lists
an insert prefix non-recursively for segment directories, so ``.../{part}/{group}/`` is one import
"file". Since milvus-backup v0.4.4 ``group == segment id``. Collection-level L0 segments (partition -1)
live at ``binlogs/delta_log/{coll}/-1/{seg}/{log}`` without a group.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs

from milvus_backup_lib.errors import InvalidNameError

if TYPE_CHECKING:
    from milvus_backup_lib.manifest.model import BackupInfo, Binlog, CollectionBackupInfo, SegmentBackupInfo

__all__ = [
    "BACKUP_NAME_RE",
    "META_DIR",
    "BinlogFile",
    "backup_delta_log_dir",
    "backup_delta_log_key",
    "backup_insert_log_dir",
    "backup_insert_log_key",
    "binlog_files",
    "log_id_of",
    "milvus_delta_log_prefix",
    "milvus_insert_log_prefix",
    "validate_backup_name",
]

BACKUP_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_BACKUP_NAME_LENGTH = 128
META_DIR = "meta"
#: Our own metadata file (library version, GC pause record, checksums); upstream ignores it.
LIBRARY_META_FILE = "milvus_backup_lib.json"
#: A file at the root, written with each backup and kept when backups are deleted, so that a root whose
#: last backup was deleted still exists on object stores (where a prefix exists only while it holds
#: objects) and lists as "no backups" rather than as a missing root. The Go tool lists only directories.
ROOT_MARKER = "milvus_backup_lib.root"


def validate_backup_name(name: object) -> str:
    """Return ``name`` if it is a valid backup name, else raise :class:`InvalidNameError`."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"backup name must be a non-empty string, got {name!r}")
    if len(name) > MAX_BACKUP_NAME_LENGTH:
        raise InvalidNameError(
            f"backup name {name[:20]!r}... is {len(name)} characters long; at most {MAX_BACKUP_NAME_LENGTH} allowed"
        )
    if not BACKUP_NAME_RE.fullmatch(name):
        raise InvalidNameError(
            f"backup name {name!r} is invalid: use letters, digits and '_', not starting with a digit"
        )
    return name


def milvus_insert_log_prefix(collection_id: int, partition_id: int, segment_id: int) -> str:
    """Relative prefix of a segment's insert logs in Milvus storage."""
    return f"insert_log/{collection_id}/{partition_id}/{segment_id}"


def milvus_delta_log_prefix(collection_id: int, partition_id: int, segment_id: int) -> str:
    """Relative prefix of a segment's delta logs in Milvus storage."""
    return f"delta_log/{collection_id}/{partition_id}/{segment_id}"


def backup_insert_log_dir(collection_id: int, partition_id: int, group_id: int | None = None) -> str:
    """Relative import prefix of a partition (or of one segment group) inside a backup."""
    base = f"binlogs/insert_log/{collection_id}/{partition_id}"
    return f"{base}/{group_id}" if group_id else base


def backup_delta_log_dir(collection_id: int, partition_id: int, group_id: int | None = None) -> str:
    """Relative delta prefix of a partition (or of one segment group) inside a backup."""
    base = f"binlogs/delta_log/{collection_id}/{partition_id}"
    return f"{base}/{group_id}" if group_id else base


def backup_insert_log_key(
    collection_id: int, partition_id: int, group_id: int, segment_id: int, field_id: int, log_id: int
) -> str:
    """Relative key of one insert binlog inside a backup."""
    group = f"{group_id}/" if group_id else ""
    return f"binlogs/insert_log/{collection_id}/{partition_id}/{group}{segment_id}/{field_id}/{log_id}"


def backup_delta_log_key(
    collection_id: int, partition_id: int, group_id: int, segment_id: int, log_id: int
) -> str:
    """Relative key of one delta binlog inside a backup (partition -1: collection-level L0, no group)."""
    group = f"{group_id}/" if group_id and partition_id != -1 else ""
    return f"binlogs/delta_log/{collection_id}/{partition_id}/{group}{segment_id}/{log_id}"


@attrs.frozen
class BinlogFile:
    """One binlog a manifest lists: where it is in the cluster's storage and in the backup."""

    #: The key below the Milvus storage root: ``insert_log/{c}/{p}/{s}/{field}/{log}``.
    source: str
    #: The key below the backup's directory: ``binlogs/insert_log/{c}/{p}/{group}/{s}/{field}/{log}``.
    key: str
    #: The size the manifest records (``log_size``).
    size: int
    segment_id: int
    is_delta: bool


def segments_of(collection: CollectionBackupInfo) -> Iterator[SegmentBackupInfo]:
    """Every segment of a backed-up collection: each partition's, then the collection-level L0 ones."""
    for part in collection.partition_backups:
        yield from part.segment_backups
    yield from collection.l0_segments


def log_id_of(binlog: Binlog) -> int:
    """The binlog's log ID: ``log_id``, or for milvus-backup before v0.5.4 (which did not record it) the
    last element of ``log_path``, the file's name in both Milvus's storage and the backup."""
    if binlog.log_id:
        return binlog.log_id
    tail = binlog.log_path.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def binlog_files(info: BackupInfo | CollectionBackupInfo) -> Iterator[BinlogFile]:
    """Every binlog (insert and delta logs) of a manifest or of one of its collections, in order.

    The one walk from a manifest to storage keys: copy planning, resume and verify all use it.
    """
    collections = info.collection_backups if hasattr(info, "collection_backups") else (info,)
    for coll in collections:
        for seg in segments_of(coll):
            c, p, g, s = seg.collection_id, seg.partition_id, seg.group_id, seg.segment_id
            insert_prefix = milvus_insert_log_prefix(c, p, s)
            for fb in seg.binlogs:
                for b in fb.binlogs:
                    log_id = log_id_of(b)
                    yield BinlogFile(
                        source=f"{insert_prefix}/{fb.field_id}/{log_id}",
                        key=backup_insert_log_key(c, p, g, s, fb.field_id, log_id),
                        size=b.log_size,
                        segment_id=s,
                        is_delta=False,
                    )
            delta_prefix = milvus_delta_log_prefix(c, p, s)
            for fb in seg.deltalogs:
                for b in fb.binlogs:
                    log_id = log_id_of(b)
                    yield BinlogFile(
                        source=f"{delta_prefix}/{log_id}",
                        key=backup_delta_log_key(c, p, g, s, log_id),
                        size=b.log_size,
                        segment_id=s,
                        is_delta=True,
                    )
