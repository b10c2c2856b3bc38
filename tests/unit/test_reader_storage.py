"""The offline reader on segment files cut differently from one file a field: several binlogs a field
(v1) and column groups whose Parquet row groups do not line up (storage v2, as Milvus 2.6's packed
writer flushes each column group on its own buffer size: ``internal/storagev2/packed``); and damaged
storage v2 files and delete logs, which must name the file and the byte."""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
import pytest
from memory_data import DB, client, populate
from test_reader import LINES, _as_query_rows

from milvus_backup_lib import BackupReader, CorruptBinlogError, StorageLocation, open_backup
from milvus_backup_lib.storage.layout import binlog_files
from milvus_backup_lib.testing.memory import InMemoryMilvus


def _backup(cluster: InMemoryMilvus) -> tuple[BackupReader, StorageLocation]:
    facade = client(cluster)
    facade.create_backup("b1", collections=["default.c"])
    return open_backup(facade.backup_storage, "b1"), facade.backup_storage


@pytest.mark.parametrize("version", LINES)
def test_several_files_a_field_read_back_equal(version: str) -> None:
    """Segments of 10 rows written 3 rows a file: each field (v1) or column group (v2) has 4 files."""
    cluster = InMemoryMilvus(version, rows_per_file=3)
    populate(cluster, float16=version != "2.3.5")
    reader, _ = _backup(cluster)
    segments = [s for p in reader.info.collection_backups[0].partition_backups for s in p.segment_backups]
    assert max(len(fb.binlogs) for s in segments for fb in s.binlogs) == 4
    table = reader.read("default.c")
    assert _as_query_rows(table, reader.collections["default.c"]) == cluster.rows(DB, "c")
    batches = list(reader.iter_batches("default.c", batch_rows=2))
    assert max(b.num_rows for b in batches) == 2 and sum(b.num_rows for b in batches) == table.num_rows


def _regroup(location: StorageLocation, path: str, row_group_rows: int) -> None:
    """Rewrite a storage v2 file with row groups of ``row_group_rows`` rows (field IDs kept)."""
    table = pq.read_table(io.BytesIO(location.read_bytes(path)))
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_rows, compression="zstd")
    location.write_bytes(path, sink.getvalue())


def test_storage_v2_column_groups_with_unaligned_row_groups_read_back_equal() -> None:
    cluster = InMemoryMilvus("2.6.11")
    populate(cluster, float16=True)
    reader, location = _backup(cluster)
    groups: dict[str, int] = {}
    for f in binlog_files(reader.info):
        if not f.is_delta:
            group = f.key.split("/")[-2]
            # Row groups of 3 rows in the system group (0), 4 in each vector's group, 5 in the rest (1).
            rows = groups.setdefault(group, {"0": 3, "1": 5}.get(group, 4))
            _regroup(location, location.join("b1", f.key), rows)
    assert len(groups) == 4  # system, vec, half, and the other scalars
    probe = next(f for f in binlog_files(reader.info) if not f.is_delta and f.key.split("/")[-2] == "0")
    assert pq.ParquetFile(io.BytesIO(location.read_bytes(location.join("b1", probe.key)))).num_row_groups > 1
    table = reader.read("default.c")
    assert _as_query_rows(table, reader.collections["default.c"]) == cluster.rows(DB, "c")


def _victim(reader: BackupReader, *, delta: bool) -> Any:
    return next(f for f in binlog_files(reader.info) if f.is_delta == delta)


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("insert-truncated", "not a Parquet file"),
        ("insert-garbage", "not a Parquet file"),
        ("delete-truncated", "magic number"),
        ("delete-body", "Parquet"),  # pages or their headers: either the open or the decode fails
    ],
)
def test_damaged_storage_v2_files_name_the_file(kind: str, detail: str) -> None:
    """A storage v2 file is bare Parquet: damage to it is reported at byte 0 of that file; a v2 delete
    log cut short no longer starts with Parquet's magic and is taken for a damaged v1 log (the rule of
    ``importutilv2/binlog/reader.go`` ``readDelete``)."""
    cluster = InMemoryMilvus("2.6.11")
    populate(cluster)
    reader, location = _backup(cluster)
    victim = _victim(reader, delta=kind.startswith("delete"))
    path = location.join("b1", victim.key)
    data = location.read_bytes(path)
    if kind == "insert-truncated":
        damaged = data[: len(data) // 2]
    elif kind == "insert-garbage":
        damaged = b"\x00" * len(data)
    elif kind == "delete-truncated":
        damaged = data[2:]  # the leading magic cut: not Parquet, not a v1 binlog
    else:  # a third of the body overwritten, the leading magic and the footer kept
        damaged = data[:4] + b"\xff" * (len(data) // 3) + data[4 + len(data) // 3 :]
    location.write_bytes(path, damaged)
    with pytest.raises(CorruptBinlogError) as caught:
        reader.read("default.c")
    assert caught.value.file == path and caught.value.offset == 0
    assert detail in caught.value.detail, caught.value
    assert f"{victim.key} cannot be read at byte 0" in str(caught.value)


def test_a_truncated_v1_delete_log_names_the_file_and_byte() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    reader, location = _backup(cluster)
    victim = _victim(reader, delta=True)
    path = location.join("b1", victim.key)
    data = location.read_bytes(path)
    location.write_bytes(path, data[:-10])
    with pytest.raises(CorruptBinlogError, match="runs past the end of the file") as caught:
        reader.read("default.c")
    assert caught.value.file == path and caught.value.offset > 4  # the delete event, past the descriptor


def test_a_payload_window_reads_only_its_bytes() -> None:
    """What pyarrow sees of a binlog: the payload's bytes alone, by read() and readinto() alike."""
    from milvus_backup_lib.reader._files import _Window

    window = _Window(io.BytesIO(b"head" + bytes(range(10)) + b"tail"), 4, 10)
    assert window.read(3) == bytes([0, 1, 2]) and window.tell() == 3
    assert window.read() == bytes(range(3, 10)) and window.read(5) == b""
    window.seek(-2, io.SEEK_END)
    assert window.read(100) == bytes([8, 9])
    window.seek(1)
    buffer = bytearray(4)
    assert window.readinto(buffer) == 4 and bytes(buffer) == bytes([1, 2, 3, 4])
    assert window.read(None) == bytes(range(5, 10))
