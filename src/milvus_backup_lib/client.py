"""``BackupClient``: the facade users call. It wires the parts together and holds no orchestration:
arguments are checked in :mod:`milvus_backup_lib._facade`, backups run in ``backup.runner.BackupRunner``,
restores in ``restore.runner.RestoreRunner``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from milvus_backup_lib import _facade as facade
from milvus_backup_lib._backup_facade import BackupMixin
from milvus_backup_lib._retention_facade import RetentionMixin
from milvus_backup_lib.backup.copier import FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.plan import BackupPlan
from milvus_backup_lib.backup.runner import BackupReport, BackupRunner, default_backup_name
from milvus_backup_lib.backup.snapshot import ListingSnapshotter, MetadataSnapshotter
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.gc import PauseGc
from milvus_backup_lib.milvus.grpc import open_milvus
from milvus_backup_lib.milvus.protocol import MilvusCluster, MilvusFactory
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection
from milvus_backup_lib.progress import Progress
from milvus_backup_lib.rbac import RbacRestoreReport, backed_up_rbac, restore_rbac
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


@facade.only_library_errors
class BackupClient(BackupMixin, RetentionMixin):
    """Back up and restore Milvus collections to and from any fsspec storage.

    ``BackupClient(uri="http://host:19530", token=..., milvus_storage="s3://bucket/files",
    backup_storage="file:///srv/backups")``: ``uri``, ``token``, ``user``, ``password``,
    ``management_url`` and ``timeout`` build the :class:`MilvusConnection` (or pass one as ``milvus``).
    ``milvus_storage`` is where the cluster keeps its binlogs (its bucket's ``minio.rootPath``, or its local
    data directory; None for ``strategy="logical"`` backups and for restores by inserts, e.g. into Milvus
    Lite), ``backup_storage`` the backup root (URL, path, location).

    Replaceable parts: ``snapshotter`` (default :class:`ListingSnapshotter`), ``copier``
    (:class:`FsspecCopier`), ``planner`` (:class:`DefaultRestorePlanner`) and ``milvus_factory``
    (:func:`~milvus_backup_lib.milvus.grpc.open_milvus`: gRPC). :meth:`create_backup` (full, incremental or
    logical) is in :class:`BackupMixin`; :meth:`prune`, :meth:`delete_backup` and :meth:`materialize` in
    :class:`RetentionMixin`. Each call opens and closes its own
    connection; after :meth:`close` (or a ``with`` block) every call raises :class:`UsageError`. A value
    that cannot be used raises :class:`InvalidOptionError` listing the valid choices.
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
        pause_gc: PauseGc = "auto",
        gc_pause_seconds: int = 3600,
        flush_timeout: float = 600.0,
        lock_stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        self.milvus = facade.milvus_connection(milvus, uri, token, user, password, management_url, timeout)
        self.milvus_storage = facade.storage_location("milvus_storage", milvus_storage, optional=True)
        self.backup_storage = facade.storage_location("backup_storage", backup_storage)
        self.pause_gc = facade.check_pause_gc(pause_gc)
        self.gc_pause_seconds = int(facade.check_seconds("gc_pause_seconds", gc_pause_seconds, whole=True))
        self.lock_stale_after = facade.check_seconds("lock_stale_after", lock_stale_after)
        flush_timeout = facade.check_seconds("flush_timeout", flush_timeout)
        self.snapshotter: MetadataSnapshotter = snapshotter or ListingSnapshotter(
            self.milvus_storage, flush_timeout=flush_timeout
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

    def _backup_runner(self, cluster: MilvusCluster) -> BackupRunner:
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

    def _restore_runner(self, cluster: MilvusCluster) -> RestoreRunner:
        return RestoreRunner(
            cluster=cluster,
            planner=self.planner,
            repository=self.repository,
            milvus_storage=self.milvus_storage,
            copier=self.copier,
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
        """What :meth:`create_backup` would back up now (collections, segments, files, bytes); nothing
        is flushed, copied, locked or written, so rows not yet flushed are not counted (the note says so)."""
        name, selection, strategy = self._backup_args(name, collections, strategy, resume=resume)
        progress = facade.progress_of(progress)
        with self._cluster() as cluster:
            return self._backup_runner(cluster).plan(
                name, selection, strategy, progress=progress, resume=resume
            )

    def _backup_args(
        self, name: str | None, collections: object, strategy: object, **flags: object
    ) -> tuple[str, CollectionFilter, BackupStrategy]:
        self._check_open()
        storages = (self.milvus_storage, self.backup_storage)
        return facade.backup_arguments(name, collections, strategy, storages, **flags)

    def list_unfinished(self) -> UnfinishedList:
        """Directories of the backup root that are not complete, readable backups (failed, interrupted,
        being written, damaged), with size, age and the problem; :meth:`delete_backup` removes one."""
        self._check_open()
        return list_unfinished(self.repository)

    def list_backups(self) -> BackupList:
        """Summaries (a :class:`BackupList`: a table in notebooks, :meth:`~BackupList.to_dataframe`) of every
        complete backup, named by directory. One whose meta cannot be read is left out with a warning."""
        self._check_open()
        return self.repository.summaries()

    def get_backup(self, name: str) -> BackupInfo:
        """The full description of backup ``name``; raises :class:`BackupNotFoundError`."""
        self._check_open()
        return self.repository.read(validate_backup_name(name))

    def verify_backup(self, name: str, level: str = "size") -> VerifyReport:
        """Check backup ``name`` at level ``exists``, ``size`` or ``checksum`` (size level for backups without
        checksums, such as the Go tool's); the report names every missing, short or corrupt file."""
        self._check_open()
        return verify_backup(self.repository, validate_backup_name(name), level)

    def plan_restore(
        self, name: str, options: RestoreOptions | None = None, **keywords: Unpack[RestoreKeywords]
    ) -> RestorePlan:
        """The plan :meth:`restore` (same options) would run, checked against the target; changes nothing."""
        options = restore_options(options, keywords)
        backup = self.get_backup(name)
        library = self.repository.read_library_meta(name)
        with self._cluster() as cluster:
            return self._restore_runner(cluster).plan(backup, library, options)

    def restore(
        self,
        name: str,
        options: RestoreOptions | None = None,
        *,
        progress: Progress | None = None,
        **keywords: Unpack[RestoreKeywords],
    ) -> RestoreReport:
        """Restore backup ``name`` into this client's Milvus.

        Options are keywords, the fields of :class:`RestoreOptions` (``suffix="_bak"``, ``rename=...``,
        ``drop_existing=True``...), or one ``RestoreOptions``; a bad value raises :class:`InvalidOptionError`.
        Every conflict is raised at once, before any change, as :class:`RestorePlanError`; an import
        that brings fewer rows than the backup holds raises :class:`ImportFailedError`. With
        ``dry_run`` only the plan is returned.
        """
        options = restore_options(options, keywords)
        progress = facade.progress_of(progress)
        backup = self.get_backup(name)
        library = self.repository.read_library_meta(name)  # read once: the check, plan and run share it
        check_backup(self.repository, name, backup, library, options, progress)
        with self._cluster() as cluster:
            return self._restore_runner(cluster).run(name, backup, library, options, progress)

    def restore_rbac(self, name: str, user_passwords: Mapping[str, str] | None = None) -> RbacRestoreReport:
        """Create the users, roles, grants and user roles of backup ``name`` that the server lacks.

        What exists is left alone; ``root``, ``admin`` and ``public`` are never created. A backup holds
        no passwords: a missing user is created only with one from ``user_passwords``, else skipped.
        Raises :class:`RestorePlanError` (nothing changed) for a backup made without ``rbac=True``.
        """
        meta = backed_up_rbac(self.get_backup(name))
        with self._cluster() as cluster:
            return restore_rbac(cluster, meta, user_passwords, backup_name=name)
