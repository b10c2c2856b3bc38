"""Every conversion between Milvus's protobuf messages and the library's records, both directions.

Only :mod:`milvus_backup_lib.milvus.grpc` calls these: nothing above the :class:`MilvusCluster`
boundary sees a protobuf message. Default values cross as the base64 of the serialized
``schemapb.ValueField`` (how milvus-backup v0.5.5+ records them, ``default_value_base64``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, msg_pb2, schema_pb2

from milvus_backup_lib.errors import ManifestError
from milvus_backup_lib.manifest.model import (
    CollectionSchema,
    FieldSchema,
    FunctionSchema,
    IndexInfo,
    KeyValue,
    StructArrayFieldSchema,
)
from milvus_backup_lib.milvus.records import (
    ChannelCheckpoint,
    CollectionDescription,
    FlushResult,
    GrantInfo,
    ImportState,
    SegmentInfo,
)

__all__ = [
    "checkpoint_from_proto",
    "description_from_proto",
    "field_from_proto",
    "field_to_proto",
    "flush_from_proto",
    "grant_from_proto",
    "grant_to_proto",
    "import_state",
    "index_from_proto",
    "key_value_records",
    "key_values",
    "load_state_name",
    "schema_from_proto",
    "schema_to_proto",
    "segment_from_proto",
    "version_tuple",
]

_LOAD_STATES = {
    common_pb2.LoadStateNotExist: "NotExist",
    common_pb2.LoadStateNotLoad: "NotLoad",
    common_pb2.LoadStateLoading: "Loading",
    common_pb2.LoadStateLoaded: "Loaded",
}


def _kvs(pairs: Iterable[Any]) -> tuple[KeyValue, ...]:
    return tuple(KeyValue(key=kv.key, value=kv.value) for kv in pairs)


def key_value_records(pairs: Iterable[Any]) -> tuple[KeyValue, ...]:
    """The records of ``KeyValuePair`` messages."""
    return _kvs(pairs)


def key_values(pairs: Iterable[tuple[str, str]]) -> list[common_pb2.KeyValuePair]:
    """``KeyValuePair`` messages for ``(key, value)`` pairs."""
    return [common_pb2.KeyValuePair(key=k, value=v) for k, v in pairs]


def load_state_name(state: int) -> str:
    """``NotLoad``, ``Loading``, ``Loaded`` (or ``NotExist``) for a ``commonpb.LoadState``."""
    return _LOAD_STATES.get(state, "NotLoad")


# -- schema ---------------------------------------------------------------------------------------


def field_from_proto(f: schema_pb2.FieldSchema) -> FieldSchema:
    """The manifest record of a ``schemapb.FieldSchema`` (its default value as base64 ``ValueField``)."""
    default = ""
    if f.HasField("default_value"):
        default = base64.b64encode(f.default_value.SerializeToString()).decode()
    return FieldSchema(
        field_id=int(f.fieldID),
        name=f.name,
        is_primary_key=f.is_primary_key,
        description=f.description,
        data_type=int(f.data_type),
        type_params=_kvs(f.type_params),
        index_params=_kvs(f.index_params),
        auto_id=f.autoID,
        state=int(f.state),
        element_type=int(f.element_type),
        is_dynamic=f.is_dynamic,
        is_partition_key=f.is_partition_key,
        nullable=bool(getattr(f, "nullable", False)),
        is_function_output=bool(getattr(f, "is_function_output", False)),
        default_value_base64=default,
    )


def schema_from_proto(schema: schema_pb2.CollectionSchema) -> CollectionSchema:
    """The manifest schema of a ``DescribeCollection`` schema, struct array fields included (as
    milvus-backup's ``core/backup/coll_ddl_task.go`` ``convStructArrayFields`` records them)."""
    functions = tuple(
        FunctionSchema(
            name=fn.name,
            id=int(fn.id),
            description=fn.description,
            type=int(fn.type),
            input_field_names=tuple(fn.input_field_names),
            input_field_ids=tuple(int(i) for i in fn.input_field_ids),
            output_field_names=tuple(fn.output_field_names),
            output_field_ids=tuple(int(i) for i in fn.output_field_ids),
            params=_kvs(fn.params),
        )
        for fn in getattr(schema, "functions", ())
    )
    structs = tuple(
        StructArrayFieldSchema(
            field_id=int(s.fieldID),
            name=s.name,
            description=s.description,
            fields=tuple(field_from_proto(f) for f in s.fields),
        )
        for s in getattr(schema, "struct_array_fields", ())
    )
    return CollectionSchema(
        name=schema.name,
        description=schema.description,
        auto_id=schema.autoID,
        fields=tuple(field_from_proto(f) for f in schema.fields),
        enable_dynamic_field=schema.enable_dynamic_field,
        properties=_kvs(getattr(schema, "properties", ())),
        functions=functions,
        struct_array_fields=structs,
    )


def field_to_proto(f: FieldSchema) -> schema_pb2.FieldSchema:
    """The ``schemapb.FieldSchema`` of a backed-up field (for CreateCollection and AddCollectionField).

    Raises :class:`ManifestError` when its default value cannot be decoded (a lossy v0.4
    ``default_value_proto``).
    """
    field = schema_pb2.FieldSchema(
        fieldID=f.field_id,
        name=f.name,
        is_primary_key=f.is_primary_key,
        description=f.description,
        data_type=f.data_type,
        type_params=key_values((kv.key, kv.value) for kv in f.type_params),
        index_params=key_values((kv.key, kv.value) for kv in f.index_params),
        autoID=f.auto_id,
        element_type=f.element_type,
        is_partition_key=f.is_partition_key,
    )
    if f.nullable and hasattr(field, "nullable"):
        field.nullable = True
    raw = f.default_value_bytes
    if raw:
        try:
            field.default_value.ParseFromString(raw)
        except Exception as exc:  # a lossy v0.4 default_value_proto
            raise ManifestError(
                "full_meta.json", f"cannot decode the default value of {f.name!r}: {exc}"
            ) from None
    return field


def schema_to_proto(schema: CollectionSchema, name: str) -> schema_pb2.CollectionSchema:
    """The ``CreateCollection`` schema for a backed-up schema (the hidden ``$meta`` field is left out),
    with its struct array fields (milvus-backup ``core/restore/coll_ddl_task.go`` ``structArrayFields``).

    Raises :class:`ManifestError` when a default value cannot be decoded.
    """
    result = schema_pb2.CollectionSchema(
        name=name,
        description=schema.description,
        autoID=schema.auto_id,
        # enable_dynamic_field recreates $meta, with the next field ID
        fields=[field_to_proto(f) for f in schema.fields if not f.is_dynamic],
        enable_dynamic_field=schema.enable_dynamic_field,
    )
    result.properties.extend(key_values((kv.key, kv.value) for kv in schema.properties))
    for fn in schema.functions:
        result.functions.append(
            schema_pb2.FunctionSchema(
                name=fn.name,
                id=fn.id,
                description=fn.description,
                type=fn.type,
                input_field_names=list(fn.input_field_names),
                input_field_ids=list(fn.input_field_ids),
                output_field_names=list(fn.output_field_names),
                output_field_ids=list(fn.output_field_ids),
                params=key_values((kv.key, kv.value) for kv in fn.params),
            )
        )
    for struct in schema.struct_array_fields:
        result.struct_array_fields.append(
            schema_pb2.StructArrayFieldSchema(
                fieldID=struct.field_id,
                name=struct.name,
                description=struct.description,
                fields=[field_to_proto(f) for f in struct.fields],
            )
        )
    return result


def description_from_proto(resp: milvus_pb2.DescribeCollectionResponse) -> CollectionDescription:
    """A ``DescribeCollection`` answer as a record."""
    return CollectionDescription(
        collection_id=int(resp.collectionID),
        name=resp.collection_name or resp.schema.name,
        schema=schema_from_proto(resp.schema),
        shards_num=int(resp.shards_num),
        consistency_level=int(resp.consistency_level),
        properties=_kvs(resp.properties),
        db_id=int(getattr(resp, "db_id", 0) or 0),
        created_timestamp=int(resp.created_timestamp),
        virtual_channel_names=tuple(resp.virtual_channel_names),
        physical_channel_names=tuple(resp.physical_channel_names),
        aliases=tuple(resp.aliases),
    )


def index_from_proto(desc: Any) -> IndexInfo:
    """An ``IndexDescription`` as the manifest records it (``params`` holds index_type, metric_type...)."""
    params = {kv.key: kv.value for kv in desc.params}
    return IndexInfo(
        field_name=desc.field_name,
        index_name=desc.index_name,
        index_type=params.get("index_type", ""),
        params=params,
        index_id=int(desc.indexID),
    )


# -- flush and segments -------------------------------------------------------------------------


def checkpoint_from_proto(channel: str, position: msg_pb2.MsgPosition) -> ChannelCheckpoint:
    """A channel checkpoint, keeping the serialized position (milvus-backup stores its base64)."""
    return ChannelCheckpoint(
        channel=channel, position=position.SerializeToString(), timestamp=int(position.timestamp)
    )


def flush_from_proto(resp: milvus_pb2.FlushResponse, collection: str) -> FlushResult:
    """The part of a ``FlushResponse`` about ``collection``, with its channel checkpoints.

    ``channel_cps`` (vchannel -> ``msgpb.MsgPosition``) is filled by datacoord's ``Flush`` and passed on
    by the proxy's flush task (milvus-io/milvus ``internal/proxy/task_flush.go``, ``ChannelCps:
    channelCps``); it is not keyed by collection, and a flush request here names one collection.
    """
    return FlushResult(
        segment_ids=tuple(resp.coll_segIDs[collection].data) if collection in resp.coll_segIDs else (),
        flushed_segment_ids=tuple(resp.flush_coll_segIDs[collection].data)
        if collection in resp.flush_coll_segIDs
        else (),
        flush_ts=int(resp.coll_flush_ts.get(collection, 0)),
        seal_time=int(resp.coll_seal_times.get(collection, 0)),
        channel_checkpoints=tuple(
            checkpoint_from_proto(ch, pos) for ch, pos in sorted(resp.channel_cps.items())
        ),
    )


def segment_from_proto(info: Any) -> SegmentInfo:
    """A ``PersistentSegmentInfo`` as a record."""
    return SegmentInfo(
        segment_id=int(info.segmentID),
        collection_id=int(info.collectionID),
        partition_id=int(info.partitionID),
        num_rows=int(info.num_rows),
        state=common_pb2.SegmentState.Name(info.state),
        is_l0=int(getattr(info, "level", 0)) == common_pb2.L0,
        insert_channel=str(getattr(info, "insert_channel", "") or ""),
        storage_version=int(getattr(info, "storage_version", 0) or 0),
    )


# -- RBAC ---------------------------------------------------------------------------------------


def grant_from_proto(entity: Any, role: str, db: str) -> GrantInfo:
    """A ``GrantEntity`` of ``SelectGrant`` (asked for ``role`` in ``db``) as a record."""
    return GrantInfo(
        role=entity.role.name or role,
        object_type=entity.object.name,
        object_name=entity.object_name,
        privilege=entity.grantor.privilege.name,
        db_name=entity.db_name or db,
        grantor=entity.grantor.user.name,
    )


def grant_to_proto(grant: GrantInfo) -> milvus_pb2.GrantEntity:
    """The ``GrantEntity`` that grants ``grant`` with ``OperatePrivilege``."""
    return milvus_pb2.GrantEntity(
        role=milvus_pb2.RoleEntity(name=grant.role),
        object=milvus_pb2.ObjectEntity(name=grant.object_type),
        object_name=grant.object_name,
        db_name=grant.db_name,
        grantor=milvus_pb2.GrantorEntity(privilege=milvus_pb2.PrivilegeEntity(name=grant.privilege)),
    )


def version_tuple(version: str) -> tuple[int, ...]:
    """``(2, 4, 10)`` from a server version such as ``v2.4.10`` or ``v2.3.5-lite`` (``(0,)`` if none)."""
    digits = re.findall(r"\d+", version.split("-", 1)[0])
    return tuple(int(d) for d in digits[:3]) or (0,)


def import_state(task_id: int, resp: Any) -> ImportState:
    """An :class:`ImportState` from a ``GetImportStateResponse`` (infos: ``files``, ``partition``,
    ``failed_reason``, as Milvus 2.3's rootcoord import manager fills them)."""
    infos = {kv.key: kv.value for kv in resp.infos}
    return ImportState(
        task_id=task_id,
        state=common_pb2.ImportState.Name(resp.state).removeprefix("Import"),
        row_count=int(resp.row_count),
        reason=infos.get("failed_reason", ""),
        segment_ids=tuple(resp.segment_ids),
        files=tuple(f for f in infos.get("files", "").split(",") if f),
        partition=infos.get("partition", ""),
        created=float(getattr(resp, "create_ts", 0) or 0),
    )
