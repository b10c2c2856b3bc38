"""How a backed-up schema is recreated so that Milvus gives its fields the IDs the backup's binlog
directories are named by.

Milvus numbers the fields of a new collection itself (milvus ``internal/rootcoord/create_collection_task.go``
``assignFieldAndFunctionID``): 100, 101... in schema order, the hidden ``$meta`` field next when the dynamic
field is enabled, then each struct array field followed by its sub-fields. A field added later with
``AddCollectionField`` (2.6+, always nullable) gets the highest ID in use plus one
(``internal/rootcoord/ddl_callbacks_alter_collection_add_field.go``). So a collection that had fields added
is recreated with its original fields, then the added ones are added again in order, as milvus-backup does
(``core/restore/coll_ddl_task.go`` ``fields``/``addFields``, PR #887). Where milvus-backup guesses the
original fields from the first gap before the ``$meta`` ID (``core/restore/funcs/funcs.go``
``GuessDynFieldID``, only for dynamic collections), this module replays Milvus's numbering, which also
covers collections without a dynamic field and those with struct array fields.

Newer Milvus keeps a ``max_field_id`` collection property (milvus#48988) and numbers added fields after
it: replayed into ``CreateCollection`` it would push every re-added field past its backed-up ID, so it is
left out (the fix of milvus-backup PR #1079).

A VarChar field, or an Array of VarChar, needs a ``max_length`` on every Milvus server ("type
param(max_length) should be specified for varChar field"), but Milvus Lite 3.2.2 neither requires nor
keeps one: its ``adapter/grpc/translators/schema.py`` reads ``max_length`` only for VARCHAR fields (optional)
and never for an ARRAY's elements, so its ``DescribeCollection``, and a logical backup of it, has none.
Such a field is recreated with Milvus's largest VarChar length, 65535 (``proxy.maxVarCharLength``,
milvus ``configs/milvus.yaml``): the source enforced no limit.
"""

from __future__ import annotations

import logging

import attrs

from milvus_backup_lib.manifest.model import CollectionSchema, DataType, FieldSchema, KeyValue

__all__ = [
    "FIRST_USER_FIELD_ID",
    "MAX_FIELD_ID_PROPERTY",
    "MAX_VARCHAR_LENGTH",
    "FieldLayout",
    "field_ids",
    "field_layout",
    "with_max_length",
    "without_max_field_id",
]

#: ``common.StartOfUserFieldID``.
FIRST_USER_FIELD_ID = 100
#: The collection property newer Milvus manages itself (never sent back on create).
MAX_FIELD_ID_PROPERTY = "max_field_id"
#: ``proxy.maxVarCharLength``'s default, the longest VarChar a Milvus server accepts.
MAX_VARCHAR_LENGTH = 65535

_log = logging.getLogger(__name__)


@attrs.frozen
class FieldLayout:
    """A schema split into what ``CreateCollection`` gets and the fields added after it, in order."""

    #: The schema to create: fields without ``$meta`` and without the added ones, struct array fields,
    #: properties without ``max_field_id``.
    create: CollectionSchema
    #: Fields to add with ``AddCollectionField`` after the creation, in order.
    added: tuple[FieldSchema, ...]
    #: Fields whose backed-up ID the target will not give them, as ``name: id (Milvus assigns n)``.
    problems: tuple[str, ...]

    @property
    def all_at_once(self) -> CollectionSchema:
        """The schema to create with every field at once (for inserts, where field IDs do not matter)."""
        return attrs.evolve(self.create, fields=(*self.create.fields, *self.added))


def without_max_field_id(properties: tuple[KeyValue, ...]) -> tuple[KeyValue, ...]:
    """``properties`` without the server-managed ``max_field_id``."""
    return tuple(kv for kv in properties if kv.key != MAX_FIELD_ID_PROPERTY)


def with_max_length(f: FieldSchema, collection: str = "") -> FieldSchema:
    """``f``, with ``max_length`` :data:`MAX_VARCHAR_LENGTH` if it is a VarChar (or Array of VarChar)
    field without one (a Milvus Lite schema: see the module docstring)."""
    varchar = f.data_type == DataType.VARCHAR or (
        f.data_type == DataType.ARRAY and f.element_type == DataType.VARCHAR
    )
    if not varchar or f.type_param("max_length") is not None:
        return f
    _log.info(
        "field %r of %s has no max_length (a Milvus Lite schema): it is created with max_length %d",
        f.name,
        collection or "the backed-up collection",
        MAX_VARCHAR_LENGTH,
    )
    params = (*f.type_params, KeyValue(key="max_length", value=str(MAX_VARCHAR_LENGTH)))
    return attrs.evolve(f, type_params=params)


def field_layout(schema: CollectionSchema, name: str) -> FieldLayout:
    """How to recreate ``schema`` as collection ``name`` (see the module docstring)."""
    user = [with_max_length(f, name) for f in schema.fields if not f.is_dynamic]
    created = 0
    while created < len(user) and user[created].field_id == FIRST_USER_FIELD_ID + created:
        created += 1
    added = user[created:]
    if any(not f.nullable for f in added):
        # Not what AddCollectionField leaves behind (added fields are nullable): create every field at
        # once, as before, and report the IDs that will differ.
        created, added = len(user), []

    problems: list[str] = []
    next_id = FIRST_USER_FIELD_ID

    def expect(label: str, field_id: int) -> None:
        nonlocal next_id
        if field_id != next_id:
            problems.append(f"{label}: {field_id} (Milvus assigns {next_id})")
        next_id += 1

    for f in user[:created]:
        expect(f.name, f.field_id)
    if schema.enable_dynamic_field:
        dynamic = [f for f in schema.fields if f.is_dynamic]
        if dynamic:
            expect(dynamic[0].name, dynamic[0].field_id)
        else:
            next_id += 1  # DescribeCollection does not list $meta; it still takes the next ID
    for struct in schema.struct_array_fields:
        expect(struct.name, struct.field_id)
        for sub in struct.fields:
            expect(f"{struct.name}.{sub.name}", sub.field_id)
    for f in added:
        expect(f"{f.name} (added after creation)", f.field_id)

    create = attrs.evolve(
        schema,
        name=name,
        fields=tuple(user[:created]),
        properties=without_max_field_id(schema.properties),
    )
    return FieldLayout(create=create, added=tuple(added), problems=tuple(problems))


def field_ids(schema: CollectionSchema) -> dict[str, tuple[int, int]]:
    """``name -> (field ID, data type)`` of every field that has binlogs or holds sub-fields: the fields
    (``$meta`` aside), each struct array field and its sub-fields (as ``struct.sub``)."""
    ids = {f.name: (f.field_id, f.data_type) for f in schema.fields if not f.is_dynamic}
    for struct in schema.struct_array_fields:
        ids[struct.name] = (struct.field_id, DataType.ARRAY_OF_STRUCT)
        ids.update({f"{struct.name}.{sub.name}": (sub.field_id, sub.data_type) for sub in struct.fields})
    return ids
