"""The state of an :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus`: collections, partitions,
segments, delete records, the ID allocator and the hybrid clock, and what each Milvus version line does.
"""

from __future__ import annotations

import itertools
import re
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.manifest.model import CollectionSchema, DataType, FieldSchema, IndexInfo, KeyValue

__all__ = [
    "ROW_ID_FIELD",
    "TIMESTAMP_FIELD",
    "Clock",
    "Collection",
    "DeleteRecord",
    "Partition",
    "Segment",
    "VersionLine",
    "assign_field_ids",
    "field",
    "max_field_id",
    "system_fields",
]

#: ``common.RowIDField`` and ``common.TimeStampField``: the system fields of every segment.
ROW_ID_FIELD = 0
TIMESTAMP_FIELD = 1
#: ``common.StartOfUserFieldID``: user fields are numbered from here, in schema order.
FIRST_USER_FIELD_ID = 100
#: ``pkg/util/tsoutil``: a hybrid timestamp is ``physical_ms << 18 | logical``.
LOGICAL_BITS = 18


@attrs.frozen
class VersionLine:
    """What the Milvus version being imitated does (see :mod:`milvus_backup_lib.testing.memory`)."""

    version: tuple[int, int, int]

    @classmethod
    def parse(cls, text: str) -> VersionLine:
        numbers = [int(n) for n in re.findall(r"\d+", text.split("-", 1)[0])[:3]]
        if len(numbers) < 2 or numbers[0] != 2 or not 3 <= numbers[1] <= 6:
            raise ValueError(f"InMemoryMilvus imitates Milvus 2.3 to 2.6, not {text!r}")
        return cls((numbers[0], numbers[1], numbers[2] if len(numbers) > 2 else 0))

    @property
    def text(self) -> str:
        return ".".join(str(n) for n in self.version)

    @property
    def has_l0(self) -> bool:
        """Deletes of a flush go to L0 segments (2.4+); before, to delta logs of the segments they hit."""
        return self.version >= (2, 4)

    @property
    def gc_control(self) -> bool:
        """The HTTP management port pauses GC (2.3.5 answers 404: test-rig.md)."""
        return self.version >= (2, 4)

    @property
    def storage_version(self) -> int:
        """2 on 2.6 (storage v2 by default, milvus PRs 43169/43713), else 0 (v1 files)."""
        return 2 if self.version >= (2, 6) else 0

    @property
    def describes_segments(self) -> bool:
        """The REST segment-describe API lists each segment's binlogs (2.5.8+, milvus PR 40464)."""
        return self.version >= (2, 5, 8)

    @property
    def stream_delta_logs(self) -> bool:
        """v1 delete logs come from the stream writer (``internal/flushcommon``) rather than ``DeleteCodec``
        (``internal/datanode/syncmgr`` of 2.4)."""
        return self.version >= (2, 5)

    @property
    def nullable_extra(self) -> bool:
        """Insert binlogs record ``nullable`` in their descriptor (nullable fields came with 2.5)."""
        return self.version >= (2, 5)

    @property
    def imports_every_vector_type(self) -> bool:
        """2.3.5's binlog importer answers "unsupported data type" for Float16/BFloat16/Sparse/Int8."""
        return self.version >= (2, 4)


class Clock:
    """Hybrid timestamps (TSO) that only increase, and IDs from one allocator, like Milvus's rootcoord."""

    def __init__(self, id_base: int) -> None:
        self._lock = threading.Lock()
        self._last_ts = 0
        self._ids: Iterator[int] = itertools.count(id_base)

    def now(self) -> int:
        with self._lock:
            physical = int(time.time() * 1000) << LOGICAL_BITS
            self._last_ts = max(self._last_ts + 1, physical)
            return self._last_ts

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def ids(self, n: int) -> list[int]:
        with self._lock:
            return [next(self._ids) for _ in range(n)]


@attrs.frozen
class DeleteRecord:
    """A delete: rows of ``pk`` written before ``ts`` are gone (``importutilv2/binlog/filter.go``
    ``FilterWithDelete`` keeps a row when ``deleteTs <= rowTs``). ``partition_id`` -1: every partition."""

    pk: Any
    ts: int
    partition_id: int
    flushed: bool = False


@attrs.define(eq=False)
class Segment:
    """A segment: L1 rows (field ID -> value, system fields 0 and 1 included) or, for L0, delete entries."""

    segment_id: int
    collection_id: int
    partition_id: int
    channel: str
    level: str = "L1"
    state: str = "Growing"
    storage_version: int = 0
    rows: list[dict[int, Any]] = attrs.field(factory=list)
    #: L0: its deletes; L1: the deletes written to its delta logs.
    deletes: list[tuple[Any, int]] = attrs.field(factory=list)
    #: Keys of its files, relative to the storage root.
    files: list[str] = attrs.field(factory=list)

    @property
    def is_l0(self) -> bool:
        return self.level == "L0"

    @property
    def num_rows(self) -> int:
        return len(self.deletes) if self.is_l0 else len(self.rows)


@attrs.define(eq=False)
class Partition:
    name: str
    partition_id: int


@attrs.define(eq=False)
class Collection:
    """A collection. ``schema`` holds every field with its ID, the hidden ``$meta`` field included."""

    collection_id: int
    db: str
    name: str
    schema: CollectionSchema
    shards_num: int
    consistency_level: int
    properties: tuple[KeyValue, ...]
    created_ts: int
    partitions: list[Partition] = attrs.field(factory=list)
    segments: dict[int, Segment] = attrs.field(factory=dict)
    deletes: list[DeleteRecord] = attrs.field(factory=list)
    indexes: dict[str, IndexInfo] = attrs.field(factory=dict)
    loaded: bool = False

    @property
    def channels(self) -> list[str]:
        """Virtual channel names (``{pchannel}_{collection}v{i}``), one per shard."""
        return [f"by-dev-rootcoord-dml_{i}_{self.collection_id}v{i}" for i in range(max(1, self.shards_num))]

    @property
    def pk_field(self) -> FieldSchema:
        return self.schema.primary_field

    @property
    def dynamic_field(self) -> FieldSchema | None:
        return next((f for f in self.schema.fields if f.is_dynamic), None)

    def partition(self, name: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == name), None)

    def live_segments(self, *, level: str | None = None) -> list[Segment]:
        return [
            s for s in self.segments.values() if s.state != "Dropped" and (level is None or s.level == level)
        ]

    def is_deleted(self, row: dict[int, Any], partition_id: int, *, flushed_only: bool = False) -> bool:
        pk, ts = row[self.pk_field.field_id], row[TIMESTAMP_FIELD]
        return any(
            d.pk == pk
            and d.ts > ts
            and d.partition_id in (-1, partition_id)
            and (d.flushed or not flushed_only)
            for d in self.deletes
        )


def assign_field_ids(schema: CollectionSchema, line: VersionLine) -> CollectionSchema:
    """``schema`` with the field IDs Milvus gives a new collection: 100, 101... in schema order, then the
    hidden ``$meta`` field when ``enable_dynamic_field`` (what milvus-backup relies on:
    ``core/restore/funcs/funcs.go`` ``GuessDynFieldID``, the ID after the last user field), then each
    struct array field followed by its sub-fields (milvus ``internal/rootcoord/create_collection_task.go``
    ``assignFieldAndFunctionID``: struct array fields are numbered after ``Fields``, ``$meta`` included)."""
    if any(f.is_dynamic for f in schema.fields):
        raise MilvusOperationError("CreateCollection", "cannot explicitly set a field as a dynamic field")
    if sum(f.is_primary_key for f in schema.fields) != 1:
        raise MilvusOperationError("CreateCollection", "there should be exactly one primary key field")
    vectors = [f for f in schema.fields if f.data_type in DataType.VECTORS]
    if len(vectors) > 1 and not line.has_l0:  # one vector field per collection on 2.3 (test-rig.md)
        raise MilvusOperationError("CreateCollection", "maximum vector field's number should be limited to 1")
    if schema.struct_array_fields and line.version < (2, 6):  # StructArrayFieldSchema came with 2.6
        raise MilvusOperationError("CreateCollection", "struct array fields are not supported")
    fields = [attrs.evolve(f, field_id=FIRST_USER_FIELD_ID + i) for i, f in enumerate(schema.fields)]
    if schema.enable_dynamic_field:
        next_id = FIRST_USER_FIELD_ID + len(fields)
        fields.append(FieldSchema(field_id=next_id, name="$meta", data_type=DataType.JSON, is_dynamic=True))
    ids = itertools.count(FIRST_USER_FIELD_ID + len(fields))
    structs = tuple(
        attrs.evolve(
            struct,
            field_id=next(ids),
            fields=tuple(attrs.evolve(sub, field_id=next(ids)) for sub in struct.fields),
        )
        for struct in schema.struct_array_fields
    )
    return attrs.evolve(schema, fields=tuple(fields), struct_array_fields=structs)


def max_field_id(schema: CollectionSchema, properties: Sequence[KeyValue] = ()) -> int:
    """The highest field ID in use: fields (``$meta`` included), struct array fields and their sub-fields,
    and the ``max_field_id`` property newer Milvus keeps so that a dropped field's ID is never reused
    (milvus ``internal/rootcoord/ddl_callbacks_alter_collection_add_field.go``: a new field gets
    ``maxAssignedFieldIDFromSchema(schema) + 1``)."""
    ids = [f.field_id for f in schema.stored_fields] + [s.field_id for s in schema.struct_array_fields]
    ids.extend(int(kv.value) for kv in properties if kv.key == "max_field_id" and kv.value.isdigit())
    return max(ids, default=FIRST_USER_FIELD_ID - 1)


def system_fields() -> tuple[FieldSchema, FieldSchema]:
    """RowID and Timestamp (``typeutil.AppendSystemFields``)."""
    return (
        FieldSchema(field_id=ROW_ID_FIELD, name="RowID", data_type=DataType.INT64),
        FieldSchema(field_id=TIMESTAMP_FIELD, name="Timestamp", data_type=DataType.INT64),
    )


def field(
    name: str,
    data_type: int,
    *,
    primary: bool = False,
    auto_id: bool = False,
    dim: int | None = None,
    max_length: int | None = None,
    element_type: int = 0,
    max_capacity: int | None = None,
    nullable: bool = False,
    partition_key: bool = False,
) -> FieldSchema:
    """A :class:`FieldSchema` for :meth:`InMemoryMilvus.create_collection` (IDs are assigned there)."""
    params = [
        KeyValue(key=k, value=str(v))
        for k, v in (("dim", dim), ("max_length", max_length), ("max_capacity", max_capacity))
        if v is not None
    ]
    return FieldSchema(
        name=name,
        data_type=data_type,
        is_primary_key=primary,
        auto_id=auto_id,
        type_params=tuple(params),
        element_type=element_type,
        nullable=nullable,
        is_partition_key=partition_key,
    )


def float32(value: float) -> float:
    """``value`` as Milvus stores a Float: rounded to float32."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def pack_vector(spec: FieldSchema, value: Any) -> bytes:
    """A vector value as the bytes a segment file holds (bytes pass through; float, float16 and int8
    vectors also accept a sequence of numbers, little endian like ``common.Endian``)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    numbers: Sequence[Any] = list(value)
    if spec.data_type == DataType.FLOAT_VECTOR:
        return struct.pack(f"<{len(numbers)}f", *numbers)
    if spec.data_type == DataType.FLOAT16_VECTOR:
        return struct.pack(f"<{len(numbers)}e", *numbers)
    if spec.data_type == DataType.INT8_VECTOR:
        return struct.pack(f"<{len(numbers)}b", *numbers)
    raise TypeError(f"give {spec.type_name} values of field {spec.name!r} as bytes")
