"""Where the server reads a backup's binlogs from: in place, or staged into its own storage.

An incremental backup's reused directories are read where the backup that holds them stores them
(:class:`~milvus_backup_lib.repository.holders.Holders`), in place and when staged alike.
"""

from __future__ import annotations

import logging

from milvus_backup_lib.backup.copier import CopyJob, SegmentCopier
from milvus_backup_lib.binlog import BinlogFormatError, count_binlog_rows
from milvus_backup_lib.errors import ImportFailedError, StorageError
from milvus_backup_lib.repository.holders import Holders
from milvus_backup_lib.restore.plan import ImportData
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["Staging"]

log = logging.getLogger(__name__)


class Staging:
    """The paths the server imports a backup's segment groups from, staging them when it must. Each
    call takes the backup's :class:`Holders` (made from the library record the restore read once)."""

    def __init__(
        self, milvus_storage: StorageLocation, backup_storage: StorageLocation, copier: SegmentCopier
    ) -> None:
        self.milvus_storage = milvus_storage
        self.backup_storage = backup_storage
        self.copier = copier

    @property
    def in_place(self) -> bool:
        """Whether the server can read the backup where it is (no staging)."""
        b, m = self.backup_storage, self.milvus_storage
        if m.is_local:
            return b.is_local
        return m.same_store(b) and b.bucket == m.bucket and b.protocol not in ("memory",)

    def milvus_path(self, path: str) -> str:
        """How the server names ``path`` of its own storage: absolute locally, bucket-relative in a bucket."""
        if self.milvus_storage.is_local:
            return path if path.startswith("/") else "/" + path
        return self.milvus_storage.bucket_key(path)

    def files_of(
        self, holders: Holders, step: ImportData, stage_root: str, *, batch: bool
    ) -> tuple[list[str], str]:
        """The paths (in the server's storage) one segment group of backup ``holders.name`` is imported
        from, and where its delta logs are ("" without), as a path of the storage :meth:`count_deletes`
        reads."""
        prefixes = [p for p in (step.insert_prefix, step.delta_prefix) if p]
        if self.in_place:
            locations = [self.backup_storage.join(holders.of_dir(p), p) for p in prefixes]
        else:
            locations = [self.stage(holders, p, stage_root) for p in prefixes]
        paths = [self.milvus_path(p).rstrip("/") + "/" for p in locations]
        # A backup import takes exactly [insert prefix, delta prefix]; an empty string stands for "none".
        # Given a single path, Milvus 2.3.5 falls back to row-based files: "unsupported file type". An
        # L0 import takes the delta prefix alone: Milvus's L0 reader wants exactly one prefix
        # (importutilv2/binlog/l0_reader.go "there should be one prefix"), as milvus-backup sends it
        # (core/restore/coll_task.go toPaths: no insert dir -> [deltaLogDir]). In a multi-segment job
        # (2.4+ ImportV2) each group is [insert] or [insert, delta], as milvus-backup's v2 restore sends.
        delta = locations[-1] if step.delta_prefix else ""
        if not step.insert_prefix or step.delta_prefix or batch:
            return paths, delta
        return [paths[0], ""], delta

    def stage(self, holders: Holders, prefix: str, stage_root: str) -> str:
        """Copy everything under ``prefix`` of backup ``holders.name`` (stored by the backup that holds
        it) into the server's storage; return the staged prefix."""
        src_dir = self.backup_storage.join(holders.of_dir(prefix), prefix)
        dst_dir = f"{stage_root}/{prefix.strip('/')}"
        src_root = src_dir.rstrip("/") + "/"
        jobs = [
            CopyJob(
                source=path,
                destination=f"{dst_dir}/{path[len(src_root) :] if path.startswith(src_root) else path.rsplit('/', 1)[-1]}",
                size=size,
            )
            for path, size in self.backup_storage.list_files(src_dir).items()
        ]
        if not jobs:
            raise StorageError(
                f"nothing to restore under {src_dir}: the backup is missing files listed in its meta"
            )
        self.copier.copy(self.backup_storage, self.milvus_storage, jobs)
        return dst_dir + "/"

    def count_deletes(self, location: str) -> int:
        """Delete entries in the delta logs below ``location`` (a path in the server's or backup's storage)."""
        storage = self.milvus_storage if not self.in_place else self.backup_storage
        total = 0
        for path in storage.list_files(location):
            try:
                total += count_binlog_rows(storage.read_bytes(path))
            except BinlogFormatError as exc:
                raise ImportFailedError(f"delta log {path} is unreadable: {exc}") from exc
            except FileNotFoundError as exc:
                raise StorageError(f"delta log {path} vanished while being read") from exc
        return total

    def remove(self, path: str) -> None:
        try:
            self.milvus_storage.remove_tree(path)
        except StorageError as exc:  # cleanup must not hide the real outcome; no traceback (secrets)
            log.warning(
                "could not remove the staging area %s: %s", path, scrub(str(exc), self.milvus_storage)
            )
