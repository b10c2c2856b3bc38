"""Our own record of a backup, beside the upstream meta files: ``meta/milvus_backup_lib.json``.

The Go tool ignores the file. It says how the backup was made (strategy, GC pause), which files it
holds with their sizes and checksums, the files it refers to in other backups (an incremental backup),
where the data came from, and, for a logical backup, the rows of each Parquet file.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from milvus_backup_lib._version import __version__
from milvus_backup_lib.errors import ManifestError

__all__ = ["LOGICAL", "LibraryMeta"]

#: ``LibraryMeta.strategy`` of a logical backup (``BackupStrategy.LOGICAL``'s value).
LOGICAL = "logical"


@attrs.frozen(kw_only=True)
class LibraryMeta:
    """What this library records beside the upstream files (``meta/milvus_backup_lib.json``)."""

    library_version: str = __version__
    created_at: str = ""
    strategy: str = ""
    gc_paused: bool = False
    gc_note: str = ""
    #: backup-relative path -> size in bytes, for every binlog copied.
    files: dict[str, int] = attrs.field(factory=dict)
    #: backup-relative path -> ``md5:<hex>`` of every binlog, recorded when it was copied.
    checksums: dict[str, str] = attrs.field(factory=dict)
    #: Files of this backup stored by another one (an incremental backup's reused binlogs):
    #: backup-relative path -> name of the backup that holds the file at the same relative path.
    #: Never a chain: the named backup stores the file itself. Empty for a self-contained backup.
    references: dict[str, str] = attrs.field(factory=dict)
    #: The backup an incremental backup was made against ("" for a full backup).
    base: str = ""
    #: Where the data came from, so that files of another cluster are never taken for the same:
    #: ``{"storage": <Milvus storage URL, no credentials>, "root_path": ..., "collections": {qualified: id}}``.
    source: dict[str, Any] = attrs.field(factory=dict)
    #: A logical backup's rows (``strategy == "logical"``): ``{qualified: {partition name: {"rows": n,
    #: "files": {backup-relative key: rows}}}}``; empty for a physical backup.
    logical: dict[str, Any] = attrs.field(factory=dict)

    @property
    def is_logical(self) -> bool:
        """Whether the backup stores rows as Parquet (read through the client), not Milvus's binlogs."""
        return self.strategy == LOGICAL

    def partition_rows(self, qualified: str) -> dict[str, int]:
        """Partition name -> rows stored, of collection ``qualified`` of a logical backup."""
        return {name: int(part.get("rows", 0)) for name, part in self.logical.get(qualified, {}).items()}

    def file_rows(self) -> dict[str, int]:
        """Backup-relative key -> rows, of every Parquet file of a logical backup."""
        return {
            key: int(rows)
            for partitions in self.logical.values()
            for part in partitions.values()
            for key, rows in part.get("files", {}).items()
        }

    @property
    def self_contained(self) -> bool:
        """Whether every file of the backup is stored under its own directory (the Go tool reads only these)."""
        return not self.references

    def holder(self, name: str, key: str) -> str:
        """The name of the backup whose directory stores file ``key`` of backup ``name``."""
        return self.references.get(key, name)

    def to_json(self) -> bytes:
        return json.dumps(attrs.asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, file: str) -> LibraryMeta:
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(file, f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ManifestError(file, "expected a JSON object")
        known = {a.name for a in attrs.fields(cls)}
        kwargs = {k: v for k, v in obj.items() if k in known}
        for key, typ in (
            ("library_version", str),
            ("created_at", str),
            ("strategy", str),
            ("gc_note", str),
            ("gc_paused", bool),
            ("files", dict),
            ("checksums", dict),
            ("references", dict),
            ("base", str),
            ("source", dict),
            ("logical", dict),
        ):
            if key in kwargs and not isinstance(kwargs[key], typ):
                raise ManifestError(file, f"expected {typ.__name__}", field=key)
        return cls(**kwargs)
