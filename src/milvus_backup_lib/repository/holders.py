"""Where each file and import directory of a backup is stored: its own directory, or, for the files
an incremental backup reuses, the directory of the backup that holds them (``LibraryMeta.references``).

Restore imports whole directories (one insert and one delta directory per segment group), so a
directory must be stored by one backup; an incremental backup reuses whole directories only
(:mod:`milvus_backup_lib.backup.incremental`), and :meth:`Holders.of_dir` says which backup that is.
"""

from __future__ import annotations

import posixpath

from milvus_backup_lib.errors import ManifestError
from milvus_backup_lib.repository.store import LibraryMeta

__all__ = ["Holders"]


class Holders:
    """The holder backup of every file and directory of backup ``name`` (``meta``: its library record,
    ``meta/milvus_backup_lib.json``; None for the Go tool's backups: every file is its own)."""

    def __init__(self, name: str, meta: LibraryMeta | None) -> None:
        self.name = name
        self.meta = meta
        self._dirs: dict[str, set[str]] = {}
        if meta is None or not meta.references:
            return
        for key in {*meta.files, *meta.references}:
            holder = meta.holder(name, key)
            parent = posixpath.dirname(key)
            while parent:
                self._dirs.setdefault(parent, set()).add(holder)
                parent = posixpath.dirname(parent)

    @property
    def self_contained(self) -> bool:
        return not self._dirs

    def of_file(self, key: str) -> str:
        """The backup whose directory stores file ``key`` (backup-relative)."""
        return self.meta.holder(self.name, key) if self.meta is not None else self.name

    def of_dir(self, prefix: str) -> str:
        """The backup whose directory stores every file below ``prefix`` (backup-relative).

        Raises :class:`ManifestError` if the files below it are stored by different backups (an import
        reads the directory whole, so the backup cannot be restored as it is)."""
        holders = self._dirs.get(prefix.strip("/"), {self.name})
        if len(holders) == 1:
            return next(iter(holders))
        raise ManifestError(
            f"{self.name}/meta/milvus_backup_lib.json",
            f"the files below {prefix} are stored by different backups ({', '.join(sorted(holders))}); "
            "an import reads that directory whole: restore from a self-contained copy "
            "(BackupClient.materialize)",
            field="references",
        )
