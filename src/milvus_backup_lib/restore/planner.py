"""The restore planner: backup manifest + options + target state -> plan. Pure: no I/O, same inputs, same plan.

Every reason that makes a restore impossible is collected first and raised together as one
:class:`RestorePlanError`, so a caller fixes them in one go and nothing is changed on the target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

import attrs

from milvus_backup_lib.errors import InvalidNameError, RestorePlanError
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    CollectionSchema,
    DatabaseBackupInfo,
    DataType,
    IndexInfo,
    KeyValue,
)
from milvus_backup_lib.milvus.ez import CIPHER_EZ_ID
from milvus_backup_lib.options import (
    DEFAULT_DATABASE,
    QualifiedName,
    validate_collection_name,
    validate_database_name,
)
from milvus_backup_lib.repository.library_meta import LOGICAL
from milvus_backup_lib.restore.fields import field_layout, without_max_field_id
from milvus_backup_lib.restore.imports import import_steps, insert_steps
from milvus_backup_lib.restore.method import choose_method
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import (
    AddField,
    CollectionPlan,
    CreateAlias,
    CreateCollection,
    CreateIndex,
    CreatePartition,
    DropCollection,
    ImportData,
    LoadCollection,
    RestorePlan,
    Step,
    TargetState,
)

__all__ = ["DefaultRestorePlanner", "RestorePlanner", "index_create_params"]

DEFAULT_PARTITION = "_default"
_LOADED_STATES = frozenset({"Loaded", "Loading"})
# DescribeIndex reports build progress next to the params in some versions; they are not index params.
_INDEX_STATE_KEYS = frozenset(
    {"total_rows", "indexed_rows", "pending_index_rows", "state", "index_state", "index_state_fail_reason"}
)
# Milvus 2.2 and older reported the Trie scalar index by its library's name, which CreateIndex refuses.
_INDEX_TYPE_RENAMES = {"marisa-trie": "Trie"}


class RestorePlanner(Protocol):
    """Turns a backup, the caller's options and the target's current state into a plan."""

    def plan(self, backup: BackupInfo, options: RestoreOptions, target: TargetState) -> RestorePlan:
        """The plan; raises :class:`RestorePlanError` listing every conflict."""
        ...


def index_create_params(info: IndexInfo) -> tuple[tuple[str, str], ...]:
    """CreateIndex extra params for a backed-up index, in the shape ``DescribeIndex`` reported them.

    Milvus 2.3 reports index params flattened (``{"M": "8", "index_type": "HNSW", ...}``) and keeps
    them flattened when they are sent back that way; later versions (and the Go tool's backups) nest
    them as a JSON string under ``params``, which is passed through unchanged. Sending flattened params
    nested instead makes 2.3 describe the new index differently from the backed-up one (seen on 2.3.5).
    """
    rest = {k: v for k, v in info.params.items() if k not in _INDEX_STATE_KEYS}
    index_type = rest.pop("index_type", "") or info.index_type
    index_type = _INDEX_TYPE_RENAMES.get(index_type, index_type)
    metric_type = rest.pop("metric_type", "")
    out = [("index_type", index_type)]
    if metric_type:
        out.append(("metric_type", metric_type))
    nested = rest.pop("params", None)
    if nested is not None:
        out.append(("params", nested))
    out.extend(sorted(rest.items()))
    return tuple(out)


def _name_of(coll: CollectionBackupInfo) -> QualifiedName:
    return QualifiedName(coll.db_name or DEFAULT_DATABASE, coll.collection_name)


def _listing(names: Iterable[object]) -> str:
    return ", ".join(str(n) for n in names)


def _collection_properties(coll: CollectionBackupInfo) -> tuple[KeyValue, ...]:
    # v0.5.7..v0.5.9 keep them on the collection, v0.5.10+ also in the schema: take both, collection first.
    seen = {kv.key for kv in coll.properties}
    both = coll.properties + tuple(kv for kv in coll.schema.properties if kv.key not in seen)
    return without_max_field_id(both)


def _database_properties(db: DatabaseBackupInfo) -> tuple[KeyValue, ...]:
    # cipher.ezID names the source cluster's encryption zone (milvus internal/util/hookutil/cipher.go),
    # not one of the target; the zone's key travels with the imports instead (ezk).
    return tuple(kv for kv in db.properties if kv.key != CIPHER_EZ_ID)


@attrs.frozen
class _Selection:
    source: QualifiedName
    target: QualifiedName
    info: CollectionBackupInfo
    exists: bool


class DefaultRestorePlanner:
    """The standard planner. Per selected collection, in this order:

    drop (``drop_existing``, aliases first), create (unless ``skip_create``; partition-key collections get
    ``num_partitions``; struct array fields with it) and re-add the fields added after creation, in order
    (:mod:`milvus_backup_lib.restore.fields`), the non-default partitions, one import per segment group (a v0.4 partition without
    groups is one import of the partition directory), then the L0 deletes (partition-level, then
    collection-level), the backed-up indexes (``rebuild_indexes``), a load (``load``, or the backup's load
    state, only when every vector field will have an index) and the backed-up aliases (``restore_aliases``).

    Conflicts, all raised together: unknown filter or rename sources, a target that exists without
    ``drop_existing``/``skip_create``, both flags, ``skip_create`` on a missing target, two sources on one
    target, an alias or name taken on the target, and field IDs that a new collection would not get.
    """

    def plan(self, backup: BackupInfo, options: RestoreOptions, target: TargetState) -> RestorePlan:
        """Plan restoring ``backup`` onto ``target``; raises :class:`RestorePlanError` with every conflict."""
        conflicts: list[str] = []
        skipped: list[tuple[str, str]] = []
        if backup.format not in ("", "binlog") and target.backup_strategy != LOGICAL:
            conflicts.append(
                f"backup {backup.name} has format {backup.format!r}; only binlog backups restore"
            )
        if options.drop_existing and options.skip_create:
            conflicts.append("drop_existing and skip_create cannot be used together")

        selection = self._select(backup, options, target, conflicts)
        databases = {db.db_name or DEFAULT_DATABASE: db for db in backup.database_backups}
        dropped = {s.target for s in selection if s.exists and options.drop_existing}
        # Aliases of dropped collections go with them; what remains can block a new alias or name.
        live_aliases = {
            key: coll for key, coll in target.aliases.items() if QualifiedName(key[0], coll) not in dropped
        }
        names_after = target.collections | {s.target for s in selection}
        alias_owner: dict[tuple[str, str], QualifiedName] = {}

        plans: list[CollectionPlan] = []
        for sel in selection:
            steps: list[Step] = []
            drop = sel.target in dropped
            create = not options.skip_create
            if options.skip_create and not sel.exists:
                conflicts.append(
                    f"skip_create is set but target {sel.target} (from {sel.source}) does not exist"
                )
            if sel.exists and not options.drop_existing and not options.skip_create:
                conflicts.append(
                    f"collection {sel.target} (from {sel.source}) already exists on the target; "
                    "set drop_existing or skip_create"
                )
            if create and not sel.exists:
                clash = live_aliases.get((sel.target.database, sel.target.collection))
                if clash is not None:
                    conflicts.append(
                        f"cannot create {sel.target}: it is an alias of "
                        f"{sel.target.database}.{clash} on the target"
                    )
            if drop:
                steps.append(DropCollection(target=sel.target, aliases=target.aliases_of(sel.target)))
            layout = field_layout(sel.info.schema, sel.target.collection)
            method, why = "", ""
            imports: list[ImportData] = []
            found: list[str] = []  # problems of the import steps: conflicts only when importing
            if not options.meta_only:
                imports = import_steps(sel.source, sel.target, sel.info, found)
                problems = layout.problems if create else ()
                method, why, refused = choose_method(
                    options.method, backup.name, target, sel.info.schema, imports, problems
                )
                # a backup-wide refusal (a logical backup, no milvus_storage) is said once, not per collection
                conflicts.extend(why for why in refused if why not in conflicts)
            if create and method == "insert":  # inserts do not care about field IDs: all fields at once
                steps.append(self._create_collection(sel, layout.all_at_once))
            elif create:
                steps.append(self._create_collection(sel, layout.create))
                steps.extend(AddField(target=sel.target, field=f) for f in layout.added)
            steps.extend(self._partitions(sel))
            if method == "import":
                conflicts.extend(found)
                if imports and create and layout.problems:
                    conflicts.append(
                        f"field IDs of {sel.source} do not line up with the IDs Milvus gives a new "
                        f"collection {sel.target}, so its binlogs cannot be imported: "
                        + "; ".join(layout.problems)
                    )
                ezk = databases[sel.source.database].ezk if sel.source.database in databases else ""
                steps.extend(attrs.evolve(step, ezk=ezk) for step in imports)
            elif method == "insert":
                recorded = target.logical_rows.get(str(sel.source))
                steps.extend(insert_steps(sel.source, sel.target, sel.info, why, recorded))
            indexes = self._indexes(sel, conflicts) if options.rebuild_indexes else []
            steps.extend(indexes)
            steps.extend(self._load(sel, options, target, drop, indexes, skipped))
            steps.extend(
                self._aliases(
                    sel, options, target, drop, live_aliases, names_after, alias_owner, conflicts, skipped
                )
            )
            plans.append(
                CollectionPlan(
                    source=sel.source,
                    target=sel.target,
                    drop=drop,
                    create=create,
                    backup_rows=sum(target.logical_rows[str(sel.source)].values())
                    if str(sel.source) in target.logical_rows
                    else sel.info.num_rows,
                    steps=tuple(steps),
                    method=method,
                    method_reason=why,
                )
            )

        if conflicts:
            raise RestorePlanError(conflicts)
        known_databases = target.databases | {DEFAULT_DATABASE}
        create_databases = tuple(sorted({p.target.database for p in plans} - known_databases))
        # A new database gets the properties of the first backed-up database restored into it.
        sources = {}
        for p in reversed(plans):
            sources[p.target.database] = p.source.database
        database_properties = tuple(
            (db, props)
            for db in create_databases
            if sources[db] in databases and (props := _database_properties(databases[sources[db]]))
        )
        return RestorePlan(
            backup_name=backup.name,
            create_databases=create_databases,
            database_properties=database_properties,
            collections=tuple(plans),
            skipped=tuple(skipped),
            options=options,
        )

    # -- selection and names ----------------------------------------------------------------------

    def _select(
        self, backup: BackupInfo, options: RestoreOptions, target: TargetState, conflicts: list[str]
    ) -> list[_Selection]:
        in_backup = {_name_of(c): c for c in backup.collection_backups}
        databases = {name.database for name in in_backup}
        selector = options.filter
        conflicts.extend(
            f"collection {name} is not in backup {backup.name}"
            for name in selector.explicit_names()
            if name not in in_backup
        )
        conflicts.extend(
            f"database {db} has no collection in backup {backup.name}"
            for db in sorted(selector.databases - databases)
        )
        rules = options.rename_rules
        conflicts.extend(
            f"rename source {name} is not in backup {backup.name}"
            for name in sorted(rules.collections)
            if name not in in_backup
        )
        conflicts.extend(
            f"rename source {db}.* has no collection in backup {backup.name}"
            for db in sorted(set(rules.databases) - databases)
        )

        selection: list[_Selection] = []
        sources_of: dict[QualifiedName, list[QualifiedName]] = defaultdict(list)
        for source, info in in_backup.items():
            if not selector.matches(source):
                continue
            dest = options.target_name(source)
            try:
                validate_database_name(dest.database)
                validate_collection_name(dest.collection)
            except InvalidNameError as exc:
                conflicts.append(f"{source} cannot be restored as {dest}: {exc}")
                continue
            sources_of[dest].append(source)
            selection.append(_Selection(source, dest, info, dest in target.collections))
        conflicts.extend(
            f"{_listing(sources)} would all be restored to {dest}"
            for dest, sources in sources_of.items()
            if len(sources) > 1
        )
        return selection

    # -- per collection ---------------------------------------------------------------------------

    def _create_collection(self, sel: _Selection, schema: CollectionSchema) -> CreateCollection:
        info = sel.info
        partition_key = info.schema.partition_key_field is not None
        return CreateCollection(
            target=sel.target,
            source=sel.source,
            schema=schema,
            shards_num=info.shards_num,
            consistency_level=info.consistency_level,
            properties=_collection_properties(info),
            num_partitions=len(info.partition_backups) if partition_key else 0,
        )

    def _partitions(self, sel: _Selection) -> list[CreatePartition]:
        # A partition-key collection gets its `_default_N` partitions from num_partitions, and Milvus
        # refuses CreatePartition on it.
        if sel.info.schema.partition_key_field is not None:
            return []
        return [
            CreatePartition(target=sel.target, partition=p.partition_name)
            for p in sel.info.partition_backups
            if p.partition_name != DEFAULT_PARTITION
        ]

    def _indexes(self, sel: _Selection, conflicts: list[str]) -> list[CreateIndex]:
        fields = {f.name for f in sel.info.schema.fields}
        steps = []
        for info in sel.info.index_infos:
            if info.field_name not in fields:
                conflicts.append(
                    f"index {info.index_name} of {sel.source} is on field {info.field_name}, "
                    "which is not in the backed-up schema"
                )
                continue
            steps.append(
                CreateIndex(
                    target=sel.target,
                    field_name=info.field_name,
                    index_name=info.index_name,
                    params=index_create_params(info),
                )
            )
        return steps

    def _load(
        self,
        sel: _Selection,
        options: RestoreOptions,
        target: TargetState,
        drop: bool,
        indexes: Sequence[CreateIndex],
        skipped: list[tuple[str, str]],
    ) -> list[LoadCollection]:
        was_loaded = sel.info.load_state in _LOADED_STATES
        wanted = was_loaded if options.load is None else options.load
        name = str(sel.target)
        if not wanted:
            if was_loaded:
                skipped.append((name, "not loaded: load=False, though it was loaded at backup time"))
            return []
        if sel.exists and not drop and sel.target in target.indexed:
            return [LoadCollection(target=sel.target)]
        indexed = {step.field_name for step in indexes}
        missing = [
            f.name
            for f in sel.info.schema.fields
            if f.data_type in DataType.VECTORS and f.name not in indexed
        ]
        if not missing:
            return [LoadCollection(target=sel.target)]
        why = "rebuild_indexes is off" if not options.rebuild_indexes else "the backup has no such index"
        skipped.append((name, f"not loaded: no index on vector field(s) {_listing(missing)} ({why})"))
        return []

    def _aliases(
        self,
        sel: _Selection,
        options: RestoreOptions,
        target: TargetState,
        drop: bool,
        live_aliases: dict[tuple[str, str], str],
        names_after: frozenset[QualifiedName],
        alias_owner: dict[tuple[str, str], QualifiedName],
        conflicts: list[str],
        skipped: list[tuple[str, str]],
    ) -> list[CreateAlias]:
        name, db = str(sel.target), sel.target.database
        wanted = sel.info.aliases
        if drop:
            lost = [
                a for a in target.aliases_of(sel.target) if not options.restore_aliases or a not in wanted
            ]
            if lost:
                skipped.append((name, f"alias(es) {_listing(lost)} dropped with the old collection"))
        if not wanted:
            return []
        if not options.restore_aliases:
            skipped.append((name, f"alias(es) {_listing(wanted)} not restored: restore_aliases is off"))
            return []
        steps = []
        for alias in wanted:
            key = (db, alias)
            owner = alias_owner.setdefault(key, sel.target)
            current = live_aliases.get(key)
            if owner != sel.target:
                conflicts.append(f"alias {alias} in database {db} is wanted by both {owner} and {sel.target}")
            elif QualifiedName(db, alias) in names_after:
                conflicts.append(
                    f"alias {alias} of {sel.target} cannot be created: {db}.{alias} is a collection"
                )
            elif current == sel.target.collection:
                skipped.append((name, f"alias {alias} already points to it"))
            elif current is not None:
                conflicts.append(
                    f"alias {alias} in database {db} already points to {db}.{current}, not {sel.target}"
                )
            else:
                steps.append(CreateAlias(target=sel.target, alias=alias))
        return steps
