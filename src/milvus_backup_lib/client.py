"""``BackupClient``: the facade users call. It wires the parts together and holds no orchestration.

Arguments are checked by :mod:`milvus_backup_lib._facade` (restore options by
:func:`~milvus_backup_lib.restore.options.restore_options`); backups run in
:class:`~milvus_backup_lib.backup.runner.BackupRunner`, restores in
:class:`~milvus_backup_lib.restore.runner.RestoreRunner`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from milvus_backup_lib import _facade as facade
from milvus_backup_lib.backup.copier import FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.plan import BackupPlan
from milvus_backup_lib.backup.runner import BackupReport, BackupRunner, default_backup_name
from milvus_backup_lib.backup.snapshot import ListingSnapshotter, MetadataSnapshotter
from milvus_backup_lib.errors import RestorePlanError
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.grpc import open_milvus
from milvus_backup_lib.milvus.protocol import MilvusCluster, MilvusFactory
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection
from milvus_backup_lib.progress import Progress
from milvus_backup_lib.rbac import RbacMeta, RbacRestoreReport, read_rbac, restore_rbac
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER
from milvus_backup_lib.repository.store import BackupList, BackupRepository
from milvus_backup_lib.repository.unfinished import UnfinishedList, list_unfinished
from milvus_backup_lib.repository.verify import VerifyReport, verify_backup
from milvus_backup_lib.restore.executor import RestoreReport
from milvus_backup_lib.restore.options import RestoreKeywords, RestoreOptions, restore_options
from milvus_backup_lib.restore.plan import RestorePlan
from milvus_backup_lib.restore.planner import DefaultRestorePlanner, RestorePlanner
from milvus_backup_lib.restore.runner import RestoreRunner, check_backup
from milvus_backup_lib.storage.layout import validate_backup_name
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["BackupClient", "BackupReport", "default_backup_name"]


class BackupClient(facade.Closable):
    """Back up and restore Milvus collections to and from any fsspec storage.

    ``BackupClient(uri="http://host:19530", token=..., milvus_storage="s3://bucket/files",
    backup_storage="file:///srv/backups")``: ``uri``, ``token``, ``user``, ``password``,
    ``management_url`` and ``timeout`` build the :class:`MilvusConnection` (or pass one as ``milvus``,
    not both). ``milvus_storage`` is where the cluster keeps its binlogs (its ``minio.rootPath`` in its
    bucket, or its local data directory), ``backup_storage`` the backup root: each a URL, a local path,
    or a :class:`StorageLocation` (needed for storage options such as credentials).

    The parts can be replaced: ``snapshotter`` (reads the cluster's collections, default
    :class:`ListingSnapshotter`), ``copier`` (moves binlogs, default :class:`FsspecCopier`), ``planner``
    (plans restores, default :class:`DefaultRestorePlanner`) and ``milvus_factory`` (opens the cluster
    ``milvus`` names, default :func:`~milvus_backup_lib.milvus.grpc.open_milvus` over gRPC).

    Each call opens its own connection to Milvus and closes it; :meth:`close` (or leaving a ``with``
    block) ends the client, after which every call raises :class:`UsageError`. A value that cannot be
    used raises :class:`InvalidOptionError` listing the valid choices, here and in every method.
    """

    def __init__(
        self,
        milvus: MilvusConnection | str | None = None,
        milvus_storage: StorageLocation | str | os.PathLike[str] | None = None,
        backup_storage: StorageLocation | str | os.PathLike[str] | None = None,
        *,
        uri: str | None = None,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        management_url: str | None = None,
        timeout: float | None = None,
        snapshotter: MetadataSnapshotter | None = None,
        copier: SegmentCopier | None = None,
        planner: RestorePlanner | None = None,
        milvus_factory: MilvusFactory | None = None,
        pause_gc: bool = True,
        gc_pause_seconds: int = 3600,
        flush_timeout: float = 600.0,
        lock_stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        self.milvus = facade.milvus_connection(milvus, uri, token, user, password, management_url, timeout)
        self.milvus_storage = facade.storage_location("milvus_storage", milvus_storage)
        self.backup_storage = facade.storage_location("backup_storage", backup_storage)
        self.pause_gc = facade.check_bool("pause_gc", pause_gc)
        self.gc_pause_seconds = int(facade.check_seconds("gc_pause_seconds", gc_pause_seconds, whole=True))
        self.lock_stale_after = facade.check_seconds("lock_stale_after", lock_stale_after)
        self.snapshotter: MetadataSnapshotter = snapshotter or ListingSnapshotter(
            self.milvus_storage, flush_timeout=facade.check_seconds("flush_timeout", flush_timeout)
        )
        self.copier: SegmentCopier = copier or FsspecCopier()
        self.planner: RestorePlanner = planner or DefaultRestorePlanner()
        self.milvus_factory: MilvusFactory = milvus_factory or open_milvus
        self.repository = BackupRepository(self.backup_storage)

    def __repr__(self) -> str:
        return (
            f"BackupClient(milvus={self.milvus!r}, milvus_storage={self.milvus_storage!r}, "
            f"backup_storage={self.backup_storage!r}{', closed' if self.closed else ''})"
        )

    def _cluster(self) -> AbstractContextManager[MilvusCluster]:
        self._check_open()
        return self.milvus_factory(self.milvus)

    def _runner(self, cluster: MilvusCluster) -> BackupRunner:
        return BackupRunner(
            cluster=cluster,
            snapshotter=self.snapshotter,
            copier=self.copier,
            milvus_storage=self.milvus_storage,
            repository=self.repository,
            pause_gc=self.pause_gc,
            gc_pause_seconds=self.gc_pause_seconds,
            lock_stale_after=self.lock_stale_after,
        )

    # -- backups ----------------------------------------------------------------------------------

    def create_backup(
        self,
        name: str | None = None,
        collections: Iterable[str] | str | None = None,
        *,
        strategy: BackupStrategy | str = BackupStrategy.SERIAL_FLUSH,
        progress: Progress | None = None,
        resume: bool = False,
        rbac: bool = False,
    ) -> BackupReport:
        """Back up the selected collections (``None``: every collection of every database).

        ``resume=True`` finishes a backup of that name that was interrupted (a crash, a lost network):
        binlogs already stored whole (same size and MD5 as the source) are not copied again, and
        :attr:`BackupReport.resumed_bytes` says how much was saved. A failed backup keeps what it
        wrote for that purpose; it is never listed as a backup (:meth:`list_unfinished` shows it), and
        ``delete_backup`` removes it.

        ``collections`` entries are ``db.coll``, ``coll`` (default database) or ``db.*``. Raises
        :class:`InvalidNameError`, :class:`InvalidOptionError`, :class:`BackupExistsError`,
        :class:`DatabaseNotFoundError`, :class:`CollectionNotFoundError`, :class:`MilvusConnectionError`,
        :class:`StorageRootNotFoundError` before anything is written.

        ``rbac=True`` also records the server's users (never their passwords), roles and grants in
        ``rbac_meta``; :meth:`restore_rbac` restores them. It needs a user allowed to read them.
        """
        name, selection, strategy = self._backup_args(name, collections, strategy, resume=resume, rbac=rbac)
        progress = facade.progress_of(progress)
        with self._cluster() as cluster:
            rbac_meta = read_rbac(cluster).to_json() if rbac else None
            return self._runner(cluster).run(
                name, selection, strategy, progress=progress, resume=resume, rbac_meta=rbac_meta
            )

    def plan_backup(
        self,
        name: str | None = None,
        collections: Iterable[str] | str | None = None,
        *,
        strategy: BackupStrategy | str = BackupStrategy.SERIAL_FLUSH,
        resume: bool = False,
        progress: Progress | None = None,
    ) -> BackupPlan:
        """What :meth:`create_backup` with these arguments would back up now: collections, segments,
        binlog files and bytes, per collection too; it refuses what ``create_backup`` would refuse.

        Nothing is flushed, copied, locked or written: the numbers are those of the segments flushed
        now (with ``serial_flush`` the backup flushes first, so rows inserted since are not counted;
        :attr:`BackupPlan.note` says so).
        """
        name, selection, strategy = self._backup_args(name, collections, strategy, resume=resume)
        progress = facade.progress_of(progress)
        with self._cluster() as cluster:
            return self._runner(cluster).plan(name, selection, strategy, progress=progress, resume=resume)

    def _backup_args(
        self, name: str | None, collections: object, strategy: object, **flags: object
    ) -> tuple[str, CollectionFilter, BackupStrategy]:
        self._check_open()
        storages = (self.milvus_storage, self.backup_storage)
        return facade.backup_arguments(name, collections, strategy, storages, **flags)

    def list_unfinished(self) -> UnfinishedList:
        """The unfinished backups: directories of the backup root that hold objects but no
        ``meta/backup_meta.json`` (a failed or interrupted backup, one being written now, one half
        deleted), with their size in bytes and age. :meth:`list_backups` never lists them;
        ``create_backup(name, resume=True)`` finishes one and :meth:`delete_backup` removes it.
        """
        self._check_open()
        return list_unfinished(self.repository)

    def list_backups(self) -> BackupList:
        """Summaries of every complete backup in the backup root, by name.

        A :class:`BackupList` is a ``list`` of :class:`BackupSummary`; it also renders as a table in
        notebooks and converts to a pandas DataFrame (:meth:`BackupList.to_dataframe`). A backup whose
        meta files cannot be read (empty, invalid, a format this library cannot read) is left out with a
        ``logging`` warning naming it; :meth:`list_unfinished` lists it with the reason, and
        :meth:`delete_backup` removes it. Names are the directories', never a manifest's ``name``.
        """
        self._check_open()
        return self.repository.summaries()

    def get_backup(self, name: str) -> BackupInfo:
        """The full description of backup ``name``; raises :class:`BackupNotFoundError`."""
        self._check_open()
        return self.repository.read(validate_backup_name(name))

    def delete_backup(self, name: str) -> None:
        """Delete backup ``name``, or what an unfinished one left (:meth:`list_unfinished`).

        Raises :class:`BackupNotFoundError` if nothing is stored under that name.
        """
        self._check_open()
        self.repository.delete_stored(name, stale_after=self.lock_stale_after)

    def verify_backup(self, name: str, level: str = "size") -> VerifyReport:
        """Check backup ``name`` against its manifest: ``exists``, ``size`` (default) or ``checksum``.

        Returns a report naming every missing, short or corrupt file (and missing meta files); raises
        :class:`BackupNotFoundError` if there is no such backup. Backups without recorded checksums
        (made by the Go tool) verify at size level, which the report says. Another ``level`` raises
        :class:`InvalidOptionError` listing these.
        """
        self._check_open()
        return verify_backup(self.repository, validate_backup_name(name), level)

    # -- restore ------------------------------------------------------------------------------------

    def plan_restore(
        self, name: str, options: RestoreOptions | None = None, **keywords: Unpack[RestoreKeywords]
    ) -> RestorePlan:
        """The plan :meth:`restore` would run, checked against the target server; changes nothing.

        The options are given as to :meth:`restore`.
        """
        options = restore_options(options, keywords)
        backup = self.get_backup(name)
        with self._cluster() as cluster:
            return self._restore_runner(cluster).plan(backup, options)

    def restore(
        self,
        name: str,
        options: RestoreOptions | None = None,
        *,
        progress: Progress | None = None,
        **keywords: Unpack[RestoreKeywords],
    ) -> RestoreReport:
        """Restore backup ``name`` into this client's Milvus.

        The options are either keywords, the fields of :class:`RestoreOptions` (``suffix="_bak"``,
        ``rename={"c1": "c2"}``, ``collections=["db1.*"]``, ``drop_existing=True``...), or one
        ``RestoreOptions`` record; both at once, an unknown keyword or a value that cannot be used
        raise :class:`InvalidOptionError` before anything is read.

        Every conflict (existing targets, flags that contradict, two sources on one target, aliases
        that point elsewhere) is reported at once, before anything changes, as :class:`RestorePlanError`.
        Each import's row count is checked against the backup; a shortfall raises
        :class:`ImportFailedError`. With ``dry_run`` the plan is returned and nothing changes.
        """
        options = restore_options(options, keywords)
        progress = facade.progress_of(progress)
        backup = self.get_backup(name)
        check_backup(self.repository, name, backup, options, progress)
        with self._cluster() as cluster:
            return self._restore_runner(cluster).run(name, backup, options, progress)

    def _restore_runner(self, cluster: MilvusCluster) -> RestoreRunner:
        return RestoreRunner(
            cluster=cluster,
            planner=self.planner,
            repository=self.repository,
            milvus_storage=self.milvus_storage,
            copier=self.copier,
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
        with self._cluster() as cluster:
            return restore_rbac(cluster, meta, user_passwords, backup_name=name)
