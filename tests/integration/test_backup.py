"""Backups of a real Milvus 2.3.5 (the embedded server), checked against the cluster's own files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from dataset import Matrix, client, make_client

from milvus_backup_lib import (
    BackupClient,
    BackupExistsError,
    BackupNotFoundError,
    BackupStrategy,
    CollectionNotFoundError,
    DatabaseNotFoundError,
    InconsistentSegmentError,
    InvalidNameError,
    MilvusConnection,
    MilvusConnectionError,
    StorageLocation,
    StorageRootNotFoundError,
)
from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.manifest.model import CollectionBackupInfo, DatabaseBackupInfo, DataType, FieldSchema
from milvus_backup_lib.milvus.grpc import GrpcMilvus

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def full_backup(
    milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BackupClient, Any]:
    root = tmp_path_factory.mktemp("backups")
    bc = make_client(milvus_server, root)
    report = bc.create_backup("matrix", collections=matrix.qualified())
    return bc, report


def _coll(info: Any, qualified: str) -> CollectionBackupInfo:
    db, _, name = qualified.partition(".")
    coll: CollectionBackupInfo = info.collection(db, name)
    return coll


def test_backup_holds_every_selected_collection(full_backup: Any, matrix: Matrix) -> None:
    _, report = full_backup
    assert sorted(report.collections) == sorted(matrix.qualified())
    for qualified, rows in matrix.rows.items():
        assert _coll(report.info, qualified).num_rows == rows, qualified
    assert report.files > 0 and report.bytes_copied == report.info.size


def test_every_binlog_copied_byte_for_byte(full_backup: Any, milvus_server: Any, matrix: Matrix) -> None:
    """Every insert/delta file of every backed-up segment is at its v0.5 path with the same bytes."""
    bc, report = full_backup
    data = Path(milvus_server.data_dir)
    root = Path(bc.backup_storage.root) / "matrix"
    checked = 0
    for coll in report.info.collection_backups:
        backed_up = {s.segment_id for p in coll.partition_backups for s in p.segment_backups}
        # The segments Milvus lists as flushed are exactly the ones backed up.
        c = client(milvus_server.uri, coll.db_name)
        flushed = {
            s.segment_id
            for s in c.list_persistent_segments(coll.collection_name)
            if str(s.state).endswith("Flushed")
        }
        c.close()
        assert backed_up == flushed, coll.qualified_name
        for part in coll.partition_backups:
            for seg in part.segment_backups:
                base = f"{coll.collection_id}/{part.partition_id}/{seg.segment_id}"
                src_ins = sorted((data / "insert_log" / base).rglob("*"))
                src_files = [p for p in src_ins if p.is_file()]
                assert src_files, f"segment {seg.segment_id} has no insert logs in Milvus storage"
                for src in src_files:
                    field, log = src.parent.name, src.name
                    dst = root / f"binlogs/insert_log/{base}/{seg.segment_id}/{field}/{log}"
                    assert dst.read_bytes() == src.read_bytes(), dst
                    checked += 1
                for src in [p for p in (data / "delta_log" / base).glob("*") if p.is_file()]:
                    dst = root / f"binlogs/delta_log/{base}/{seg.segment_id}/{src.name}"
                    assert dst.read_bytes() == src.read_bytes(), dst
                    checked += 1
                # Sizes recorded equal the bytes on disk.
                for fb in seg.binlogs:
                    for b in fb.binlogs:
                        p = root / f"binlogs/insert_log/{base}/{seg.segment_id}/{fb.field_id}/{b.log_id}"
                        assert p.stat().st_size == b.log_size
    stored = [p for p in (root / "binlogs").rglob("*") if p.is_file()]
    assert checked == len(stored) == report.files  # nothing more, nothing less (no stats logs)


def test_deletes_after_flush_are_backed_up_as_delta_logs(full_backup: Any, matrix: Matrix) -> None:
    _, report = full_backup
    for name in (f"{matrix.db_a}.full", f"{matrix.db_a}.vkey"):
        coll = _coll(report.info, name)
        deltas = [
            b
            for p in coll.partition_backups
            for s in p.segment_backups
            for fb in s.deltalogs
            for b in fb.binlogs
        ]
        assert deltas, name
        assert all(b.log_size > 0 for b in deltas)


def test_schema_and_metadata_match_the_cluster(full_backup: Any, milvus_server: Any, matrix: Matrix) -> None:
    _, report = full_backup
    for qualified in matrix.qualified():
        db, _, name = qualified.partition(".")
        c = client(milvus_server.uri, db)
        desc = c.describe_collection(name)
        parts = c.list_partitions(name)
        coll = _coll(report.info, qualified)
        fields = {f.name: f for f in coll.schema.fields}
        assert [f.name for f in coll.schema.fields] == [f["name"] for f in desc["fields"]]
        for f in desc["fields"]:
            got = fields[f["name"]]
            assert got.field_id == f["field_id"]
            assert got.data_type == int(f["type"])
            assert got.is_primary_key == bool(f.get("is_primary"))
            assert got.is_partition_key == bool(f.get("is_partition_key"))
            for key, value in f.get("params", {}).items():
                assert got.type_param(key) == str(value), (qualified, f["name"], key)
            if "element_type" in f:
                assert got.element_type == int(f["element_type"])
        assert coll.schema.primary_field.auto_id == desc["auto_id"]
        assert coll.schema.enable_dynamic_field == desc["enable_dynamic_field"]
        assert coll.shards_num == desc["num_shards"]
        assert coll.consistency_level == desc["consistency_level"]
        assert {kv.key: kv.value for kv in coll.properties} == desc["properties"]
        assert [p.partition_name for p in coll.partition_backups] == parts
        assert sorted(coll.aliases) == sorted(desc["aliases"])
        indexes = {i.index_name: i for i in coll.index_infos}
        assert sorted(indexes) == sorted(c.list_indexes(name))
        for idx_name, idx in indexes.items():
            d = c.describe_index(name, idx_name)
            assert idx.field_name == d["field_name"] and idx.index_type == d["index_type"]
            assert idx.params.get("metric_type") == d.get("metric_type")
        assert coll.has_index == bool(indexes)
        c.close()

    full = _coll(report.info, f"{matrix.db_a}.full")
    score = next(f for f in full.schema.fields if f.name == "score")
    assert score.default_value_base64  # the 0.5 default survives as the ValueField protobuf
    assert full.property("collection.ttl.seconds") == "86400"
    assert full.index_infos and {i.index_type for i in full.index_infos} == {"HNSW", "Trie"}
    hnsw = next(i for i in full.index_infos if i.index_type == "HNSW")
    assert hnsw.params["M"] == "8" and hnsw.params["efConstruction"] == "64"
    assert (
        len(full.partition_backups) == 4 and sum(len(p.segment_backups) for p in full.partition_backups) >= 5
    )
    assert full.backup_timestamp > 0 and full.backup_physical_timestamp > 0
    pkey = _coll(report.info, f"{matrix.db_a}.pkey")
    assert pkey.schema.partition_key_field is not None and pkey.num_partitions == 4
    assert pkey.load_state == "Loaded" and all(p.load_state == "Loaded" for p in pkey.partition_backups)
    half = _coll(report.info, f"{matrix.db_a}.half")
    assert DataType.FLOAT16_VECTOR in {f.data_type for f in half.schema.fields} and half.num_rows == 100
    vkey = _coll(report.info, f"{matrix.db_a}.vkey")
    assert vkey.schema.primary_field.data_type == DataType.VARCHAR
    assert DataType.BINARY_VECTOR in {f.data_type for f in vkey.schema.fields}
    empty = _coll(report.info, f"{matrix.db_a}.empty")
    assert empty.num_rows == 0 and empty.size == 0
    for seg in (s for p in full.partition_backups for s in p.segment_backups):
        assert seg.group_id == seg.segment_id
    # 2.3.5 has no DescribeDatabase (UNIMPLEMENTED) and no struct array fields: names only, none recorded
    assert {d.db_name for d in report.info.database_backups} == {
        q.partition(".")[0] for q in matrix.qualified()
    }
    assert all(d == DatabaseBackupInfo(db_name=d.db_name) for d in report.info.database_backups)
    assert all(c.schema.struct_array_fields == () for c in report.info.collection_backups)


def test_a_2_3_server_has_no_database_description_and_cannot_add_fields(
    milvus_server: Any, matrix: Matrix
) -> None:
    with GrpcMilvus(MilvusConnection(uri=milvus_server.uri)) as milvus:
        assert milvus.describe_database(matrix.db_a) == DatabaseBackupInfo(db_name=matrix.db_a)
        late = FieldSchema(name="late", data_type=DataType.INT64, nullable=True)
        with pytest.raises(MilvusOperationError, match=r"late.*needs Milvus 2\.6 or newer"):
            milvus.add_collection_field(matrix.db_a, "full", late)
        assert "late" not in {f.name for f in milvus.describe_collection(matrix.db_a, "full").schema.fields}


def test_manifest_read_back_equals_written(full_backup: Any) -> None:
    bc, report = full_backup
    assert bc.get_backup("matrix") == report.info
    summary = {s.name: s for s in bc.list_backups()}["matrix"]
    assert summary.collection_count == 7 and summary.size == report.info.size
    assert summary.milvus_version.startswith("v2.3.5") and summary.created_at is not None


# The upstream field lists (reference section 2.3), typed in by hand so that a model typo fails here.
UPSTREAM = {
    "BackupInfo": {
        "id",
        "state_code",
        "name",
        "backup_timestamp",
        "collection_backups",
        "size",
        "milvus_version",
        "rbac_meta",
        "rpc_channel_info",
        "database_backups",
        "flush_all_msgs_base64",
        "control_channel_name",
        "physical_channel_names",
        "format",
    },
    "CollectionBackupInfo": {
        "id",
        "collection_id",
        "db_name",
        "collection_name",
        "schema",
        "shards_num",
        "consistency_level",
        "partition_backups",
        "backup_timestamp",
        "size",
        "has_index",
        "index_infos",
        "load_state",
        "backup_physical_timestamp",
        "channel_checkpoints",
        "l0_segments",
        "properties",
        "db_id",
        "created_timestamp",
        "virtual_channel_names",
        "physical_channel_names",
        "aliases",
        "snapshot_backup",
    },
    "PartitionBackupInfo": {
        "partition_id",
        "partition_name",
        "collection_id",
        "segment_backups",
        "size",
        "load_state",
    },
    "SegmentBackupInfo": {
        "segment_id",
        "collection_id",
        "partition_id",
        "num_of_rows",
        "binlogs",
        "statslogs",
        "deltalogs",
        "size",
        "group_id",
        "backuped",
        "is_l0",
        "v_channel",
        "storage_version",
    },
    "FieldBinlog": {"fieldID", "binlogs"},
    "Binlog": {"entries_num", "timestamp_from", "timestamp_to", "log_path", "log_size", "log_id"},
    "IndexInfo": {
        "field_name",
        "index_name",
        "index_type",
        "params",
        "index_id",
        "field_id",
        "create_time",
        "type_params",
        "index_params",
        "user_index_params",
        "is_auto_index",
        "min_index_version",
        "max_index_version",
    },
    "CollectionSchema": {
        "name",
        "description",
        "autoID",
        "fields",
        "enable_dynamic_field",
        "properties",
        "functions",
        "struct_array_fields",
    },
    "FieldSchema": {
        "fieldID",
        "name",
        "is_primary_key",
        "description",
        "data_type",
        "type_params",
        "index_params",
        "autoID",
        "state",
        "element_type",
        "default_value",
        "is_dynamic",
        "is_partition_key",
        "nullable",
        "default_value_proto",
        "is_function_output",
        "default_value_base64",
    },
    "KeyValuePair": {"key", "value"},
    "DatabaseBackupInfo": {"db_name", "db_id", "properties", "ezk"},
}
_CHILDREN = {
    ("BackupInfo", "collection_backups"): "CollectionBackupInfo",
    ("BackupInfo", "database_backups"): "DatabaseBackupInfo",
    ("CollectionBackupInfo", "schema"): "CollectionSchema",
    ("CollectionBackupInfo", "partition_backups"): "PartitionBackupInfo",
    ("CollectionBackupInfo", "index_infos"): "IndexInfo",
    ("CollectionBackupInfo", "l0_segments"): "SegmentBackupInfo",
    ("CollectionBackupInfo", "properties"): "KeyValuePair",
    ("PartitionBackupInfo", "segment_backups"): "SegmentBackupInfo",
    ("SegmentBackupInfo", "binlogs"): "FieldBinlog",
    ("SegmentBackupInfo", "deltalogs"): "FieldBinlog",
    ("SegmentBackupInfo", "statslogs"): "FieldBinlog",
    ("FieldBinlog", "binlogs"): "Binlog",
    ("CollectionSchema", "fields"): "FieldSchema",
    ("CollectionSchema", "properties"): "KeyValuePair",
    ("FieldSchema", "type_params"): "KeyValuePair",
    ("FieldSchema", "index_params"): "KeyValuePair",
    ("DatabaseBackupInfo", "properties"): "KeyValuePair",
}


def _check_keys(obj: dict[str, Any], kind: str, where: str) -> int:
    unknown = set(obj) - UPSTREAM[kind]
    assert not unknown, f"{where}: keys {unknown} are not in upstream {kind}"
    n = 1
    for key, value in obj.items():
        child = _CHILDREN.get((kind, key))
        if child is None:
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            n += _check_keys(item, child, f"{where}.{key}[{i}]")
    return n


def test_json_files_use_only_upstream_keys(full_backup: Any) -> None:
    bc, _ = full_backup
    meta = Path(bc.backup_storage.root) / "matrix" / "meta"
    full = json.loads((meta / "full_meta.json").read_bytes())
    assert _check_keys(full, "BackupInfo", "full_meta") > 50
    _check_keys(json.loads((meta / "backup_meta.json").read_bytes()), "BackupInfo", "backup_meta")
    for file, kind in (
        ("collection_meta.json", "CollectionBackupInfo"),
        ("partition_meta.json", "PartitionBackupInfo"),
        ("segment_meta.json", "SegmentBackupInfo"),
    ):
        level = json.loads((meta / file).read_bytes())
        assert set(level) == {"infos"}
        for i, item in enumerate(level["infos"]):
            _check_keys(item, kind, f"{file}[{i}]")
    backup_meta = json.loads((meta / "backup_meta.json").read_bytes())
    assert backup_meta["state_code"] == 0 and "collection_backups" not in backup_meta
    # Our own record lives in a separate file and says GC was not paused on 2.3.5.
    own = json.loads((meta / "milvus_backup_lib.json").read_bytes())
    assert own["gc_paused"] is False and "404" in own["gc_note"]
    assert sum(own["files"].values()) == full["size"]


def test_backup_meta_json_is_written_last(full_backup: Any) -> None:
    bc, _ = full_backup
    meta = Path(bc.backup_storage.root) / "matrix" / "meta"
    mtimes = {p.name: p.stat().st_mtime_ns for p in meta.iterdir()}
    newest_binlog = max(p.stat().st_mtime_ns for p in (meta.parent / "binlogs").rglob("*") if p.is_file())
    assert all(t >= newest_binlog for t in mtimes.values())
    assert mtimes["backup_meta.json"] == max(mtimes.values())


# -- filters and strategies -----------------------------------------------------------------------


def test_filters(milvus_server: Any, matrix: Matrix, tmp_path: Path) -> None:
    bc = make_client(milvus_server, tmp_path)
    r1 = bc.create_backup("one", collections=[f"{matrix.db_a}.vkey"], strategy="skip_flush")
    assert r1.collections == (f"{matrix.db_a}.vkey",)
    r2 = bc.create_backup("plain", collections=[matrix.default_coll], strategy="skip_flush")
    assert r2.collections == (f"default.{matrix.default_coll}",)
    r3 = bc.create_backup("whole_db", collections=[f"{matrix.db_a}.*"], strategy="meta_only")
    assert sorted(r3.collections) == sorted(
        f"{matrix.db_a}.{c}" for c in ("full", "vkey", "pkey", "half", "empty")
    )
    r4 = bc.create_backup("csv", collections=f"{matrix.db_b}.*,{matrix.db_a}.empty", strategy="meta_only")
    assert sorted(r4.collections) == sorted([f"{matrix.db_b}.other", f"{matrix.db_a}.empty"])
    r5 = bc.create_backup("everything", collections=None, strategy="meta_only")
    assert set(r5.collections) >= set(matrix.qualified())
    assert [s.name for s in bc.list_backups()] == ["csv", "everything", "one", "plain", "whole_db"]


def test_strategies(milvus_server: Any, unique_name: str, tmp_path: Path) -> None:
    from pymilvus import DataType as DT
    from pymilvus import MilvusClient

    c = client(milvus_server.uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DT.INT64, is_primary=True)
    schema.add_field("v", DT.FLOAT_VECTOR, dim=4)
    c.create_collection(unique_name, schema=schema)
    try:
        c.insert(unique_name, [{"id": i, "v": [0.1, 0.2, 0.3, 0.4]} for i in range(100)])
        c.flush(unique_name)
        c.insert(unique_name, [{"id": 1000 + i, "v": [0.1, 0.2, 0.3, 0.4]} for i in range(30)])  # not flushed
        bc = make_client(milvus_server, tmp_path)

        skip = bc.create_backup("skip", collections=[unique_name], strategy=BackupStrategy.SKIP_FLUSH)
        assert skip.info.collection_backups[0].num_rows == 100  # growing rows are not captured
        assert skip.info.collection_backups[0].backup_timestamp == 0

        meta = bc.create_backup("meta", collections=[unique_name], strategy="meta_only")
        cb = meta.info.collection_backups[0]
        assert cb.num_rows == 0 and cb.size == 0 and meta.files == 0
        assert [f.name for f in cb.schema.fields] == ["id", "v"]
        assert not (tmp_path / "meta" / "binlogs").exists()

        serial = bc.create_backup("serial", collections=[unique_name])  # default: serial_flush
        assert serial.strategy is BackupStrategy.SERIAL_FLUSH
        assert serial.info.collection_backups[0].num_rows == 130  # the flush sealed the growing rows
        assert serial.info.collection_backups[0].backup_timestamp > 0
    finally:
        c.drop_collection(unique_name)
        c.close()


def test_get_list_delete(milvus_server: Any, matrix: Matrix, tmp_path: Path) -> None:
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("keep", collections=[f"{matrix.db_b}.other"])
    bc.create_backup("drop", collections=[f"{matrix.db_b}.other"])
    assert [s.name for s in bc.list_backups()] == ["drop", "keep"]
    info = bc.get_backup("drop")
    assert info.name == "drop" and info.collection_backups[0].collection_name == "other"
    bc.delete_backup("drop")
    assert [s.name for s in bc.list_backups()] == ["keep"]
    assert not (tmp_path / "drop").exists()
    with pytest.raises(BackupNotFoundError, match="drop"):
        bc.get_backup("drop")
    with pytest.raises(BackupNotFoundError, match="drop"):
        bc.delete_backup("drop")
    assert bc.get_backup("keep").collection_backups[0].num_rows == 120


def test_default_name(milvus_server: Any, matrix: Matrix, tmp_path: Path) -> None:
    bc = make_client(milvus_server, tmp_path)
    report = bc.create_backup(collections=[f"{matrix.db_b}.other"], strategy="meta_only")
    import re

    assert re.fullmatch(r"backup_\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d_\d+", report.name)
    assert [s.name for s in bc.list_backups()] == [report.name]


# -- errors: each one distinct, named, and nothing in the backup root touched ----------------------


def _snapshot_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_errors_leave_the_backup_root_untouched(milvus_server: Any, matrix: Matrix, tmp_path: Path) -> None:
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("existing", collections=[f"{matrix.db_b}.other"])
    before = _snapshot_tree(tmp_path)

    with pytest.raises(BackupExistsError, match="existing"):
        bc.create_backup("existing", collections=[f"{matrix.db_b}.other"])
    with pytest.raises(CollectionNotFoundError, match=rf"{matrix.db_a}\.nope"):
        bc.create_backup("b_unknown_coll", collections=[f"{matrix.db_a}.nope"])
    with pytest.raises(DatabaseNotFoundError, match="no_such_db"):
        bc.create_backup("b_unknown_db", collections=["no_such_db.*"])
    with pytest.raises(DatabaseNotFoundError, match="no_such_db"):
        bc.create_backup("b_unknown_db2", collections=["no_such_db.c1"])
    for bad in ("1abc", "has-dash", "", "x" * 129, "a.b", "../up"):
        with pytest.raises(InvalidNameError):
            bc.create_backup(bad, collections=[f"{matrix.db_b}.other"])

    unreachable = BackupClient(
        milvus=MilvusConnection(uri="http://127.0.0.1:1", timeout=3),
        milvus_storage=StorageLocation(milvus_server.storage_url),
        backup_storage=StorageLocation(f"file://{tmp_path}"),
    )
    with pytest.raises(MilvusConnectionError, match="127.0.0.1:1"):
        unreachable.create_backup("b_unreachable")

    missing_root = make_client(milvus_server, tmp_path / "does" / "not" / "exist")
    with pytest.raises(StorageRootNotFoundError, match="does/not/exist"):
        missing_root.create_backup("b_missing_root", collections=[f"{matrix.db_b}.other"])
    assert not (tmp_path / "does").exists()

    assert _snapshot_tree(tmp_path) == before
    assert [s.name for s in bc.list_backups()] == ["existing"]


def test_orphan_binlog_fails_naming_the_segment(milvus_server: Any, unique_name: str, tmp_path: Path) -> None:
    """A field with an extra binlog file (as a retried flush leaves behind) must stop the backup."""
    from pymilvus import DataType as DT
    from pymilvus import MilvusClient

    c = client(milvus_server.uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DT.INT64, is_primary=True)
    schema.add_field("v", DT.FLOAT_VECTOR, dim=4)
    c.create_collection(unique_name, schema=schema)
    orphan: Path | None = None
    try:
        c.insert(unique_name, [{"id": i, "v": [0.5] * 4} for i in range(10)])
        c.flush(unique_name)
        seg = c.list_persistent_segments(unique_name)[0]
        field_dir = next((Path(milvus_server.data_dir) / "insert_log").glob(f"*/*/{seg.segment_id}/101"))
        orphan = field_dir / "999999999999"
        orphan.write_bytes(next(field_dir.iterdir()).read_bytes())
        bc = make_client(milvus_server, tmp_path)
        with pytest.raises(InconsistentSegmentError, match=str(seg.segment_id)) as err:
            bc.create_backup("orphans", collections=[unique_name], strategy="skip_flush")
        assert "different numbers of binlog files" in str(err.value)
        assert bc.list_backups() == [] and not any(tmp_path.iterdir())
    finally:
        if orphan is not None and orphan.exists():
            os.remove(orphan)
        c.drop_collection(unique_name)
        c.close()


def test_gc_pause_auto_by_default_true_fails_closed_false_never_tries(
    milvus_server: Any, matrix: Matrix, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """2.3.5 answers 404 to the GC endpoints; a management port that does not answer may hide a server
    with GC control: the default ("auto") warns, records it and goes on; True fails; False never tries."""
    from milvus_backup_lib import GcPauseError

    selection = [f"{matrix.db_b}.other"]

    def with_gc(management_url: str, **kwargs: Any) -> BackupClient:
        return BackupClient(
            milvus=MilvusConnection(uri=milvus_server.uri, management_url=management_url),
            milvus_storage=StorageLocation(milvus_server.storage_url),
            backup_storage=StorageLocation(f"file://{tmp_path}"),
            **kwargs,
        )

    def own(name: str) -> Any:
        return json.loads((tmp_path / name / "meta" / "milvus_backup_lib.json").read_bytes())

    # The real server's management port, which has no GC control on 2.3.5: the default goes on.
    with caplog.at_level("WARNING", logger="milvus_backup_lib.milvus.gc"):
        report = with_gc(milvus_server.management_url).create_backup("gc_default", collections=selection)
    assert not report.gc.paused and "HTTP 404" in report.gc.note
    assert any("GC not paused" in r.getMessage() and "404" in r.getMessage() for r in caplog.records)
    assert own("gc_default")["gc_paused"] is False and "HTTP 404" in own("gc_default")["gc_note"]
    assert with_gc(milvus_server.management_url).verify_backup("gc_default", level="checksum").ok

    # A management port that does not answer (only 19530 forwarded): "auto" records it and goes on...
    unreachable = "http://127.0.0.1:1"
    report = with_gc(unreachable).create_backup("gc_unreachable", collections=selection)
    assert not report.gc.paused and "127.0.0.1:1 did not answer" in report.gc.note
    assert own("gc_unreachable")["gc_paused"] is False
    assert "did not answer" in own("gc_unreachable")["gc_note"]

    # ...True fails closed, writing nothing...
    with pytest.raises(GcPauseError, match=r"127\.0\.0\.1:1 did not answer.*pause_gc=\"auto\""):
        with_gc(unreachable, pause_gc=True).create_backup("gc_required", collections=selection)
    assert not (tmp_path / "gc_required").exists()

    # ...and False never tries.
    report = with_gc(unreachable, pause_gc=False).create_backup("gc_opt_out", collections=selection)
    assert not report.gc.paused and report.gc.note == "not requested (pause_gc=False)"
    assert own("gc_opt_out")["gc_paused"] is False and own("gc_opt_out")["gc_note"] == report.gc.note
    names = [b.name for b in with_gc(unreachable).list_backups()]
    assert sorted(names) == ["gc_default", "gc_opt_out", "gc_unreachable"]


def test_without_the_segment_describe_api_the_storage_listing_is_used(
    milvus_server: Any, matrix: Matrix, tmp_path: Path
) -> None:
    """Milvus 2.3.5 has no ``/v2/vectordb/segments/describe`` (2.5.8+): it answers 404 and the backup
    lists each segment's files in the storage instead, as before."""
    from milvus_backup_lib.milvus.grpc import open_milvus

    db = matrix.db_b
    with open_milvus(MilvusConnection(uri=milvus_server.uri)) as milvus:
        coll_id = milvus.describe_collection(db, matrix.other).collection_id
        flushed = [s.segment_id for s in milvus.persistent_segments(db, matrix.other) if s.flushed]
        assert flushed
        assert milvus.segment_binlogs(db, coll_id, flushed) is None
        assert milvus._rest.absent  # the answer was "no such API", not a passing fault

    report = make_client(milvus_server, tmp_path).create_backup(
        "listed", collections=[f"{db}.{matrix.other}"]
    )
    coll = report.info.collection_backups[0]
    segments = [s for p in coll.partition_backups for s in p.segment_backups]
    assert {s.segment_id for s in segments} == set(flushed)
    assert all(s.binlogs and {0, 1} <= {fb.field_id for fb in s.binlogs} for s in segments)
    assert coll.num_rows == matrix.rows[f"{db}.{matrix.other}"]
