"""What :meth:`BackupClient.create_backup` reports: files and bytes copied from the cluster, reused from
an earlier backup (incremental backups), the GC pause and the times."""

from __future__ import annotations

import attrs

from milvus_backup_lib._html import (
    format_bytes,
    format_count,
    html_block,
    html_heading,
    html_key_values,
    text_key_values,
)
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.gc import GcPauseOutcome
from milvus_backup_lib.options import BackupStrategy

__all__ = ["BackupReport"]


@attrs.frozen(kw_only=True)
class BackupReport:
    """What :meth:`BackupClient.create_backup` did."""

    name: str
    info: BackupInfo
    strategy: BackupStrategy
    files: int
    bytes_copied: int
    server_side_copy: bool
    gc: GcPauseOutcome
    #: Wall time of the whole backup, and of its copy phase alone.
    seconds: float
    copy_seconds: float = 0.0
    #: Wall time of recording the copies' checksums (after the copy phase).
    checksum_seconds: float = 0.0
    #: With ``resume=True``: binlogs an earlier run had already stored whole, not copied again.
    resumed_files: int = 0
    resumed_bytes: int = 0
    #: Incremental backups: binlogs not copied from the cluster because ``base`` (or the backup it
    #: references) stores them. With ``self_contained`` they were copied from there into this backup.
    reused_files: int = 0
    reused_bytes: int = 0
    #: The backup this one was made against ("" for a full backup).
    base: str = ""
    #: Whether every file is stored under this backup's own directory (the Go tool reads only these).
    self_contained: bool = True

    @property
    def collections(self) -> tuple[str, ...]:
        return tuple(c.qualified_name for c in self.info.collection_backups)

    def _items(self) -> list[tuple[str, str]]:
        gc = "paused" if self.gc.paused else "not paused"
        names = self.collections
        return [
            ("backup", self.name),
            ("strategy", self.strategy.value),
            ("collections", f"{len(names)}: {', '.join(names)}" if names else "0"),
            ("files", format_count(self.files)),
            ("bytes", f"{format_bytes(self.bytes_copied)} ({format_count(self.bytes_copied)} bytes)"),
            *self._incremental_items(),
            ("server-side copy", "yes" if self.server_side_copy else "no"),
            ("GC", f"{gc}: {self.gc.note}" if self.gc.note else gc),
            ("seconds", f"{self.seconds:.1f} (copy {self.copy_seconds:.1f})"),
        ]

    def _incremental_items(self) -> list[tuple[str, str]]:
        if not self.base:
            return []
        reused = f"{format_count(self.reused_files)} files, {format_bytes(self.reused_bytes)}"
        return [
            ("base", self.base),
            (
                "reused",
                reused + (" (copied from the base's store)" if self.self_contained else " (referenced)"),
            ),
            ("self-contained", "yes" if self.self_contained else "no (the Go tool cannot read it)"),
        ]

    def table(self) -> str:
        """What the backup did, one ``name  value`` line each, then the backed-up collections."""
        return text_key_values(self._items()) + "\n\n" + self.info.table()

    def _repr_html_(self) -> str:
        return html_block(
            html_heading(f"backup {self.name} created"),
            html_key_values(self._items()),
            self.info._repr_html_(),
        )
