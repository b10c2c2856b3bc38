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
  directories are keyed by field ID, so a misaligned schema would import garbage or nothing).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

import attrs

from milvus_backup_lib.backup.copier import CopyJob, FsspecCopier, SegmentCopier
from milvus_backup_lib.binlog import BinlogFormatError, count_binlog_rows
from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    ImportFailedError,
    RestorePlanError,
    StorageError,
)
from milvus_backup_lib.manifest.model import BackupInfo, CollectionSchema, DataType
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.restore.fields import field_ids, schema_problems
from milvus_backup_lib.restore.plan import (
    AddField,
    CreateAlias,
    CreateCollection,
    CreateDatabase,
    CreateIndex,
    CreatePartition,
    DropCollection,
    ImportData,
    LoadCollection,
    RestorePlan,
    Step,
)
from milvus_backup_lib.restore.report import CollectionRestoreReport, ImportOutcome, RestoreReport
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["CollectionRestoreReport", "ImportOutcome", "RestoreExecutor", "RestoreReport"]

log = logging.getLogger(__name__)


_TYPE_NAMES = {
    DataType.FLOAT16_VECTOR: "Float16Vector",
    DataType.BFLOAT16_VECTOR: "BFloat16Vector",
    DataType.SPARSE_FLOAT_VECTOR: "SparseFloatVector",
    DataType.INT8_VECTOR: "Int8Vector",
}
# Seen on the embedded 2.3.5: "Import util: unsupported data type" for a Float16Vector binlog import.
_NOT_IMPORTABLE_BEFORE_2_4 = frozenset(_TYPE_NAMES)


def _version_tuple(version: str) -> tuple[int, ...]:
    digits = re.findall(r"\d+", version.split("-", 1)[0])
    return tuple(int(d) for d in digits[:3]) or (0,)


class RestoreExecutor:
    """Runs restore plans against one Milvus server."""

    def __init__(
        self,
        milvus: MilvusCluster,
        milvus_storage: StorageLocation,
        backup_storage: StorageLocation,
        *,
        copier: SegmentCopier | None = None,
        keep_staged: bool = False,
        import_timeout: float = 3600.0,
        poll_interval: float = 0.5,
    ) -> None:
        self.milvus = milvus
        self.milvus_storage = milvus_storage
        self.backup_storage = backup_storage
        self.copier: SegmentCopier = copier or FsspecCopier()
        self.keep_staged = keep_staged
        self.import_timeout = import_timeout
        self.poll_interval = poll_interval
        self._progress: Progress = NULL_PROGRESS

    @property
    def imports_in_place(self) -> bool:
        """Whether the server can read the backup where it is (no staging)."""
        b, m = self.backup_storage, self.milvus_storage
        if m.is_local:
            return b.is_local
        return m.same_store(b) and b.bucket == m.bucket and b.protocol not in ("memory",)

    def _milvus_path(self, path: str) -> str:
        """How the server names ``path`` of its own storage: absolute locally, bucket-relative in a bucket."""
        if self.milvus_storage.is_local:
            return path if path.startswith("/") else "/" + path
        return self.milvus_storage.bucket_key(path)

    def preflight(self, plan: RestorePlan, backup: BackupInfo) -> None:
        """Refuse, before any change, what the target server is known not to be able to import."""
        version = self.milvus.server_version()
        problems = []
        for coll in plan.collections:
            if not coll.imports or _version_tuple(version) >= (2, 4):
                continue
            source = backup.collection(coll.source.database, coll.source.collection)
            for field in source.schema.fields:
                if field.data_type in _NOT_IMPORTABLE_BEFORE_2_4:
                    problems.append(
                        f"{coll.target}: Milvus {version} cannot bulk-import {_TYPE_NAMES[field.data_type]} field "
                        f"{field.name!r} (its binlog importer answers 'unsupported data type'); restore into Milvus "
                        "2.4 or newer, or restore with meta_only"
                    )
        problems.extend(schema_problems(plan, version, _version_tuple(version)))
        for coll in plan.collections:
            if coll.imports and not coll.create:  # skip_create: the existing target must line up now
                try:
                    self._check_fields(backup, coll.source, coll.target, None)
                except RestorePlanError as exc:
                    problems.extend(exc.conflicts)
        if problems:
            raise RestorePlanError(problems)

    def run(self, plan: RestorePlan, backup: BackupInfo, progress: Progress = NULL_PROGRESS) -> RestoreReport:
        """Execute every step of ``plan`` (made from ``backup``) in order; raise on the first failure."""
        started = time.monotonic()
        self.preflight(plan, backup)
        self._progress = progress
        for step in plan.steps:
            if isinstance(step, CreateDatabase):
                progress.phase("create_database", step.database)
                if step.database not in self.milvus.list_databases():
                    self.milvus.create_database(step.database, [(kv.key, kv.value) for kv in step.properties])
        reports = []
        stage_root = self.milvus_storage.join(f"restore-temp-{uuid.uuid4().hex[:12]}")
        try:
            for coll in plan.collections:
                reports.append(
                    self._run_collection(
                        plan,
                        backup,
                        coll.source,
                        coll.target,
                        coll.backup_rows,
                        coll.steps,
                        stage_root,
                        progress,
                    )
                )
        finally:
            if not self.keep_staged and not self.imports_in_place:
                self._remove(stage_root)
        return RestoreReport(
            backup_name=plan.backup_name,
            plan=plan,
            dry_run=False,
            collections=tuple(reports),
            seconds=time.monotonic() - started,
        )

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
        for step in steps:
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
                outcomes.append(self._import(plan.backup_name, step, stage_root))
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
        return CollectionRestoreReport(
            source=str(source),
            target=str(target),
            backup_rows=backup_rows,
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

    def _import(self, backup_name: str, step: ImportData, stage_root: str) -> ImportOutcome:
        started = time.monotonic()
        prefixes = [p for p in (step.insert_prefix, step.delta_prefix) if p]
        staged = not self.imports_in_place
        if staged:
            locations = [self._stage(backup_name, p, stage_root) for p in prefixes]
        else:
            locations = [self.backup_storage.join(backup_name, p) for p in prefixes]
        paths = [self._milvus_path(p).rstrip("/") + "/" for p in locations]
        # A backup import takes exactly [insert prefix, delta prefix]; an empty string stands for "none".
        # Given a single path, Milvus 2.3.5 falls back to row-based files: "unsupported file type". An
        # L0 import takes the delta prefix alone: Milvus's L0 reader wants exactly one prefix
        # (importutilv2/binlog/l0_reader.go "there should be one prefix"), as milvus-backup sends it
        # (core/restore/coll_task.go toPaths: no insert dir -> [deltaLogDir]).
        if not step.insert_prefix:
            files = [paths[0]]
        elif step.delta_prefix:
            files = paths
        else:
            files = [paths[0], ""]
        delete_entries = self._count_deletes(locations[-1]) if step.delta_prefix else 0
        options = [("skip_disk_quota_check", "true"), ("l0_import" if step.l0 else "backup", "true")]
        if step.storage_version > 0:
            options.append(("storage_version", str(step.storage_version)))
        if step.ezk:  # an encrypted database's key, as milvus-backup sends it; never logged
            options.append(("ezk", step.ezk))
        db, name = step.target.database, step.target.collection
        self._progress.import_started(str(step.target), step.partition, tuple(f for f in files if f))
        tasks = self.milvus.start_import(db, name, step.partition, files, options)
        imported = 0
        for task in tasks:
            imported += self._wait(db, task, step)
        self._progress.import_done(str(step.target), step.partition, imported)
        if not step.l0:
            low = max(0, step.rows - delete_entries)
            if not low <= imported <= step.rows:
                what = f"{step.target} partition {step.partition!r} from {', '.join(f for f in files if f)}"
                raise ImportFailedError(
                    f"import into {what} brought {imported} rows; the backup holds {step.rows} rows"
                    + (f" with {delete_entries} delete entries" if delete_entries else "")
                    + " (Milvus reports such imports as completed when it finds no files at the path)"
                )
        return ImportOutcome(
            partition=step.partition,
            files=tuple(f for f in files if f),
            expected_rows=step.rows,
            delete_entries=delete_entries,
            imported_rows=imported,
            seconds=time.monotonic() - started,
            staged=staged,
            l0=step.l0,
        )

    def _wait(self, db: str, task: int, step: ImportData) -> int:
        started = time.monotonic()
        deadline = started + self.import_timeout
        while True:
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
            self._progress.waiting(
                f"import into {step.target} partition {step.partition!r} ({state.state})",
                time.monotonic() - started,
            )
            time.sleep(self.poll_interval)

    def _stage(self, backup_name: str, prefix: str, stage_root: str) -> str:
        """Copy everything under the backup's ``prefix`` into the server's storage; return the staged prefix."""
        src_dir = self.backup_storage.join(backup_name, prefix)
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

    def _count_deletes(self, location: str) -> int:
        """Delete entries in the delta logs below ``location`` (a path in the server's or backup's storage)."""
        storage = self.milvus_storage if not self.imports_in_place else self.backup_storage
        total = 0
        for path in storage.list_files(location):
            try:
                total += count_binlog_rows(storage.read_bytes(path))
            except BinlogFormatError as exc:
                raise ImportFailedError(f"delta log {path} is unreadable: {exc}") from exc
            except FileNotFoundError as exc:
                raise StorageError(f"delta log {path} vanished while being read") from exc
        return total

    def _remove(self, path: str) -> None:
        try:
            self.milvus_storage.remove_tree(path)
        except StorageError as exc:  # cleanup must not hide the real outcome; no traceback (secrets)
            log.warning(
                "could not remove the staging area %s: %s", path, scrub(str(exc), self.milvus_storage)
            )
