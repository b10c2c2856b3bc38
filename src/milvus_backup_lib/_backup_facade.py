"""``BackupClient.create_backup``: full and incremental backups, a thin call into
:class:`~milvus_backup_lib.backup.runner.BackupRunner` (the reuse rule is in
:mod:`milvus_backup_lib.backup.incremental`)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager

from milvus_backup_lib import _facade as facade
from milvus_backup_lib.backup.incremental import Base, resolve_base
from milvus_backup_lib.backup.logical import need_milvus_storage
from milvus_backup_lib.backup.report import BackupReport
from milvus_backup_lib.backup.runner import BackupRunner
from milvus_backup_lib.errors import InvalidOptionError, InvalidOptionTypeError
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import BackupStrategy, CollectionFilter
from milvus_backup_lib.progress import Progress
from milvus_backup_lib.rbac import read_rbac
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["BackupMixin"]


@facade.only_library_errors
class BackupMixin(facade.Closable):
    """The backup half of :class:`BackupClient`."""

    repository: BackupRepository
    milvus_storage: StorageLocation | None

    def _cluster(self) -> AbstractContextManager[MilvusCluster]:
        raise NotImplementedError

    def _backup_runner(self, cluster: MilvusCluster) -> BackupRunner:
        raise NotImplementedError

    def _backup_args(
        self, name: str | None, collections: object, strategy: object, **flags: object
    ) -> tuple[str, CollectionFilter, BackupStrategy]:
        raise NotImplementedError

    def create_backup(
        self,
        name: str | None = None,
        collections: Iterable[str] | str | None = None,
        *,
        strategy: BackupStrategy | str = BackupStrategy.SERIAL_FLUSH,
        progress: Progress | None = None,
        resume: bool = False,
        rbac: bool = False,
        base: str | None = None,
        self_contained: bool = False,
    ) -> BackupReport:
        """Back up the selected collections (``None``: every collection of every database).

        ``collections`` entries are ``db.coll``, ``coll`` (default database) or ``db.*``.
        ``strategy="logical"`` reads rows by query into Parquet (no ``milvus_storage``; loaded
        collections; never incremental). A failed backup keeps what it wrote (never listed; :meth:`list_unfinished` shows it): ``resume=True``
        finishes it without copying again the binlogs stored whole (same size and MD5 as the source).
        ``rbac=True`` also records users (never passwords), roles and grants for :meth:`restore_rbac`.

        ``base="nightly_01"`` (or ``"latest"``: the newest complete backup of the same cluster storage
        and root) makes an incremental backup: the segment directories ``base`` already stores are
        referenced, not copied (see docs/incremental.md). The Go tool reads only self-contained
        backups: ``self_contained=True`` copies those files from the base's store instead.

        Raises :class:`InvalidNameError`, :class:`InvalidOptionError`, :class:`BackupExistsError`,
        :class:`IncrementalBaseError`, :class:`DatabaseNotFoundError`, :class:`CollectionNotFoundError`,
        :class:`MilvusConnectionError` or :class:`StorageRootNotFoundError` before anything is written.
        """
        name, selection, strategy = self._backup_args(
            name, collections, strategy, resume=resume, rbac=rbac, self_contained=self_contained
        )
        progress = facade.progress_of(progress)
        if base is not None and strategy is BackupStrategy.LOGICAL:
            raise InvalidOptionError(
                "base", base, "None", detail='for strategy="logical" (it reads every row; make a full one)'
            )
        base_backup = self._base(base)
        with self._cluster() as cluster:
            rbac_meta = read_rbac(cluster).to_json() if rbac else None
            return self._backup_runner(cluster).run(
                name,
                selection,
                strategy,
                progress=progress,
                resume=resume,
                rbac_meta=rbac_meta,
                base=base_backup,
                self_contained=self_contained,
            )

    def _base(self, base: object) -> Base | None:
        if base is None:
            return None
        if not isinstance(base, str):
            raise InvalidOptionTypeError("base", base, ("a backup name", "latest", None))
        return resolve_base(
            self.repository, base, need_milvus_storage(self.milvus_storage, "an incremental backup")
        )
