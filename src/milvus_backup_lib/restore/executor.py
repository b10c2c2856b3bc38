"""The restore executor: runs a :class:`RestorePlan` against a Milvus server.

Milvus's binlog import reads only the server's own storage, and reports "Completed" with 0 rows when
the path it was given holds nothing (seen on 2.3.5). So the executor
- imports in place when the backup already sits where the server can read it (same local machine:
  the server resolves absolute paths; same bucket of the same object store: bucket-relative keys),
  and otherwise stages each import group's files into the server's storage first;
- checks every import's row count against the backup: without delta logs it must equal the
  segments' row count; with delta logs it must lie in ``[rows - delete entries, rows]`` (the delete
  entries are counted from the delta logs themselves), and anything else is an error;
- checks, before importing into a collection, that its field IDs equal the backup's (binlog
  directories are keyed by field ID, so a misaligned schema would import garbage or nothing);
- runs ``parallel_collections`` collections and ``parallel_imports`` import jobs at once (over all
  collections), data jobs before the L0 delete jobs of each collection, batched into multi-segment
  jobs on Milvus 2.4+ (:mod:`milvus_backup_lib.restore.jobs`); the first failure stops the rest;
- on a failure or an interruption (Ctrl-C), drops the collections it created and had not finished,
  unless told to keep them, and says what it dropped and what it left.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TypeVar

import attrs

from milvus_backup_lib.backup.copier import FsspecCopier, SegmentCopier
from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    ImportFailedError,
    RestorePlanError,
)
from milvus_backup_lib.manifest.model import BackupInfo, CollectionSchema
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.reader import BackupReader
from milvus_backup_lib.reader._arrow import arrow
from milvus_backup_lib.repository.holders import Holders
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.restore.capability_check import capability_problems
from milvus_backup_lib.restore.fields import field_ids
from milvus_backup_lib.restore.inserts import InsertRestore
from milvus_backup_lib.restore.jobs import DEFAULT_SEGMENTS_PER_JOB, ImportJob, batch_jobs, send_import
from milvus_backup_lib.restore.journal import JournalKeeper, RestoreJournal
from milvus_backup_lib.restore.parallel import SerializedProgress, Workers
from milvus_backup_lib.restore.plan import (
    AddField,
    CreateAlias,
    CreateCollection,
    CreateDatabase,
    CreateIndex,
    CreatePartition,
    DropCollection,
    ImportData,
    InsertData,
    LoadCollection,
    RestorePlan,
    Step,
)
from milvus_backup_lib.restore.report import CollectionRestoreReport, ImportOutcome, RestoreReport
from milvus_backup_lib.restore.staging import Staging
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["CollectionRestoreReport", "ImportOutcome", "RestoreExecutor", "RestoreReport"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class RestoreExecutor:
    """Runs restore plans against one Milvus server."""

    def __init__(
        self,
        milvus: MilvusCluster,
        milvus_storage: StorageLocation | None,
        backup_storage: StorageLocation,
        *,
        copier: SegmentCopier | None = None,
        keep_staged: bool = False,
        import_timeout: float = 3600.0,
        poll_interval: float = 0.5,
        parallel_collections: int = 2,
        parallel_imports: int = 8,
        segments_per_import: int = DEFAULT_SEGMENTS_PER_JOB,
        keep_partial: bool = False,
    ) -> None:
        self.milvus = milvus
        self.milvus_storage = milvus_storage
        self.backup_storage = backup_storage
        self.copier: SegmentCopier = copier or FsspecCopier()
        self.keep_staged = keep_staged
        self.import_timeout = import_timeout
        self.poll_interval = poll_interval
        self.parallel_collections = max(1, parallel_collections)
        self.parallel_imports = max(1, parallel_imports)
        self.segments_per_import = max(1, segments_per_import)
        self.keep_partial = keep_partial
        self._progress: Progress = NULL_PROGRESS
        self._workers = Workers()
        # Without milvus_storage nothing is imported (the planner inserts), so nothing is staged.
        self._staging = Staging(milvus_storage or backup_storage, backup_storage, self.copier)
        self.journal = RestoreJournal(milvus_storage)
        self._keeper = JournalKeeper(self.journal, "")
        self._gate = threading.BoundedSemaphore(self.parallel_imports)
        self._state_lock = threading.Lock()
        #: Collections this run created -> whether their restore finished.
        self._created: dict[QualifiedName, bool] = {}
        self._batched = False
        #: Where each file of the running plan's backup is stored, from the library record run() got.
        self._holders = Holders("", None)

    @property
    def imports_in_place(self) -> bool:
        """Whether the server can read the backup where it is (no staging)."""
        return self._staging.in_place

    def preflight(self, plan: RestorePlan, backup: BackupInfo) -> None:
        """Refuse, before any change, what the target server is known not to be able to import."""
        # What this server's version cannot take (milvus/capabilities.py), all at once.
        problems = capability_problems(plan, backup, self.milvus.server_version())
        if any(c.inserts for c in plan.collections):
            arrow()  # inserts read the backup with pyarrow: MissingDependencyError names the extra
        for coll in plan.collections:
            if coll.imports and not coll.create:  # skip_create: the existing target must line up now
                try:
                    self._check_fields(backup, coll.source, coll.target, None)
                except RestorePlanError as exc:
                    problems.extend(exc.conflicts)
        if problems:
            raise RestorePlanError(problems)

    def run(
        self,
        plan: RestorePlan,
        backup: BackupInfo,
        library: LibraryMeta | None,
        progress: Progress = NULL_PROGRESS,
    ) -> RestoreReport:
        """Execute ``plan`` (made from ``backup``, whose library record is ``library``: an incremental
        backup's references, a logical backup's files); raise on the first failure, after cleaning up."""
        started = time.monotonic()
        self.preflight(plan, backup)
        self._holders = Holders(plan.backup_name, library)
        progress = self._progress = SerializedProgress(progress)
        self._workers = Workers()
        self._created = {}
        self._batched = self.segments_per_import > 1 and self.milvus.batch_imports()
        for step in plan.steps:
            if isinstance(step, CreateDatabase):
                progress.phase("create_database", step.database)
                if step.database not in self.milvus.list_databases():
                    self.milvus.create_database(step.database, [(kv.key, kv.value) for kv in step.properties])
        stage_root = self._staging.milvus_storage.join(f"restore-temp-{uuid.uuid4().hex[:12]}")
        self._keeper = JournalKeeper(self.journal, plan.backup_name)
        try:
            self._keeper.__enter__()
            reports = self._workers.run(
                [
                    functools.partial(
                        self._run_collection,
                        plan,
                        backup,
                        c.source,
                        c.target,
                        c.backup_rows,
                        c.steps,
                        stage_root,
                        progress,
                    )
                    for c in plan.collections
                ],
                self.parallel_collections,
            )
        except BaseException as exc:
            self._clean_up(exc)
            raise
        finally:
            self._keeper.__exit__()
            if not self.keep_staged and not self._staging.in_place and self.milvus_storage is not None:
                self._staging.remove(stage_root)
        return RestoreReport(
            backup_name=plan.backup_name,
            plan=plan,
            dry_run=False,
            collections=tuple(reports),
            seconds=time.monotonic() - started,
        )

    def _clean_up(self, exc: BaseException) -> None:
        """Drop the collections this run created and did not finish (unless ``keep_partial``); say so."""
        unfinished = sorted((t for t, done in self._created.items() if not done), key=str)
        if not unfinished:
            return
        dropped: list[str] = []
        left: list[str] = []
        for target in unfinished:
            if self.keep_partial:
                left.append(str(target))
                self._keeper.abandoned(target)
                continue
            try:
                if self.milvus.has_collection(target.database, target.collection):
                    self.milvus.drop_collection(target.database, target.collection)
                dropped.append(str(target))
                self._keeper.finished(target)
            except Exception as drop_error:  # the original failure matters more; say what is left
                log.warning("could not drop the unfinished collection %s: %s", target, drop_error)
                left.append(str(target))
                self._keeper.abandoned(target)
        note = "restore " + ("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed") + ": "
        parts = []
        if dropped:
            parts.append(f"dropped the collections it had created and not finished: {', '.join(dropped)}")
        if left:
            parts.append(
                f"left unfinished (drop them, or restore again with drop_existing / --drop_exist_collection): "
                f"{', '.join(left)}"
            )
        note += "; ".join(parts)
        log.warning("%s", note)
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(note)

    def _run_collection(
        self,
        plan: RestorePlan,
        backup: BackupInfo,
        source: QualifiedName,
        target: QualifiedName,
        backup_rows: int,
        steps: Sequence[Step],
        stage_root: str,
        progress: Progress,
    ) -> CollectionRestoreReport:
        started = time.monotonic()
        db, name = target.database, target.collection
        progress.collection_started(str(target))
        outcomes: list[ImportOutcome] = []
        schema_checked = False
        loaded = False
        expected_schema: CollectionSchema | None = None
        imports = [s for s in steps if isinstance(s, ImportData)]
        for step in steps:
            self._workers.check()
            if isinstance(step, ImportData | InsertData) and schema_checked:
                continue  # every import (insert) of the collection ran with the first one
            progress.phase(step.kind, step.describe())
            if isinstance(step, DropCollection):
                for alias in step.aliases:
                    if self.milvus.describe_alias(db, alias) == name:
                        self.milvus.drop_alias(db, alias)
                if self.milvus.has_collection(db, name):
                    self.milvus.drop_collection(db, name)
            elif isinstance(step, CreateCollection):
                expected_schema = step.schema
                self.milvus.create_collection(
                    db,
                    name,
                    step.schema,
                    shards_num=step.shards_num,
                    consistency_level=step.consistency_level,
                    properties=[(kv.key, kv.value) for kv in step.properties],
                    num_partitions=step.num_partitions,
                )
                with self._state_lock:
                    self._created[target] = False
                self._keeper.created(target, self.milvus.describe_collection(db, name).collection_id)
            elif isinstance(step, AddField):
                self.milvus.add_collection_field(db, name, step.field)
                if expected_schema is not None:
                    expected_schema = attrs.evolve(
                        expected_schema, fields=(*expected_schema.fields, step.field)
                    )
            elif isinstance(step, CreatePartition):
                existing = {p.name for p in self.milvus.show_partitions(db, name)}
                if step.partition not in existing:
                    self.milvus.create_partition(db, name, step.partition)
            elif isinstance(step, ImportData):
                if not schema_checked and expected_schema is not None:
                    try:
                        self._check_fields(backup, source, target, expected_schema)
                    except RestorePlanError as exc:
                        raise ImportFailedError(
                            f"{target} was created but Milvus gave it other field IDs than the backup's; "
                            f"nothing was imported into it: {exc.conflicts[0]}"
                        ) from exc
                schema_checked = True
                outcomes.extend(self._import_all(imports, stage_root))
            elif isinstance(step, InsertData):
                schema_checked = True
                repository = BackupRepository(self.backup_storage)
                # with our record: a logical backup's Parquet files, an incremental one's references
                reader = BackupReader(repository, plan.backup_name, backup, self._holders.meta)
                restore = InsertRestore(self.milvus, reader, self._progress, self._workers.check)
                outcomes.extend(restore.collection(plan.options, backup, steps, target not in self._created))
            elif isinstance(step, CreateIndex):
                self.milvus.create_index(db, name, step.field_name, step.index_name, step.params)
            elif isinstance(step, LoadCollection):
                self.milvus.load_collection(db, name)
                loaded = True
            elif isinstance(step, CreateAlias):
                current = self.milvus.describe_alias(db, step.alias)
                if current != name:
                    self.milvus.create_alias(db, name, step.alias)
        imported = sum(o.imported_rows for o in outcomes if not o.l0)
        # count(*) when loaded; otherwise the persisted segments' row count, which for imported
        # segments already excludes the rows their delta logs deleted.
        target_rows = (
            self.milvus.count_rows(db, name) if loaded else self.milvus.statistics_row_count(db, name)
        )
        skipped = tuple(
            f"{what}: {why}" for what, why in plan.skipped if what == str(source) or what == str(target)
        )
        progress.collection_done(str(target))
        with self._state_lock:
            if target in self._created:
                self._created[target] = True
                self._keeper.finished(target)
        return CollectionRestoreReport(
            source=str(source),
            target=str(target),
            # a logical backup's manifest has no segments: its rows are the ones its files record
            backup_rows=backup_rows or sum(o.expected_rows for o in outcomes),
            imported_rows=imported,
            target_rows=target_rows,
            seconds=time.monotonic() - started,
            imports=tuple(outcomes),
            skipped=skipped,
        )

    def _check_fields(
        self,
        backup: BackupInfo,
        source: QualifiedName,
        target: QualifiedName,
        expected: CollectionSchema | None,
    ) -> None:
        """Refuse to import when the target's field IDs or types differ from the backup's."""
        if expected is None:  # skip_create: compare with the backup's schema
            try:
                expected = backup.collection(source.database, source.collection).schema
            except KeyError:
                raise CollectionNotFoundError(source.database, source.collection, "in the backup") from None
        desc = self.milvus.describe_collection(target.database, target.collection)
        have, want = field_ids(desc.schema), field_ids(expected)  # struct array sub-fields included
        if have != want:
            diffs = sorted(
                f"{n}: backup {want.get(n)}, target {have.get(n)}"
                for n in set(have) | set(want)
                if have.get(n) != want.get(n)
            )
            raise RestorePlanError(
                [
                    f"{target}: fields (id, type) differ from the backup's, binlogs would not line up: "
                    + "; ".join(diffs)
                ]
            )

    # -- imports ----------------------------------------------------------------------------------

    def _import_all(self, steps: Sequence[ImportData], stage_root: str) -> list[ImportOutcome]:
        """Run the imports of one collection: its data jobs, then its L0 delete jobs."""
        jobs = batch_jobs(steps, batched=self._batched, max_segments=self.segments_per_import)
        outcomes: list[ImportOutcome] = []
        for batch in ([j for j in jobs if not j.l0], [j for j in jobs if j.l0]):
            work = [functools.partial(self._import, job, stage_root) for job in batch]
            outcomes.extend(self._workers.run(work, self.parallel_imports))
        return outcomes

    def _import(self, job: ImportJob, stage_root: str) -> ImportOutcome:
        with self._gate:  # at most parallel_imports jobs in flight over every collection
            self._workers.check()
            return self._import_job(job, stage_root)

    def _import_job(self, job: ImportJob, stage_root: str) -> ImportOutcome:
        started = time.monotonic()
        step = job.first
        batch = len(job.steps) > 1
        located = [self._staging.files_of(self._holders, s, stage_root, batch=batch) for s in job.steps]
        groups = [files for files, _ in located]
        delete_entries = sum(self._staging.count_deletes(delta) for _, delta in located if delta)
        options = [("skip_disk_quota_check", "true"), ("l0_import" if step.l0 else "backup", "true")]
        if step.storage_version > 0:
            options.append(("storage_version", str(step.storage_version)))
        if step.ezk:  # an encrypted database's key, as milvus-backup sends it; never logged
            options.append(("ezk", step.ezk))
        db = step.target.database
        shown = tuple(f for files in groups for f in files if f)
        self._progress.import_started(str(step.target), step.partition, shown)
        tasks = send_import(self.milvus, step, groups, options)
        imported = 0
        for task in tasks:
            imported += self._wait(db, task, step)
        self._progress.import_done(str(step.target), step.partition, imported)
        if not step.l0:
            low = max(0, job.rows - delete_entries)
            if not low <= imported <= job.rows:
                what = f"{step.target} partition {step.partition!r} from {', '.join(shown)}"
                raise ImportFailedError(
                    f"import into {what} brought {imported} rows; the backup holds {job.rows} rows"
                    + (f" with {delete_entries} delete entries" if delete_entries else "")
                    + " (Milvus reports such imports as completed when it finds no files at the path)"
                )
        return ImportOutcome(
            partition=step.partition,
            files=shown,
            expected_rows=job.rows,
            delete_entries=delete_entries,
            imported_rows=imported,
            seconds=time.monotonic() - started,
            staged=not self._staging.in_place,
            l0=step.l0,
        )

    def _wait(self, db: str, task: int, step: ImportData) -> int:
        started = time.monotonic()
        deadline = started + self.import_timeout
        while True:
            self._workers.check()
            state = self.milvus.import_state(db, task)
            if state.state == "Completed":
                return state.row_count
            if state.state.startswith("Failed"):  # Failed, FailedAndCleaned
                raise ImportFailedError(
                    f"import into {step.target} partition {step.partition!r} failed: {state.reason or 'no reason given'}"
                )
            if time.monotonic() > deadline:
                raise ImportFailedError(
                    f"import into {step.target} not finished after {self.import_timeout:.0f} s (state {state.state})"
                )
            waited = time.monotonic() - started
            self._progress.waiting(
                f"import into {step.target} partition {step.partition!r} ({state.state})", waited
            )
            # Quick polls for short jobs; past 10 s every 3 s, as milvus-backup polls: hundreds of
            # jobs in flight must not flood the server with GetImportState calls.
            time.sleep(self.poll_interval if waited < 10 else max(self.poll_interval, 3.0))
