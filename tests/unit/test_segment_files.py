"""Which segment files a backup copies: storage v1/v2 layouts, v3 refused, and Milvus's own binlog lists
(2.5.8+, the REST segment-describe API) preferred over the storage listing, orphans left out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from memory_data import DB, client, populate

from milvus_backup_lib import InconsistentSegmentError, UnsupportedSegmentFormatError
from milvus_backup_lib.manifest.model import SegmentBackupInfo
from milvus_backup_lib.milvus.records import SegmentBinlogList
from milvus_backup_lib.testing.memory import InMemoryMilvus


class RecordingMilvus(InMemoryMilvus):
    """An in-memory cluster that records each import request and each segment-describe call."""

    def __init__(self, version: str, **kwargs: Any) -> None:
        super().__init__(version, **kwargs)
        self.describe_calls = 0
        #: False: answer as a server without the segment-describe API (HTTP 404).
        self.describe = True

    def segment_binlogs(
        self, db: str, collection_id: int, segment_ids: Sequence[int]
    ) -> dict[int, SegmentBinlogList] | None:
        self.describe_calls += 1
        if not self.describe:
            return None
        return super().segment_binlogs(db, collection_id, segment_ids)


def _data_segments(info: Any) -> list[SegmentBackupInfo]:
    coll = info.collection_backups[0]
    return [s for p in coll.partition_backups for s in p.segment_backups if not s.is_l0]


def _source_files(cluster: InMemoryMilvus) -> dict[str, bytes]:
    """Every insert/delta file in the cluster's storage, by key relative to its root."""
    storage = cluster.storage
    return {
        storage.relative(path): storage.read_bytes(path)
        for prefix in ("insert_log", "delta_log")
        for path in storage.list_files(storage.join(prefix))
    }


def _backup_files(bk: Any, name: str) -> dict[str, bytes]:
    storage = bk.backup_storage
    base = storage.join(name, "binlogs")
    return {
        storage.relative(path).removeprefix(f"{name}/"): storage.read_bytes(path)
        for path in storage.list_files(base)
    }


def _expected_backup_key(source_key: str) -> str:
    """Where milvus-backup puts a cluster file (``core/backup/coll_dml_task.go`` ``insertLogsAttrs`` and
    ``deltaLogAttrs``, ``internal/storage/mpath/path.go``): the group directory (== segment ID) after the
    partition, except for collection-level L0 delta logs (partition -1)."""
    parts = source_key.split("/")
    kind, coll, part, seg = parts[:4]
    group = "" if part == "-1" else f"{seg}/"
    return f"binlogs/{kind}/{coll}/{part}/{group}{seg}/" + "/".join(parts[4:])


@pytest.mark.parametrize("describes", [True, False], ids=["segment-describe", "listing"])
def test_v2_column_groups_with_several_files_are_backed_up_and_imported(describes: bool) -> None:
    source = RecordingMilvus("2.6.11", rows_per_file=4)
    populate(source)
    source.describe = describes  # without the API the storage listing must find the same files
    bk = client(source)
    info = bk.create_backup("v2").info
    assert source.describe_calls == 1

    segments = _data_segments(info)
    assert segments and {s.storage_version for s in segments} == {2}
    for seg in segments:
        # three column groups (0: system fields and pk; 101: the vector; 1: the other scalars),
        # each split into files of at most 4 rows
        files = -(-seg.num_of_rows // 4)
        assert [fb.field_id for fb in seg.binlogs] == [0, 1, 101]
        assert [len(fb.binlogs) for fb in seg.binlogs] == [files] * 3
    assert max(s.num_of_rows for s in segments) > 4

    # every file of every column group, byte for byte, at milvus-backup's paths
    expected = {_expected_backup_key(k): v for k, v in _source_files(source).items()}
    assert _backup_files(bk, "v2") == expected
    assert sum(1 for k in expected if k.startswith("binlogs/insert_log/")) == sum(
        len(fb.binlogs) for s in segments for fb in s.binlogs
    )

    target = RecordingMilvus("2.6.11")
    client(target, bk.backup_storage).restore("v2")
    assert target.rows(DB, "c") == source.rows(DB, "c")
    data_imports = [r for r in target.import_requests if r[4].get("backup") == "true"]
    assert data_imports and all(r[4].get("storage_version") == "2" for r in data_imports)
    coll_id = info.collection_backups[0].collection_id
    groups = set()
    for *_, files, _ in data_imports:
        for path in filter(None, files):  # "" stands for "no delta logs"
            m = re.search(rf"binlogs/(insert|delta)_log/{coll_id}/(\d+)/(\d+)/?$", path)
            assert m, path
            groups.add(int(m.group(3)))
    assert groups == {s.segment_id for s in segments}


def _one_data_segment(cluster: InMemoryMilvus) -> Any:
    return next(s for s in cluster.persistent_segments(DB, "c") if s.flushed and not s.is_l0)


@pytest.mark.parametrize("version", ["2.5.8", "2.6.11"])
def test_orphans_are_left_out_when_milvus_lists_the_binlogs(version: str) -> None:
    source = InMemoryMilvus(version)
    populate(source)
    seg = _one_data_segment(source)
    base = f"insert_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}"
    field_dir = f"{base}/0"
    a_file = next(iter(source.storage.list_files(source.storage.join(field_dir))))
    orphans = [
        f"{field_dir}/999999999999",
        f"delta_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}/999999999998",
    ]
    for key in orphans:
        source.storage.write_bytes(source.storage.join(key), source.storage.read_bytes(a_file))

    bk = client(source)
    info = bk.create_backup("exact").info
    backed = _backup_files(bk, "exact")
    assert not any(k.endswith(("/999999999999", "/999999999998")) for k in backed)
    [segment] = [s for s in _data_segments(info) if s.segment_id == seg.segment_id]
    log_ids = {b.log_id for fb in (*segment.binlogs, *segment.deltalogs) for b in fb.binlogs}
    assert log_ids and not log_ids & {999999999999, 999999999998}
    # the orphans are not copied, so the backup restores as the source reads
    target = InMemoryMilvus(version)
    client(target, bk.backup_storage).restore("exact")
    assert target.rows(DB, "c") == source.rows(DB, "c")


def test_without_the_api_the_same_orphan_fails_the_v1_backup() -> None:
    # What the segment-describe API saves the user from: before 2.5.8 only the listing tells.
    source = InMemoryMilvus("2.5.3")
    populate(source)
    seg = _one_data_segment(source)
    field_dir = f"insert_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}/101"
    a_file = next(iter(source.storage.list_files(source.storage.join(field_dir))))
    source.storage.write_bytes(
        source.storage.join(field_dir, "999999999999"), source.storage.read_bytes(a_file)
    )
    with pytest.raises(InconsistentSegmentError, match=f"segment {seg.segment_id}: fields have different"):
        client(source).create_backup("orphan")


def test_a_listed_binlog_missing_from_storage_is_an_error_naming_it() -> None:
    source = InMemoryMilvus("2.6.11")
    populate(source)
    seg = _one_data_segment(source)
    group_dir = f"insert_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}/101"
    [path] = source.storage.list_files(source.storage.join(group_dir))
    source.storage.remove_file(path)
    bk = client(source)
    with pytest.raises(InconsistentSegmentError, match=re.escape(path)) as err:
        bk.create_backup("missing")
    assert f"segment {seg.segment_id}" in str(err.value) and "not in the storage" in str(err.value)
    assert bk.list_backups() == []


def _set_storage_version(cluster: InMemoryMilvus, segment_id: int, version: int) -> None:
    coll = cluster._coll(DB, "c")  # test access to the imitated datacoord meta
    coll.segments[segment_id].storage_version = version


@pytest.mark.parametrize(
    ("version", "words"), [(3, "storage v3 (Loon manifest)"), (7, "storage v7"), (-1, "storage v-1")]
)
def test_formats_the_library_cannot_copy_are_refused_naming_segment_and_format(
    version: int, words: str
) -> None:
    source = RecordingMilvus("2.6.11")
    populate(source)
    seg = _one_data_segment(source)
    _set_storage_version(source, seg.segment_id, version)
    bk = client(source)
    with pytest.raises(
        UnsupportedSegmentFormatError, match=f"segment {seg.segment_id}: is stored in {re.escape(words)}"
    ) as err:
        bk.create_backup("v3")
    assert isinstance(err.value, InconsistentSegmentError) and err.value.segment_id == seg.segment_id
    assert source.describe_calls == 0  # refused before anything else is asked
    assert bk.list_backups() == [] and not bk.backup_storage.list_files(bk.backup_storage.root)


def test_loon_layout_files_under_a_segment_are_refused_naming_the_file() -> None:
    # A v3 segment directory (milvus-storage layout.h: _metadata/manifest-{v}.avro, _data/...) under a
    # segment whose meta says v2: never copied as if they were binlogs.
    source = InMemoryMilvus("2.5.3")
    populate(source)
    seg = _one_data_segment(source)
    key = f"insert_log/{seg.collection_id}/{seg.partition_id}/{seg.segment_id}/_metadata/manifest-1.avro"
    source.storage.write_bytes(source.storage.join(key), b"Obj\x01")
    with pytest.raises(UnsupportedSegmentFormatError, match=re.escape(key)):
        client(source).create_backup("loon")


def test_segment_describe_answers_only_from_2_5_8() -> None:
    for version, answers in (("2.4.10", False), ("2.5.7", False), ("2.5.8", True), ("2.6.11", True)):
        cluster = InMemoryMilvus(version)
        populate(cluster)
        seg = _one_data_segment(cluster)
        listed = cluster.segment_binlogs(DB, seg.collection_id, [seg.segment_id])
        assert (listed is not None) is answers, version
        if listed is not None:
            entry = listed[seg.segment_id]
            assert entry.v_channel == seg.insert_channel and entry.insert_logs
    # a segment the meta does not know fails the whole request, as datacoord answers "segment not found"
    assert cluster.segment_binlogs(DB, seg.collection_id, [seg.segment_id, 12345]) is None
