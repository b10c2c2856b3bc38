"""``BackupClient``: the facade users call. It wires the parts together and holds no orchestration.

Backups run in :class:`~milvus_backup_lib.backup.runner.BackupRunner` (snapshotter + copier ->
repository); restores are planned by a :class:`~milvus_backup_lib.restore.planner.RestorePlanner`
against :func:`~milvus_backup_lib.restore.target.read_target_state` and run by
:class:`~milvus_backup_lib.restore.executor.RestoreExecutor`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from milvus_backup_lib.backup.copier import FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.runner import BackupReport, BackupRunner, default_backup_name
from milvus_backup_lib.backup.snapshot import ListingSnapshotter, MetadataSnapshotter
from milvus_backup_lib.errors import BackupCorruptError, BackupNotFoundError, RestorePlanError
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.grpc import open_milvus
from milvus_backup_lib.milvus.protocol import MilvusCluster, MilvusFactory
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.rbac import RbacMeta, RbacRestoreReport, read_rbac, restore_rbac
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.store import BackupList, BackupRepository
from milvus_backup_lib.repository.verify import VerifyReport, verify_backup
from milvus_backup_lib.restore.executor import RestoreExecutor, RestoreReport
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import RestorePlan
from milvus_backup_lib.restore.planner import DefaultRestorePlanner, RestorePlanner
from milvus_backup_lib.restore.target import read_target_state
from milvus_backup_lib.storage.layout import validate_backup_name
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["BackupClient", "BackupReport", "default_backup_name"]


class BackupClient:
    """Back up and restore Milvus collections to and from any fsspec storage.

    ``milvus_storage`` is where the cluster keeps its binlogs (its ``minio.rootPath`` in its bucket,
    or its local data directory); ``backup_storage`` is the backup root.

    The parts can be replaced: ``snapshotter`` (reads the cluster's collections, default
    :class:`ListingSnapshotter`), ``copier`` (moves binlogs, default :class:`FsspecCopier`), ``planner``
    (plans restores, default :class:`DefaultRestorePlanner`) and ``milvus_factory`` (opens the cluster
    ``milvus`` names, default :func:`~milvus_backup_lib.milvus.grpc.open_milvus` over gRPC).
    """

    def __init__(
        self,
        milvus: MilvusConnection,
        milvus_storage: StorageLocation,
        backup_storage: StorageLocation,
        *,
        snapshotter: MetadataSnapshotter | None = None,
        copier: SegmentCopier | None = None,
        planner: RestorePlanner | None = None,
        milvus_factory: MilvusFactory | None = None,
        pause_gc: bool = True,
        gc_pause_seconds: int = 3600,
        flush_timeout: float = 600.0,
        lock_stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        self.milvus = milvus
        self.milvus_storage = milvus_storage
        self.backup_storage = backup_storage
        self.snapshotter: MetadataSnapshotter = snapshotter or ListingSnapshotter(
            milvus_storage, flush_timeout=flush_timeout
        )
        self.copier: SegmentCopier = copier or FsspecCopier()
        self.planner: RestorePlanner = planner or DefaultRestorePlanner()
        self.milvus_factory: MilvusFactory = milvus_factory or open_milvus
        self.pause_gc = pause_gc
        self.gc_pause_seconds = gc_pause_seconds
        self.lock_stale_after = lock_stale_after
        self.repository = BackupRepository(backup_storage)

    def __repr__(self) -> str:
        return (
            f"BackupClient(milvus={self.milvus!r}, milvus_storage={self.milvus_storage!r}, "
            f"backup_storage={self.backup_storage!r})"
        )

    # -- backups ----------------------------------------------------------------------------------

    def create_backup(
        self,
        name: str | None = None,
        collections: Iterable[str] | str | None = None,
        *,
        strategy: BackupStrategy | str = BackupStrategy.SERIAL_FLUSH,
        progress: Progress = NULL_PROGRESS,
        resume: bool = False,
        rbac: bool = False,
    ) -> BackupReport:
        """Back up the selected collections (``None``: every collection of every database).

        ``resume=True`` finishes a backup of that name that was interrupted (a crash, a lost network):
        binlogs already stored whole (same size and MD5 as the source) are not copied again, and
        :attr:`BackupReport.resumed_bytes` says how much was saved. A failed backup keeps what it
        wrote for that purpose; it is never listed, and ``delete_backup`` removes it.

        ``collections`` entries are ``db.coll``, ``coll`` (default database) or ``db.*``. Raises
        :class:`InvalidNameError`, :class:`BackupExistsError`, :class:`DatabaseNotFoundError`,
        :class:`CollectionNotFoundError`, :class:`MilvusConnectionError`,
        :class:`StorageRootNotFoundError` before anything is written.

        ``rbac=True`` also records the server's users (never their passwords), roles and grants in
        ``rbac_meta``; :meth:`restore_rbac` restores them. It needs a user allowed to read them.
        """
        name = validate_backup_name(name) if name is not None else default_backup_name()
        strategy = BackupStrategy(strategy)
        selection = CollectionFilter.parse(collections)
        self.backup_storage.check_root()
        if strategy is not BackupStrategy.META_ONLY:
            self.milvus_storage.check_root()
        with self.milvus_factory(self.milvus) as cluster:
            runner = BackupRunner(
                cluster=cluster,
                snapshotter=self.snapshotter,
                copier=self.copier,
                milvus_storage=self.milvus_storage,
                repository=self.repository,
                pause_gc=self.pause_gc,
                gc_pause_seconds=self.gc_pause_seconds,
                lock_stale_after=self.lock_stale_after,
            )
            rbac_meta = read_rbac(cluster).to_json() if rbac else None
            return runner.run(
                name, selection, strategy, progress=progress, resume=resume, rbac_meta=rbac_meta
            )

    def list_backups(self) -> BackupList:
        """Summaries of every complete backup in the backup root, by name.

        A :class:`BackupList` is a ``list`` of :class:`BackupSummary`; it also renders as a table in
        notebooks and converts to a pandas DataFrame (:meth:`BackupList.to_dataframe`).
        """
        return BackupList(self.repository.summary(n) for n in self.repository.names())

    def get_backup(self, name: str) -> BackupInfo:
        """The full description of backup ``name``; raises :class:`BackupNotFoundError`."""
        return self.repository.read(validate_backup_name(name))

    def delete_backup(self, name: str) -> None:
        """Delete backup ``name``, or the leftovers of an interrupted one (which is never listed).

        Raises :class:`BackupNotFoundError` if nothing is stored under that name.
        """
        validate_backup_name(name)
        with BackupLock(self.backup_storage, name, stale_after=self.lock_stale_after):
            if not self.repository.exists(name) and not self.repository.has_objects(name):
                raise BackupNotFoundError(name, self.backup_storage.url)
            self.repository.delete(name)

    def verify_backup(self, name: str, level: str = "size") -> VerifyReport:
        """Check backup ``name`` against its manifest: ``exists``, ``size`` (default) or ``checksum``.

        Returns a report naming every missing, short or corrupt file (and missing meta files); raises
        :class:`BackupNotFoundError` if there is no such backup. Backups without recorded checksums
        (made by the Go tool) verify at size level, which the report says.
        """
        return verify_backup(self.repository, validate_backup_name(name), level)

    # -- restore ------------------------------------------------------------------------------------

    def plan_restore(self, name: str, options: RestoreOptions | None = None) -> RestorePlan:
        """The plan :meth:`restore` would run, checked against the target server; changes nothing."""
        options = options or RestoreOptions()
        backup = self.get_backup(name)
        with self.milvus_factory(self.milvus) as cluster:
            plan = self.planner.plan(backup, options, read_target_state(cluster, backup, options))
            self._executor(cluster, options).preflight(plan, backup)
            return plan

    def restore(
        self,
        name: str,
        options: RestoreOptions | None = None,
        progress: Progress | None = None,
    ) -> RestoreReport:
        """Restore backup ``name`` into this client's Milvus.

        Every conflict (existing targets, flags that contradict, two sources on one target, aliases
        that point elsewhere) is reported at once, before anything changes, as :class:`RestorePlanError`.
        Each import's row count is checked against the backup; a shortfall raises
        :class:`ImportFailedError`. With ``options.dry_run`` the plan is returned and nothing changes.
        """
        options = options or RestoreOptions()
        progress = progress or NULL_PROGRESS
        started = time.monotonic()
        backup = self.get_backup(name)
        if options.check_backup != "none":
            progress.phase("verify", f"{name} ({options.check_backup})")
            level = "exists" if options.meta_only else options.check_backup
            check = verify_backup(self.repository, name, level, info=backup)  # the manifest just read
            if not check.ok and not (options.meta_only and not check.meta_problems):
                raise BackupCorruptError(name, check.problems())
        with self.milvus_factory(self.milvus) as cluster:
            progress.phase("plan", name)
            plan = self.planner.plan(backup, options, read_target_state(cluster, backup, options))
            executor = self._executor(cluster, options)
            executor.preflight(plan, backup)  # what this server cannot do is refused even on a dry run
            if options.dry_run:
                return RestoreReport(
                    backup_name=name, plan=plan, dry_run=True, seconds=time.monotonic() - started
                )
            if any(c.imports for c in plan.collections):
                self.milvus_storage.check_root()
            return executor.run(plan, backup, progress)

    def _executor(self, cluster: MilvusCluster, options: RestoreOptions) -> RestoreExecutor:
        return RestoreExecutor(
            cluster,
            self.milvus_storage,
            self.backup_storage,
            copier=self.copier,
            keep_staged=options.keep_staged,
        )

    def restore_rbac(self, name: str, user_passwords: Mapping[str, str] | None = None) -> RbacRestoreReport:
        """Create the users, roles, grants and user roles of backup ``name`` that the server lacks.

        Only what is missing is added; what exists is left as it is, and the built-in ``root``,
        ``admin`` and ``public`` are never created. A backup holds no passwords: a missing user is
        created only with a password from ``user_passwords`` (user name to password), and reported
        as skipped otherwise. Raises :class:`RestorePlanError` when the backup was made without
        ``rbac=True`` or ``user_passwords`` names a user it does not hold (nothing changed then).
        """
        backup = self.get_backup(name)
        if backup.rbac_meta is None:
            raise RestorePlanError(
                [f"backup {name!r} holds no users, roles or grants: made without rbac=True"]
            )
        meta = RbacMeta.from_json(backup.rbac_meta)
        with self.milvus_factory(self.milvus) as cluster:
            return restore_rbac(cluster, meta, user_passwords, backup_name=name)
