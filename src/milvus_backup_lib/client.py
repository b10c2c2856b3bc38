"""``BackupClient``: the facade users call."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import attrs

from milvus_backup_lib._html import (
    format_bytes,
    format_count,
    html_block,
    html_heading,
    html_key_values,
    text_key_values,
)
from milvus_backup_lib.backup.copier import CopyJob, FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.snapshot import PymilvusSnapshotter
from milvus_backup_lib.errors import (
    BackupCorruptError,
    BackupExistsError,
    RestorePlanError,
)
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    DatabaseBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_lib.milvus.gc import GcPause, GcPauseOutcome
from milvus_backup_lib.milvus.grpc import GrpcMilvus, open_milvus
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection, QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.rbac import RbacMeta, RbacRestoreReport, read_rbac, restore_rbac
from milvus_backup_lib.repository.checksum import compute_checksums
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.store import BackupList, BackupRepository, LibraryMeta
from milvus_backup_lib.repository.verify import VerifyReport, verify_backup
from milvus_backup_lib.restore.executor import RestoreExecutor, RestoreReport
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import RestorePlan, TargetState
from milvus_backup_lib.restore.planner import DefaultRestorePlanner, RestorePlanner
from milvus_backup_lib.storage.layout import (
    backup_delta_log_key,
    backup_insert_log_key,
    milvus_delta_log_prefix,
    milvus_insert_log_prefix,
    validate_backup_name,
)
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from urllib.parse import ParseResult

__all__ = ["BackupClient", "BackupReport", "default_backup_name"]

log = logging.getLogger(__name__)


def default_backup_name(now: dt.datetime | None = None) -> str:
    """``backup_YYYY_MM_DD_HH_MM_SS_<nanoseconds>`` in UTC, as the Go tool names backups."""
    now = now or dt.datetime.now(dt.timezone.utc)
    nanos = time.time_ns() % 1_000_000_000
    return now.strftime("backup_%Y_%m_%d_%H_%M_%S_") + str(nanos)


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
            ("server-side copy", "yes" if self.server_side_copy else "no"),
            ("GC", f"{gc}: {self.gc.note}" if self.gc.note else gc),
            ("seconds", f"{self.seconds:.1f} (copy {self.copy_seconds:.1f})"),
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


class BackupClient:
    """Back up and restore Milvus collections to and from any fsspec storage.

    ``milvus_storage`` is where the cluster keeps its binlogs (its ``minio.rootPath`` in its bucket,
    or its local data directory); ``backup_storage`` is the backup root.
    """

    def __init__(
        self,
        milvus: MilvusConnection,
        milvus_storage: StorageLocation,
        backup_storage: StorageLocation,
        *,
        copier: SegmentCopier | None = None,
        planner: RestorePlanner | None = None,
        pause_gc: bool = True,
        gc_pause_seconds: int = 3600,
        flush_timeout: float = 600.0,
        lock_stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        self.milvus = milvus
        self.milvus_storage = milvus_storage
        self.backup_storage = backup_storage
        self.copier: SegmentCopier = copier or FsspecCopier()
        self.planner: RestorePlanner = planner or DefaultRestorePlanner()
        self.pause_gc = pause_gc
        self.gc_pause_seconds = gc_pause_seconds
        self.flush_timeout = flush_timeout
        self.lock_stale_after = lock_stale_after
        self.repository = BackupRepository(backup_storage)

    def __repr__(self) -> str:
        return (
            f"BackupClient(milvus={self.milvus!r}, milvus_storage={self.milvus_storage!r}, "
            f"backup_storage={self.backup_storage!r})"
        )

    def _connect(self) -> AbstractContextManager[GrpcMilvus]:
        return open_milvus(self.milvus)

    def _management_url(self) -> str:
        if self.milvus.management_url:
            return self.milvus.management_url
        from urllib.parse import urlparse

        parsed: ParseResult = urlparse(
            self.milvus.uri if "://" in self.milvus.uri else f"http://{self.milvus.uri}"
        )
        scheme = "https" if parsed.scheme == "https" else "http"
        return f"{scheme}://{parsed.hostname or '127.0.0.1'}:9091"

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
        started = time.monotonic()
        name = validate_backup_name(name) if name is not None else default_backup_name()
        strategy = BackupStrategy(strategy)
        selection = CollectionFilter.parse(collections)
        self.backup_storage.check_root()
        if strategy is not BackupStrategy.META_ONLY:
            self.milvus_storage.check_root()
        with BackupLock(self.backup_storage, name, stale_after=self.lock_stale_after):
            # Held until backup_meta.json is written: a second writer of this name gets
            # BackupLockedError instead of interleaving its files with ours.
            if self.repository.exists(name):
                raise BackupExistsError(name, self.backup_storage.url)
            if self.repository.has_objects(name) and not resume:
                raise BackupExistsError(
                    name,
                    self.backup_storage.url,
                    "an unfinished backup of that name is stored there (an interrupted run?): pass "
                    "resume=True to finish it, or delete_backup() to remove it",
                )

            with self._connect() as milvus:
                rbac_meta = read_rbac(milvus).to_json() if rbac else None
                snapshotter = PymilvusSnapshotter(
                    milvus, self.milvus_storage, flush_timeout=self.flush_timeout
                )
                written = False
                try:
                    with self._gc_pause(strategy) as gc:
                        progress.phase(
                            "snapshot",
                            "reading collections"
                            + ("" if strategy is BackupStrategy.META_ONLY else ", flushing"),
                        )
                        snap = snapshotter.snapshot(selection, strategy, progress)
                        collections_meta, jobs = self._plan_copy(name, snap.collections)
                        all_jobs = list(jobs)
                        progress.phase("copy", f"{len(jobs)} files")
                        written = bool(jobs)
                        resumed: dict[str, str] = {}
                        resumed_bytes = 0
                        if resume:
                            progress.phase("resume", "checking what an earlier run stored")
                            jobs, resumed = self._already_stored(name, jobs)
                            resumed_bytes = sum(j.size for j in all_jobs if j.destination in resumed)
                        copy_started = time.monotonic()
                        result = self.copier.copy(self.milvus_storage, self.backup_storage, jobs, progress)
                        copy_seconds = time.monotonic() - copy_started
                        # Checksums of what was written: streamed copies brought theirs; the rest come
                        # from the store's own MD5 where it keeps one, else from reading the copy.
                        checksum_started = time.monotonic()
                        unsummed = [j.destination for j in jobs if j.destination not in result.checksums]
                        progress.phase("checksum", f"{len(unsummed)} files")
                        sums = {
                            **resumed,
                            **result.checksums,
                            **compute_checksums(self.backup_storage, unsummed),
                        }
                        jobs = all_jobs
                        checksum_seconds = time.monotonic() - checksum_started
                        gc_outcome = gc.outcome
                    info = BackupInfo(
                        id=str(uuid.uuid4()),
                        state_code=0,
                        name=name,
                        collection_backups=tuple(collections_meta),
                        size=sum(c.size for c in collections_meta),
                        milvus_version=snap.milvus_version,
                        database_backups=tuple(DatabaseBackupInfo(db_name=db) for db in snap.databases),
                        rbac_meta=rbac_meta,
                    )
                    library_meta = LibraryMeta(
                        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        strategy=strategy.value,
                        gc_paused=gc_outcome.paused,
                        gc_note=gc_outcome.note,
                        files={
                            self.backup_storage.relative(j.destination).split("/", 1)[1]: j.size for j in jobs
                        },
                        checksums={
                            self.backup_storage.relative(path).split("/", 1)[1]: digest
                            for path, digest in sums.items()
                        },
                    )
                    progress.phase("meta", name)
                    written = True
                    self.repository.write_manifest(info, library_meta)
                except BaseException:
                    if written:
                        # Kept for create_backup(resume=True); without backup_meta.json it is never listed.
                        log.warning("backup %s failed; its partial files are kept for resume=True", name)
                    raise
            return BackupReport(
                name=name,
                info=info,
                strategy=strategy,
                files=result.files,
                bytes_copied=result.bytes_copied,
                server_side_copy=result.server_side,
                gc=gc_outcome,
                seconds=time.monotonic() - started,
                copy_seconds=copy_seconds,
                checksum_seconds=checksum_seconds,
                resumed_files=len(resumed),
                resumed_bytes=resumed_bytes,
            )

    def _already_stored(self, name: str, jobs: list[CopyJob]) -> tuple[list[CopyJob], dict[str, str]]:
        """Split ``jobs`` into those still to copy and those stored whole by an earlier run.

        A stored file counts only with the source's size and the same MD5 as the source (both read);
        binlogs under the backup that the new snapshot no longer lists (segments compacted away
        meanwhile) are removed so the finished backup holds exactly its manifest.
        """
        from milvus_backup_lib.repository.checksum import md5_of
        from milvus_backup_lib.repository.verify import stored_files

        stored = stored_files(self.backup_storage, name)
        wanted = {self.backup_storage.relative(j.destination).split("/", 1)[1]: j for j in jobs}
        for rel in set(stored) - set(wanted):
            with contextlib.suppress(FileNotFoundError):
                self.backup_storage.fs.rm_file(self.backup_storage.join(name, rel))
        candidates = [j for rel, j in wanted.items() if stored.get(rel) == j.size]

        def same(job: CopyJob) -> tuple[CopyJob, str | None]:
            theirs = md5_of(self.milvus_storage, job.source)
            ours = md5_of(self.backup_storage, job.destination)
            return job, ours if ours == theirs else None

        done: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="resume") as pool:
            for job, digest in pool.map(same, candidates):
                if digest is not None:
                    done[job.destination] = digest
        return [j for j in jobs if j.destination not in done], done

    @contextmanager
    def _gc_pause(self, strategy: BackupStrategy) -> Iterator[GcPause]:
        pause = GcPause(self._management_url(), self.gc_pause_seconds)
        if not self.pause_gc or strategy is BackupStrategy.META_ONLY:
            pause.outcome = GcPauseOutcome(False, "not requested" if not self.pause_gc else "no data copied")
            yield pause
            return
        with pause:
            yield pause

    def _plan_copy(
        self, name: str, collections: Iterable[CollectionBackupInfo]
    ) -> tuple[list[CollectionBackupInfo], list[CopyJob]]:
        """Copy jobs for every binlog; sizes come from the source listing."""
        jobs: list[CopyJob] = []
        src, dst = self.milvus_storage, self.backup_storage

        def segment_jobs(seg: SegmentBackupInfo) -> None:
            c, p, s, g = seg.collection_id, seg.partition_id, seg.segment_id, seg.group_id
            for fb in seg.binlogs:
                for b in fb.binlogs:
                    jobs.append(
                        CopyJob(
                            source=src.join(
                                milvus_insert_log_prefix(c, p, s), str(fb.field_id), str(b.log_id)
                            ),
                            destination=dst.join(
                                name, backup_insert_log_key(c, p, g, s, fb.field_id, b.log_id)
                            ),
                            size=b.log_size,
                        )
                    )
            for fb in seg.deltalogs:
                for b in fb.binlogs:
                    jobs.append(
                        CopyJob(
                            source=src.join(milvus_delta_log_prefix(c, p, s), str(b.log_id)),
                            destination=dst.join(name, backup_delta_log_key(c, p, g, s, b.log_id)),
                            size=b.log_size,
                        )
                    )

        for coll in collections:
            for part in coll.partition_backups:
                for seg in part.segment_backups:
                    segment_jobs(seg)
            for seg in coll.l0_segments:
                segment_jobs(seg)
        return list(collections), jobs

    # -- restore ------------------------------------------------------------------------------------

    def plan_restore(self, name: str, options: RestoreOptions | None = None) -> RestorePlan:
        """The plan :meth:`restore` would run, checked against the target server; changes nothing."""
        options = options or RestoreOptions()
        backup = self.get_backup(name)
        with self._connect() as milvus:
            plan = self.planner.plan(backup, options, self._target_state(milvus, backup, options))
            RestoreExecutor(milvus, self.milvus_storage, self.backup_storage).preflight(plan, backup)
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
        with self._connect() as milvus:
            progress.phase("plan", name)
            plan = self.planner.plan(backup, options, self._target_state(milvus, backup, options))
            executor = RestoreExecutor(
                milvus,
                self.milvus_storage,
                self.backup_storage,
                copier=self.copier,
                keep_staged=options.keep_staged,
            )
            executor.preflight(plan, backup)  # what this server cannot do is refused even on a dry run
            if options.dry_run:
                return RestoreReport(
                    backup_name=name, plan=plan, dry_run=True, seconds=time.monotonic() - started
                )
            if any(c.imports for c in plan.collections):
                self.milvus_storage.check_root()
            return executor.run(plan, backup, progress)

    def _target_state(self, milvus: GrpcMilvus, backup: BackupInfo, options: RestoreOptions) -> TargetState:
        """What exists on the target server, as far as the restore of ``backup`` is concerned."""
        databases = milvus.list_databases()
        targets = {
            options.target_name(QualifiedName(c.db_name or "default", c.collection_name))
            for c in backup.collection_backups
        }
        collections: set[QualifiedName] = set()
        aliases: dict[tuple[str, str], str] = {}
        indexed: set[QualifiedName] = set()
        for db in sorted({t.database for t in targets} & set(databases)):
            for coll in milvus.list_collections(db):
                qn = QualifiedName(db, coll)
                collections.add(qn)
                for alias in milvus.list_aliases(db, coll):
                    aliases[(db, alias)] = coll
                if qn in targets and milvus.describe_indexes(db, coll):
                    indexed.add(qn)
        return TargetState(
            databases=frozenset(databases),
            collections=frozenset(collections),
            aliases=aliases,
            indexed=frozenset(indexed),
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
        with self._connect() as milvus:
            return restore_rbac(milvus, meta, user_passwords, backup_name=name)

    def verify_backup(self, name: str, level: str = "size") -> VerifyReport:
        """Check backup ``name`` against its manifest: ``exists``, ``size`` (default) or ``checksum``.

        Returns a report naming every missing, short or corrupt file (and missing meta files); raises
        :class:`BackupNotFoundError` if there is no such backup. Backups without recorded checksums
        (made by the Go tool) verify at size level, which the report says.
        """
        return verify_backup(self.repository, validate_backup_name(name), level)

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
                from milvus_backup_lib.errors import BackupNotFoundError

                raise BackupNotFoundError(name, self.backup_storage.url)
            self.repository.delete(name)


# Re-exported for type checkers of callers that build reports by hand.
