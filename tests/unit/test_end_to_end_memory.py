"""Backup and restore through the public facade against in-memory clusters of each Milvus version line,
compared row by row with the source: primary keys, every scalar, vectors bit for bit, dynamic fields,
deletes applied."""

from __future__ import annotations

import pytest
from memory_data import DB, DELETED_EVERYWHERE, DELETED_IN_P1, client, expected_pks, populate

from milvus_backup_lib import RestoreOptions
from milvus_backup_lib.errors import RestorePlanError
from milvus_backup_lib.manifest.model import CollectionSchema, DataType
from milvus_backup_lib.milvus.records import GrantInfo
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

VERSIONS = [
    "2.3.5",
    "2.4.10",
    "2.5.3",
    "2.6.11",
]


@pytest.mark.parametrize("version", VERSIONS)
def test_backup_and_restore_round_trip_row_by_row(version: str) -> None:
    source = InMemoryMilvus(version)
    float16 = version >= "2.4"
    populate(source, float16=float16)
    expected = source.rows(DB, "c")
    assert [r["pk"] for r in expected] == expected_pks()
    assert any("color" in r for r in expected) and all(len(r["vec"]) == 32 for r in expected)

    bk = client(source)
    report = bk.create_backup("nightly", "c")
    assert report.collections == ("default.c",)
    assert bk.verify_backup("nightly", level="checksum").ok

    # the same cluster, under another name
    outcome = bk.restore("nightly", RestoreOptions(suffix="_copy"))
    restored = outcome.collections[0]
    assert restored.target.startswith("default.c_") and restored.imports
    assert source.rows(DB, restored.target.split(".", 1)[1]) == expected

    # a second cluster of the same version, under the same name
    target = InMemoryMilvus(version)
    bk2 = client(target, bk.backup_storage)
    bk2.restore("nightly")
    assert target.rows(DB, "c") == expected
    assert (
        target.describe_collection(DB, "c").schema.fields == source.describe_collection(DB, "c").schema.fields
    )
    assert [p.name for p in target.show_partitions(DB, "c")] == ["_default", "p1"]


def test_l0_deletes_are_backed_up_as_collection_and_partition_level_segments() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source)
    bk = client(source)
    info = bk.create_backup("l0").info
    coll = info.collection_backups[0]
    assert [s.partition_id for s in coll.l0_segments] == [-1]
    assert coll.l0_segments[0].num_of_rows == len(DELETED_EVERYWHERE)
    p1 = next(p for p in coll.partition_backups if p.partition_name == "p1")
    partition_l0 = [s for s in p1.segment_backups if s.is_l0]
    assert [s.num_of_rows for s in partition_l0] == [len(DELETED_IN_P1)]
    assert not any(s.deltalogs for p in coll.partition_backups for s in p.segment_backups if not s.is_l0)

    target = InMemoryMilvus("2.4.10")
    report = client(target, bk.backup_storage).restore("l0")
    assert [o.l0 for o in report.collections[0].imports].count(True) == 2
    assert target.rows(DB, "c") == source.rows(DB, "c")
    # the L0 imports became L0 segments of the target, in the same scopes
    l0 = [s for s in target.persistent_segments(DB, "c") if s.is_l0]
    assert sorted(s.partition_id == -1 for s in l0) == [False, True]


def test_a_storage_v2_segment_is_backed_up_and_restored() -> None:
    source = InMemoryMilvus("2.6.11")
    populate(source)
    bk = client(source)
    coll = bk.create_backup("v2").info.collection_backups[0]
    data_segments = [s for p in coll.partition_backups for s in p.segment_backups if not s.is_l0]
    assert data_segments and {s.storage_version for s in data_segments} == {2}
    # one directory per column group: 0 (system fields and pk), the vector fields, 1 (the rest)
    assert {fb.field_id for fb in data_segments[0].binlogs} == {0, 1, 101}

    target = InMemoryMilvus("2.6.11")
    client(target, bk.backup_storage).restore("v2")
    assert target.rows(DB, "c") == source.rows(DB, "c")
    assert {s.storage_version for s in target.persistent_segments(DB, "c")} == {2}


def test_a_float16_collection_is_refused_up_front_by_a_2_3_target() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source, float16=True)
    bk = client(source)
    bk.create_backup("half")
    target = InMemoryMilvus("2.3.5")
    with pytest.raises(RestorePlanError, match="Float16Vector"):
        client(target, bk.backup_storage).restore("half", method="import")
    assert target.list_collections(DB) == [] and target.import_tasks == {}


def test_the_2_3_importer_itself_refuses_float16_binlogs() -> None:
    # What the preflight above saves the user from: 2.3.5 creates the collection, then fails the import.
    half = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True), field("half", DataType.FLOAT16_VECTOR, dim=4))
    )
    source, target = InMemoryMilvus("2.4.10"), InMemoryMilvus("2.3.5")
    for cluster in (source, target):
        cluster.create_collection(DB, "h", half)
    source.insert(DB, "h", [{"pk": i, "half": [0.5, 1.0, -2.0, i]} for i in range(3)])
    source.flush(DB, "h")
    coll_id, part_id = (
        source.describe_collection(DB, "h").collection_id,
        source.show_partitions(DB, "h")[0].id,
    )
    prefix = f"insert_log/{coll_id}/{part_id}/"
    [task] = target.start_import(DB, "h", "_default", [prefix], [("backup", "true")])
    # nothing of the source's storage is in the target's yet: "Completed" with 0 rows, as 2.3.5 answers
    assert target.import_state(DB, task).state == "Completed" and target.import_state(DB, task).row_count == 0
    source.storage.fs.copy(
        source.storage.join("insert_log"), target.storage.join("insert_log"), recursive=True
    )
    [task] = target.start_import(DB, "h", "_default", [prefix], [("backup", "true")])
    state = target.import_state(DB, task)
    assert state.state == "Failed" and "unsupported data type" in state.reason
    assert target.rows(DB, "h") == []
    # 2.4 imports the same files
    copy = InMemoryMilvus("2.4.10")
    copy.create_collection(DB, "h", half)
    source.storage.fs.copy(source.storage.join("insert_log"), copy.storage.join("insert_log"), recursive=True)
    [task] = copy.start_import(DB, "h", "_default", [prefix], [("backup", "true")])
    assert copy.import_state(DB, task).row_count == 3 and copy.rows(DB, "h") == source.rows(DB, "h")


def test_rbac_is_backed_up_and_the_missing_entries_restored() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source)
    source.create_role("reader")
    source.create_user("alice", "secret-1")
    source.add_user_to_role("alice", "reader")
    grant = GrantInfo(role="reader", object_type="Collection", object_name="c", privilege="Query")
    source.grant_privilege(grant)
    global_grant = GrantInfo(
        role="reader", object_type="Global", object_name="*", privilege="DescribeCollection", db_name="*"
    )
    source.grant_privilege(global_grant)
    bk = client(source)
    bk.create_backup("with_rbac", rbac=True)

    target = InMemoryMilvus("2.4.10")
    target.create_role("reader")  # already there: left as it is
    report = client(target, bk.backup_storage).restore_rbac("with_rbac", {"alice": "new-password"})
    assert report.users_created == ("alice",) and report.roles_created == ()
    assert {g.key for g in report.grants_created} == {grant.key, global_grant.key}
    assert target.user_roles()["alice"] == ("reader",)
    assert {g.key for g in target.role_grants("reader", DB)} == {grant.key, global_grant.key}
    # restoring again changes nothing
    again = client(target, bk.backup_storage).restore_rbac("with_rbac", {"alice": "new-password"})
    assert not again.changed
