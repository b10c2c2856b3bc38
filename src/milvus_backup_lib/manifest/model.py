"""The backup description, as frozen attrs records that mirror milvus-backup's ``backup.proto``.

Attribute order is the proto field order (the JSON codec writes keys in that order, as Go does).
Each attribute's metadata tells the codec its JSON key (``json``), whether a zero value is still
written (``always``, the fields that milvus-backup's generator strips ``omitempty`` from) and, for
nested records, their type (``of``). Fields that the upstream format carries but this library does
not interpret (RBAC, CDC positions, snapshot info) are kept as raw JSON values so that a backup read
and written again loses nothing.
"""

# ruff: noqa: RUF009  (_f builds attrs fields; RUF009 takes it for a shared mutable default)

from __future__ import annotations

import base64
from typing import Any

import attrs

from milvus_backup_lib.manifest import _display
from milvus_backup_lib.manifest._types import ConsistencyLevel, DataType

__all__ = [
    "BackupInfo",
    "Binlog",
    "CollectionBackupInfo",
    "CollectionSchema",
    "ConsistencyLevel",
    "DataType",
    "DatabaseBackupInfo",
    "FieldBinlog",
    "FieldSchema",
    "FunctionSchema",
    "IndexInfo",
    "KeyValue",
    "PartitionBackupInfo",
    "SegmentBackupInfo",
    "StructArrayFieldSchema",
]


def _f(
    default: Any = None,
    *,
    json: str | None = None,
    always: bool = False,
    of: Any = None,
    factory: Any = None,
    raw: bool = False,
    secret: bool = False,
) -> Any:
    meta: dict[str, Any] = {"json": json, "always": always, "of": of, "raw": raw}
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta)
    # A secret (the encryption-zone key) is written to the manifest, as the Go tool does, but never shown.
    return attrs.field(default=default, metadata=meta, repr=not secret)


@attrs.frozen(kw_only=True)
class KeyValue:
    """A ``KeyValuePair``: type params, properties."""

    key: str = _f("")
    value: str = _f("")


@attrs.frozen(kw_only=True)
class Binlog:
    """One binlog file of a segment."""

    entries_num: int = _f(0)
    timestamp_from: int = _f(0)
    timestamp_to: int = _f(0)
    #: The source key in the Milvus storage (e.g. ``files/insert_log/...``); informational only.
    log_path: str = _f("")
    log_size: int = _f(0, always=True)
    log_id: int = _f(0)


@attrs.frozen(kw_only=True)
class FieldBinlog:
    """The binlogs of one field of a segment (delta logs use field 0)."""

    field_id: int = _f(0, json="fieldID")
    binlogs: tuple[Binlog, ...] = _f(factory=tuple, of=Binlog)


@attrs.frozen(kw_only=True)
class SegmentBackupInfo:
    """A flushed segment and the binlogs copied for it."""

    segment_id: int = _f(0)
    collection_id: int = _f(0)
    partition_id: int = _f(0)
    num_of_rows: int = _f(0)
    binlogs: tuple[FieldBinlog, ...] = _f(factory=tuple, of=FieldBinlog)
    statslogs: tuple[FieldBinlog, ...] = _f(factory=tuple, of=FieldBinlog)
    deltalogs: tuple[FieldBinlog, ...] = _f(factory=tuple, of=FieldBinlog)
    size: int = _f(0, always=True)
    #: The virtual partition directory the segment is stored under; == segment_id since v0.4.4.
    group_id: int = _f(0)
    backuped: bool = _f(False)
    is_l0: bool = _f(False)
    v_channel: str = _f("")
    storage_version: int = _f(0)


@attrs.frozen(kw_only=True)
class PartitionBackupInfo:
    """A partition and its segments."""

    partition_id: int = _f(0)
    partition_name: str = _f("")
    collection_id: int = _f(0)
    segment_backups: tuple[SegmentBackupInfo, ...] = _f(factory=tuple, of=SegmentBackupInfo)
    size: int = _f(0, always=True)
    load_state: str = _f("")


@attrs.frozen(kw_only=True)
class IndexInfo:
    """An index as ``DescribeIndex`` reports it; ``params`` holds index_type, metric_type and the rest."""

    field_name: str = _f("")
    index_name: str = _f("")
    index_type: str = _f("")
    params: dict[str, str] = _f(factory=dict)
    index_id: int = _f(0)
    field_id: int = _f(0)
    create_time: int = _f(0)
    type_params: Any = _f(None, raw=True)
    index_params: Any = _f(None, raw=True)
    user_index_params: Any = _f(None, raw=True)
    is_auto_index: bool = _f(False)
    min_index_version: int = _f(0)
    max_index_version: int = _f(0)


@attrs.frozen(kw_only=True)
class FieldSchema:
    """A field of a collection schema."""

    field_id: int = _f(0, json="fieldID")
    name: str = _f("")
    is_primary_key: bool = _f(False)
    description: str = _f("")
    data_type: int = _f(0)
    type_params: tuple[KeyValue, ...] = _f(factory=tuple, of=KeyValue)
    index_params: tuple[KeyValue, ...] = _f(factory=tuple, of=KeyValue)
    auto_id: bool = _f(False, json="autoID")
    state: int = _f(0)
    element_type: int = _f(0)
    is_dynamic: bool = _f(False)
    is_partition_key: bool = _f(False)
    nullable: bool = _f(False)
    #: v0.4.25..v0.5.4 stored the default value's protobuf bytes as a (possibly lossy) string; read only.
    default_value_proto: str = _f("")
    is_function_output: bool = _f(False)
    #: base64 of the ``schemapb.ValueField`` protobuf of the default value (v0.5.5+).
    default_value_base64: str = _f("")

    def type_param(self, key: str) -> str | None:
        """The value of a type param (``dim``, ``max_length``, ...), or None."""
        for kv in self.type_params:
            if kv.key == key:
                return kv.value
        return None

    @property
    def type_name(self) -> str:
        """The data type's name: ``Int64``, ``FloatVector``, ``Array<VarChar>``."""
        return DataType.name_of(self.data_type, self.element_type)

    @property
    def flags(self) -> tuple[str, ...]:
        """``pk``, ``auto-id``, ``partition-key``, ``dynamic``, ``nullable``, ``function-output``: those that apply."""
        named = (
            ("pk", self.is_primary_key),
            ("auto-id", self.auto_id),
            ("partition-key", self.is_partition_key),
            ("dynamic", self.is_dynamic),
            ("nullable", self.nullable),
            ("function-output", self.is_function_output),
        )
        return tuple(name for name, on in named if on)

    @property
    def default_value_bytes(self) -> bytes | None:
        """The serialized ``ValueField`` of the default value, from base64 (preferred) or the legacy field."""
        if self.default_value_base64:
            return base64.b64decode(self.default_value_base64)
        if self.default_value_proto:
            return self.default_value_proto.encode("utf-8", errors="surrogateescape")
        return None


@attrs.frozen(kw_only=True)
class FunctionSchema:
    """A schema function (BM25, text embedding)."""

    name: str = _f("")
    id: int = _f(0)
    description: str = _f("")
    type: int = _f(0)
    input_field_names: tuple[str, ...] = _f(factory=tuple)
    input_field_ids: tuple[int, ...] = _f(factory=tuple)
    output_field_names: tuple[str, ...] = _f(factory=tuple)
    output_field_ids: tuple[int, ...] = _f(factory=tuple)
    params: tuple[KeyValue, ...] = _f(factory=tuple, of=KeyValue)


@attrs.frozen(kw_only=True)
class StructArrayFieldSchema:
    """A struct array field (Milvus 2.6+, milvus-backup v0.5.9+): an array of structs whose members are
    stored as fields of their own (``Array`` or ``ArrayOfVector`` sub-fields), each with its field ID.

    Milvus numbers a struct field and then its sub-fields right after the collection's other fields
    (``internal/rootcoord/create_collection_task.go`` ``assignFieldAndFunctionID``).
    """

    field_id: int = _f(0, json="fieldID")
    name: str = _f("")
    description: str = _f("")
    fields: tuple[FieldSchema, ...] = _f(factory=tuple, of=FieldSchema)


@attrs.frozen(kw_only=True)
class CollectionSchema:
    """A collection schema."""

    name: str = _f("")
    description: str = _f("")
    auto_id: bool = _f(False, json="autoID")
    fields: tuple[FieldSchema, ...] = _f(factory=tuple, of=FieldSchema)
    enable_dynamic_field: bool = _f(False)
    properties: tuple[KeyValue, ...] = _f(factory=tuple, of=KeyValue)
    functions: tuple[FunctionSchema, ...] = _f(factory=tuple, of=FunctionSchema)
    struct_array_fields: tuple[StructArrayFieldSchema, ...] = _f(factory=tuple, of=StructArrayFieldSchema)

    @property
    def stored_fields(self) -> tuple[FieldSchema, ...]:
        """The fields that have binlogs of their own: the fields, then each struct array field's sub-fields."""
        return self.fields + tuple(sub for struct in self.struct_array_fields for sub in struct.fields)

    @property
    def primary_field(self) -> FieldSchema:
        """The primary key field."""
        for field in self.fields:
            if field.is_primary_key:
                return field
        raise ValueError(f"schema of {self.name!r} has no primary key field")

    @property
    def partition_key_field(self) -> FieldSchema | None:
        """The partition key field, if any."""
        return next((f for f in self.fields if f.is_partition_key), None)


@attrs.frozen(kw_only=True)
class CollectionBackupInfo:
    """A backed-up collection: schema, indexes, partitions, segments and checkpoints."""

    id: str = _f("")
    collection_id: int = _f(0)
    db_name: str = _f("")
    collection_name: str = _f("")
    schema: CollectionSchema = _f(factory=CollectionSchema, of=CollectionSchema)
    shards_num: int = _f(0)
    consistency_level: int = _f(0)
    partition_backups: tuple[PartitionBackupInfo, ...] = _f(factory=tuple, of=PartitionBackupInfo)
    #: TSO of the flush that the backup is consistent with.
    backup_timestamp: int = _f(0)
    size: int = _f(0, always=True)
    has_index: bool = _f(False, always=True)
    index_infos: tuple[IndexInfo, ...] = _f(factory=tuple, of=IndexInfo)
    load_state: str = _f("")
    #: Unix seconds of the flush seal time.
    backup_physical_timestamp: int = _f(0)
    #: vchannel -> base64(protobuf ``MsgPosition``) from the flush.
    channel_checkpoints: dict[str, str] = _f(factory=dict)
    #: Collection-level L0 segments (partition -1).
    l0_segments: tuple[SegmentBackupInfo, ...] = _f(factory=tuple, of=SegmentBackupInfo)
    properties: tuple[KeyValue, ...] = _f(factory=tuple, of=KeyValue)
    db_id: int = _f(0)
    created_timestamp: int = _f(0)
    virtual_channel_names: tuple[str, ...] = _f(factory=tuple)
    physical_channel_names: tuple[str, ...] = _f(factory=tuple)
    aliases: tuple[str, ...] = _f(factory=tuple)
    snapshot_backup: Any = _f(None, raw=True)

    @property
    def qualified_name(self) -> str:
        """``db.collection``."""
        return f"{self.db_name or 'default'}.{self.collection_name}"

    @property
    def num_rows(self) -> int:
        """Rows held by the non-L0 segments (before deletes)."""
        return sum(s.num_of_rows for p in self.partition_backups for s in p.segment_backups if not s.is_l0)

    @property
    def num_partitions(self) -> int:
        """The number of partitions."""
        return len(self.partition_backups)

    @property
    def num_segments(self) -> int:
        """The number of segments: in partitions (L0 included) and collection-level L0."""
        return sum(len(p.segment_backups) for p in self.partition_backups) + len(self.l0_segments)

    def property(self, key: str) -> str | None:
        """A collection property (``collection.ttl.seconds``, ...), or None."""
        for kv in self.properties:
            if kv.key == key:
                return kv.value
        return None

    def table(self) -> str:
        """The collection as text: a summary line, then its fields, partitions and indexes."""
        return _display.collection_table(self)

    def _repr_html_(self) -> str:
        return _display.collection_html(self)


@attrs.frozen(kw_only=True)
class DatabaseBackupInfo:
    """A backed-up database."""

    db_name: str = _f("")
    db_id: int = _f(0)
    properties: tuple[KeyValue, ...] = _f(factory=tuple, of=KeyValue)
    #: The encryption-zone key of an encrypted database (Milvus's management API
    #: ``/management/rootcoord/ez/backup``), sent with its imports as the ``ezk`` option. Never shown.
    ezk: str = _f("", secret=True)

    def property(self, key: str) -> str | None:
        """A database property (``database.replica.number``, ...), or None."""
        for kv in self.properties:
            if kv.key == key:
                return kv.value
        return None


@attrs.frozen(kw_only=True)
class BackupInfo:
    """The root of a backup (``full_meta.json``)."""

    id: str = _f("")
    #: Deprecated in v0.5 (written as 0); v0.4 wrote 2 (success).
    state_code: int = _f(0, always=True)
    name: str = _f("")
    backup_timestamp: int = _f(0)
    collection_backups: tuple[CollectionBackupInfo, ...] = _f(factory=tuple, of=CollectionBackupInfo)
    size: int = _f(0, always=True)
    milvus_version: str = _f("")
    rbac_meta: Any = _f(None, raw=True)
    rpc_channel_info: Any = _f(None, raw=True)
    database_backups: tuple[DatabaseBackupInfo, ...] = _f(factory=tuple, of=DatabaseBackupInfo)
    flush_all_msgs_base64: dict[str, str] = _f(factory=dict)
    control_channel_name: str = _f("")
    physical_channel_names: tuple[str, ...] = _f(factory=tuple)
    #: "" = binlog format; the snapshot format (Milvus 3.0) is not supported.
    format: str = _f("")

    def collection(self, db_name: str, collection_name: str) -> CollectionBackupInfo:
        """The backed-up collection ``db_name.collection_name``; raises ``KeyError``."""
        for coll in self.collection_backups:
            if (coll.db_name or "default") == db_name and coll.collection_name == collection_name:
                return coll
        raise KeyError(f"{db_name}.{collection_name}")

    def table(self) -> str:
        """The backup as text: a summary line, then one line per collection."""
        return _display.backup_table(self)

    def _repr_html_(self) -> str:
        return _display.backup_html(self)
