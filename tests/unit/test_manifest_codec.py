"""The manifest JSON codec against the milvus-backup v0.5 on-storage format (no Milvus needed)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import attrs
import fsspec
import pytest

import manifests as build
from milvus_backup_lib import manifest
from milvus_backup_lib.errors import ManifestError
from milvus_backup_lib.manifest import (
    BACKUP_META,
    COLLECTION_META,
    FILE_ORDER,
    FULL_META,
    PARTITION_META,
    SEGMENT_META,
    UPSTREAM_KEYS,
    BackupInfo,
    Binlog,
    CollectionBackupInfo,
    CollectionSchema,
    ConsistencyLevel,
    DatabaseBackupInfo,
    DataType,
    FieldBinlog,
    FieldSchema,
    FunctionSchema,
    IndexInfo,
    KeyValue,
    PartitionBackupInfo,
    SegmentBackupInfo,
    decode_backup,
    decode_file,
    dumps,
    encode_backup,
    from_json_obj,
    to_json_obj,
)

# The upstream struct tags, in proto field order, copied by hand from the reference (section 2.3 of
# upstream-milvus-backup.md) rather than derived from the model, so that a typo there shows up here.
UPSTREAM_FIELDS: dict[str, list[str]] = {
    "BackupInfo": [
        "id", "state_code", "name", "backup_timestamp", "collection_backups", "size", "milvus_version",
        "rbac_meta", "rpc_channel_info", "database_backups", "flush_all_msgs_base64",
        "control_channel_name", "physical_channel_names", "format",
    ],
    "DatabaseBackupInfo": ["db_name", "db_id", "properties", "ezk"],
    "CollectionBackupInfo": [
        "id", "collection_id", "db_name", "collection_name", "schema", "shards_num", "consistency_level",
        "partition_backups", "backup_timestamp", "size", "has_index", "index_infos", "load_state",
        "backup_physical_timestamp", "channel_checkpoints", "l0_segments", "properties", "db_id",
        "created_timestamp", "virtual_channel_names", "physical_channel_names", "aliases",
        "snapshot_backup",
    ],
    "PartitionBackupInfo": [
        "partition_id", "partition_name", "collection_id", "segment_backups", "size", "load_state",
    ],
    "SegmentBackupInfo": [
        "segment_id", "collection_id", "partition_id", "num_of_rows", "binlogs", "statslogs", "deltalogs",
        "size", "group_id", "backuped", "is_l0", "v_channel", "storage_version",
    ],
    "FieldBinlog": ["fieldID", "binlogs"],
    "Binlog": ["entries_num", "timestamp_from", "timestamp_to", "log_path", "log_size", "log_id"],
    "IndexInfo": [
        "field_name", "index_name", "index_type", "params", "index_id", "field_id", "create_time",
        "type_params", "index_params", "user_index_params", "is_auto_index", "min_index_version",
        "max_index_version",
    ],
    "CollectionSchema": [
        "name", "description", "autoID", "fields", "enable_dynamic_field", "properties", "functions",
        "struct_array_fields",
    ],
    "FieldSchema": [
        "fieldID", "name", "is_primary_key", "description", "data_type", "type_params", "index_params",
        "autoID", "state", "element_type", "default_value", "is_dynamic", "is_partition_key", "nullable",
        "default_value_proto", "is_function_output", "default_value_base64",
    ],
    "FunctionSchema": [
        "name", "id", "description", "type", "input_field_names", "input_field_ids", "output_field_names",
        "output_field_ids", "params",
    ],
    # milvus-backup HEAD core/proto/backup.proto, message StructArrayFieldSchema (fields 1-4).
    "StructArrayFieldSchema": ["fieldID", "name", "description", "fields"],
    "KeyValue": ["key", "value"],
    "CollectionLevelBackupInfo": ["infos"],
    "PartitionLevelBackupInfo": ["infos"],
    "SegmentLevelBackupInfo": ["infos"],
}  # fmt: skip

# Keys of each message that hold a nested message (or a list of them), and which message.
NESTED: dict[str, dict[str, str]] = {
    "BackupInfo": {"collection_backups": "CollectionBackupInfo", "database_backups": "DatabaseBackupInfo"},
    "DatabaseBackupInfo": {"properties": "KeyValue"},
    "CollectionBackupInfo": {
        "schema": "CollectionSchema",
        "partition_backups": "PartitionBackupInfo",
        "index_infos": "IndexInfo",
        "l0_segments": "SegmentBackupInfo",
        "properties": "KeyValue",
    },
    "PartitionBackupInfo": {"segment_backups": "SegmentBackupInfo"},
    "SegmentBackupInfo": {"binlogs": "FieldBinlog", "statslogs": "FieldBinlog", "deltalogs": "FieldBinlog"},
    "FieldBinlog": {"binlogs": "Binlog"},
    "CollectionSchema": {
        "fields": "FieldSchema",
        "properties": "KeyValue",
        "functions": "FunctionSchema",
        "struct_array_fields": "StructArrayFieldSchema",
    },
    "StructArrayFieldSchema": {"fields": "FieldSchema"},
    "FieldSchema": {"type_params": "KeyValue", "index_params": "KeyValue"},
    "FunctionSchema": {"params": "KeyValue"},
    "CollectionLevelBackupInfo": {"infos": "CollectionBackupInfo"},
    "PartitionLevelBackupInfo": {"infos": "PartitionBackupInfo"},
    "SegmentLevelBackupInfo": {"infos": "SegmentBackupInfo"},
}

ROOT_MESSAGE = {
    BACKUP_META: "BackupInfo",
    FULL_META: "BackupInfo",
    COLLECTION_META: "CollectionLevelBackupInfo",
    PARTITION_META: "PartitionLevelBackupInfo",
    SEGMENT_META: "SegmentLevelBackupInfo",
}

BASE_ID = 463_400_000_000_000_000  # realistic Milvus ids are ~4.6e17, beyond 2**53


# --------------------------------------------------------------------------- a realistic backup


def _value_field_base64() -> str:
    # schemapb.ValueField{string_data: "n/a"}: field 6, length-delimited.
    return base64.b64encode(b"\x32\x03n/a").decode()


def make_backup() -> BackupInfo:
    """Two collections in two databases, with everything the snapshotter fills in."""
    c1, c2 = BASE_ID + 1, BASE_ID + 2
    p1, p2, p3 = BASE_ID + 11, BASE_ID + 12, BASE_ID + 13
    v2 = {"storage_version": 2}
    products_parts = (
        build.partition(
            p1,
            build.segment(BASE_ID + 101, p1, 3000, deletes=5, collection_id=c1, **v2),
            build.segment(BASE_ID + 102, p1, 2000, collection_id=c1, **v2),
            build.segment(
                BASE_ID + 103, p1, 7, l0=True, collection_id=c1, v_channel=build.vchannel(c1, 1), **v2
            ),
            collection_id=c1,
            load_state="NotLoad",
        ),
        build.partition(
            p2,
            build.segment(BASE_ID + 104, p2, 500, collection_id=c1, **v2),
            name="p2 <new> & improved",
            collection_id=c1,
            load_state="NotLoad",
        ),
    )
    products = build.collection(
        "products",
        *products_parts,
        collection_id=c1,
        schema=build.schema(
            "products",
            build.pk_field(),
            build.vector_field(name="embedding"),
            build.field(
                102,
                "label",
                DataType.VARCHAR,
                params={"max_length": 64},
                nullable=True,
                default_value_base64=_value_field_base64(),
            ),
            description="catalogue <b>&</b> prices \u2028 café",
            enable_dynamic_field=True,
            properties=build.key_values({"collection.ttl.seconds": 3600}),
        ),
        l0_segments=(
            build.segment(
                BASE_ID + 105, -1, 3, l0=True, collection_id=c1, v_channel=build.vchannel(c1, 1), **v2
            ),
        ),
        # What the level files give back: the collection-level L0 segments are not in them.
        size=sum(p.size for p in products_parts),
        id="9c1d7e0a-0000-4000-8000-000000000001",
        shards_num=2,
        consistency_level=ConsistencyLevel.BOUNDED,
        backup_timestamp=458_000_000_000_000_001,
        index_infos=(
            build.index(
                "embedding",
                "HNSW",
                {"metric_type": "L2", "index_type": "HNSW", "params": '{"M":8,"efConstruction":64}'},
                index_id=BASE_ID + 201,
            ),
        ),
        load_state="NotLoad",
        backup_physical_timestamp=1_767_000_000,
        channel_checkpoints={
            build.vchannel(c1, 1): "CiJieS1kZXYtcm9vdGNvb3JkLWRtbF8x",
            build.vchannel(c1, 0): "CiJieS1kZXYtcm9vdGNvb3JkLWRtbF8w",
        },
        properties=build.key_values({"collection.ttl.seconds": 3600}),
        db_id=1,
        created_timestamp=458_000_000_000_000_000,
        virtual_channel_names=(build.vchannel(c1, 0), build.vchannel(c1, 1)),
        physical_channel_names=("by-dev-rootcoord-dml_0", "by-dev-rootcoord-dml_1"),
        aliases=("products_live", "catalogue"),
    )
    events = build.collection(
        "events",
        build.partition(
            p3,
            build.segment(BASE_ID + 106, p3, 42, collection_id=c2, **v2),
            collection_id=c2,
            load_state="NotLoad",
        ),
        collection_id=c2,
        db_name="analytics",
        schema=build.schema(
            "events",
            build.field(100, "id", DataType.VARCHAR, params={"max_length": 36}, is_primary_key=True),
            build.field(
                101, "text", DataType.VARCHAR, params={"max_length": 1024, "enable_analyzer": "true"}
            ),
            build.field(102, "sparse", DataType.SPARSE_FLOAT_VECTOR, is_function_output=True),
            functions=(
                FunctionSchema(
                    name="text_bm25",
                    id=1,
                    type=1,
                    input_field_names=("text",),
                    input_field_ids=(101,),
                    output_field_names=("sparse",),
                    output_field_ids=(102,),
                ),
            ),
        ),
        id="9c1d7e0a-0000-4000-8000-000000000002",
        shards_num=1,
        consistency_level=ConsistencyLevel.STRONG,
        backup_timestamp=458_000_000_000_000_002,
        load_state="Loaded",
        channel_checkpoints={build.vchannel(c2): "CiJieS1kZXYtcm9vdGNvb3JkLWRtbF8y"},
        db_id=2,
        virtual_channel_names=(build.vchannel(c2),),
        physical_channel_names=("by-dev-rootcoord-dml_0",),
    )
    return build.backup(
        products,
        events,
        id="9c1d7e0a-0000-4000-8000-000000000000",
        name="nightly_2026_01_01",
        milvus_version="v2.5.4",
        rbac_meta={"users": [{"user": "alice", "roles": [{"name": "admin"}]}], "roles": [{"name": "admin"}]},
        database_backups=(
            DatabaseBackupInfo(db_name="default", db_id=1),
            DatabaseBackupInfo(
                db_name="analytics", db_id=2, properties=build.key_values({"database.replica.number": 1})
            ),
        ),
    )


@pytest.fixture
def backup() -> BackupInfo:
    return make_backup()


@pytest.fixture
def files(backup: BackupInfo) -> dict[str, bytes]:
    return encode_backup(backup)


def _what_level_files_keep(info: BackupInfo) -> BackupInfo:
    """What upstream ``levelToTree`` gives back: no collection-level L0, no db/rbac/bulk-flush info."""
    return BackupInfo(
        id=info.id,
        state_code=info.state_code,
        name=info.name,
        backup_timestamp=info.backup_timestamp,
        collection_backups=tuple(attrs.evolve(c, l0_segments=()) for c in info.collection_backups),
        size=info.size,
        milvus_version=info.milvus_version,
        format=info.format,
    )


def _load(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


def _full_obj(backup: BackupInfo) -> Any:
    return json.loads(dumps(to_json_obj(backup)))


def _full(obj: dict[str, Any]) -> dict[str, bytes]:
    return {FULL_META: json.dumps(obj).encode()}


# --------------------------------------------------------------------------- round trips


def test_round_trip(backup: BackupInfo, files: dict[str, bytes]) -> None:
    assert decode_backup(files) == backup


def test_round_trip_is_byte_stable(files: dict[str, bytes]) -> None:
    assert encode_backup(decode_backup(files)) == files


def test_round_trip_through_fsspec_memory(files: dict[str, bytes], backup: BackupInfo) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/manifest-codec-{uuid.uuid4().hex}/nightly/meta"
    try:
        for name in FILE_ORDER:
            fs.pipe_file(f"{root}/{name}", files[name])
        read = {path.rsplit("/", 1)[1]: fs.cat_file(path) for path in fs.find(root)}
    finally:
        fs.rm(root.rsplit("/", 2)[0], recursive=True)
    assert read == files
    assert decode_backup(read) == backup


def test_level_files_only(files: dict[str, bytes], backup: BackupInfo) -> None:
    del files[FULL_META]
    decoded = decode_backup(files)
    assert decoded == _what_level_files_keep(backup)
    assert all(not c.l0_segments for c in decoded.collection_backups)
    assert not decoded.database_backups
    assert decoded.rbac_meta is None


def test_level_files_recompute_sizes(files: dict[str, bytes], backup: BackupInfo) -> None:
    summary = _load(files[BACKUP_META])
    summary["size"] = 1
    partitions = _load(files[PARTITION_META])
    for part in partitions["infos"]:
        part["size"] = 2
    decoded = decode_backup(
        {
            BACKUP_META: json.dumps(summary).encode(),
            COLLECTION_META: files[COLLECTION_META],
            PARTITION_META: json.dumps(partitions).encode(),
            SEGMENT_META: files[SEGMENT_META],
        }
    )
    assert decoded.size == backup.size
    assert [p.size for c in decoded.collection_backups for p in c.partition_backups] == [
        p.size for c in backup.collection_backups for p in c.partition_backups
    ]


def test_level_files_need_all_four(files: dict[str, bytes]) -> None:
    del files[FULL_META]
    del files[SEGMENT_META]
    with pytest.raises(ManifestError, match=r"segment_meta\.json") as info:
        decode_backup(files)
    assert info.value.file == SEGMENT_META


def test_level_file_errors_name_the_level_file(files: dict[str, bytes]) -> None:
    del files[FULL_META]
    segments = _load(files[SEGMENT_META])
    segments["infos"][0]["size"] = "big"
    files[SEGMENT_META] = json.dumps(segments).encode()
    with pytest.raises(ManifestError) as info:
        decode_backup(files)
    assert info.value.file == SEGMENT_META
    assert info.value.field == "infos[0].size"


def test_full_meta_is_preferred(files: dict[str, bytes], backup: BackupInfo) -> None:
    files[SEGMENT_META] = b"not even json"
    assert decode_backup(files) == backup


# --------------------------------------------------------------------------- the five files


def test_file_order_puts_backup_meta_last(files: dict[str, bytes]) -> None:
    assert set(FILE_ORDER) == {BACKUP_META, COLLECTION_META, PARTITION_META, SEGMENT_META, FULL_META}
    assert FILE_ORDER[-1] == BACKUP_META
    assert FILE_ORDER.index(FULL_META) > FILE_ORDER.index(SEGMENT_META)
    assert list(files) == list(FILE_ORDER)


def test_backup_meta_holds_only_the_summary(files: dict[str, bytes], backup: BackupInfo) -> None:
    assert files[BACKUP_META] == (
        b'{"id":"9c1d7e0a-0000-4000-8000-000000000000","state_code":0,"name":"nightly_2026_01_01",'
        b'"size":%d,"milvus_version":"v2.5.4"}' % backup.size
    )


def test_collection_meta_strips_segments_and_l0(files: dict[str, bytes], backup: BackupInfo) -> None:
    infos = _load(files[COLLECTION_META])["infos"]
    assert [c["collection_name"] for c in infos] == ["products", "events"]
    for coll in infos:
        assert "l0_segments" not in coll
        assert coll["partition_backups"]
        for part in coll["partition_backups"]:
            assert "segment_backups" not in part
            assert "size" in part
    assert infos[0]["schema"]["name"] == "products"
    assert infos[0]["aliases"] == ["products_live", "catalogue"]


def test_partition_meta_lists_every_partition(files: dict[str, bytes], backup: BackupInfo) -> None:
    infos = _load(files[PARTITION_META])["infos"]
    assert [p["partition_id"] for p in infos] == [
        p.partition_id for c in backup.collection_backups for p in c.partition_backups
    ]
    assert all("segment_backups" not in p for p in infos)


def test_segment_meta_lists_partition_segments_not_collection_l0(
    files: dict[str, bytes], backup: BackupInfo
) -> None:
    infos = _load(files[SEGMENT_META])["infos"]
    expected = [
        s.segment_id
        for c in backup.collection_backups
        for p in c.partition_backups
        for s in p.segment_backups
    ]
    assert [s["segment_id"] for s in infos] == expected
    l0_ids = {s.segment_id for c in backup.collection_backups for s in c.l0_segments}
    assert l0_ids
    assert not l0_ids & {s["segment_id"] for s in infos}
    # A partition-level L0 segment stays with its partition.
    assert any(s.get("is_l0") for s in infos)


def test_empty_backup_writes_empty_level_files() -> None:
    files = encode_backup(BackupInfo(id="x", name="empty"))
    assert files[COLLECTION_META] == b"{}"
    assert files[SEGMENT_META] == b"{}"
    assert files[FULL_META] == b'{"id":"x","state_code":0,"name":"empty","size":0}'
    assert decode_backup(files) == BackupInfo(id="x", name="empty")


# --------------------------------------------------------------------------- Go encoding rules


def test_omitempty_rules() -> None:
    assert to_json_obj(BackupInfo()) == {"state_code": 0, "size": 0}
    assert to_json_obj(CollectionBackupInfo()) == {"size": 0, "has_index": False}
    assert to_json_obj(PartitionBackupInfo()) == {"size": 0}
    assert to_json_obj(SegmentBackupInfo(segment_id=7, group_id=0)) == {"segment_id": 7, "size": 0}
    assert to_json_obj(Binlog()) == {"log_size": 0}
    assert to_json_obj(FieldBinlog(field_id=0, binlogs=(Binlog(log_id=3),))) == {
        "binlogs": [{"log_size": 0, "log_id": 3}]
    }
    assert to_json_obj(FieldSchema(field_id=100, name="", description="", type_params=())) == {"fieldID": 100}
    assert to_json_obj(IndexInfo(index_name="i", params={})) == {"index_name": "i"}
    # An element of a list is always written, even when all its fields are zero.
    assert to_json_obj(FieldSchema(type_params=(KeyValue(),))) == {"type_params": [{}]}


def test_schema_is_written_when_it_has_anything() -> None:
    assert "schema" not in to_json_obj(CollectionBackupInfo(schema=CollectionSchema()))
    assert to_json_obj(CollectionBackupInfo(schema=CollectionSchema(enable_dynamic_field=True)))[
        "schema"
    ] == {"enable_dynamic_field": True}


def test_always_fields_in_written_files(files: dict[str, bytes]) -> None:
    full = _load(files[FULL_META])
    assert full["state_code"] == 0
    events = full["collection_backups"][1]
    assert events["has_index"] is False
    assert "index_infos" not in events
    segment = full["collection_backups"][0]["partition_backups"][0]["segment_backups"][0]
    assert segment["group_id"] == segment["segment_id"]
    l0 = full["collection_backups"][0]["l0_segments"][0]
    assert "group_id" not in l0
    assert l0["partition_id"] == -1
    assert "fieldID" not in segment["deltalogs"][0]
    assert all("log_size" in b for fb in segment["binlogs"] for b in fb["binlogs"])
    assert "backup_timestamp" not in full  # never set by v0.5
    assert "statslogs" not in segment


def test_size_zero_and_log_size_zero_are_written() -> None:
    segment = SegmentBackupInfo(
        segment_id=1, binlogs=(FieldBinlog(field_id=100, binlogs=(Binlog(log_id=9),)),)
    )
    assert dumps(to_json_obj(segment)) == (
        b'{"segment_id":1,"binlogs":[{"fieldID":100,"binlogs":[{"log_size":0,"log_id":9}]}],"size":0}'
    )


def test_maps_are_written_with_sorted_keys(files: dict[str, bytes]) -> None:
    full = files[FULL_META].decode()
    assert (
        '"params":{"index_type":"HNSW","metric_type":"L2","params":"{\\"M\\":8,\\"efConstruction\\":64}"}'
        in full
    )
    checkpoints = _load(files[FULL_META])["collection_backups"][0]["channel_checkpoints"]
    assert list(checkpoints) == sorted(checkpoints)


def test_compact_output_with_go_escapes(files: dict[str, bytes]) -> None:
    full = files[FULL_META]
    assert (
        b'"description":"catalogue \\u003cb\\u003e\\u0026\\u003c/b\\u003e prices \\u2028 caf\xc3\xa9"' in full
    )
    assert b'"partition_name":"p2 \\u003cnew\\u003e \\u0026 improved"' in full
    for raw in (b"<", b">", b"&"):
        assert raw not in full
    assert b"\n" not in full
    assert full == dumps(json.loads(full))
    assert full.startswith(b'{"id":"9c1d7e0a-0000-4000-8000-000000000000","state_code":0,"name":')


def test_dumps_matches_go_marshal() -> None:
    assert (
        dumps({"a": "<x>&y", "b": 1, "c": [True, None]})
        == b'{"a":"\\u003cx\\u003e\\u0026y","b":1,"c":[true,null]}'
    )
    assert (
        dumps({"s": "\u2028\u2029\t\n\x01é\u00a0"}) == '{"s":"\\u2028\\u2029\\t\\n\\u0001é\u00a0"}'.encode()
    )
    # Go writes invalid UTF-8 as \ufffd; a lone surrogate is Python's equivalent.
    assert dumps({"s": "a\ud800b"}) == b'{"s":"a\\ufffdb"}'
    assert dumps({"n": BASE_ID + 1}) == b'{"n":%d}' % (BASE_ID + 1)


def test_keys_follow_proto_order(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        _walk(_load(data), ROOT_MESSAGE[name], name, check_order=True)


def test_written_keys_are_upstream_keys(files: dict[str, bytes]) -> None:
    seen: set[tuple[str, str]] = set()
    for name, data in files.items():
        seen |= _walk(_load(data), ROOT_MESSAGE[name], name, check_order=False)
    # The fixture exercises the interesting messages, so the walk really went deep.
    assert {m for m, _ in seen} >= {
        "BackupInfo", "DatabaseBackupInfo", "CollectionBackupInfo", "CollectionSchema", "FieldSchema",
        "FunctionSchema", "KeyValue", "IndexInfo", "PartitionBackupInfo", "SegmentBackupInfo", "FieldBinlog",
        "Binlog",
    }  # fmt: skip


def test_codec_keys_match_upstream_lists() -> None:
    for message, keys in UPSTREAM_FIELDS.items():
        # default_value (a protobuf oneof) is never written upstream and not modelled here.
        expected = set(keys) - {"default_value"}
        assert UPSTREAM_KEYS[message] == expected, message
    assert set(UPSTREAM_KEYS) == set(UPSTREAM_FIELDS)


def _walk(obj: Any, message: str, where: str, *, check_order: bool) -> set[tuple[str, str]]:
    assert isinstance(obj, dict), where
    known = UPSTREAM_FIELDS[message]
    seen = set()
    for key in obj:
        assert key in known, f"{where}: {key!r} is not a key of upstream {message}"
        seen.add((message, key))
    if check_order:
        positions = [known.index(key) for key in obj]
        assert positions == sorted(positions), f"{where}: keys out of proto order: {list(obj)}"
    for key, child_message in NESTED.get(message, {}).items():
        if key not in obj:
            continue
        value = obj[key]
        children = value if isinstance(value, list) else [value]
        for i, child in enumerate(children):
            seen |= _walk(child, child_message, f"{where}.{key}[{i}]", check_order=check_order)
    return seen


# --------------------------------------------------------------------------- decoding


def test_unknown_keys_are_ignored(backup: BackupInfo) -> None:
    obj = _full_obj(backup)
    obj["future_top_level"] = {"anything": [1, 2]}
    obj["collection_backups"][0]["future"] = "x"
    obj["collection_backups"][0]["schema"]["fields"][0]["default_value"] = {"Data": {"LongData": 5}}
    obj["collection_backups"][0]["partition_backups"][0]["segment_backups"][0]["binlogs"][0]["binlogs"][0][
        "memory_size"
    ] = 12
    assert decode_backup(_full(obj)) == backup


def test_keys_match_case_insensitively() -> None:
    field = from_json_obj(
        FieldSchema, {"FieldID": 101, "NAME": "v", "Data_Type": 101, "AUTOID": True}, file="f.json"
    )
    assert field == FieldSchema(field_id=101, name="v", data_type=101, auto_id=True)
    binlogs = from_json_obj(FieldBinlog, {"fieldid": 5, "Binlogs": [{"Log_Size": 3}]}, file="f.json")
    assert binlogs == FieldBinlog(field_id=5, binlogs=(Binlog(log_size=3),))
    # Go's case folding also maps KELVIN SIGN to k.
    assert from_json_obj(KeyValue, {"\u212aey": "dim"}, file="f.json") == KeyValue(key="dim")


def test_null_is_the_zero_value() -> None:
    coll = from_json_obj(
        CollectionBackupInfo,
        {
            "collection_name": None,
            "size": None,
            "has_index": None,
            "schema": None,
            "partition_backups": None,
            "channel_checkpoints": None,
            "aliases": None,
            "snapshot_backup": None,
        },
        file="f.json",
    )
    assert coll == CollectionBackupInfo()
    kv = from_json_obj(IndexInfo, {"params": {"a": None}}, file="f.json")
    assert kv.params == {"a": ""}


def test_raw_values_pass_through(backup: BackupInfo) -> None:
    obj = _full_obj(backup)
    obj["rpc_channel_info"] = {"name": "by-dev-replicate-msg", "position": {"msgID": "AQID", "timestamp": 1}}
    decoded = decode_backup(_full(obj))
    assert decoded.rbac_meta == backup.rbac_meta
    assert decoded.rpc_channel_info == obj["rpc_channel_info"]
    assert _load(encode_backup(decoded)[FULL_META]) == obj


def test_v05_reference_example_decodes() -> None:
    # The illustrative full_meta.json of the reference, section 2.5, with concrete ids.
    data = (
        b'{"id":"9c1","state_code":0,"name":"bk1","collection_backups":[{"id":"9c1","collection_id":463401,'
        b'"db_name":"default","collection_name":"c1","schema":{"name":"c1","fields":[{"fieldID":100,"name":"pk",'
        b'"is_primary_key":true,"data_type":5,"autoID":true},{"fieldID":101,"name":"v","data_type":101,'
        b'"type_params":[{"key":"dim","value":"8"}]}],"enable_dynamic_field":true},"shards_num":1,'
        b'"consistency_level":2,"partition_backups":[{"partition_id":463402,"partition_name":"_default",'
        b'"collection_id":463401,"segment_backups":[{"segment_id":463410,"collection_id":463401,'
        b'"partition_id":463402,"num_of_rows":3000,"binlogs":[{"fieldID":0,"binlogs":[{"log_path":'
        b'"files/insert_log/463401/463402/463410/0/463411","log_size":1234,"log_id":463411}]}],'
        b'"deltalogs":[{"binlogs":[{"log_path":"files/delta_log/463401/463402/463410/463420","log_size":88,'
        b'"log_id":463420}]}],"size":1322,"group_id":463410,"v_channel":"by-dev-rootcoord-dml_0_463401v0",'
        b'"storage_version":2}],"size":1322,"load_state":"NotLoad"}],"backup_timestamp":458000000000000001,'
        b'"size":1322,"has_index":true,"index_infos":[{"field_name":"v","index_name":"v","index_type":"HNSW",'
        b'"params":{"index_type":"HNSW","metric_type":"L2","params":"{\\"M\\":8}"},"index_id":463430}],'
        b'"load_state":"NotLoad","backup_physical_timestamp":1767000000,"channel_checkpoints":'
        b'{"by-dev-rootcoord-dml_0_463401v0":"CiJieS1k"},"properties":[{"key":"collection.ttl.seconds",'
        b'"value":"3600"}],"db_id":1,"created_timestamp":458000000000000000,"virtual_channel_names":'
        b'["by-dev-rootcoord-dml_0_463401v0"],"physical_channel_names":["by-dev-rootcoord-dml_0"]}],'
        b'"size":1322,"milvus_version":"v2.6.11","database_backups":[{"db_name":"default","db_id":1}]}'
    )
    info = decode_backup({FULL_META: data})
    coll = info.collection("default", "c1")
    assert coll.property("collection.ttl.seconds") == "3600"
    assert coll.schema.primary_field.name == "pk"
    assert coll.num_rows == 3000
    assert coll.partition_backups[0].segment_backups[0].deltalogs[0].field_id == 0
    # Written again, it is the same bytes except for the example's "fieldID":0, which Go's omitempty
    # leaves out (the reference wrote that example by hand).
    assert encode_backup(info)[FULL_META] == data.replace(b'{"fieldID":0,', b"{")


def test_v04_full_meta_decodes() -> None:
    legacy_default = "\x18\x07"  # ValueField{long_data: 7} as v0.4.25..v0.5.4 stored it
    obj = {
        "id": "b4",
        "state_code": 2,
        "errorMessage": "",
        "start_time": 1_700_000_000_000,
        "end_time": 1_700_000_060_000,
        "progress": 100,
        "name": "old_backup",
        "backup_timestamp": 445_000_000_000_000_000,
        "collection_backups": [
            {
                "id": "b4",
                "state_code": 2,
                "errorMessage": "",
                "start_time": 1_700_000_000_000,
                "end_time": 1_700_000_060_000,
                "progress": 100,
                "collection_id": 445_001,
                "db_name": "default",
                "collection_name": "legacy",
                "schema": {
                    "name": "legacy",
                    "fields": [
                        {"fieldID": 100, "name": "id", "is_primary_key": True, "data_type": 5},
                        {"fieldID": 101, "name": "n", "data_type": 5, "nullable": True,
                         "default_value_proto": legacy_default},
                    ],
                },
                "shards_num": 2,
                "partition_backups": [
                    {
                        "partition_id": 445_002,
                        "partition_name": "_default",
                        "collection_id": 445_001,
                        "segment_backups": [
                            {"segment_id": 445_010, "collection_id": 445_001, "partition_id": 445_002,
                             "num_of_rows": 10, "binlogs": [{"fieldID": 100, "binlogs": [
                                 {"entries_num": 10, "timestamp_from": 1, "timestamp_to": 2,
                                  "log_path": "files/insert_log/445001/445002/445010/100/1",
                                  "log_size": 80}]}],
                             "size": 80, "group_id": 0, "backuped": True},
                        ],
                        "size": 80,
                    }
                ],
                "backup_timestamp": 445_000_000_000_000_000,
                "size": 80,
                "has_index": False,
            }
        ],
        "size": 80,
        "milvus_version": "v2.3.5",
    }  # fmt: skip
    info = decode_backup(_full(obj))
    assert info.state_code == 2
    coll = info.collection("default", "legacy")
    segment = coll.partition_backups[0].segment_backups[0]
    assert segment.group_id == 0
    assert segment.backuped is True
    assert segment.binlogs[0].binlogs[0].log_id == 0
    assert coll.schema.fields[1].default_value_bytes == b"\x18\x07"
    assert coll.num_rows == 10
    # v0.4 task fields are not carried over.
    written = _load(encode_backup(info)[FULL_META])
    assert "progress" not in written
    assert "errorMessage" not in written["collection_backups"][0]
    assert written["state_code"] == 2


def test_binlog_format_is_accepted(backup: BackupInfo) -> None:
    obj = _full_obj(backup)
    obj["format"] = "binlog"
    assert decode_backup(_full(obj)).format == "binlog"


def test_decode_file_reads_one_file(files: dict[str, bytes]) -> None:
    level = decode_file(manifest.SegmentLevelBackupInfo, files[SEGMENT_META], SEGMENT_META)
    assert len(level.infos) == 5


def _with(backup: BackupInfo, field: str, value: Any) -> dict[str, bytes]:
    """The backup's full_meta.json with the value at ``field`` (``a[0].b``) replaced."""
    steps: list[Any] = [int(i) if i else k for k, i in re.findall(r"(\w+)|\[(\d+)\]", field)]
    obj = _full_obj(backup)
    target = obj
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value
    return _full(obj)


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("collection_backups[0].partition_backups[1].size", "12", "expected an integer, got string '12'"),
        ("collection_backups[0].partition_backups[0].segment_backups[1].num_of_rows", 1.5, "got number 1.5"),
        ("collection_backups[1].shards_num", 5.0, "expected an integer, got number 5.0"),
        ("size", True, "expected an integer, got boolean true"),
        ("size", 1 << 64, "does not fit in 64 bits"),
        ("collection_backups[0].has_index", "yes", "expected a boolean"),
        ("collection_backups[0].collection_name", 7, "expected a string, got number 7"),
        ("collection_backups[0].aliases", "a", "expected an array"),
        ("collection_backups[0].aliases[1]", 3, "expected a string"),
        ("collection_backups[0].schema", [], "expected an object, got an array"),
        ("collection_backups[0].schema.fields[1].fieldID", "101", "expected an integer"),
        ("collection_backups[0].index_infos[0].params", {"M": 8}, "expected a string"),
        ("collection_backups[1].schema.functions[0].input_field_ids", [101.0], "expected an integer"),
        ("database_backups[0]", "default", "expected an object"),
    ],
)
def test_mistyped_values_are_rejected_with_their_path(
    backup: BackupInfo, field: str, value: Any, detail: str
) -> None:
    with pytest.raises(ManifestError) as info:
        decode_backup(_with(backup, field, value))
    assert info.value.file == FULL_META
    expected_field = {
        "collection_backups[0].index_infos[0].params": "collection_backups[0].index_infos[0].params.M",
        "collection_backups[1].schema.functions[0].input_field_ids": (
            "collection_backups[1].schema.functions[0].input_field_ids[0]"
        ),
    }.get(field, field)
    assert info.value.field == expected_field
    assert detail in info.value.detail
    assert str(info.value).startswith(f"{FULL_META}: {expected_field}: ")


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b'{"id": "x", ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[]", "expected a JSON object at the top level, got an array"),
        (b'"backup"', "expected a JSON object at the top level"),
        (b"null", "expected a JSON object at the top level, got null"),
        (b'{"size": NaN}', "not valid JSON"),
        (b'{"name": "\xff\xfe"}', "not UTF-8"),
    ],
)
def test_unreadable_files_are_rejected(data: bytes, detail: str) -> None:
    with pytest.raises(ManifestError, match=r"^full_meta\.json: ") as info:
        decode_backup({FULL_META: data})
    assert detail in info.value.detail
    assert info.value.file == FULL_META


def test_missing_backup_is_rejected() -> None:
    with pytest.raises(ManifestError, match=r"full_meta\.json") as info:
        decode_backup({COLLECTION_META: b"{}"})
    assert info.value.file == BACKUP_META


def test_snapshot_format_is_rejected(backup: BackupInfo) -> None:
    obj = _full_obj(backup)
    obj["format"] = "snapshot"
    # The snapshot layout may not even decode as a binlog backup; the format is checked first.
    obj["collection_backups"][0]["snapshot_backup"] = {"metadata_path": "bundle/x", "total_files": 3}
    obj["collection_backups"][0]["partition_backups"] = "elsewhere"
    with pytest.raises(ManifestError, match="snapshot format not supported") as info:
        decode_backup(_full(obj))
    assert info.value.file == FULL_META
    assert info.value.field == "format"


def test_snapshot_format_is_rejected_from_backup_meta(files: dict[str, bytes]) -> None:
    del files[FULL_META]
    summary = _load(files[BACKUP_META])
    summary["Format"] = "snapshot"
    files[BACKUP_META] = json.dumps(summary).encode()
    with pytest.raises(ManifestError, match="snapshot format not supported") as info:
        decode_backup(files)
    assert info.value.file == BACKUP_META


def test_lone_surrogate_escape_decodes_to_replacement_character() -> None:
    field = decode_file(FieldSchema, b'{"default_value_proto":"\\ud800x"}', "f.json")
    assert field.default_value_proto == "\ufffdx"
    assert dumps(to_json_obj(field)) == '{"default_value_proto":"\ufffdx"}'.encode()


def test_encoding_rejects_wrong_python_types() -> None:
    with pytest.raises(TypeError, match="size"):
        to_json_obj(PartitionBackupInfo(size="1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"segment_backups\[0\]"):
        to_json_obj(PartitionBackupInfo(segment_backups=(Binlog(),)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="has_index"):
        to_json_obj(CollectionBackupInfo(has_index=1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64 bits"):
        to_json_obj(SegmentBackupInfo(segment_id=1 << 64))


def test_package_exports() -> None:
    assert set(manifest.__all__) >= {
        "BackupInfo", "CollectionBackupInfo", "FILE_ORDER", "UPSTREAM_KEYS", "decode_backup", "decode_file",
        "dumps", "encode_backup", "from_json_obj", "to_json_obj",
    }  # fmt: skip
    for name in manifest.__all__:
        assert hasattr(manifest, name), name


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: c.update(collection_name="../etc"), "collection_backups[0].collection_name"),
        (lambda c: c.update(db_name="a/b"), "collection_backups[0].db_name"),
        (
            lambda c: c["partition_backups"][0]["segment_backups"][0]["binlogs"][0]["binlogs"][0].update(
                log_path="/var/lib/milvus/../../etc/passwd"
            ),
            "log_path",
        ),
        (
            lambda c: c["partition_backups"][0]["segment_backups"][0]["binlogs"][0]["binlogs"][0].update(
                log_path="files/../../secret"
            ),
            "log_path",
        ),
    ],
)
def test_names_and_paths_that_escape_are_rejected(mutate: Any, field: str) -> None:
    """A manifest naming absolute or '..' paths, or names with separators, is refused naming the field."""
    from milvus_backup_lib.manifest.codec import decode_backup, encode_backup

    info = build.backup(build.collection("c1", build.partition(2, build.segment(3, 2, 1))), name="b")
    full = json.loads(encode_backup(info)["full_meta.json"])
    mutate(full["collection_backups"][0])
    with pytest.raises(ManifestError, match=re.escape(field)) as err:
        decode_backup({"full_meta.json": json.dumps(full).encode()})
    assert err.value.file == "full_meta.json"


# --------------------------------------------------------------------------- struct array fields, databases

# A schema as milvus-backup v0.5.9+ writes it (core/backup/coll_ddl_task.go convStructArrayFields, Go's
# encoding/json on backuppb.StructArrayFieldSchema): the struct field's ID, then its sub-fields, each an
# Array or ArrayOfVector FieldSchema with its own ID, keys in proto order, zero values omitted.
GO_STRUCT_SCHEMA = (
    b'{"name":"docs","fields":[{"fieldID":100,"name":"pk","is_primary_key":true,"data_type":5},'
    b'{"fieldID":101,"name":"vec","data_type":101,"type_params":[{"key":"dim","value":"4"}]}],'
    b'"enable_dynamic_field":true,"struct_array_fields":[{"fieldID":103,"name":"chunks",'
    b'"description":"paragraphs","fields":[{"fieldID":104,"name":"text","data_type":22,'
    b'"type_params":[{"key":"max_length","value":"64"},{"key":"max_capacity","value":"8"}],'
    b'"element_type":21},{"fieldID":105,"name":"emb","data_type":106,"type_params":'
    b'[{"key":"dim","value":"4"},{"key":"max_capacity","value":"8"}],"element_type":101}]}]}'
)


def test_struct_array_fields_are_typed_and_round_trip_byte_for_byte() -> None:
    schema = decode_file(CollectionSchema, GO_STRUCT_SCHEMA, "collection_meta.json")
    [struct] = schema.struct_array_fields
    assert (struct.field_id, struct.name, struct.description) == (103, "chunks", "paragraphs")
    assert [(f.field_id, f.type_name) for f in struct.fields] == [
        (104, "Array<VarChar>"),
        (105, "ArrayOfVector<FloatVector>"),
    ]
    assert struct.fields[0].type_param("max_capacity") == "8"
    # the sub-fields have binlogs of their own: they count among the stored fields
    assert [f.field_id for f in schema.stored_fields] == [100, 101, 104, 105]
    assert dumps(to_json_obj(schema)) == GO_STRUCT_SCHEMA
    shown = CollectionBackupInfo(collection_name="docs", schema=schema).table()
    assert "chunks.emb" in shown and "ArrayOfVector<FloatVector>" in shown


def test_a_struct_array_field_of_the_wrong_shape_names_its_path() -> None:
    obj = json.loads(GO_STRUCT_SCHEMA)
    obj["struct_array_fields"][0]["fields"] = {"fieldID": 104}
    with pytest.raises(ManifestError, match=r"struct_array_fields\[0\]\.fields"):
        from_json_obj(CollectionSchema, obj, file="full_meta.json")


def test_database_properties_and_ezk_round_trip_and_the_key_is_never_shown() -> None:
    data = (
        b'{"db_name":"secure","db_id":458000000000000007,"properties":[{"key":"cipher.enabled","value":"true"},'
        b'{"key":"database.replica.number","value":"2"}],"ezk":"ZXprLXNlY3JldA=="}'
    )
    db = decode_file(DatabaseBackupInfo, data, "full_meta.json")
    assert db.db_id == 458000000000000007 and db.property("database.replica.number") == "2"
    assert db.ezk == "ZXprLXNlY3JldA=="
    assert dumps(to_json_obj(db)) == data
    for shown in (repr(db), repr(BackupInfo(database_backups=(db,)))):
        assert "ZXprLXNlY3JldA" not in shown
