"""The restore runner: the steps of one restore, in order.

1. check the backup (``check_backup``: its files against its manifest), before the target is contacted;
2. read what exists on the target, and plan (every conflict raised at once, nothing changed);
3. preflight: refuse what the target server cannot do, also on a dry run;
4. run the plan (unless ``dry_run``), checking each import's row count.
"""

from __future__ import annotations

import time

import attrs

from milvus_backup_lib.backup.copier import SegmentCopier
from milvus_backup_lib.errors import BackupCorruptError
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.repository.verify import verify_backup
from milvus_backup_lib.restore.executor import RestoreExecutor, RestoreReport
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import RestorePlan
from milvus_backup_lib.restore.planner import RestorePlanner
from milvus_backup_lib.restore.target import read_target_state
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["RestoreRunner", "check_backup"]


def check_backup(
    repository: BackupRepository,
    name: str,
    backup: BackupInfo,
    library: LibraryMeta | None,
    options: RestoreOptions,
    progress: Progress = NULL_PROGRESS,
) -> None:
    """Raise :class:`BackupCorruptError` if backup ``name`` (whose manifest is ``backup`` and library
    record ``library``) fails ``options.check_backup``. A ``meta_only`` restore reads no binlogs: only
    its meta files must be whole.
    """
    if options.check_backup == "none":
        return
    progress.phase("verify", f"{name} ({options.check_backup})")
    level = "exists" if options.meta_only else options.check_backup
    check = verify_backup(repository, name, level, info=backup, library=library)  # both just read
    if not check.ok and not (options.meta_only and not check.meta_problems):
        raise BackupCorruptError(name, check.problems())


@attrs.define(kw_only=True)
class RestoreRunner:
    """Plans and runs restores of backups in ``repository`` onto ``cluster``, whose binlog storage is
    ``milvus_storage``; ``copier`` stages files the cluster cannot read in place."""

    cluster: MilvusCluster
    planner: RestorePlanner
    repository: BackupRepository
    #: None: the client was given no ``milvus_storage``; only inserts restore data then.
    milvus_storage: StorageLocation | None
    copier: SegmentCopier

    def _executor(self, options: RestoreOptions) -> RestoreExecutor:
        return RestoreExecutor(
            self.cluster,
            self.milvus_storage,
            self.repository.location,
            copier=self.copier,
            keep_staged=options.keep_staged,
            parallel_collections=options.parallel_collections,
            parallel_imports=options.parallel_imports,
            segments_per_import=options.segments_per_import,
            keep_partial=options.keep_partial,
        )

    def plan(self, backup: BackupInfo, meta: LibraryMeta | None, options: RestoreOptions) -> RestorePlan:
        """The plan of restoring ``backup`` (library record ``meta``) with ``options``, checked against
        the target; changes nothing."""
        state = read_target_state(
            self.cluster,
            backup,
            options,
            milvus_storage=self.milvus_storage is not None,
            backup_strategy=meta.strategy if meta is not None else "",
            logical_rows={
                c.qualified_name: meta.partition_rows(c.qualified_name) for c in backup.collection_backups
            }
            if meta is not None and meta.is_logical
            else None,
        )
        plan = self.planner.plan(backup, options, state)
        # What this server cannot take (its version's capabilities, a skip_create target that does not
        # line up) is refused now, all at once.
        self._executor(options).preflight(plan, backup)
        return plan

    def run(
        self,
        name: str,
        backup: BackupInfo,
        library: LibraryMeta | None,
        options: RestoreOptions,
        progress: Progress = NULL_PROGRESS,
    ) -> RestoreReport:
        """Plan and run the restore of backup ``name`` (with ``dry_run``: only plan it). ``backup`` is its
        manifest and ``library`` its library record (``meta/milvus_backup_lib.json``, None for the Go
        tool's backups), read once by the caller: the plan, the staging and the inserts all use them.

        :func:`check_backup` comes first, before the target is contacted.
        """
        started = time.monotonic()
        progress.phase("plan", name)
        # The binlogs are in the directory the caller named, whatever name the manifest records (a backup
        # copied or moved under another name): milvus-backup too reads the requested name's directory
        # (core/restore/task.go, mpath.BackupDir(backupRoot, backupName)).
        backup = attrs.evolve(backup, name=name)
        executor = self._executor(options)
        if not options.dry_run:
            executor.journal.recover(self.cluster, name)  # what a killed run of this restore left
        plan = self.plan(backup, library, options)
        if options.dry_run:
            return RestoreReport(
                backup_name=name, plan=plan, dry_run=True, seconds=time.monotonic() - started
            )
        if any(c.imports for c in plan.collections) and self.milvus_storage is not None:
            self.milvus_storage.check_root()
        return executor.run(plan, backup, library, progress)
