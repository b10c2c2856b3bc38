"""Channel checkpoints come from the Flush response (``channel_cps``), as milvus-backup records them:
``channel_checkpoints = {vchannel: base64(MsgPosition)}`` and ``backup_timestamp`` = the largest
checkpoint timestamp; without any (the real 2.3.5 server sends none) the flush timestamp."""

from __future__ import annotations

import base64
from typing import Any

from memory_data import DB, client, rows, schema
from pymilvus.grpc_gen import milvus_pb2, msg_pb2, schema_pb2

from milvus_backup_lib.manifest.model import CollectionBackupInfo
from milvus_backup_lib.milvus import convert
from milvus_backup_lib.milvus.records import ChannelCheckpoint, FlushResult, flush_poll_pause
from milvus_backup_lib.testing.memory import InMemoryMilvus


class RecordingMilvus(InMemoryMilvus):
    """Remembers what each flush answered; ``report_checkpoints`` False makes wait_flushed return none."""

    def __init__(self, version: str, *, report_checkpoints: bool = True) -> None:
        super().__init__(version)
        self.flushes: list[FlushResult] = []
        self.report_checkpoints = report_checkpoints

        self.calls: list[tuple[str, str]] = []

    def flush(self, db: str, name: str) -> FlushResult:
        result = super().flush(db, name)
        self.flushes.append(result)
        self.calls.append(("flush", name))
        return result

    def wait_flushed(
        self, db: str, name: str, flush: FlushResult, *args: Any, **kwargs: Any
    ) -> list[ChannelCheckpoint]:
        self.calls.append(("wait", name))
        assert (
            flush in self.flushes and flush.segment_ids == self.flushes[self.flushes.index(flush)].segment_ids
        )
        found = super().wait_flushed(db, name, flush, *args, **kwargs)
        return found if self.report_checkpoints else []


def _backup(cluster: RecordingMilvus) -> CollectionBackupInfo:
    cluster.create_collection(DB, "c", schema(), shards_num=3)
    cluster.insert(DB, "c", rows(range(0, 20)))
    bk = client(cluster)
    bk.create_backup("cp", "c")
    coll: CollectionBackupInfo = bk.get_backup("cp").collection(DB, "c")
    return coll


def test_backup_records_the_flush_responses_checkpoints_and_their_largest_timestamp() -> None:
    cluster = RecordingMilvus("2.5.3")
    coll = _backup(cluster)
    flush = cluster.flushes[-1]
    assert len(flush.channel_checkpoints) == 3
    assert coll.channel_checkpoints == {
        cp.channel: base64.b64encode(cp.position).decode() for cp in flush.channel_checkpoints
    }
    assert set(coll.channel_checkpoints) == set(coll.virtual_channel_names)
    assert coll.backup_timestamp == max(cp.timestamp for cp in flush.channel_checkpoints)
    # not what wait_flushed reports (positions at the flush timestamp): the flush's own checkpoints
    assert coll.backup_timestamp != flush.flush_ts
    for channel, encoded in coll.channel_checkpoints.items():
        position = msg_pb2.MsgPosition.FromString(base64.b64decode(encoded))
        assert position.channel_name == channel and 0 < position.timestamp <= coll.backup_timestamp


def test_without_flush_checkpoints_those_of_wait_flushed_are_used() -> None:
    cluster = RecordingMilvus("2.3.5")  # the 2.3 line's Flush sends no channel_cps, as the real 2.3.5
    coll = _backup(cluster)
    flush = cluster.flushes[-1]
    assert flush.channel_checkpoints == ()
    assert len(coll.channel_checkpoints) == 3
    assert coll.backup_timestamp == flush.flush_ts


def test_without_any_checkpoint_the_flush_timestamp_is_the_backup_timestamp() -> None:
    cluster = RecordingMilvus("2.3.5", report_checkpoints=False)
    coll = _backup(cluster)
    assert coll.channel_checkpoints == {}
    assert coll.backup_timestamp == cluster.flushes[-1].flush_ts > 0


def test_flush_response_conversion_keeps_the_serialized_positions() -> None:
    positions = {
        "by-dev-rootcoord-dml_1_9v1": msg_pb2.MsgPosition(
            channel_name="by-dev-rootcoord-dml_1_9v1", msgID=b"\x01\x02", timestamp=470886339494805509
        ),
        "by-dev-rootcoord-dml_0_9v0": msg_pb2.MsgPosition(
            channel_name="by-dev-rootcoord-dml_0_9v0",
            msgID=b"\x03",
            msgGroup="g",
            timestamp=470886339494805000,
        ),
    }
    resp = milvus_pb2.FlushResponse(
        db_name="default",
        coll_segIDs={"c": schema_pb2.LongArray(data=[11, 12])},
        flush_coll_segIDs={"c": schema_pb2.LongArray(data=[10])},
        coll_seal_times={"c": 1796288831},
        coll_flush_ts={"c": 470886339507912706},
        channel_cps=positions,
    )
    result = convert.flush_from_proto(resp, "c")
    assert result.segment_ids == (11, 12) and result.flushed_segment_ids == (10,)
    assert (result.flush_ts, result.seal_time) == (470886339507912706, 1796288831)
    assert [cp.channel for cp in result.channel_checkpoints] == sorted(positions)
    for cp in result.channel_checkpoints:
        assert msg_pb2.MsgPosition.FromString(cp.position) == positions[cp.channel]
        assert cp.timestamp == positions[cp.channel].timestamp


def test_flush_response_without_checkpoints_converts_to_none() -> None:
    # what the real 2.3.5 server answers: no channel_cps at all
    resp = milvus_pb2.FlushResponse(coll_flush_ts={"c": 5}, coll_seal_times={"c": 1})
    result = convert.flush_from_proto(resp, "c")
    assert result == FlushResult((), (), 5, 1) and result.channel_checkpoints == ()
    assert convert.flush_from_proto(resp, "other") == FlushResult((), (), 0, 0)


def test_flush_polls_notice_a_one_tick_flush_soon_and_back_off_to_the_interval() -> None:
    # Simulate the polls' clock: each poll is at the previous plus its pause.
    def first_poll_after(durable_at: float) -> float:
        waited = 0.0
        while waited < durable_at:
            waited += flush_poll_pause(waited, 0.5)
        return waited

    # 2.3.5 makes an empty flush durable one time tick (~0.23 s) after it is asked: seen within 0.03 s.
    assert first_poll_after(0.23) - 0.23 < 0.03
    # Late by at most ~10% (+ the 0.02 s floor) while short, by at most the interval once long.
    for durable_at in (0.5, 1.0, 3.0, 20.0, 120.0):
        late = first_poll_after(durable_at) - durable_at
        assert late <= max(0.02, min(0.5, 0.11 * durable_at)) + 1e-9, (durable_at, late)
    assert flush_poll_pause(0.0, 0.5) == 0.02
    assert flush_poll_pause(1000.0, 0.5) == 0.5


def test_every_collections_flush_is_asked_before_any_is_waited_for() -> None:
    # Each flush is durable one time tick after it is asked: asked together, N collections wait one tick.
    cluster = RecordingMilvus("2.3.5")
    for name in ("a", "b", "c"):
        cluster.create_collection(DB, name, schema(), shards_num=1)
        cluster.insert(DB, name, rows(range(0, 5)))
    bk = client(cluster)
    bk.create_backup("three", ["a", "b", "c"])
    assert cluster.calls == [
        ("flush", "a"),
        ("flush", "b"),
        ("flush", "c"),
        ("wait", "a"),
        ("wait", "b"),
        ("wait", "c"),
    ]
    # each collection waited for its own flush, and is backed up with the segment that flush sealed
    info = bk.get_backup("three")
    for name, flush in zip(("a", "b", "c"), cluster.flushes, strict=True):
        segments = [
            s.segment_id for p in info.collection(DB, name).partition_backups for s in p.segment_backups
        ]
        assert segments == list(flush.segment_ids) and len(segments) == 1
