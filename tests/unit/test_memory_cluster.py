"""InMemoryMilvus itself: the files it writes per version line are what the snapshotter and Milvus's own
readers expect, imports read them back (counting rows, applying deletes), and its quirks are Milvus's."""

from __future__ import annotations

import base64
import io
import json
import struct

import pyarrow.parquet as pq
import pytest
from memory_data import DB, DELETED_EVERYWHERE, DELETED_IN_P1, expected_pks, populate, rows, schema
from pymilvus.grpc_gen import msg_pb2

from milvus_backup_lib.backup.snapshot import ListingSnapshotter
from milvus_backup_lib.binlog import count_binlog_rows
from milvus_backup_lib.errors import CollectionNotFoundError, DatabaseNotFoundError, MilvusOperationError
from milvus_backup_lib.manifest.model import CollectionBackupInfo, CollectionSchema, DataType, FieldSchema
from milvus_backup_lib.options import BackupStrategy, CollectionFilter
from milvus_backup_lib.testing import InMemoryMilvus
from milvus_backup_lib.testing._memory_binlog import delete_log_stream, read_delete_log

# Golden bytes of Milvus's own StorageV1 NewDeltalogWriter (collection/partition/segment 1/2/3, Int64 pks
# 30400 and 30401 at timestamps 200 and 201), in both dataNode.storage.deltalog formats: milvus-io/milvus
# tests/go_client/testcases/snapshot_test.go, TestSnapshotL0FixtureDecoder.
MILVUS_JSON_DELTALOG = base64.b64decode(
    "vPr/AAAArNxJ9IEGAGcAAABrAAAAAQAAAAAAAAACAAAAAAAAAAMAAAAAAAAA//////////8AAAAAAAAAAAAAAAAAAAAAFAAAADQQEBAQ"
    "EBAQFgAAAHsib3JpZ2luYWxfc2l6ZSI6Ijc3In0AAKzcSfSBBgK7AQAA/////wEAAAAAAAAAAQAAAAAAAABQQVIxFQQVkAEVfkwVBBUAEgAA"
    "KLUv/QQAlQEAZAIgAAAAeyJwayI6MzA0MDAsInRzIjoyMDAsInBrVHlwZSI6NX0xMQMQBYfLIS6P/ARhBKfVFQAVEhUsLBUEFRAVBhUGHDYA"
    "FgAYIHsicGsiOjMwNDAxLCJ0cyI6MjAxLCJwa1R5cGUiOjV9GCB7InBrIjozMDQwMCwidHMiOjIwMCwicGtUeXBlIjo1fQAAACi1L/0EAEkA"
    "AAIAAAAEAQEDApUZdAEVBBksNQQYBnNjaGVtYRUCABUMJQIYATAlAEwcAAAAFgQZHBkcJoYDHBUMGTUQAAYZGAEwFQwWBBb2Ahb+AiakASYI"
    "HDYAFgAYIHsicGsiOjMwNDAxLCJ0cyI6MjAxLCJwa1R5cGUiOjV9GCB7InBrIjozMDQwMCwidHMiOjIwMCwicGtUeXBlIjo1fQAZLBUEFQAV"
    "AgAVABUQFQIAAAAW/gIWBCYIFv4CFAAAGQwYGXBhcnF1ZXQtZ28gdmVyc2lvbiAxNy4wLjAZHBwAAADPAAAAUEFSMQ=="
)
MILVUS_MULTI_FIELD_DELTALOG = base64.b64decode(
    "vPr/AAAArNxJ9IEGAH8AAACDAAAAAQAAAAAAAAACAAAAAAAAAAMAAAAAAAAA//////////8AAAAAAAAAAAAAAAAAAAAABQAAADQQEBAQ"
    "EBAQLgAAAHsib3JpZ2luYWxfc2l6ZSI6IjM0IiwidmVyc2lvbiI6Ik1VTFRJX0ZJRUxEIn0AAKzcSfSBBgIZAgAA/////wEAAAAAAAAAAQAA"
    "AAAAAABQQVIxFQQVIBUgTBUEFQASAADAdgAAAAAAAMF2AAAAAAAAFQAVBhUGLBUEFRAVBhUGHBgIwXYAAAAAAAAYCMB2AAAAAAAAFgAWABgI"
    "wXYAAAAAAAAYCMB2AAAAAAAAAAAAAQMCFQQVIBUgTBUEFQASAADIAAAAAAAAAMkAAAAAAAAAFQAVBhUGLBUEFRAVBhUGHBgIyQAAAAAAAAAY"
    "CMgAAAAAAAAAFgAWABgIyQAAAAAAAAAYCMgAAAAAAAAAAAAAAQMCFQQZPDUEGAZzY2hlbWEVBAAVBCUAGAJwayUkTKwTQBEAAAAVBCUAGAJ0"
    "cyUkTKwTQBEAAAAWBBkcGSwmyAEcFQQZNRAABhkYAnBrFQAWBBbAARbAASZEJggcGAjBdgAAAAAAABgIwHYAAAAAAAAWABYAGAjBdgAAAAAA"
    "ABgIwHYAAAAAAAAAGSwVBBUAFQIAFQAVEBUCAAAAJogDHBUEGTUQAAYZGAJ0cxUAFgQWwAEWwAEmhAImyAEcGAjJAAAAAAAAABgIyAAAAAAA"
    "AAAWABYAGAjJAAAAAAAAABgIyAAAAAAAAAAAGSwVBBUAFQIAFQAVEBUCAAAAFoADFgQmCBaAAxQAABkMGBlwYXJxdWV0LWdvIHZlcnNpb24g"
    "MTcuMC4wGSwcAAAcAAAALAEAAFBBUjE="
)
HEADER = struct.Struct("<qbii")


def events(data: bytes) -> list[tuple[int, int, int, int, bytes]]:
    """``(offset, type, length, next_position, body)`` of each event, walked by length (test-side parser)."""
    assert struct.unpack_from("<i", data, 0)[0] == 0xFFFABC
    out, pos = [], 4
    while pos < len(data):
        _, code, length, next_pos = HEADER.unpack_from(data, pos)
        out.append((pos, code, length, next_pos, data[pos + HEADER.size : pos + length]))
        pos += length
    return out


def descriptor(body: bytes) -> tuple[tuple[int, ...], bytes, dict[str, object]]:
    fixed = struct.unpack_from("<qqqqQQi", body, 0)
    post = body[52:60]
    (extra_len,) = struct.unpack_from("<i", body, 60)
    return fixed, post, json.loads(body[64 : 64 + extra_len])


def snapshot(cluster: InMemoryMilvus) -> CollectionBackupInfo:
    snap = ListingSnapshotter(cluster.storage).snapshot(
        cluster, CollectionFilter.parse("c"), BackupStrategy.SERIAL_FLUSH
    )
    return snap.collections[0]


def test_field_ids_are_assigned_as_milvus_does() -> None:
    cluster = InMemoryMilvus()
    cluster.create_collection(DB, "c", schema())
    desc = cluster.describe_collection(DB, "c")
    assert [f.field_id for f in desc.schema.fields] == list(range(100, 112))
    assert not any(f.is_dynamic for f in desc.schema.fields) and desc.schema.enable_dynamic_field
    cluster.insert(DB, "c", rows(range(2)))
    cluster.flush(DB, "c")
    field_dirs = {
        int(p.rsplit("/", 2)[-2]) for p in cluster.storage.list_files(cluster.storage.join("insert_log"))
    }
    assert field_dirs == {0, 1, *range(100, 113)}  # $meta got the next ID, 112
    dynamic = CollectionSchema(
        fields=(*desc.schema.fields, FieldSchema(name="$meta", data_type=DataType.JSON, is_dynamic=True))
    )
    with pytest.raises(MilvusOperationError, match="dynamic field"):
        cluster.create_collection(DB, "d", dynamic)
    with pytest.raises(MilvusOperationError, match="already exists"):
        cluster.create_collection(DB, "c", schema())


def test_v1_segments_are_what_the_snapshotter_lists_and_deletes_land_in_delta_logs_on_2_3() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    coll = snapshot(cluster)
    assert coll.l0_segments == ()
    segments = [s for p in coll.partition_backups for s in p.segment_backups]
    assert not any(s.is_l0 for s in segments) and {s.storage_version for s in segments} == {0}
    for seg in segments:
        assert {fb.field_id for fb in seg.binlogs} == {0, 1, *range(100, 113)}
        assert {len(fb.binlogs) for fb in seg.binlogs} == {1}
    deltas = {
        s.segment_id: sum(
            count_binlog_rows(cluster.storage.read_bytes(cluster.storage.join(b.log_path)))
            for fb in s.deltalogs
            for b in fb.binlogs
        )
        for s in segments
    }
    # the delete that named no partition hit a segment of each partition; the p1 one only p1's
    assert sorted(deltas.values()) == [0, 2, 2]
    assert sum(s.num_of_rows for s in segments) == 25


def test_v1_insert_binlog_envelope_follows_milvus_binlog_writer() -> None:
    for version, extras in (("2.3.5", {"original_size"}), ("2.5.3", {"original_size", "nullable"})):
        cluster = InMemoryMilvus(version)
        cluster.create_collection(DB, "c", schema())
        cluster.insert(DB, "c", rows(range(5)))
        cluster.flush(DB, "c")
        seg = cluster.persistent_segments(DB, "c")[0]
        [path] = cluster.storage.list_files(
            cluster.storage.join(f"insert_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}/101")
        )
        data = cluster.storage.read_bytes(path)
        (d_off, d_type, d_len, d_next, d_body), (e_off, e_type, e_len, e_next, e_body) = events(data)
        fixed, post, extra = descriptor(d_body)
        assert (d_off, d_type, d_next) == (4, 0, 4 + d_len)
        assert fixed[:4] == (seg.collection_id, seg.partition_id, seg.segment_id, 101)
        assert fixed[6] == DataType.FLOAT_VECTOR and fixed[4] <= fixed[5]
        assert post == bytes([52, 16, 16, 16, 16, 16, 16, 16]) and set(extra) == extras
        assert (e_type, e_next) == (1, e_off + e_len)
        table = pq.read_table(io.BytesIO(e_body[16:]))
        assert (
            table.column_names == ["val"] and str(table.schema.field("val").type) == "fixed_size_binary[32]"
        )
        assert table.column(0).to_pylist() == [r["vec"] for r in rows(range(5))]


def test_l0_segments_on_2_4_are_collection_level_and_partition_level() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    coll = snapshot(cluster)
    [collection_level] = coll.l0_segments
    assert (collection_level.partition_id, collection_level.group_id, collection_level.is_l0) == (-1, 0, True)
    [delta] = collection_level.deltalogs[0].binlogs
    assert f"delta_log/{coll.collection_id}/-1/" in delta.log_path
    assert count_binlog_rows(cluster.storage.read_bytes(cluster.storage.join(delta.log_path))) == len(
        DELETED_EVERYWHERE
    )
    p1 = next(p for p in coll.partition_backups if p.partition_name == "p1")
    [partition_level] = [s for s in p1.segment_backups if s.is_l0]
    assert partition_level.binlogs == () and partition_level.num_of_rows == len(DELETED_IN_P1)


def test_storage_v2_segments_are_parquet_column_groups_tagged_with_field_ids() -> None:
    cluster = InMemoryMilvus("2.6.11")
    populate(cluster)
    coll = snapshot(cluster)
    data_seg = next(s for p in coll.partition_backups for s in p.segment_backups if not s.is_l0)
    assert data_seg.storage_version == 2
    groups = {fb.field_id: fb.binlogs[0] for fb in data_seg.binlogs}
    assert set(groups) == {0, 1, 101}
    field_ids = {}
    for group, binlog in groups.items():
        table = pq.read_table(io.BytesIO(cluster.storage.read_bytes(cluster.storage.join(binlog.log_path))))
        field_ids[group] = [int(f.metadata[b"PARQUET:field_id"]) for f in table.schema]
        assert table.num_rows == data_seg.num_of_rows
    assert field_ids == {0: [0, 1, 100], 101: [101], 1: [*range(102, 113)]}
    [delta] = coll.l0_segments[0].deltalogs[0].binlogs
    blob = cluster.storage.read_bytes(cluster.storage.join(delta.log_path))
    assert blob[:4] == b"PAR1" and count_binlog_rows(blob) == len(DELETED_EVERYWHERE)
    assert [int(f.metadata[b"PARQUET:field_id"]) for f in pq.read_table(io.BytesIO(blob)).schema] == [0, 1]


def test_the_stream_delete_log_writer_matches_milvus_golden_bytes() -> None:
    assert read_delete_log(MILVUS_JSON_DELTALOG) == [(30400, 200), (30401, 201)]
    assert read_delete_log(MILVUS_MULTI_FIELD_DELTALOG) == [(30400, 200), (30401, 201)]
    ours = delete_log_stream([(30400, 200), (30401, 201)], DataType.INT64, ids=(1, 2, 3), header_ts=1)
    theirs_events, our_events = events(MILVUS_JSON_DELTALOG), events(ours)
    assert [(e[1], e[3]) for e in our_events] == [(e[1], e[3]) for e in theirs_events] == [(0, 107), (2, -1)]
    assert descriptor(our_events[0][4])[:2] == descriptor(theirs_events[0][4])[:2]
    assert set(descriptor(our_events[0][4])[2]) == {"original_size"}
    assert our_events[1][4][:16] == theirs_events[1][4][:16]  # delete event start/end timestamps: 1, 1
    theirs_table, our_table = (pq.read_table(io.BytesIO(e[1][4][16:])) for e in (theirs_events, our_events))
    assert (
        our_table.column_names == theirs_table.column_names
        and our_table.to_pylist() == theirs_table.to_pylist()
    )


def test_count_binlog_rows_counts_milvus_stream_written_delete_logs() -> None:
    assert count_binlog_rows(MILVUS_JSON_DELTALOG) == 2
    assert count_binlog_rows(MILVUS_MULTI_FIELD_DELTALOG) == 2


def _ids(cluster: InMemoryMilvus, partition: str) -> tuple[int, int]:
    part = next(p for p in cluster.show_partitions(DB, "c") if p.name == partition)
    return cluster.describe_collection(DB, "c").collection_id, part.id


def test_an_import_reads_the_files_back_and_applies_their_deletes() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    cluster.flush(DB, "c")
    cluster.create_collection(DB, "t", schema())
    coll_id, part_id = _ids(cluster, "_default")
    files = [f"insert_log/{coll_id}/{part_id}/", f"delta_log/{coll_id}/{part_id}/"]
    [task] = cluster.start_import(DB, "t", "_default", files, [("backup", "true")])
    state = cluster.import_state(DB, task)
    expected = [r for r in cluster.rows(DB, "c") if r["pk"] < 1000]
    assert (state.state, state.row_count) == ("Completed", len(expected)) and len(state.segment_ids) == 2
    assert cluster.rows(DB, "t") == expected
    # without the delta prefix the deleted rows come back
    cluster.create_collection(DB, "u", schema())
    [task] = cluster.start_import(DB, "u", "_default", files[:1], [("backup", "true")])
    assert cluster.import_state(DB, task).row_count == len(expected) + 2
    assert {3, 4} <= {r["pk"] for r in cluster.rows(DB, "u")}


@pytest.mark.parametrize("files", [[""], ["", ""], ["insert_log/404/"], ["no/such/prefix/", "nor/this/"]])
def test_an_import_of_an_empty_or_wrong_path_completes_with_zero_rows(files: list[str]) -> None:
    cluster = InMemoryMilvus("2.3.5")
    cluster.create_collection(DB, "c", schema())
    [task] = cluster.start_import(DB, "c", "_default", files, [("backup", "true")])
    assert (cluster.import_state(DB, task).state, cluster.import_state(DB, task).row_count) == (
        "Completed",
        0,
    )


def test_storage_v2_files_need_the_storage_version_option() -> None:
    cluster = InMemoryMilvus("2.6.11")
    populate(cluster)
    cluster.create_collection(DB, "t", schema())
    coll_id, part_id = _ids(cluster, "p1")
    cluster.create_partition(DB, "t", "p1")
    files = [f"insert_log/{coll_id}/{part_id}/"]
    [task] = cluster.start_import(DB, "t", "p1", files, [("backup", "true")])
    state = cluster.import_state(DB, task)
    assert (state.state, state.reason) == ("Failed", "no binlog for field:pk")
    [task] = cluster.start_import(DB, "t", "p1", files, [("backup", "true"), ("storage_version", "2")])
    assert cluster.import_state(DB, task).row_count == 10
    assert [r["pk"] for r in cluster.rows(DB, "t")] == list(range(1000, 1010))


def test_l0_imports_apply_their_deletes() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    coll = snapshot(cluster)
    cluster.create_collection(DB, "t", schema())
    cluster.create_partition(DB, "t", "p1")
    for part in coll.partition_backups:
        prefix = f"insert_log/{coll.collection_id}/{part.partition_id}/"
        cluster.start_import(DB, "t", part.partition_name, [prefix], [("backup", "true")])
    assert len(cluster.rows(DB, "t")) == 25  # the L0 deletes are not in the data segments
    l0 = f"delta_log/{coll.collection_id}/-1/{coll.l0_segments[0].segment_id}/"
    [task] = cluster.start_import(DB, "t", "", [l0], [("l0_import", "true")])
    assert cluster.import_state(DB, task).state == "Completed"
    assert {r["pk"] for r in cluster.rows(DB, "t")}.isdisjoint(DELETED_EVERYWHERE)
    assert 1007 in {r["pk"] for r in cluster.rows(DB, "t")}  # the partition-level delete was not imported


def test_import_requests_are_checked_like_milvus() -> None:
    cluster = InMemoryMilvus("2.4.10")
    cluster.create_collection(DB, "c", schema())
    for options, files, reason in (
        ([], ["a/"], "unsupported file type"),
        ([("backup", "true")], ["a/", "b/", "c/"], "too many input paths"),
        ([("l0_import", "true")], ["", "d/"], "there should be one prefix"),
    ):
        [task] = cluster.start_import(DB, "c", "_default", files, options)
        assert (
            cluster.import_state(DB, task).state == "Failed"
            and reason in cluster.import_state(DB, task).reason
        )
    with pytest.raises(MilvusOperationError, match="partition not specified"):
        cluster.start_import(DB, "c", "", ["a/"], [("backup", "true")])
    with pytest.raises(MilvusOperationError, match="partition not found"):
        cluster.start_import(DB, "c", "nope", ["a/"], [("backup", "true")])
    with pytest.raises(CollectionNotFoundError):
        cluster.start_import(DB, "missing", "_default", ["a/"], [("backup", "true")])
    with pytest.raises(DatabaseNotFoundError):
        cluster.list_collections("nodb")
    with pytest.raises(MilvusOperationError, match="not found"):
        cluster.import_state(DB, 12345)


def test_gc_control_and_garbage_collection_per_version() -> None:
    old = InMemoryMilvus("2.3.5")
    answer = old.pause_gc(60)
    assert (answer.paused, answer.supported) == (False, False) and "HTTP 404" in answer.note
    assert old.resume_gc() is False

    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    before = cluster.storage.list_files(cluster.storage.root)
    cluster.compact(DB, "c")
    assert [r["pk"] for r in cluster.rows(DB, "c")] == expected_pks()
    assert cluster.pause_gc(60).paused and cluster.gc_paused
    assert cluster.run_gc() == 0 and set(before) <= set(cluster.storage.list_files(cluster.storage.root))
    assert cluster.resume_gc() and not cluster.gc_paused
    removed = cluster.run_gc()
    after = cluster.storage.list_files(cluster.storage.root)
    assert removed > 0 and len(set(before) - set(after)) == removed
    assert [r["pk"] for r in cluster.rows(DB, "c")] == expected_pks()


def test_load_count_flush_and_checkpoints() -> None:
    cluster = InMemoryMilvus("2.6.11")
    assert cluster.server_version() == "v2.6.11"
    populate(cluster)
    with pytest.raises(MilvusOperationError, match="not loaded"):
        cluster.count_rows(DB, "c")
    with pytest.raises(MilvusOperationError, match="index"):
        cluster.load_collection(DB, "c")
    cluster.create_index(DB, "c", "vec", "vec_idx", [("index_type", "HNSW"), ("metric_type", "L2")])
    cluster.load_collection(DB, "c")
    assert cluster.load_state(DB, "c") == "Loaded" and cluster.count_rows(DB, "c") == len(expected_pks())
    flush = cluster.flush(DB, "c")
    assert flush.segment_ids and flush.flushed_segment_ids
    [checkpoint] = cluster.wait_flushed(DB, "c", flush)
    position = msg_pb2.MsgPosition.FromString(checkpoint.position)
    assert (position.channel_name, position.timestamp) == (checkpoint.channel, flush.flush_ts)
    assert checkpoint.channel in cluster.describe_collection(DB, "c").virtual_channel_names
