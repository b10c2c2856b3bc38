"""What a backup would copy, estimated before it runs (:meth:`BackupClient.plan_backup`).

The estimate reads what the backup itself would read (each collection's metadata and the binlogs of
its flushed segments) and nothing is flushed, copied or written: a ``serial_flush`` backup flushes
first, so rows inserted since the last flush are not counted, and a flush or a compaction in between
changes the segments. The files and bytes are those :func:`~milvus_backup_lib.storage.layout.binlog_files`
lists for the manifest, the same walk the backup's copy phase uses.
"""

from __future__ import annotations

import attrs

from milvus_backup_lib._html import (
    format_bytes,
    format_count,
    html_block,
    html_heading,
    html_key_values,
    html_table,
    text_key_values,
    text_table,
)
from milvus_backup_lib.backup.snapshot import ClusterSnapshot
from milvus_backup_lib.options import BackupStrategy
from milvus_backup_lib.storage.layout import binlog_files, segments_of

__all__ = ["BackupPlan", "CollectionBackupPlan", "plan_from_snapshot"]

_HEADERS = ("collection", "segments", "files", "size", "bytes", "rows")
_NUMERIC = frozenset({1, 2, 3, 4, 5})


@attrs.frozen(kw_only=True)
class CollectionBackupPlan:
    """What a backup would copy of one collection."""

    #: ``db.collection``.
    name: str
    #: Flushed segments (L0 delete segments included), the binlogs of those segments and their bytes.
    segments: int
    files: int
    bytes: int
    #: Rows in those segments, before deletes.
    rows: int


@attrs.frozen(kw_only=True)
class BackupPlan:
    """What :meth:`BackupClient.create_backup` would back up now; nothing was flushed, copied or written."""

    #: The backup's name (the default name it would get when none was given).
    name: str
    strategy: BackupStrategy
    milvus_version: str
    databases: tuple[str, ...]
    collections: tuple[CollectionBackupPlan, ...]
    #: What the numbers cannot include (the flush of ``serial_flush``), or ``""``.
    note: str = ""

    @property
    def segments(self) -> int:
        return sum(c.segments for c in self.collections)

    @property
    def files(self) -> int:
        return sum(c.files for c in self.collections)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.collections)

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.collections)

    def _items(self) -> list[tuple[str, str]]:
        items = [
            ("backup", self.name),
            ("strategy", self.strategy.value),
            ("collections", str(len(self.collections))),
            ("segments", format_count(self.segments)),
            ("files", format_count(self.files)),
            ("bytes", f"{format_bytes(self.bytes)} ({format_count(self.bytes)} bytes)"),
        ]
        return [*items, ("note", self.note)] if self.note else items

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                c.name,
                format_count(c.segments),
                format_count(c.files),
                format_bytes(c.bytes),
                format_count(c.bytes),
                format_count(c.rows),
            )
            for c in self.collections
        ]

    def table(self) -> str:
        """The totals, one ``name  value`` line each, then one line per collection."""
        return text_key_values(self._items()) + "\n\n" + text_table(_HEADERS, self._rows(), numeric=_NUMERIC)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return html_block(
            html_heading(f"backup {self.name} would copy", "(nothing was flushed, copied or written)"),
            html_key_values(self._items()),
            html_table(_HEADERS, self._rows(), numeric=_NUMERIC),
        )


def plan_from_snapshot(name: str, strategy: BackupStrategy, snapshot: ClusterSnapshot) -> BackupPlan:
    """The plan of backing up ``snapshot`` (taken without a flush) as ``name`` with ``strategy``."""
    collections = []
    for coll in snapshot.collections:
        files = list(binlog_files(coll))
        segments = list(segments_of(coll))
        collections.append(
            CollectionBackupPlan(
                name=coll.qualified_name,
                segments=len(segments),
                files=len(files),
                bytes=sum(f.size for f in files),
                rows=coll.num_rows,
            )
        )
    note = ""
    if strategy is BackupStrategy.SERIAL_FLUSH:
        note = (
            "counts the segments flushed now; the backup flushes each collection first, so rows "
            "inserted since the last flush will be added"
        )
    elif strategy is BackupStrategy.META_ONLY:
        note = "meta_only: schema, partitions, indexes and aliases only, no binlogs"
    return BackupPlan(
        name=name,
        strategy=strategy,
        milvus_version=snapshot.milvus_version,
        databases=snapshot.databases,
        collections=tuple(collections),
        note=note,
    )
