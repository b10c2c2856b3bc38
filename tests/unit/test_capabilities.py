"""The capability table per Milvus version, and the restore check built on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from memory_data import DB, client, populate

from manifests import backup, collection, field, partition, pk_field, schema, segment, vector_field
from milvus_backup_lib.errors import RestorePlanError
from milvus_backup_lib.manifest.model import BackupInfo, DataType, FunctionSchema
from milvus_backup_lib.milvus.capabilities import (
    _TABLE,
    VERSION_LINES,
    Capability,
    capabilities_of,
    since,
)
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.capability_check import capability_problems
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import RestorePlan, TargetState
from milvus_backup_lib.restore.planner import DefaultRestorePlanner
from milvus_backup_lib.testing.memory import InMemoryMilvus

FRESH = TargetState(frozenset({"default"}), frozenset())
P = 448_001


def _plan(info: BackupInfo, **options: object) -> RestorePlan:
    return DefaultRestorePlanner().plan(info, RestoreOptions(**options), FRESH)  # type: ignore[arg-type]


def _one(
    *fields: object, functions: tuple[FunctionSchema, ...] = (), **segment_changes: object
) -> BackupInfo:
    s = schema("c", pk_field(), *fields, functions=functions)  # type: ignore[arg-type]
    return backup(collection("c", partition(P, segment(1, P, 10, **segment_changes)), schema=s))


def test_every_capability_has_a_version_and_a_cited_source() -> None:
    assert set(_TABLE) == set(Capability)
    for capability, entry in _TABLE.items():
        assert entry.since >= (2, 2, 0) and entry.source.strip(), capability


@pytest.mark.parametrize(
    ("reported", "number", "lite"),
    [
        ("v2.3.5", (2, 3, 5), False),
        ("2.6.11", (2, 6, 11), False),
        ("v2.5.8-hotfix-20250101", (2, 5, 8), False),
        ("v2.4", (2, 4, 0), False),
        ("milvus_lite-3.2.2", None, True),
        ("unknown", None, False),
    ],
)
def test_versions_are_read_as_servers_report_them(
    reported: str, number: tuple[int, int, int] | None, lite: bool
) -> None:
    caps = capabilities_of(reported)
    assert (caps.version, caps.number, caps.lite) == (reported, number, lite)


def test_patch_releases_gate_what_arrived_in_a_patch() -> None:
    assert not capabilities_of("v2.6.3").has(Capability.STRUCT_ARRAY)
    assert capabilities_of("v2.6.4").has(Capability.STRUCT_ARRAY)
    assert not capabilities_of("v2.5.7").has(Capability.SEGMENT_DESCRIBE_REST)
    assert capabilities_of("v2.5.8").has(Capability.SEGMENT_DESCRIBE_REST)
    assert capabilities_of("v2.6.7").lacks(Capability.COLLECTION_GC_PAUSE) == (
        "Milvus v2.6.7 has no per-collection garbage-collection pause (Milvus 2.6.8 or newer has)"
    )
    assert capabilities_of("v2.6.8").lacks(Capability.COLLECTION_GC_PAUSE) is None


def test_an_unreadable_version_is_given_the_benefit_of_the_doubt() -> None:
    assert all(capabilities_of("nightly").has(c) for c in Capability)


def test_milvus_lite_takes_metadata_but_no_binlogs() -> None:
    lite = capabilities_of("milvus_lite-3.2.2")
    assert (
        lite.has(Capability.FUNCTIONS)
        and lite.has(Capability.NULLABLE)
        and lite.has(Capability.SPARSE_VECTOR)
    )
    assert not lite.has(Capability.BINLOG_IMPORT)
    assert "keeps no binlogs" in (lite.lacks(Capability.BINLOG_IMPORT) or "")


def test_the_table_per_line() -> None:
    assert list(VERSION_LINES) == ["2.2", "2.3", "2.4", "2.5", "2.6"]
    assert VERSION_LINES["2.2"][Capability.BINLOG_IMPORT] == "yes"
    assert VERSION_LINES["2.3"][Capability.FLOAT16_VECTOR] == "no"
    assert VERSION_LINES["2.4"][Capability.FLOAT16_VECTOR] == "yes"
    assert VERSION_LINES["2.4"][Capability.MULTI_SEGMENT_IMPORT] == "yes"
    assert VERSION_LINES["2.4"][Capability.RBAC_META_API] == "2.4.10+"
    assert VERSION_LINES["2.4"][Capability.FUNCTIONS] == "no"
    assert VERSION_LINES["2.5"][Capability.FUNCTIONS] == "yes"
    assert VERSION_LINES["2.5"][Capability.STORAGE_V2] == "no"
    assert VERSION_LINES["2.6"][Capability.STORAGE_V2] == "yes"
    assert VERSION_LINES["2.6"][Capability.STRUCT_ARRAY] == "2.6.4+"
    assert since(Capability.MULTI_L0_IMPORT) == "2.6.5"


# -- the restore check --------------------------------------------------------------------------------


def test_a_float16_import_into_2_3_is_refused_with_what_to_do() -> None:
    info = _one(field(101, "half", DataType.FLOAT16_VECTOR, params={"dim": 8}))
    [problem] = capability_problems(_plan(info), info, "v2.3.5")
    assert problem == (
        "default.c: Float16Vector field 'half': Milvus v2.3.5 has no bulk import of Float16Vector binlogs (Milvus 2.4.0 or "
        "newer has); restore into a newer Milvus, or restore with meta_only"
    )
    assert capability_problems(_plan(info), info, "v2.4.0") == []
    # meta_only imports nothing: the same backup goes into 2.3.5
    assert capability_problems(_plan(info, meta_only=True), info, "v2.3.5") == []


@pytest.mark.parametrize(
    ("data_type", "first"),
    [
        (DataType.BFLOAT16_VECTOR, "2.4.0"),
        (DataType.SPARSE_FLOAT_VECTOR, "2.4.0"),
        (DataType.INT8_VECTOR, "2.6.0"),
    ],
)
def test_each_newer_vector_type_needs_its_version(data_type: int, first: str) -> None:
    info = _one(field(101, "v", data_type))
    [problem] = capability_problems(_plan(info), info, "v2.3.5")
    assert f"{DataType.NAMES[data_type]} binlogs (Milvus {first} or newer has)" in problem
    assert capability_problems(_plan(info), info, first) == []


def test_schema_features_are_refused_at_creation_on_older_lines() -> None:
    bm25 = FunctionSchema(name="bm25", type=1, input_field_names=("text",), output_field_names=("sp",))
    info = _one(
        field(102, "text", DataType.VARCHAR, nullable=True),
        field(101, "sp", DataType.SPARSE_FLOAT_VECTOR, is_function_output=True),
        functions=(bm25,),
    )
    problems = capability_problems(_plan(info, meta_only=True), info, "v2.4.10")
    assert problems == [
        "default.c: nullable field 'text': Milvus v2.4.10 has no nullable fields (Milvus 2.5.0 or newer has); "
        "restore into a newer Milvus",
        "default.c: 'bm25' function (type 1) of the schema: Milvus v2.4.10 has no schema functions (BM25) and "
        "analyzers (Milvus 2.5.0 or newer has); restore into a newer Milvus",
    ]
    assert capability_problems(_plan(info, meta_only=True), info, "v2.5.0") == []
    # an existing target (skip_create) is not created: its schema is checked field by field elsewhere
    exists = TargetState(frozenset({"default"}), frozenset({QualifiedName("default", "c")}))
    skip = DefaultRestorePlanner().plan(info, RestoreOptions(skip_create=True, meta_only=True), exists)
    assert [c.create for c in skip.collections] == [False]
    assert capability_problems(skip, info, "v2.4.10") == []


def test_storage_v2_segments_and_l0_deletes_need_their_lines() -> None:
    s = schema("c", pk_field(), vector_field())
    info = backup(
        collection(
            "c",
            partition(P, segment(1, P, 10, storage_version=2)),
            schema=s,
            l0_segments=(segment(9, -1, 3, l0=True, storage_version=2),),
        )
    )
    problems = capability_problems(_plan(info), info, "v2.3.5")
    assert [p.split(": ")[1] for p in problems] == ["its L0 delete segments", "its storage v2 segments"]
    assert capability_problems(_plan(info), info, "v2.5.8") == [
        "default.c: its storage v2 segments: Milvus v2.5.8 has no storage v2 segments (column groups, "
        "storage_version=2) (Milvus 2.6.0 or newer has); restore into a newer Milvus, or restore with meta_only"
    ]
    assert capability_problems(_plan(info), info, "v2.6.0") == []


def test_milvus_lite_refuses_data_and_takes_meta_only() -> None:
    info = _one(field(101, "sp", DataType.SPARSE_FLOAT_VECTOR))
    [problem] = capability_problems(_plan(info), info, "milvus_lite-3.2.2")
    assert problem.startswith("default.c: its data: Milvus Lite (milvus_lite-3.2.2) has no bulk import")
    assert problem.endswith("; restore with meta_only")
    assert capability_problems(_plan(info, meta_only=True), info, "milvus_lite-3.2.2") == []


# -- wired into the restore: refused before anything changes ------------------------------------------


def test_a_storage_v2_backup_is_refused_by_a_2_5_target_before_any_change() -> None:
    source = InMemoryMilvus("2.6.11")
    populate(source)
    bk = client(source)
    bk.create_backup("v2", "c")
    target = InMemoryMilvus("2.5.3")
    with pytest.raises(RestorePlanError, match=r"storage v2 segments .*Milvus 2\.6\.0 or newer has"):
        client(target, bk.backup_storage).restore("v2", method="import")
    assert target.list_collections(DB) == [] and target.import_tasks == {}
    # the schema alone goes in
    client(target, bk.backup_storage).restore("v2", meta_only=True)
    assert target.list_collections(DB) == ["c"]


_DOC_ROWS = {
    "bulk import of backed-up binlogs (`backup=true`)": [Capability.BINLOG_IMPORT],
    "several segments in one import job (ImportV2)": [Capability.MULTI_SEGMENT_IMPORT],
    "import of L0 delete segments (`l0_import=true`)": [Capability.L0_IMPORT],
    "several L0 segments in one import job": [Capability.MULTI_L0_IMPORT],
    "storage v2 segments (`storage_version=2`)": [Capability.STORAGE_V2],
    "bulk import of Float16Vector / BFloat16Vector / SparseFloatVector binlogs": [
        Capability.FLOAT16_VECTOR,
        Capability.BFLOAT16_VECTOR,
        Capability.SPARSE_VECTOR,
    ],
    "bulk import of Int8Vector binlogs": [Capability.INT8_VECTOR],
    "default values on scalar fields": [Capability.DEFAULT_VALUE],
    "nullable fields": [Capability.NULLABLE],
    "schema functions (BM25) and analyzers": [Capability.FUNCTIONS],
    "fields added after creation (`AddCollectionField`)": [Capability.ADD_FIELD],
    "struct array fields": [Capability.STRUCT_ARRAY],
    "cluster-wide GC pause (management API)": [Capability.GC_PAUSE],
    "per-collection GC pause": [Capability.COLLECTION_GC_PAUSE],
    "exact per-segment binlog lists over REST": [Capability.SEGMENT_DESCRIBE_REST],
    "`DescribeDatabase`": [Capability.DESCRIBE_DATABASE],
    "`BackupRBAC` / `RestoreRBAC`": [Capability.RBAC_META_API],
    "privilege groups": [Capability.PRIVILEGE_GROUPS],
    "`FlushAll`": [Capability.FLUSH_ALL],
}


def test_the_table_in_format_md_is_the_code_s() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    section = text.split("## What each Milvus version can take", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in _DOC_ROWS:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(_DOC_ROWS)
    assert {c for caps in _DOC_ROWS.values() for c in caps} == set(Capability)
    for label, caps in _DOC_ROWS.items():
        for cap in caps:
            assert rows[label] == [VERSION_LINES[line][cap] for line in VERSION_LINES], label
