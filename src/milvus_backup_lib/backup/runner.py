"""The backup runner: the steps of one backup, in order, and what it reports.

1. take the write lock on the backup name (a second writer gets :class:`BackupLockedError`);
2. refuse a name already taken (or unfinished, unless resuming);
3. check that the named collections exist, then pause garbage collection (unless ``meta_only`` or
   ``pause_gc=False``; with the default ``"auto"`` a server that cannot pause it is recorded and
   the backup goes on);
4. snapshot the selected collections (flushing them with ``serial_flush``);
5. copy every binlog the snapshot lists (with ``resume``: only those not already stored whole);
6. record each copy's checksum;
7. commit: write the manifest, ``backup_meta.json`` last.

The lock is a lease with a fencing token: between copy batches the runner checks it was not lost, and
right before the commit it proves it still holds it (a conditional refresh); a writer that lost it
raises :class:`LockLostError` and writes nothing more.

A failed run keeps what it copied (for ``resume=True``); without ``backup_meta.json`` it is never listed.
:meth:`BackupRunner.plan` runs steps 2 and 4 only, without the flush, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, nullcontext

import attrs

from milvus_backup_lib.backup.copier import CopyJob, CopyResult, SegmentCopier
from milvus_backup_lib.backup.incremental import (
    Base,
    Reuse,
    missing_references,
    plan_reuse,
    recorded_base,
    repository_lock_waiting,
    source_record,
    unit_keys,
)
from milvus_backup_lib.backup.logical import LogicalWriter, need_milvus_storage
from milvus_backup_lib.backup.plan import BackupPlan, plan_from_snapshot
from milvus_backup_lib.backup.report import BackupReport
from milvus_backup_lib.backup.run_parts import Copied, NoPause, NoTotals, merge
from milvus_backup_lib.backup.snapshot import MetadataSnapshotter, resolve_collections
from milvus_backup_lib.backup.vanished import source_vanished as _source_vanished
from milvus_backup_lib.backup.vanished import vanished_advice as _vanished_advice
from milvus_backup_lib.errors import BackupExistsError, StorageError
from milvus_backup_lib.manifest.model import BackupInfo, DatabaseBackupInfo
from milvus_backup_lib.milvus.gc import AUTO, GcPause, GcPauseOutcome, PauseGc
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import BackupStrategy, CollectionFilter
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.repository.checksum import compute_checksums, md5_of
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.repository.verify import stored_files
from milvus_backup_lib.storage.layout import BinlogFile, binlog_files
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["COPY_BATCH_FILES", "BackupReport", "BackupRunner", "default_backup_name"]

log = logging.getLogger(__name__)

#: Files per copy batch: the lock is checked between batches, so a writer that lost it stops soon.
COPY_BATCH_FILES = 64


def default_backup_name(now: dt.datetime | None = None) -> str:
    """``backup_YYYY_MM_DD_HH_MM_SS_<nanoseconds>`` in UTC, as the Go tool names backups."""
    now = now or dt.datetime.now(dt.timezone.utc)
    nanos = time.time_ns() % 1_000_000_000
    return now.strftime("backup_%Y_%m_%d_%H_%M_%S_") + str(nanos)


@attrs.define(kw_only=True)
class BackupRunner:
    """Runs one backup: lock, GC pause, snapshot, copy, checksums, commit.

    ``snapshotter`` reads the collections of ``cluster`` (whose GC is paused meanwhile); ``copier`` moves
    their binlogs from ``milvus_storage`` into ``repository``.
    """

    cluster: MilvusCluster
    snapshotter: MetadataSnapshotter
    copier: SegmentCopier
    milvus_storage: StorageLocation | None
    repository: BackupRepository
    pause_gc: PauseGc = AUTO
    gc_pause_seconds: int = 3600
    lock_stale_after: float = DEFAULT_STALE_AFTER

    @property
    def backup_storage(self) -> StorageLocation:
        return self.repository.location

    @property
    def _source(self) -> StorageLocation:
        return need_milvus_storage(self.milvus_storage, "copying binlogs")

    def run(
        self,
        name: str,
        selection: CollectionFilter,
        strategy: BackupStrategy,
        *,
        progress: Progress = NULL_PROGRESS,
        resume: bool = False,
        rbac_meta: object = None,
        base: Base | None = None,
        self_contained: bool = False,
    ) -> BackupReport:
        """Back up ``selection`` as ``name``; ``rbac_meta`` is the JSON of the users, roles and grants.

        With ``base`` (resolved by :func:`~milvus_backup_lib.backup.incremental.resolve_base`) the
        binlogs it stores are referenced, not copied (``self_contained``: copied from its store)."""
        started = time.monotonic()
        logical = strategy is BackupStrategy.LOGICAL  # rows by query: the snapshot reads metadata only
        with (
            BackupLock(self.backup_storage, name, stale_after=self.lock_stale_after) as lock,
            ExitStack() as refs,
        ):
            # Held until backup_meta.json is written: a second writer of this name gets
            # BackupLockedError instead of interleaving its files with ours.
            self._check_name_free(name, resume)
            written = False
            held: list[BackupLock] = []  # the repository lock, while references are added
            try:
                with self._gc_pause(strategy, selection) as gc:
                    read_as = BackupStrategy.META_ONLY if logical else strategy
                    flushing = "" if read_as is BackupStrategy.META_ONLY else ", flushing"
                    progress.phase("snapshot", "reading collections" + flushing)
                    snap = self.snapshotter.snapshot(self.cluster, selection, read_as, progress)
                    info = BackupInfo(
                        id=str(uuid.uuid4()),
                        state_code=0,
                        name=name,
                        collection_backups=snap.collections,
                        size=sum(c.size for c in snap.collections),
                        milvus_version=snap.milvus_version,
                        database_backups=snap.database_backups
                        or tuple(DatabaseBackupInfo(db_name=db) for db in snap.databases),
                        rbac_meta=rbac_meta,
                    )
                    files = list(binlog_files(info))
                    reuse = Reuse() if base is None else plan_reuse(info, base, self._source)
                    written = bool(files)
                    stored, rows = {f.key: f.size for f in files}, {}
                    if logical:
                        writer = LogicalWriter(self.cluster, self.repository, name, lock)
                        writer.check(info)
                        written = True
                        result = writer.write(info, progress)
                        info, stored, rows = result.info, result.files, result.logical
                        copied = Copied(result.copy, result.checksums, 0, 0, result.seconds, 0.0)
                    else:
                        todo = [f for f in files if f.key not in reuse.references]
                        copied = self._copy(name, todo, resume, progress, lock, gc.outcome)
                    if reuse.files:
                        # Under the repository lock until the manifest is written: a delete cannot
                        # sweep a file between our check that it is there and our reference to it.
                        held.append(
                            refs.enter_context(
                                repository_lock_waiting(
                                    self.backup_storage, stale_after=self.lock_stale_after
                                )
                            )
                        )
                        reuse, copied = self._settle(
                            name, info, reuse, copied, self_contained, progress, lock, gc.outcome
                        )
                    made_against = "" if base is None else recorded_base(self.repository, base, reuse)
                outcome = gc.outcome
                now = dt.datetime.now(dt.timezone.utc)
                library_meta = LibraryMeta(
                    created_at=now.isoformat(timespec="milliseconds"),  # base="latest" orders by it
                    strategy=strategy.value,
                    gc_paused=outcome.paused,
                    gc_note=outcome.note,
                    files=stored,
                    checksums={**copied.checksums, **reuse.checksums},
                    logical=rows,
                    references={} if self_contained else reuse.references,
                    base=made_against,
                    source=source_record(self.milvus_storage, info.collection_backups),
                )
                progress.phase("meta", name)
                written = True
                for fence in (lock, *held):  # fencing: only a writer that provably holds the locks commits
                    fence.ensure_held()
                self.repository.write_manifest(info, library_meta)
            except BaseException:
                if written:
                    # Kept for create_backup(resume=True); without backup_meta.json it is never listed.
                    kept = ": delete_backup() it and back up again" if logical else " for resume=True"
                    log.warning("backup %s failed; its partial files are kept%s", name, kept)
                raise
        return BackupReport(
            name=name,
            info=info,
            strategy=strategy,
            files=copied.result.files,
            bytes_copied=copied.result.bytes_copied,
            server_side_copy=copied.result.server_side,
            gc=outcome,
            seconds=time.monotonic() - started,
            copy_seconds=copied.copy_seconds,
            checksum_seconds=copied.checksum_seconds,
            resumed_files=copied.resumed,
            resumed_bytes=copied.resumed_bytes,
            reused_files=reuse.files,
            reused_bytes=reuse.bytes,
            base=library_meta.base,
            self_contained=library_meta.self_contained,
        )

    def _settle(
        self,
        name: str,
        info: BackupInfo,
        reuse: Reuse,
        copied: Copied,
        self_contained: bool,
        progress: Progress,
        lock: BackupLock,
        gc: GcPauseOutcome,
    ) -> tuple[Reuse, Copied]:
        """Under the repository lock: copy from the cluster now the units whose referenced files a
        concurrent delete removed; with ``self_contained``, copy the reused files from their holders."""
        progress.phase("references", f"checking {reuse.files} files stored by earlier backups")
        gone = unit_keys(reuse, missing_references(self.repository, reuse), info)
        if gone:
            log.warning(
                "backup %s: %d file(s) of the base were removed meanwhile (a delete?): copying them from "
                "the cluster",
                name,
                len(gone),
            )
            reuse = reuse.without(gone)
            if not reuse.files:
                log.warning("backup %s references nothing now: it is recorded as a full backup", name)
            again = self._copy(
                name, [f for f in binlog_files(info) if f.key in gone], False, progress, lock, gc
            )
            copied = merge(copied, again)
        if self_contained and reuse.files:
            jobs = [
                CopyJob(self.repository.path(holder, key), self.repository.path(name, key), reuse.sizes[key])
                for key, holder in reuse.references.items()
            ]
            progress.phase("copy", f"{len(jobs)} files from the base's store")
            lock.check()
            self.copier.copy(self.backup_storage, self.backup_storage, jobs, progress)
        return reuse, copied

    def plan(
        self,
        name: str,
        selection: CollectionFilter,
        strategy: BackupStrategy,
        *,
        progress: Progress = NULL_PROGRESS,
        resume: bool = False,
    ) -> BackupPlan:
        """What :meth:`run` would back up now, refusing what it would refuse; flushes, locks and writes nothing.

        The collections are read as ``skip_flush`` reads them (``meta_only``: without segments).
        """
        self._check_name_free(name, resume)
        metadata_only = strategy in (BackupStrategy.META_ONLY, BackupStrategy.LOGICAL)
        read_as = BackupStrategy.META_ONLY if metadata_only else BackupStrategy.SKIP_FLUSH
        progress.phase("snapshot", "reading collections (no flush)")
        return plan_from_snapshot(
            name, strategy, self.snapshotter.snapshot(self.cluster, selection, read_as, progress)
        )

    def _check_name_free(self, name: str, resume: bool) -> None:
        if not self.repository.has_objects(name):
            return  # the usual case, in one look (a husk, a backup or an unfinished one has objects)
        if self.repository.is_husk(name):
            referrers = ", ".join(self.repository.husk_referrers(name)) or "none any more"
            raise BackupExistsError(
                name,
                self.backup_storage.url,
                "a deleted backup of that name still stores files other backups reference (backups: "
                f"{referrers}); pick another name, or materialize or delete those backups (the next "
                "delete or prune then removes the files)",
            )
        if self.repository.exists(name):
            raise BackupExistsError(name, self.backup_storage.url)
        if not resume:
            raise BackupExistsError(
                name,
                self.backup_storage.url,
                "an unfinished backup of that name is stored there (an interrupted run?): pass "
                "resume=True to finish it, or delete_backup() to remove it",
            )

    def _gc_pause(
        self, strategy: BackupStrategy, selection: CollectionFilter
    ) -> AbstractContextManager[GcPause | NoPause]:
        """The GC pause for this run; a named collection or database that does not exist is refused
        first (:class:`CollectionNotFoundError`), before GC is touched."""
        if self.pause_gc is False or strategy in (BackupStrategy.META_ONLY, BackupStrategy.LOGICAL):
            why = "not requested (pause_gc=False)" if self.pause_gc is False else "no binlogs copied"
            return nullcontext(NoPause(GcPauseOutcome(False, why)))
        resolve_collections(self.cluster, selection)
        return GcPause(self.cluster, self.gc_pause_seconds, mode=self.pause_gc)

    def _copy(
        self,
        name: str,
        files: Sequence[BinlogFile],
        resume: bool,
        progress: Progress,
        lock: BackupLock,
        gc: GcPauseOutcome | None = None,
    ) -> Copied:
        """Copy ``files`` into backup ``name`` and record their checksums (by backup-relative key).

        The copy goes in batches of :data:`COPY_BATCH_FILES`; before each the lock is checked, so a
        writer that lost it stops within one batch. A source file that vanished while copying fails
        with a :class:`StorageError` saying whether GC was paused (``gc``) and how to pause it.
        """
        jobs = {
            f.key: CopyJob(
                source=self._source.join(f.source),
                destination=self.repository.path(name, f.key),
                size=f.size,
            )
            for f in files
        }
        progress.phase("copy", f"{len(jobs)} files")
        resumed: dict[str, str] = {}
        if resume:
            progress.phase("resume", "checking what an earlier run stored")
            lock.check()  # resuming removes files: never on a name another writer holds now
            resumed = self._already_stored(name, jobs)
        todo = [job for key, job in jobs.items() if key not in resumed]
        copy_started = time.monotonic()
        try:
            result = self._copy_batches(todo, progress, lock)
        except StorageError as exc:
            if gc is None or not _source_vanished(exc):
                raise
            raise StorageError(f"{exc}; {_vanished_advice(gc)}") from exc
        copy_seconds = time.monotonic() - copy_started
        lock.check()
        # Checksums of what was written: streamed copies brought theirs; the rest come from the
        # store's own MD5 where it keeps one, else from reading the copy.
        checksum_started = time.monotonic()
        unsummed = [job.destination for job in todo if job.destination not in result.checksums]
        progress.phase("checksum", f"{len(unsummed)} files")
        by_destination = {**result.checksums, **compute_checksums(self.backup_storage, unsummed)}
        checksums = dict(resumed)
        for key, job in jobs.items():
            if job.destination in by_destination:
                checksums[key] = by_destination[job.destination]
        return Copied(
            result=result,
            checksums=checksums,
            resumed=len(resumed),
            resumed_bytes=sum(jobs[key].size for key in resumed),
            copy_seconds=copy_seconds,
            checksum_seconds=time.monotonic() - checksum_started,
        )

    def _copy_batches(self, todo: Sequence[CopyJob], progress: Progress, lock: BackupLock) -> CopyResult:
        """Copy ``todo`` batch by batch, checking the lock before each; one result for all."""
        if not todo and self.milvus_storage is None:  # meta_only without Milvus's storage
            return CopyResult(files=0, bytes_copied=0, server_side=False, bytes_through_client=0)
        if len(todo) <= COPY_BATCH_FILES:
            lock.check()
            return self.copier.copy(self._source, self.backup_storage, todo, progress)
        progress.files_total(len(todo), sum(job.size for job in todo))
        quiet = NoTotals(progress)  # the copier announces each batch's total: the whole one is told
        results: list[CopyResult] = []
        for start in range(0, len(todo), COPY_BATCH_FILES):
            lock.check()
            batch = todo[start : start + COPY_BATCH_FILES]
            results.append(self.copier.copy(self._source, self.backup_storage, batch, quiet))
        return CopyResult(
            files=sum(r.files for r in results),
            bytes_copied=sum(r.bytes_copied for r in results),
            server_side=all(r.server_side for r in results),
            bytes_through_client=sum(r.bytes_through_client for r in results),
            checksums={k: v for r in results for k, v in r.checksums.items()},
        )

    def _already_stored(self, name: str, jobs: dict[str, CopyJob]) -> dict[str, str]:
        """The binlogs (by key) an earlier run stored whole, with their checksums.

        A stored file counts only with the source's size and the same MD5 as the source (both read);
        binlogs under the backup that the new snapshot no longer lists (segments compacted away
        meanwhile) are removed so the finished backup holds exactly its manifest.
        """
        stored = stored_files(self.backup_storage, name)
        for key in set(stored) - set(jobs):
            self.backup_storage.remove_file(self.repository.path(name, key))
        candidates = [(key, job) for key, job in jobs.items() if stored.get(key) == job.size]

        def same(item: tuple[str, CopyJob]) -> tuple[str, str | None]:
            key, job = item
            try:
                theirs = md5_of(self._source, job.source, size=job.size)
                ours = md5_of(self.backup_storage, job.destination, size=job.size)
            except StorageError as exc:
                if _source_vanished(exc):  # copied again, which then fails saying what GC did
                    return key, None
                raise
            return key, ours if ours == theirs else None

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="resume") as pool:
            return {key: digest for key, digest in pool.map(same, candidates) if digest is not None}
