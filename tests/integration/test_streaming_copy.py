"""Streaming copies from local disk to S3 (a moto server process): multipart parts, aborts, memory bound.

moto runs as its own process here (tests/emulators.py), so what it stores is not counted in this
process's allocations.
"""

from __future__ import annotations

import hashlib
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest

from milvus_backup_lib import StorageLocation
from milvus_backup_lib.backup import copier as copier_module
from milvus_backup_lib.backup.copier import CopyJob, FsspecCopier
from milvus_backup_lib.backup.streaming import ByteBudget
from milvus_backup_lib.errors import StorageError

pytestmark = pytest.mark.integration

MIB = 2**20


def _file(path: Path, size: int, seed: int = 0) -> bytes:
    """A file of ``size`` pseudo-random bytes (repeated 1 MiB blocks, each different)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(seed).encode()).digest()
    data = bytearray()
    with path.open("wb") as out:
        block = 0
        while len(data) < size:
            piece = (digest + block.to_bytes(4, "big")) * (MIB // 36 + 1)
            piece = piece[: min(MIB, size - len(data))]
            out.write(piece)
            data += piece
            block += 1
    return bytes(data)


@pytest.fixture
def bucket(s3_server: Any) -> StorageLocation:
    return s3_server.location(f"stream-{uuid.uuid4().hex[:10]}", "backup")  # type: ignore[no-any-return]


def _s3_meta(location: StorageLocation, path: str) -> dict[str, Any]:
    bucket, key, _ = location.fs.split_path(path)
    return location.fs.call_s3("head_object", Bucket=bucket, Key=key)  # type: ignore[no-any-return]


def _open_uploads(location: StorageLocation) -> list[Any]:
    bucket = location.fs.split_path(location.root)[0]
    return location.fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", [])  # type: ignore[no-any-return]


def test_file_larger_than_a_part_goes_up_in_parts_byte_for_byte(
    tmp_path: Path, bucket: StorageLocation
) -> None:
    source = StorageLocation(str(tmp_path))
    big = _file(tmp_path / "insert_log/1/2/3/100/1", 13 * MIB + 7, seed=1)
    small = _file(tmp_path / "insert_log/1/2/3/101/1", 3 * MIB, seed=2)
    jobs = [
        CopyJob(str(tmp_path / "insert_log/1/2/3/100/1"), bucket.join("binlogs/100/1"), len(big)),
        CopyJob(str(tmp_path / "insert_log/1/2/3/101/1"), bucket.join("binlogs/101/1"), len(small)),
    ]

    result = FsspecCopier(part_size=5 * MIB, max_buffered=10 * MIB, chunk_size=MIB).copy(source, bucket, jobs)

    assert result.bytes_through_client == len(big) + len(small)
    assert bucket.fs.cat_file(jobs[0].destination) == big
    assert bucket.fs.cat_file(jobs[1].destination) == small
    # S3 marks a multipart object's ETag with its part count: 13 MiB + 7 in 5 MiB parts is 3 parts;
    # a file smaller than a part is one PutObject (a plain MD5 ETag).
    assert _s3_meta(bucket, jobs[0].destination)["ETag"].strip('"').endswith("-3")
    assert _s3_meta(bucket, jobs[1].destination)["ETag"].strip('"') == hashlib.md5(small).hexdigest()
    assert result.checksums[jobs[0].destination] == "md5:" + hashlib.md5(big).hexdigest()
    assert _open_uploads(bucket) == []


def test_failed_multipart_upload_is_aborted_and_leaves_no_object(
    tmp_path: Path, bucket: StorageLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = StorageLocation(str(tmp_path))
    data = _file(tmp_path / "binlog", 12 * MIB)
    job = CopyJob(str(tmp_path / "binlog"), bucket.join("binlogs/1"), len(data))
    real_call = bucket.fs.call_s3

    def failing_call(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part" and kwargs["PartNumber"] == 2:
            raise PermissionError("injected: access denied on the second part")
        return real_call(method, *args, **kwargs)

    monkeypatch.setattr(bucket.fs, "call_s3", failing_call)
    with pytest.raises(StorageError, match="second part") as info:
        FsspecCopier(part_size=5 * MIB, max_buffered=5 * MIB).copy(source, bucket, [job])
    monkeypatch.undo()

    assert "binlogs/1" in str(info.value)
    assert not bucket.fs.exists(job.destination)
    # the first part was uploaded: without an abort the upload would still be listed (and billed)
    assert _open_uploads(bucket) == []


@pytest.mark.parametrize("real_size", [100, 6 * MIB + 9])
def test_a_source_longer_than_listed_is_refused_by_name(
    tmp_path: Path, bucket: StorageLocation, real_size: int
) -> None:
    # One part expected (or the last part short of S3's minimum), more found: S3 would refuse the
    # small part with EntityTooSmall; the error says that the file changed instead.
    source = StorageLocation(str(tmp_path))
    _file(tmp_path / "binlog", real_size)
    job = CopyJob(str(tmp_path / "binlog"), bucket.join("binlogs/1"), real_size - 50)

    with pytest.raises(StorageError, match=r"more bytes than its listing gave .* changed while being copied"):
        FsspecCopier(part_size=5 * MIB, max_buffered=5 * MIB).copy(source, bucket, [job])

    assert not bucket.fs.exists(job.destination)
    assert _open_uploads(bucket) == []


class _RecordingBudget(ByteBudget):
    made: list[ByteBudget] = []

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        _RecordingBudget.made.append(self)


def test_memory_stays_bounded_by_the_parts_in_flight(
    tmp_path: Path, bucket: StorageLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 64 MiB in 4 files through 4 workers, 8 MiB parts, at most 16 MiB of parts at once. The parts
    # live in memory maps (not seen by tracemalloc) counted by the budget; tracemalloc sees every
    # other Python allocation (s3fs, botocore, aiohttp buffers). Before the bounded copy, s3fs's
    # writer held about 3 times its block per file: well over 100 MiB here.
    source = StorageLocation(str(tmp_path))
    jobs = []
    for i in range(4):
        _file(tmp_path / f"f{i}", 16 * MIB, seed=i)
        jobs.append(CopyJob(str(tmp_path / f"f{i}"), bucket.join(f"binlogs/{i}"), 16 * MIB))
    monkeypatch.setattr(copier_module, "ByteBudget", _RecordingBudget)
    _RecordingBudget.made.clear()
    copier = FsspecCopier(concurrency=4, part_size=8 * MIB, max_buffered=16 * MIB, chunk_size=MIB)
    bucket.fs.ls(bucket.fs.split_path(bucket.root)[0])  # the S3 client exists before measuring

    tracemalloc.start()
    try:
        result = copier.copy(source, bucket, jobs)
        _, heap_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.bytes_through_client == 64 * MIB
    (budget,) = _RecordingBudget.made
    assert 8 * MIB <= budget.peak <= 16 * MIB
    assert heap_peak + budget.peak < 40 * MIB, (heap_peak / MIB, budget.peak / MIB)
    for job in jobs:
        assert _s3_meta(bucket, job.destination)["ContentLength"] == 16 * MIB


def test_part_size_grows_to_keep_within_ten_thousand_parts() -> None:
    from milvus_backup_lib.backup.streaming import S3_MAX_PARTS, S3_MIN_PART, s3_part_size

    assert s3_part_size(MIB, 10 * MIB) == S3_MIN_PART
    assert s3_part_size(16 * MIB, 10 * MIB) == 16 * MIB
    huge = 400 * 2**30
    assert s3_part_size(16 * MIB, huge) * S3_MAX_PARTS >= huge
