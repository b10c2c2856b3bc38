"""A restore plan: what the target looks like now, and the steps that restore a backup onto it.

The planner writes a plan without touching anything; the executor runs its :attr:`RestorePlan.steps` in
order. Every step is a frozen record with a ``kind`` and a one-line :meth:`describe`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import ClassVar, TypeAlias

import attrs

from milvus_backup_lib.manifest.model import CollectionSchema, FieldSchema, KeyValue
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan_data import ImportData, InsertData

__all__ = [
    "AddField",
    "CollectionPlan",
    "CreateAlias",
    "CreateCollection",
    "CreateDatabase",
    "CreateIndex",
    "CreatePartition",
    "DropCollection",
    "ImportData",
    "InsertData",
    "LoadCollection",
    "RestorePlan",
    "Step",
    "TargetState",
]


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _collections(value: Iterable[QualifiedName]) -> frozenset[QualifiedName]:
    return frozenset(value)


def _aliases(value: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    return dict(value)


@attrs.frozen
class TargetState:
    """What exists on the target Milvus before the restore."""

    databases: frozenset[str] = attrs.field(converter=_names)
    collections: frozenset[QualifiedName] = attrs.field(converter=_collections)
    #: ``(database, alias) -> collection`` the alias points to.
    aliases: Mapping[tuple[str, str], str] = attrs.field(factory=dict, converter=_aliases, hash=False)
    #: Existing collections with an index on every vector field (they can be loaded without new indexes).
    indexed: frozenset[QualifiedName] = attrs.field(factory=frozenset, converter=_collections)
    #: The version the server reports (``v2.3.5``, ``milvus_lite-3.2.2``); ``""``: unknown, assume it imports.
    server_version: str = ""
    #: Whether the client knows the server's storage (``milvus_storage``), so imports can be read there.
    milvus_storage: bool = True
    #: The backup's ``LibraryMeta.strategy`` (``"logical"``: rows in Parquet, only inserts restore it).
    backup_strategy: str = ""
    #: A logical backup's recorded rows: ``{qualified source: {partition name: rows}}`` (its manifest
    #: has no segments to count them from).
    logical_rows: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict, hash=False)

    @classmethod
    def empty(cls) -> TargetState:
        """A fresh cluster: only the ``default`` database."""
        return cls(databases=frozenset({"default"}), collections=frozenset())

    def aliases_of(self, target: QualifiedName) -> tuple[str, ...]:
        """The aliases that point to ``target``, sorted."""
        return tuple(
            sorted(
                alias
                for (db, alias), coll in self.aliases.items()
                if db == target.database and coll == target.collection
            )
        )


@attrs.frozen(kw_only=True)
class CreateDatabase:
    """Create a target database that does not exist yet."""

    kind: ClassVar[str] = "create_database"
    database: str
    #: The backed-up database's properties (``database.replica.number``, ``cipher.enabled``...), without the
    #: ones the server assigns (``cipher.ezID``).
    properties: tuple[KeyValue, ...] = ()

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return self.database

    @property
    def detail(self) -> str:
        """The step's parameters in a few words (the keys of ``cipher.*`` properties, not their values)."""
        return ", ".join(
            kv.key if kv.key.startswith("cipher.") else f"{kv.key}={kv.value}" for kv in self.properties
        )

    def describe(self) -> str:
        """One line for humans."""
        return f"create database {self.database}" + (f" ({self.detail})" if self.properties else "")


@attrs.frozen(kw_only=True)
class DropCollection:
    """Drop an existing target collection; its ``aliases`` are dropped first (Milvus 2.4+ refuses otherwise)."""

    kind: ClassVar[str] = "drop_collection"
    target: QualifiedName
    aliases: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        return f"after dropping aliases {', '.join(self.aliases)}" if self.aliases else ""

    def describe(self) -> str:
        """One line for humans."""
        extra = f" (and its aliases {', '.join(self.aliases)})" if self.aliases else ""
        return f"drop collection {self.target}{extra}"


@attrs.frozen(kw_only=True)
class CreateCollection:
    """Create the target collection with the backed-up schema (field order kept, so field IDs line up)."""

    kind: ClassVar[str] = "create_collection"
    target: QualifiedName
    source: QualifiedName
    #: The backed-up schema, named after the target, without the hidden ``$meta`` field.
    schema: CollectionSchema
    shards_num: int
    consistency_level: int
    #: Collection properties, e.g. ``collection.ttl.seconds``.
    properties: tuple[KeyValue, ...] = ()
    #: For a partition-key collection, the number of backed-up partitions; else 0.
    num_partitions: int = 0

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        parts = [
            f"from {self.source}",
            f"{len(self.schema.fields)} fields",
            *(
                [f"{len(self.schema.struct_array_fields)} struct array fields"]
                if self.schema.struct_array_fields
                else []
            ),
            f"shards={self.shards_num}",
            f"consistency={self.consistency_level}",
        ]
        if self.schema.enable_dynamic_field:
            parts.append("dynamic")
        if self.num_partitions:
            parts.append(f"num_partitions={self.num_partitions}")
        parts.extend(f"{kv.key}={kv.value}" for kv in self.properties)
        return ", ".join(parts)

    def describe(self) -> str:
        """One line for humans."""
        return f"create collection {self.target} ({self.detail})"


@attrs.frozen(kw_only=True)
class AddField:
    """Add a field that the backed-up collection got after its creation (``AddCollectionField``, Milvus
    2.6+); Milvus numbers it after the existing fields, so done in order the IDs line up again."""

    kind: ClassVar[str] = "add_field"
    target: QualifiedName
    #: The backed-up field, with its backed-up field ID (the one Milvus is expected to give it).
    field: FieldSchema

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        return f"{self.field.name} ({self.field.type_name}, field ID {self.field.field_id})"

    def describe(self) -> str:
        """One line for humans."""
        return f"add field {self.detail} to {self.target}"


@attrs.frozen(kw_only=True)
class CreatePartition:
    """Create a backed-up partition in the target collection, unless it already exists."""

    kind: ClassVar[str] = "create_partition"
    target: QualifiedName
    partition: str

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        return self.partition

    def describe(self) -> str:
        """One line for humans."""
        return f"create partition {self.partition} in {self.target}"


@attrs.frozen(kw_only=True)
class CreateIndex:
    """Create a backed-up index; ``params`` are CreateIndex's extra params (index_type, metric_type, params)."""

    kind: ClassVar[str] = "create_index"
    target: QualifiedName
    field_name: str
    index_name: str
    params: tuple[tuple[str, str], ...]

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        params = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.index_name} on {self.field_name}: {params}"

    def describe(self) -> str:
        """One line for humans."""
        return f"create index {self.detail} in {self.target}"


@attrs.frozen(kw_only=True)
class LoadCollection:
    """Load the target collection into memory."""

    kind: ClassVar[str] = "load_collection"
    target: QualifiedName

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        return ""

    def describe(self) -> str:
        """One line for humans."""
        return f"load collection {self.target}"


@attrs.frozen(kw_only=True)
class CreateAlias:
    """Create an alias (in the target's database) for the target collection."""

    kind: ClassVar[str] = "create_alias"
    target: QualifiedName
    alias: str

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        return self.alias

    def describe(self) -> str:
        """One line for humans."""
        return f"create alias {self.alias} for {self.target}"


#: Every kind of step, for exhaustive dispatch in an executor.
Step: TypeAlias = (
    CreateDatabase
    | DropCollection
    | CreateCollection
    | AddField
    | CreatePartition
    | ImportData
    | InsertData
    | CreateIndex
    | LoadCollection
    | CreateAlias
)


@attrs.frozen(kw_only=True)
class CollectionPlan:
    """The steps that restore one backed-up collection, in execution order."""

    source: QualifiedName
    target: QualifiedName
    #: An existing target is dropped first.
    drop: bool
    #: The target is created (False with ``skip_create``).
    create: bool
    #: Rows in the backup's non-L0 segments, before deletes.
    backup_rows: int
    steps: tuple[Step, ...]
    #: How the data reaches the target: ``import`` or ``insert`` (``""``: no data, meta_only).
    method: str = "import"
    #: Why that method (``RestoreOptions.method="auto"`` chose it, or it was asked for).
    method_reason: str = ""

    @property
    def inserts(self) -> tuple[InsertData, ...]:
        """The insert steps, one per backed-up partition."""
        return tuple(step for step in self.steps if isinstance(step, InsertData))

    @property
    def imports(self) -> tuple[ImportData, ...]:
        """The import jobs, data first then L0 deletes."""
        return tuple(step for step in self.steps if isinstance(step, ImportData))


_HEADERS = ("#", "step", "target", "detail")


@attrs.frozen(kw_only=True)
class RestorePlan:
    """Everything a restore will do, in order; :meth:`table` shows it."""

    backup_name: str
    create_databases: tuple[str, ...]
    collections: tuple[CollectionPlan, ...]
    #: ``(what, why)`` for what is deliberately not restored (loads, aliases).
    skipped: tuple[tuple[str, str], ...] = ()
    options: RestoreOptions = attrs.field(factory=RestoreOptions)
    #: ``(database, properties)`` for the databases in :attr:`create_databases` that get properties.
    database_properties: tuple[tuple[str, tuple[KeyValue, ...]], ...] = ()

    @property
    def steps(self) -> tuple[Step, ...]:
        """All steps in execution order: databases, then each collection's steps."""
        props = dict(self.database_properties)
        databases: tuple[Step, ...] = tuple(
            CreateDatabase(database=db, properties=props.get(db, ())) for db in self.create_databases
        )
        return databases + tuple(step for coll in self.collections for step in coll.steps)

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (str(number), step.kind, step.subject, step.detail)
            for number, step in enumerate(self.steps, start=1)
        ]

    def table(self) -> str:
        """The plan as a fixed-width text table, one row per step, then what is skipped and why."""
        rows = self._rows()
        widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(3)]

        def line(row: tuple[str, str, str, str]) -> str:
            cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3]]
            return "  ".join(cells).rstrip()

        out = [
            f"restore of backup {self.backup_name}: {len(self.collections)} collection(s), {len(rows)} step(s)",
            line(_HEADERS),
            "  ".join("-" * w for w in widths) + "  ------",
            *(line(row) for row in rows),
        ]
        methods = [c for c in self.collections if c.method]
        if methods:
            out.append("data:")
            out.extend(f"  {c.target}: {c.method} ({c.method_reason})" for c in methods)
        if self.skipped:
            out.append("skipped:")
            out.extend(f"  {what}: {why}" for what, why in self.skipped)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in _HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self._rows()
        )
        skipped = "".join(f"<li>{html.escape(what)}: {html.escape(why)}</li>" for what, why in self.skipped)
        return (
            f"<p>restore of backup {html.escape(self.backup_name)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + (f"<p>skipped:</p><ul>{skipped}</ul>" if skipped else "")
        )
