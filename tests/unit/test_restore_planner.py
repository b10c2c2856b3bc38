"""The pure restore planner: backup manifest + options + target state -> plan (no Milvus needed)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from manifests import (
    backup,
    collection,
    field,
    index,
    key_values,
    partition,
    pk_field,
    segment,
    vchannel,
    vector_field,
)
from manifests import schema as collection_schema
from milvus_backup_lib.errors import InvalidFilterError, InvalidNameError, RestorePlanError
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    CollectionSchema,
    DataType,
    IndexInfo,
    KeyValue,
)
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore import (
    CreateAlias,
    CreateCollection,
    CreateDatabase,
    CreateIndex,
    CreatePartition,
    DefaultRestorePlanner,
    DropCollection,
    ImportData,
    LoadCollection,
    RestoreOptions,
    RestorePlan,
    TargetState,
    index_create_params,
)

QN = QualifiedName
C1 = QN("default", "c1")
PKEY = QN("db1", "pkey")
EMPTY = QN("db1", "empty")
V04 = QN("old", "v04")

# Realistic TSO-sized ids, as Milvus hands them out.
C1_ID, C1_DEFAULT, C1_P1 = 446_100_000_000_000_001, 446_100_000_000_000_002, 446_100_000_000_000_003
PKEY_ID = 446_200_000_000_000_001
EMPTY_ID, EMPTY_DEFAULT = 446_300_000_000_000_001, 446_300_000_000_000_002
V04_ID, V04_DEFAULT = 446_400_000_000_000_001, 446_400_000_000_000_002
HNSW_2_3_5 = {"M": "8", "efConstruction": "64", "metric_type": "L2", "index_type": "HNSW"}


def schema(
    name: str, *, partition_key: bool = False, field_ids: tuple[int, ...] = (100, 101, 102)
) -> CollectionSchema:
    """pk, vec, text (or the partition key tenant) and the dynamic field $meta, with these ids."""
    pk_id, vec_id, third_id = field_ids
    if partition_key:
        third = field(third_id, "tenant", DataType.INT64, is_partition_key=True)
    else:
        third = field(third_id, "text", DataType.VARCHAR, params={"max_length": 64})
    return collection_schema(
        name,
        pk_field(pk_id),
        vector_field(vec_id),
        third,
        field(max(field_ids) + 1, "$meta", DataType.JSON, is_dynamic=True),
        enable_dynamic_field=True,
        auto_id=True,
    )


def c1_backup(**changes: Any) -> CollectionBackupInfo:
    """default.c1: two partitions, deletes, an empty segment, L0 at both levels, HNSW + Trie, alias, TTL."""
    info = collection(
        "c1",
        partition(
            C1_DEFAULT,
            segment(1001, C1_DEFAULT, 100, deletes=3, collection_id=C1_ID),
            segment(1002, C1_DEFAULT, 50, collection_id=C1_ID),
            segment(1003, C1_DEFAULT, 0, collection_id=C1_ID),  # empty, no deletes: nothing to import
            segment(1004, C1_DEFAULT, 7, l0=True, collection_id=C1_ID),
            collection_id=C1_ID,
            load_state="Loaded",
        ),
        partition(
            C1_P1,
            segment(1005, C1_P1, 30, collection_id=C1_ID),
            name="p1",
            collection_id=C1_ID,
            load_state="Loaded",
        ),
        collection_id=C1_ID,
        schema=schema("c1"),
        l0_segments=(segment(1006, -1, 4, l0=True, collection_id=C1_ID),),
        id="task",
        shards_num=2,
        consistency_level=2,
        backup_timestamp=449_000_000_000_000_000,
        index_infos=(
            index("vec", "HNSW", HNSW_2_3_5, name="vec_idx", index_id=1),
            index("text", "marisa-trie", {"index_type": "marisa-trie"}, name="text_idx", index_id=2),
        ),
        load_state="Loaded",
        properties=key_values({"collection.ttl.seconds": 3600}),
        aliases=("c1_alias",),
    )
    return attrs.evolve(info, **changes)


def pkey_backup() -> CollectionBackupInfo:
    """db1.pkey: a partition-key collection with Milvus's automatic `_default_0.._default_3`."""
    return collection(
        "pkey",
        *(
            partition(
                PKEY_ID + 10 + n,
                segment(2000 + n, PKEY_ID + 10 + n, 10 + n, collection_id=PKEY_ID),
                name=f"_default_{n}",
                collection_id=PKEY_ID,
            )
            for n in range(4)
        ),
        collection_id=PKEY_ID,
        db_name="db1",
        schema=schema("pkey", partition_key=True),
        shards_num=1,
        consistency_level=0,
        index_infos=(
            index(
                "vec", "IVF_FLAT", {"index_type": "IVF_FLAT", "metric_type": "IP", "params": '{"nlist":128}'}
            ),
        ),
        load_state="NotLoad",
    )


def empty_backup() -> CollectionBackupInfo:
    """db1.empty: no data at all."""
    return collection(
        "empty",
        partition(EMPTY_DEFAULT, collection_id=EMPTY_ID),
        collection_id=EMPTY_ID,
        db_name="db1",
        schema=schema("empty"),
        shards_num=1,
        index_infos=(index("vec", "FLAT", {"metric_type": "L2"}),),
        load_state="NotLoad",
    )


def v04_backup() -> CollectionBackupInfo:
    """old.v04: a milvus-backup v0.4.0 backup, group_id 0 everywhere."""
    return collection(
        "v04",
        partition(
            V04_DEFAULT,
            segment(4001, V04_DEFAULT, 500, group_id=0, collection_id=V04_ID),
            segment(4002, V04_DEFAULT, 250, deletes=3, group_id=0, collection_id=V04_ID),
            collection_id=V04_ID,
        ),
        collection_id=V04_ID,
        db_name="old",
        schema=schema("v04"),
        shards_num=2,
        index_infos=(index("vec", "HNSW", HNSW_2_3_5),),
        load_state="Loaded",
    )


def all_four() -> BackupInfo:
    """Backup bk1 of default.c1, db1.pkey, db1.empty and old.v04."""
    return backup(c1_backup(), pkey_backup(), empty_backup(), v04_backup())


FRESH = TargetState(frozenset({"default"}), frozenset())


def plan(info: BackupInfo | None = None, target: TargetState = FRESH, **options: object) -> RestorePlan:
    return DefaultRestorePlanner().plan(info or all_four(), RestoreOptions(**options), target)  # type: ignore[arg-type]


def conflicts_of(
    info: BackupInfo | None = None, target: TargetState = FRESH, **options: object
) -> tuple[str, ...]:
    with pytest.raises(RestorePlanError) as caught:
        plan(info, target, **options)
    return caught.value.conflicts


def steps_for(p: RestorePlan, name: QualifiedName) -> tuple[object, ...]:
    return next(c.steps for c in p.collections if c.target == name)


# -- options --------------------------------------------------------------------------------------


def test_options_defaults_and_filter_converter() -> None:
    opts = RestoreOptions()
    assert opts.collections is None
    assert (opts.rebuild_indexes, opts.restore_aliases, opts.load) == (True, True, None)
    assert [opts.drop_existing, opts.skip_create, opts.meta_only, opts.dry_run, opts.keep_staged] == [
        False
    ] * 5

    opts = RestoreOptions(collections="c1, db1.*")
    assert opts.collections == ("c1", "db1.*")
    assert [opts.filter.matches(n) for n in (C1, PKEY, EMPTY, V04)] == [True, True, True, False]
    assert RestoreOptions(collections=["db1.pkey"]).collections == ("db1.pkey",)


@pytest.mark.parametrize("bad", ["1abc", ".c1", "a,,b", "db-1.c"])
def test_options_reject_bad_filters(bad: str) -> None:
    with pytest.raises(InvalidFilterError):
        RestoreOptions(collections=bad)


@pytest.mark.parametrize(
    "rename",
    [
        {"db1.*": "db2.c2"},  # database onto a collection
        {"c1": "db2.*"},
        {"c1": "bad-name"},
        {"1db.*": "db2.*"},
        {"c1": "c2", "default.c1": "c3"},  # the same source twice
        "c1:c2,c1:c3",
        "c1=c2",
    ],
)
def test_options_reject_bad_renames(rename: object) -> None:
    with pytest.raises(InvalidFilterError):
        RestoreOptions(rename=rename)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", ["bad-suffix", "a.b", "x" * 255])
def test_options_reject_bad_suffix(suffix: str) -> None:
    with pytest.raises(InvalidNameError):
        RestoreOptions(suffix=suffix)


def test_options_rename_text_form() -> None:
    opts = RestoreOptions(rename="db1.c1:db2.c2, c3:c4,db1.*:db2.*")
    assert opts.rename == {"db1.c1": "db2.c2", "c3": "c4", "db1.*": "db2.*"}
    assert opts.target_name(QN("default", "c3")) == QN("default", "c4")


def test_options_validate_bools() -> None:
    with pytest.raises(TypeError):
        RestoreOptions(load="yes")  # type: ignore[arg-type]


# -- names ----------------------------------------------------------------------------------------


def test_suffix_is_appended_verbatim_as_the_go_tool_does() -> None:
    assert plan(backup(c1_backup()), suffix="x").collections[0].target == QN("default", "c1x")
    p = plan(backup(c1_backup()), suffix="_restored")
    (coll,) = p.collections
    assert coll.target == QN("default", "c1_restored")
    create = coll.steps[0]
    assert isinstance(create, CreateCollection)
    assert create.schema.name == "c1_restored"
    assert all(getattr(step, "target", None) == coll.target for step in coll.steps)


def test_suffix_that_makes_a_too_long_name_is_a_conflict() -> None:
    long_name = "c" * 250
    info = backup(c1_backup(collection_name=long_name, schema=schema(long_name)))
    (conflict,) = conflicts_of(info, suffix="abcdef")
    assert f"default.{long_name}" in conflict


def test_rename_collection_into_another_database_creates_it() -> None:
    p = plan(backup(c1_backup()), rename={"c1": "db2.c2"})
    assert p.create_databases == ("db2",)
    assert p.collections[0].target == QN("db2", "c2")
    assert p.steps[0] == CreateDatabase(database="db2")


def test_database_wildcard_rename_keeps_collection_names_and_gets_no_suffix() -> None:
    p = plan(rename={"db1.*": "db9.*"}, suffix="_x")
    targets = {c.source: c.target for c in p.collections}
    assert targets == {
        C1: QN("default", "c1_x"),
        PKEY: QN("db9", "pkey"),
        EMPTY: QN("db9", "empty"),
        V04: QN("old", "v04_x"),
    }
    assert p.create_databases == ("db9", "old")


def test_collection_rename_wins_over_database_rename_and_suffix() -> None:
    p = plan(rename={"db1.*": "db9.*", "db1.pkey": "db8.keyed", "c1": "first"}, suffix="_x")
    targets = {c.source: c.target for c in p.collections}
    assert targets[PKEY] == QN("db8", "keyed")
    assert targets[EMPTY] == QN("db9", "empty")
    assert targets[C1] == QN("default", "first")
    assert targets[V04] == QN("old", "v04_x")


def test_filter_selects_source_names() -> None:
    p = plan(collections="db1.*", rename={"db1.*": "db2.*"})
    assert [c.source for c in p.collections] == [PKEY, EMPTY]
    p = plan(collections=["c1"], suffix="_x")
    assert [c.source for c in p.collections] == [C1]


def test_existing_databases_are_not_created() -> None:
    target = TargetState(frozenset({"default", "db1"}), frozenset())
    assert plan(target=target).create_databases == ("old",)
    # `default` always exists, even if the caller did not list it.
    assert plan(backup(c1_backup()), TargetState(frozenset(), frozenset())).create_databases == ()


# -- steps ----------------------------------------------------------------------------------------


def test_collection_steps_in_order_with_exact_prefixes() -> None:
    (coll,) = plan(backup(c1_backup())).collections
    d, p1 = C1_DEFAULT, C1_P1
    assert coll.steps == (
        CreateCollection(
            target=C1,
            source=C1,
            schema=attrs.evolve(c1_backup().schema, fields=c1_backup().schema.fields[:3]),
            shards_num=2,
            consistency_level=2,
            properties=(KeyValue(key="collection.ttl.seconds", value="3600"),),
            num_partitions=0,
        ),
        CreatePartition(target=C1, partition="p1"),
        ImportData(
            target=C1,
            source=C1,
            partition="_default",
            insert_prefix=f"binlogs/insert_log/{C1_ID}/{d}/1001/",
            delta_prefix=f"binlogs/delta_log/{C1_ID}/{d}/1001/",
            segment_ids=(1001,),
            rows=100,
            channel=vchannel(C1_ID),
        ),
        ImportData(
            target=C1,
            source=C1,
            partition="_default",
            insert_prefix=f"binlogs/insert_log/{C1_ID}/{d}/1002/",
            delta_prefix="",
            segment_ids=(1002,),
            rows=50,
            channel=vchannel(C1_ID),
        ),
        ImportData(
            target=C1,
            source=C1,
            partition="p1",
            insert_prefix=f"binlogs/insert_log/{C1_ID}/{p1}/1005/",
            delta_prefix="",
            segment_ids=(1005,),
            rows=30,
            channel=vchannel(C1_ID),
        ),
        ImportData(
            target=C1,
            source=C1,
            partition="_default",
            insert_prefix="",
            delta_prefix=f"binlogs/delta_log/{C1_ID}/{d}/1004/",
            segment_ids=(1004,),
            rows=7,
            l0=True,
        ),
        ImportData(
            target=C1,
            source=C1,
            partition="",
            insert_prefix="",
            delta_prefix=f"binlogs/delta_log/{C1_ID}/-1/1006/",
            segment_ids=(1006,),
            rows=4,
            l0=True,
        ),
        CreateIndex(
            target=C1,
            field_name="vec",
            index_name="vec_idx",
            params=(
                ("index_type", "HNSW"),
                ("metric_type", "L2"),
                ("M", "8"),
                ("efConstruction", "64"),
            ),
        ),
        CreateIndex(
            target=C1,
            field_name="text",
            index_name="text_idx",
            params=(("index_type", "Trie"),),
        ),
        LoadCollection(target=C1),
        CreateAlias(target=C1, alias="c1_alias"),
    )
    assert (coll.drop, coll.create, coll.backup_rows) == (False, True, 180)


def test_creation_schema_keeps_field_ids_and_drops_the_hidden_dynamic_field() -> None:
    create = plan(backup(c1_backup()), suffix="_x").collections[0].steps[0]
    assert isinstance(create, CreateCollection)
    assert create.schema.name == "c1_x"
    assert [(f.field_id, f.name) for f in create.schema.fields] == [(100, "pk"), (101, "vec"), (102, "text")]
    assert create.schema.enable_dynamic_field


def test_schema_properties_join_collection_properties() -> None:
    info = c1_backup(
        schema=attrs.evolve(
            schema("c1"),
            properties=(
                KeyValue(key="collection.ttl.seconds", value="1"),
                KeyValue(key="mmap.enabled", value="true"),
            ),
        )
    )
    create = plan(backup(info)).collections[0].steps[0]
    assert isinstance(create, CreateCollection)
    assert create.properties == (
        KeyValue(key="collection.ttl.seconds", value="3600"),
        KeyValue(key="mmap.enabled", value="true"),
    )


def test_v04_backup_without_groups_imports_whole_partition() -> None:
    imports = plan(backup(v04_backup())).collections[0].imports
    assert imports == (
        ImportData(
            target=V04,
            source=V04,
            partition="_default",
            insert_prefix=f"binlogs/insert_log/{V04_ID}/{V04_DEFAULT}/",
            delta_prefix=f"binlogs/delta_log/{V04_ID}/{V04_DEFAULT}/",
            segment_ids=(4001, 4002),
            rows=750,
            channel=vchannel(V04_ID),
        ),
    )


def test_multi_segment_groups_make_one_job_each() -> None:
    # milvus-backup v0.1..v0.4.3 grouped several segments per group directory by size.
    part = partition(
        C1_DEFAULT,
        segment(1011, C1_DEFAULT, 10, group_id=7, collection_id=C1_ID),
        segment(1010, C1_DEFAULT, 20, group_id=7, deletes=3, collection_id=C1_ID),
        segment(1012, C1_DEFAULT, 40, group_id=8, collection_id=C1_ID),
        collection_id=C1_ID,
    )
    imports = plan(backup(c1_backup(partition_backups=(part,), l0_segments=()))).collections[0].imports
    assert [(i.insert_prefix, i.delta_prefix, i.segment_ids, i.rows) for i in imports] == [
        (
            f"binlogs/insert_log/{C1_ID}/{C1_DEFAULT}/7/",
            f"binlogs/delta_log/{C1_ID}/{C1_DEFAULT}/7/",
            (1010, 1011),
            30,
        ),
        (f"binlogs/insert_log/{C1_ID}/{C1_DEFAULT}/8/", "", (1012,), 40),
    ]


def test_zero_row_segment_with_deletes_is_imported() -> None:
    part = partition(
        C1_DEFAULT,
        segment(1020, C1_DEFAULT, 0, deletes=3, collection_id=C1_ID),
        segment(1021, C1_DEFAULT, 0, collection_id=C1_ID),
        collection_id=C1_ID,
    )
    imports = plan(backup(c1_backup(partition_backups=(part,), l0_segments=()))).collections[0].imports
    assert [i.segment_ids for i in imports] == [(1020,)]


def test_l0_jobs_come_after_every_data_job_of_the_collection() -> None:
    imports = plan(backup(c1_backup())).collections[0].imports
    flags = [i.l0 for i in imports]
    assert flags == sorted(flags)  # all False first, then all True
    l0 = [i for i in imports if i.l0]
    assert [(i.partition, i.segment_ids) for i in l0] == [("_default", (1004,)), ("", (1006,))]


def test_l0_segment_without_delta_logs_is_skipped() -> None:
    info = c1_backup(l0_segments=(segment(1006, -1, 0, l0=True, collection_id=C1_ID),))
    assert [i.segment_ids for i in plan(backup(info)).collections[0].imports if i.l0] == [(1004,)]


def test_partition_key_collection_gets_num_partitions_and_imports_per_partition() -> None:
    steps = steps_for(plan(backup(pkey_backup())), PKEY)
    create = steps[0]
    assert isinstance(create, CreateCollection)
    assert create.num_partitions == 4
    assert not any(isinstance(s, CreatePartition) for s in steps)
    imports = [s for s in steps if isinstance(s, ImportData)]
    assert [(i.partition, i.insert_prefix, i.rows) for i in imports] == [
        (f"_default_{n}", f"binlogs/insert_log/{PKEY_ID}/{PKEY_ID + 10 + n}/{2000 + n}/", 10 + n)
        for n in range(4)
    ]


def test_collection_without_partition_key_has_no_num_partitions() -> None:
    create = plan(backup(c1_backup())).collections[0].steps[0]
    assert isinstance(create, CreateCollection)
    assert create.num_partitions == 0


def test_empty_collection_is_only_created() -> None:
    steps = steps_for(plan(backup(empty_backup())), EMPTY)
    assert [s.kind for s in steps] == ["create_collection", "create_index"]  # type: ignore[attr-defined]


def test_meta_only_plans_no_imports() -> None:
    p = plan(meta_only=True)
    assert not any(isinstance(s, ImportData) for s in p.steps)
    assert any(isinstance(s, CreatePartition) for s in p.steps)


# -- index params ---------------------------------------------------------------------------------


def test_index_params_from_milvus_2_3_5_flattened_map() -> None:
    info = IndexInfo(field_name="vec", index_name="vec", index_type="HNSW", params=dict(HNSW_2_3_5))
    params = dict(index_create_params(info))
    assert list(params) == ["index_type", "metric_type", "M", "efConstruction"]
    assert params["index_type"] == "HNSW"
    assert params["metric_type"] == "L2"
    # sent back flattened, as 2.3 reported them, so the new index describes like the old one
    assert params["M"] == "8" and params["efConstruction"] == "64" and "params" not in params


def test_index_params_nested_json_passes_through() -> None:
    info = IndexInfo(
        index_type="IVF_FLAT",
        params={
            "index_type": "IVF_FLAT",
            "metric_type": "IP",
            "params": '{"nlist": 128}',
            "mmap.enabled": "true",
        },
    )
    assert index_create_params(info) == (
        ("index_type", "IVF_FLAT"),
        ("metric_type", "IP"),
        ("params", '{"nlist": 128}'),
        ("mmap.enabled", "true"),
    )


def test_index_params_drop_build_state_and_rename_marisa_trie() -> None:
    info = IndexInfo(
        index_type="marisa-trie",
        params={"index_type": "marisa-trie", "total_rows": "10", "indexed_rows": "10", "state": "Finished"},
    )
    assert index_create_params(info) == (("index_type", "Trie"),)
    # index_type only on the record, not in the map (older backups).
    assert index_create_params(IndexInfo(index_type="STL_SORT"))[0] == ("index_type", "STL_SORT")


def test_no_index_steps_without_rebuild_indexes() -> None:
    p = plan(rebuild_indexes=False)
    assert not any(isinstance(s, CreateIndex) for s in p.steps)


# -- load -----------------------------------------------------------------------------------------


def _loads(p: RestorePlan) -> set[QualifiedName]:
    return {s.target for s in p.steps if isinstance(s, LoadCollection)}


def test_load_follows_backup_load_state_by_default() -> None:
    p = plan()
    assert _loads(p) == {C1, V04}
    assert p.skipped == ()


def test_load_true_loads_everything_with_an_index() -> None:
    assert _loads(plan(load=True)) == {C1, V04, PKEY, EMPTY}


def test_load_false_records_what_was_loaded() -> None:
    p = plan(load=False)
    assert _loads(p) == set()
    assert ("default.c1", "not loaded: load=False, though it was loaded at backup time") in p.skipped
    assert len(p.skipped) == 2


def test_no_load_without_indexes_and_the_reason_is_recorded() -> None:
    p = plan(backup(c1_backup()), rebuild_indexes=False)
    assert _loads(p) == set()
    assert p.skipped == (
        ("default.c1", "not loaded: no index on vector field(s) vec (rebuild_indexes is off)"),
    )


def test_no_load_when_the_backup_lacks_a_vector_index() -> None:
    info = c1_backup(index_infos=c1_backup().index_infos[1:])
    p = plan(backup(info))
    assert _loads(p) == set()
    assert p.skipped == (
        ("default.c1", "not loaded: no index on vector field(s) vec (the backup has no such index)"),
    )


def test_existing_indexed_target_loads_without_new_indexes() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}), indexed=frozenset({C1}))
    p = plan(backup(c1_backup()), target, skip_create=True, rebuild_indexes=False, restore_aliases=False)
    assert _loads(p) == {C1}


# -- aliases --------------------------------------------------------------------------------------


def test_alias_already_pointing_at_the_target_is_skipped() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}), {("default", "c1_alias"): "c1"})
    p = plan(backup(c1_backup()), target, skip_create=True)
    assert not any(isinstance(s, CreateAlias) for s in p.steps)
    assert ("default.c1", "alias c1_alias already points to it") in p.skipped


def test_restore_aliases_off_records_the_aliases() -> None:
    p = plan(backup(c1_backup()), restore_aliases=False)
    assert not any(isinstance(s, CreateAlias) for s in p.steps)
    assert p.skipped == (("default.c1", "alias(es) c1_alias not restored: restore_aliases is off"),)


def test_alias_goes_to_the_target_database() -> None:
    p = plan(backup(c1_backup()), rename={"default.*": "db5.*"})
    assert p.steps[-1] == CreateAlias(target=QN("db5", "c1"), alias="c1_alias")


def test_drop_existing_drops_the_target_aliases_and_recreates_backed_up_ones() -> None:
    target = TargetState(
        frozenset({"default"}),
        frozenset({C1}),
        {("default", "c1_alias"): "c1", ("default", "old_alias"): "c1", ("default", "other"): "zz"},
    )
    p = plan(backup(c1_backup()), target, drop_existing=True)
    (coll,) = p.collections
    assert (coll.drop, coll.create) == (True, True)
    assert coll.steps[0] == DropCollection(target=C1, aliases=("c1_alias", "old_alias"))
    assert isinstance(coll.steps[1], CreateCollection)
    assert coll.steps[-1] == CreateAlias(target=C1, alias="c1_alias")
    assert ("default.c1", "alias(es) old_alias dropped with the old collection") in p.skipped


# -- skip_create ----------------------------------------------------------------------------------


def test_skip_create_restores_into_the_existing_collection() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}))
    # Field ids cannot be checked against an existing collection here: the executor does it.
    info = c1_backup(schema=schema("c1", field_ids=(100, 102, 103)))
    (coll,) = plan(backup(info), target, skip_create=True).collections
    assert (coll.drop, coll.create) == (False, False)
    kinds = [s.kind for s in coll.steps]
    assert "create_collection" not in kinds
    assert kinds[0] == "create_partition"
    assert kinds.count("import_data") == 5


# -- conflicts ------------------------------------------------------------------------------------


def test_existing_target_without_flags_is_a_conflict() -> None:
    target = TargetState(frozenset({"default"}), frozenset({QN("default", "c1_x")}))
    (conflict,) = conflicts_of(backup(c1_backup()), target, suffix="_x")
    assert "default.c1_x" in conflict
    assert "already exists" in conflict


def test_drop_existing_with_skip_create_is_a_conflict() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}))
    with attrs.validators.disabled():  # RestoreOptions refuses the pair; the planner checks it again
        (conflict,) = conflicts_of(backup(c1_backup()), target, drop_existing=True, skip_create=True)
    assert "drop_existing and skip_create" in conflict


def test_skip_create_of_a_missing_target_is_a_conflict() -> None:
    (conflict,) = conflicts_of(backup(c1_backup()), skip_create=True)
    assert "skip_create" in conflict
    assert "default.c1" in conflict


def test_two_sources_onto_one_target_is_a_conflict() -> None:
    (conflict,) = conflicts_of(rename={"db1.pkey": "db1.same", "db1.empty": "db1.same"})
    assert conflict == "db1.pkey, db1.empty would all be restored to db1.same"


def test_unknown_filter_and_rename_sources_are_conflicts() -> None:
    conflicts = conflicts_of(collections="db1.nope,zz.*", rename={"ghost": "g2", "nodb.*": "x.*"})
    assert conflicts == (
        "collection db1.nope is not in backup bk1",
        "database zz has no collection in backup bk1",
        "rename source default.ghost is not in backup bk1",
        "rename source nodb.* has no collection in backup bk1",
    )


def test_alias_pointing_elsewhere_is_a_conflict_even_with_drop_existing() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}), {("default", "c1_alias"): "other"})
    (conflict,) = conflicts_of(backup(c1_backup()), target, drop_existing=True)
    assert conflict == "alias c1_alias in database default already points to default.other, not default.c1"
    # Without alias restore there is nothing to clash.
    assert plan(backup(c1_backup()), target, drop_existing=True, restore_aliases=False)


def test_alias_named_like_a_collection_is_a_conflict() -> None:
    target = TargetState(frozenset({"default"}), frozenset({QN("default", "c1_alias")}))
    (conflict,) = conflicts_of(backup(c1_backup()), target)
    assert "default.c1_alias is a collection" in conflict


def test_two_restored_collections_wanting_one_alias_is_a_conflict() -> None:
    other = c1_backup(collection_name="c2", collection_id=C1_ID + 100, schema=schema("c2"))
    (conflict,) = conflicts_of(backup(c1_backup(), other))
    assert conflict == "alias c1_alias in database default is wanted by both default.c1 and default.c2"


def test_target_named_like_an_existing_alias_is_a_conflict() -> None:
    target = TargetState(frozenset({"default"}), frozenset({QN("default", "x")}), {("default", "c1"): "x"})
    (conflict,) = conflicts_of(backup(c1_backup()), target)
    assert conflict == "cannot create default.c1: it is an alias of default.x on the target"


def test_misaligned_field_ids_are_a_conflict_unless_meta_only() -> None:
    # A field added later (Milvus 2.6 AddCollectionField) got an id after the dynamic field's.
    info = c1_backup(schema=schema("c1", field_ids=(100, 101, 103)))
    (conflict,) = conflicts_of(backup(info), method="import")
    assert "default.c1" in conflict
    assert "text: 103 (Milvus assigns 102)" in conflict
    assert "$meta: 104 (Milvus assigns 103)" in conflict
    assert plan(backup(info), meta_only=True).collections[0].imports == ()
    # Nothing to import, nothing to misalign.
    assert plan(backup(attrs.evolve(empty_backup(), schema=schema("empty", field_ids=(100, 105, 106)))))


def test_mixed_group_ids_in_a_partition_is_a_conflict() -> None:
    part = partition(
        C1_DEFAULT,
        segment(1030, C1_DEFAULT, 5, group_id=0, collection_id=C1_ID),
        segment(1031, C1_DEFAULT, 5, collection_id=C1_ID),
        collection_id=C1_ID,
    )
    (conflict,) = conflicts_of(backup(c1_backup(partition_backups=(part,))))
    assert "partition _default of default.c1" in conflict
    assert "segments 1030" in conflict


def test_snapshot_format_backup_is_a_conflict() -> None:
    (conflict,) = conflicts_of(attrs.evolve(backup(c1_backup()), format="snapshot"))
    assert "snapshot" in conflict


def test_every_conflict_is_reported_together() -> None:
    misaligned = c1_backup(schema=schema("c1", field_ids=(100, 101, 103)))
    target = TargetState(
        frozenset({"default", "db1"}),
        frozenset({PKEY}),
        {("default", "c1_alias"): "someone_else"},
    )
    with pytest.raises(RestorePlanError) as caught:
        plan(
            backup(misaligned, pkey_backup(), empty_backup(), v04_backup()),
            target,
            collections="c1,db1.*,old.v04,db1.ghost",
            rename={"db1.empty": "old.v04"},
            method="import",
        )
    conflicts = caught.value.conflicts
    assert len(conflicts) == 5, conflicts
    message = str(caught.value)
    for needle in ["db1.ghost", "db1.pkey", "old.v04", "c1_alias", "Milvus assigns"]:
        assert needle in message


# -- the plan as a whole --------------------------------------------------------------------------


def test_planning_is_pure_and_ignores_dry_run() -> None:
    info = all_four()
    target = TargetState(frozenset({"default"}), frozenset({C1}), {("default", "c1_alias"): "c1"})
    first = plan(info, target, drop_existing=True)
    again = plan(info, target, drop_existing=True)
    dry = plan(info, target, drop_existing=True, dry_run=True)
    assert first == again
    assert first.steps == dry.steps
    assert first.skipped == dry.skipped
    assert info == all_four()
    assert target == TargetState(frozenset({"default"}), frozenset({C1}), {("default", "c1_alias"): "c1"})


def test_plan_steps_put_databases_first_then_each_collection_in_order() -> None:
    p = plan()
    steps = p.steps
    assert [s for s in steps if isinstance(s, CreateDatabase)] == list(steps[:2])
    assert steps[:2] == (CreateDatabase(database="db1"), CreateDatabase(database="old"))
    assert steps[2:] == tuple(s for c in p.collections for s in c.steps)
    order = [
        "drop_collection",
        "create_collection",
        "create_partition",
        "import_data",
        "create_index",
        "load_collection",
        "create_alias",
    ]
    for coll in p.collections:
        ranks = [order.index(s.kind) for s in coll.steps]
        assert ranks == sorted(ranks), coll.target


def test_table_lists_every_step() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}), {("default", "c1_alias"): "c1"})
    p = plan(target=target, drop_existing=True, load=True)
    table = p.table()
    lines = table.splitlines()
    assert str(p) == table
    assert "bk1" in lines[0]
    assert lines[1].split() == ["#", "step", "target", "detail"]
    rows = lines[3 : 3 + len(p.steps)]
    assert len(rows) == len(p.steps) == int(rows[-1].split()[0])
    for number, (row, step) in enumerate(zip(rows, p.steps, strict=True), start=1):
        assert row.split()[:3] == [str(number), step.kind, step.subject]
        assert row.rstrip().endswith(step.detail.rstrip())
        assert step.describe()
    # Fixed width: the detail column starts at the same place on every row.
    starts = {len(row) - len(step.detail) for row, step in zip(rows, p.steps, strict=True) if step.detail}
    assert len(starts) == 1
    for prefix in [f"binlogs/insert_log/{C1_ID}/{C1_DEFAULT}/1001/", f"binlogs/delta_log/{C1_ID}/-1/1006/"]:
        assert prefix in table
    assert "<table>" in p._repr_html_()


def test_describe_is_one_line_per_step() -> None:
    target = TargetState(frozenset({"default"}), frozenset({C1}), {("default", "c1_alias"): "c1"})
    for step in plan(target=target, drop_existing=True).steps:
        text = step.describe()
        assert text
        assert "\n" not in text


def test_restore_package_exports() -> None:
    from milvus_backup_lib import restore

    assert sorted(restore.__all__) == restore.__all__
    for name in restore.__all__:
        assert getattr(restore, name) is not None
    planner: restore.RestorePlanner = DefaultRestorePlanner()  # mypy checks the Protocol fits
    assert planner.plan(all_four(), RestoreOptions(), FRESH).backup_name == "bk1"
