"""Struct array fields, fields added after creation, and database properties and keys, backed up and
restored through the public facade against in-memory clusters behaving as Milvus 2.6 (and refused by older
lines); and the planner's field layout for Go-shaped schemas."""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from memory_data import DB, client

from milvus_backup_lib import RestoreOptions
from milvus_backup_lib.errors import RestorePlanError
from milvus_backup_lib.manifest.model import (
    CollectionSchema,
    DatabaseBackupInfo,
    DataType,
    FieldSchema,
    KeyValue,
    StructArrayFieldSchema,
)
from milvus_backup_lib.restore.fields import field_layout
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

STRUCT = StructArrayFieldSchema(
    name="chunks",
    description="paragraphs",
    fields=(
        field("text", DataType.ARRAY, element_type=DataType.VARCHAR, max_length=16, max_capacity=4),
        field("page", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
    ),
)
NOTE = field("note", DataType.VARCHAR, max_length=16, nullable=True)


class RecordingMilvus(InMemoryMilvus):
    """Records the schema-changing calls a restore makes."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.calls: list[tuple[str, Any]] = []

    def create_collection(self, db: str, name: str, schema: CollectionSchema, **kwargs: Any) -> None:
        self.calls.append(("create_collection", schema))
        super().create_collection(db, name, schema, **kwargs)

    def add_collection_field(self, db: str, name: str, field: FieldSchema) -> None:
        self.calls.append(("add_collection_field", field))
        super().add_collection_field(db, name, field)


def _rows(pks: Sequence[int], *, note: bool) -> list[dict[str, Any]]:
    rows = []
    for pk in pks:
        row: dict[str, Any] = {
            "pk": pk,
            "vec": struct.pack("<4f", pk, 0.5, -1.0, 2.0),
            "chunks": [{"text": f"p{pk}-{i}", "page": pk * 10 + i} for i in range(pk % 3 + 1)],
        }
        if note:
            row["note"] = f"n{pk}"
        if pk % 2:
            row["color"] = "red"  # dynamic
        rows.append(row)
    return rows


def _evolved(cluster: InMemoryMilvus, name: str = "docs", db: str = DB) -> None:
    """pk 100, vec 101, $meta 102, chunks 103 (text 104, page 105), then note added: 106."""
    schema = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True), field("vec", DataType.FLOAT_VECTOR, dim=4)),
        enable_dynamic_field=True,
        struct_array_fields=(STRUCT,),
    )
    cluster.create_collection(db, name, schema)
    cluster.insert(db, name, _rows(range(0, 6), note=False))
    cluster.flush(db, name)  # these segments have no binlog of the field added next
    cluster.add_collection_field(db, name, NOTE)
    cluster.insert(db, name, _rows(range(10, 14), note=True))
    cluster.flush(db, name)


def test_a_struct_array_field_and_an_added_field_survive_a_round_trip() -> None:
    source = InMemoryMilvus("2.6.11")
    _evolved(source)
    described = source.describe_collection(DB, "docs").schema
    assert [(f.name, f.field_id) for f in described.fields] == [("pk", 100), ("vec", 101), ("note", 106)]
    expected = source.rows(DB, "docs")
    assert expected[0]["chunks"] == [{"text": "p0-0", "page": 0}] and expected[0]["note"] is None
    assert expected[-1]["note"] == "n13" and len(expected[-1]["chunks"]) == 2

    bk = client(source)
    info = bk.create_backup("evolved").info
    schema = info.collection_backups[0].schema
    [chunks] = schema.struct_array_fields
    assert (chunks.field_id, [f.field_id for f in chunks.fields]) == (103, [104, 105])
    assert chunks.description == "paragraphs"
    assert [(f.name, f.field_id, f.nullable) for f in schema.fields][-1] == ("note", 106, True)
    # storage v2: the sub-fields' columns are in column group 1 with the other scalars
    segments = [s for p in info.collection_backups[0].partition_backups for s in p.segment_backups]
    assert len(segments) == 2 and {fb.field_id for s in segments for fb in s.binlogs} == {0, 1, 101}

    target = RecordingMilvus("2.6.11")
    bk2 = client(target, bk.backup_storage)
    plan = bk2.plan_restore("evolved")
    kinds = [s.kind for s in plan.steps]
    assert kinds[:2] == ["create_collection", "add_field"]
    bk2.restore("evolved")
    (create_kind, created), (add_kind, added) = target.calls
    assert (create_kind, add_kind) == ("create_collection", "add_collection_field")
    # created with the original fields and the struct array field, then the added field on its own
    assert [f.name for f in created.fields] == ["pk", "vec"]
    assert [s.name for s in created.struct_array_fields] == ["chunks"]
    assert (added.name, added.field_id, added.nullable) == ("note", 106, True)
    restored = target.describe_collection(DB, "docs").schema
    assert restored.fields == described.fields
    assert restored.struct_array_fields == described.struct_array_fields
    assert target.rows(DB, "docs") == expected


def test_without_add_field_the_restore_is_refused_before_anything_is_created() -> None:
    source = InMemoryMilvus("2.6.11")
    _evolved(source)
    bk = client(source)
    bk.create_backup("evolved")
    target = InMemoryMilvus("2.5.3")
    with pytest.raises(
        RestorePlanError,
        match=r"field 'note', added to default\.docs after its creation: Milvus v2\.5\.3 has no fields added",
    ):
        client(target, bk.backup_storage).restore("evolved", method="import")
    assert target.list_collections(DB) == []


def test_database_properties_and_key_are_recorded_and_restored_and_the_key_goes_with_imports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = InMemoryMilvus("2.6.11")
    properties = [
        ("cipher.enabled", "true"),
        ("cipher.key", "kms-root-key-1"),
        ("cipher.ezID", "77"),
        ("database.replica.number", "1"),
    ]
    source.create_database("secure", properties)
    source.set_encryption_zone_key("secure", "c2VjcmV0LWV6aw==")
    _evolved(source, db="secure")
    bk = client(source)
    info = bk.create_backup("enc").info
    by_name = {db.db_name: db for db in info.database_backups}
    secure = by_name["secure"]
    assert secure.db_id > 0 and secure.ezk == "c2VjcmV0LWV6aw=="
    assert [(kv.key, kv.value) for kv in secure.properties] == properties
    # reading the backup again gives the same record (the manifest carries it, as the Go tool's does)
    assert client(source, bk.backup_storage).get_backup("enc").database_backups == info.database_backups

    target = InMemoryMilvus("2.6.11")
    bk2 = client(target, bk.backup_storage)
    plan = bk2.plan_restore("enc")
    assert "c2VjcmV0" not in plan.table() and "c2VjcmV0" not in repr(plan)
    with caplog.at_level(logging.DEBUG):
        report = bk2.restore("enc")
    assert "c2VjcmV0" not in caplog.text and "c2VjcmV0" not in repr(report)
    # the server's own zone ID is not replayed; the rest is
    assert target.database_properties("secure") == {
        "cipher.enabled": "true",
        "cipher.key": "kms-root-key-1",
        "database.replica.number": "1",
    }
    data_imports = [opts for _, _, _, _, opts in target.import_requests]
    assert data_imports and all(opts.get("ezk") == "c2VjcmV0LWV6aw==" for opts in data_imports)
    assert target.rows("secure", "docs") == source.rows("secure", "docs")


def test_an_unencrypted_database_sends_no_key_and_a_2_3_server_records_only_names() -> None:
    source = InMemoryMilvus("2.6.11")
    source.create_database("plain", [("database.max.collections", "9")])
    source.create_collection(
        "plain", "c", CollectionSchema(fields=(field("pk", DataType.INT64, primary=True),))
    )
    source.insert("plain", "c", [{"pk": 1}])
    bk = client(source)
    [plain] = [db for db in bk.create_backup("p").info.database_backups if db.db_name == "plain"]
    assert plain.ezk == "" and plain.property("database.max.collections") == "9"
    target = InMemoryMilvus("2.6.11")
    client(target, bk.backup_storage).restore("p")
    assert target.database_properties("plain") == {"database.max.collections": "9"}
    assert all("ezk" not in opts for *_, opts in target.import_requests)

    old = InMemoryMilvus("2.3.5")
    old.create_collection(DB, "c", CollectionSchema(fields=(field("pk", DataType.INT64, primary=True),)))
    assert client(old).create_backup("o").info.database_backups == (DatabaseBackupInfo(db_name="default"),)


# -- the field layout of Go-shaped schemas ------------------------------------------------------------


def _f(field_id: int, name: str, *, nullable: bool = False, dynamic: bool = False) -> FieldSchema:
    data_type = DataType.JSON if dynamic else DataType.INT64
    return FieldSchema(
        field_id=field_id, name=name, data_type=data_type, nullable=nullable, is_dynamic=dynamic
    )


def test_fields_added_after_the_dynamic_field_are_added_again_in_order() -> None:
    # milvus-backup PR #1079's example: fields 100-104, $meta 105, fields added as 106-110.
    fields = [_f(100 + i, f"f{i}") for i in range(5)] + [
        _f(106 + i, f"a{i}", nullable=True) for i in range(5)
    ]
    schema = CollectionSchema(
        fields=tuple(fields),
        enable_dynamic_field=True,
        properties=(KeyValue(key="max_field_id", value="110"), KeyValue(key="mmap.enabled", value="true")),
    )
    layout = field_layout(schema, "copy")
    assert [f.field_id for f in layout.create.fields] == [100, 101, 102, 103, 104]
    assert [f.field_id for f in layout.added] == [106, 107, 108, 109, 110]
    assert layout.problems == ()
    # a replayed max_field_id would make Milvus number the added fields from 111
    assert [kv.key for kv in layout.create.properties] == ["mmap.enabled"]
    assert layout.create.name == "copy"


def test_an_added_field_without_a_dynamic_field_and_after_a_struct_lines_up() -> None:
    schema = CollectionSchema(
        fields=(_f(100, "pk"), _f(101, "x"), _f(105, "late", nullable=True)),
        struct_array_fields=(
            StructArrayFieldSchema(field_id=102, name="s", fields=(_f(103, "a"), _f(104, "b"))),
        ),
    )
    layout = field_layout(schema, "t")
    assert [f.name for f in layout.added] == ["late"] and layout.problems == ()


def test_struct_sub_field_ids_that_a_new_collection_would_not_get_are_problems() -> None:
    schema = CollectionSchema(
        fields=(_f(100, "pk"),),
        enable_dynamic_field=True,
        struct_array_fields=(StructArrayFieldSchema(field_id=102, name="s", fields=(_f(104, "a"),)),),
    )
    assert field_layout(schema, "t").problems == ("s.a: 104 (Milvus assigns 103)",)


def test_unknown_field_ids_create_every_field_at_once() -> None:
    # Milvus Lite reports every field ID as 0: nothing can be told apart, nothing is "added".
    schema = CollectionSchema(fields=(_f(0, "pk"), _f(0, "x", nullable=True)))
    layout = field_layout(schema, "t")
    assert [f.name for f in layout.create.fields] == ["pk", "x"] and layout.added == ()
    assert layout.problems  # reported when binlogs are to be imported


def test_a_meta_only_restore_of_an_evolved_collection_needs_no_import_but_the_same_fields() -> None:
    source = InMemoryMilvus("2.6.11")
    _evolved(source)
    bk = client(source)
    bk.create_backup("evolved", strategy="meta_only")
    target = InMemoryMilvus("2.6.11")
    client(target, bk.backup_storage).restore("evolved", RestoreOptions(meta_only=True))
    assert (
        target.describe_collection(DB, "docs").schema.fields
        == source.describe_collection(DB, "docs").schema.fields
    )
    assert target.import_requests == []


# -- the gRPC boundary and the management port ---------------------------------------------------------


def test_struct_array_fields_cross_the_grpc_boundary_both_ways() -> None:
    from milvus_backup_lib.milvus import convert

    schema = CollectionSchema(
        fields=(_f(100, "pk"),),
        struct_array_fields=(
            StructArrayFieldSchema(
                field_id=101,
                name="s",
                description="d",
                fields=(
                    FieldSchema(
                        field_id=102,
                        name="a",
                        data_type=DataType.ARRAY,
                        element_type=DataType.INT64,
                        type_params=(KeyValue(key="max_capacity", value="4"),),
                    ),
                ),
            ),
        ),
    )
    proto = convert.schema_to_proto(schema, "t")
    assert [s.name for s in proto.struct_array_fields] == ["s"]
    assert convert.schema_from_proto(proto).struct_array_fields == schema.struct_array_fields


def test_the_encryption_zone_key_is_read_from_the_management_port_and_never_in_a_message() -> None:
    import http.server
    import json
    import threading

    from milvus_backup_lib.errors import MilvusOperationError
    from milvus_backup_lib.milvus.ez import fetch_ezk

    answers = {"/management/rootcoord/ez/backup?db_name=secure": {"msg": "OK", "ezk": "S3CR3T"}}
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            answer = answers.get(self.path, {"msg": "no such zone", "ezk": "S3CR3T"})
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert fetch_ezk(base, "secure") == "S3CR3T"
        with pytest.raises(MilvusOperationError, match="gave no key for database 'other'") as caught:
            fetch_ezk(base, "other")
        assert "S3CR3T" not in str(caught.value)
        assert asked == [
            "/management/rootcoord/ez/backup?db_name=secure",
            "/management/rootcoord/ez/backup?db_name=other",
        ]
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(MilvusOperationError, match="cannot reach .* for database 'secure'"):
        fetch_ezk("http://127.0.0.1:1", "secure", timeout=2)


def test_the_command_line_never_prints_the_key() -> None:
    from milvus_backup_lib.cli.output import go_json, to_jsonable

    source = InMemoryMilvus("2.6.11")
    source.create_database("secure", [("cipher.ezID", "7"), ("cipher.key", "k")])
    source.set_encryption_zone_key("secure", "S3CR3T-EZK")
    source.create_collection(
        "secure", "c", CollectionSchema(fields=(field("pk", DataType.INT64, primary=True),))
    )
    source.insert("secure", "c", [{"pk": 1}])
    bk = client(source)
    info = bk.create_backup("enc").info
    plan = client(InMemoryMilvus("2.6.11"), bk.backup_storage).plan_restore("enc")
    assert any(getattr(step, "ezk", "") == "S3CR3T-EZK" for step in plan.steps)  # it is there to be sent
    shown = str(to_jsonable(plan)) + go_json(info) + str(to_jsonable(info))
    assert "S3CR3T" not in shown and '"ezk": "***"' in go_json(info)


def test_struct_array_fields_are_refused_up_front_by_a_2_5_target() -> None:
    source = InMemoryMilvus("2.6.11")
    schema = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True),), struct_array_fields=(STRUCT,)
    )
    source.create_collection(DB, "s", schema)
    source.insert(DB, "s", [{"pk": 1, "chunks": [{"text": "a", "page": 1}]}])
    bk = client(source)
    bk.create_backup("s")
    target = InMemoryMilvus("2.5.3")
    with pytest.raises(
        RestorePlanError,
        match=r"struct array field\(s\) 'chunks': Milvus v2\.5\.3 has no struct array fields",
    ):
        client(target, bk.backup_storage).restore("s")
    assert target.list_collections(DB) == []


def test_varchar_fields_without_max_length_get_milvus_s_largest() -> None:
    """Milvus Lite 3.2.2 keeps no max_length for an Array of VarChar (nor, optionally, a VarChar): a
    server refuses to create such a field, so it is recreated with 65535; given lengths are kept."""
    lite_like = FieldSchema(
        field_id=102, name="tags", data_type=DataType.ARRAY, element_type=DataType.VARCHAR
    )
    schema = CollectionSchema(
        fields=(
            _f(100, "pk"),
            FieldSchema(field_id=101, name="title", data_type=DataType.VARCHAR),
            attrs.evolve(lite_like, type_params=(KeyValue(key="max_capacity", value="4"),)),
            field("kept", DataType.VARCHAR, max_length=16),
            field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
        )
    )
    layout = field_layout(schema, "t")
    lengths = {f.name: f.type_param("max_length") for f in layout.all_at_once.fields}
    assert lengths == {"pk": None, "title": "65535", "tags": "65535", "kept": "16", "nums": None}
    tags = next(f for f in layout.create.fields if f.name == "tags")
    assert tags.type_param("max_capacity") == "4"
