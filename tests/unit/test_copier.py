"""The segment copier against real fsspec filesystems: memory, local disk, and (if installed) moto S3."""

from __future__ import annotations

import hashlib
import posixpath
import random
import threading
import uuid
from typing import TYPE_CHECKING

import attrs
import pytest

from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier
from milvus_backup_lib.backup.streaming import ByteBudget
from milvus_backup_lib.errors import InvalidOptionError, StorageError
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Sizes around a 7-byte chunk: empty, smaller than, equal to, one over, and many chunks with a remainder.
SIZES = [0, 1, 6, 7, 8, 50, 1001]
CHUNK = 7


class RecordingProgress:
    """Records copy events; thread-safe because the copier calls it from worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: list[tuple[int, int]] = []
        self.done: list[tuple[str, int]] = []

    def phase(self, name: str, detail: str = "") -> None:
        pass

    def files_total(self, count: int, nbytes: int) -> None:
        with self.lock:
            self.totals.append((count, nbytes))

    def file_done(self, path: str, nbytes: int) -> None:
        with self.lock:
            self.done.append((path, nbytes))

    def collection_done(self, name: str) -> None:
        pass


def _memory_location() -> Iterator[StorageLocation]:
    # The memory filesystem is one global store per process: every test gets its own root.
    location = StorageLocation(f"memory://copier-{uuid.uuid4().hex}")
    yield location
    if location.fs.exists(location.root):
        location.fs.rm(location.root, recursive=True)


@pytest.fixture
def mem_src() -> Iterator[StorageLocation]:
    yield from _memory_location()


@pytest.fixture
def mem_dst() -> Iterator[StorageLocation]:
    yield from _memory_location()


@pytest.fixture
def local_src(tmp_path: Path) -> StorageLocation:
    (tmp_path / "src").mkdir()
    return StorageLocation(str(tmp_path / "src"))


@pytest.fixture
def local_dst(tmp_path: Path) -> StorageLocation:
    (tmp_path / "dst").mkdir()
    return StorageLocation(str(tmp_path / "dst"))


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _put(location: StorageLocation, key: str, data: bytes) -> str:
    path = location.join(key)
    if location.is_local:
        location.fs.makedirs(posixpath.dirname(path), exist_ok=True)
    location.fs.pipe_file(path, data)
    return path


def _make_jobs(
    source: StorageLocation, destination: StorageLocation, sizes: list[int]
) -> tuple[list[CopyJob], dict[str, bytes]]:
    """Source files of ``sizes`` in a binlog-like tree; returns the jobs and destination -> expected bytes."""
    jobs, expected = [], {}
    for i, size in enumerate(sizes):
        data = _payload(size, seed=i)
        src = _put(source, f"insert_log/1/2/{i}/100/{i}", data)
        dst = destination.join(f"backup/binlogs/insert_log/1/2/{i}/{i}/100/{i}")
        jobs.append(CopyJob(source=src, destination=dst, size=size))
        expected[dst] = data
    return jobs, expected


def _assert_copied(destination: StorageLocation, expected: dict[str, bytes]) -> None:
    for path, data in expected.items():
        assert destination.fs.cat_file(path) == data, path


def test_memory_to_memory_is_server_side(mem_src: StorageLocation, mem_dst: StorageLocation) -> None:
    jobs, expected = _make_jobs(mem_src, mem_dst, SIZES)

    result = FsspecCopier().copy(mem_src, mem_dst, jobs)

    assert result == CopyResult(
        files=len(SIZES), bytes_copied=sum(SIZES), server_side=True, bytes_through_client=0
    )
    _assert_copied(mem_dst, expected)


def test_local_to_local_is_server_side_and_creates_parents(
    local_src: StorageLocation, local_dst: StorageLocation, tmp_path: Path
) -> None:
    jobs, expected = _make_jobs(local_src, local_dst, SIZES)

    result = FsspecCopier(concurrency=3).copy(local_src, local_dst, jobs)

    assert result == CopyResult(
        files=len(SIZES), bytes_copied=sum(SIZES), server_side=True, bytes_through_client=0
    )
    _assert_copied(local_dst, expected)
    assert (tmp_path / "dst/backup/binlogs/insert_log/1/2/6/6/100/6").stat().st_size == 1001


def test_local_to_memory_streams_in_chunks(local_src: StorageLocation, mem_dst: StorageLocation) -> None:
    jobs, expected = _make_jobs(local_src, mem_dst, SIZES)

    result = FsspecCopier(chunk_size=CHUNK).copy(local_src, mem_dst, jobs)

    assert attrs.evolve(result, checksums={}) == CopyResult(
        files=len(SIZES), bytes_copied=sum(SIZES), server_side=False, bytes_through_client=sum(SIZES)
    )
    # streamed copies carry the MD5 of what went through, computed on the way
    for job in jobs:
        digest = "md5:" + hashlib.md5(mem_dst.fs.cat_file(job.destination)).hexdigest()
        assert result.checksums[job.destination] == digest
    _assert_copied(mem_dst, expected)


def test_memory_to_local_streams_and_creates_parents(
    mem_src: StorageLocation, local_dst: StorageLocation
) -> None:
    jobs, expected = _make_jobs(mem_src, local_dst, SIZES)

    result = FsspecCopier(chunk_size=CHUNK, concurrency=2).copy(mem_src, local_dst, jobs)

    assert not result.server_side
    assert result.bytes_through_client == sum(SIZES)
    _assert_copied(local_dst, expected)


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_force_streaming_within_one_store(
    kind: str,
    mem_src: StorageLocation,
    mem_dst: StorageLocation,
    local_src: StorageLocation,
    local_dst: StorageLocation,
) -> None:
    source, destination = (mem_src, mem_dst) if kind == "memory" else (local_src, local_dst)
    jobs, expected = _make_jobs(source, destination, SIZES)

    result = FsspecCopier(chunk_size=CHUNK, force_streaming=True).copy(source, destination, jobs)

    assert len(result.checksums) == len(jobs)
    assert attrs.evolve(result, checksums={}) == CopyResult(
        files=len(SIZES), bytes_copied=sum(SIZES), server_side=False, bytes_through_client=sum(SIZES)
    )
    _assert_copied(destination, expected)


@pytest.mark.parametrize("force_streaming", [False, True])
@pytest.mark.parametrize("kind", ["memory", "local"])
def test_missing_source_is_named(
    kind: str,
    force_streaming: bool,
    mem_src: StorageLocation,
    mem_dst: StorageLocation,
    local_src: StorageLocation,
    local_dst: StorageLocation,
) -> None:
    source, destination = (mem_src, mem_dst) if kind == "memory" else (local_src, local_dst)
    jobs, _ = _make_jobs(source, destination, [3, 4])
    missing = source.join("insert_log/1/2/99/100/99")
    jobs.append(CopyJob(missing, destination.join("backup/gone"), 5))

    with pytest.raises(StorageError, match="missing source file") as info:
        FsspecCopier(force_streaming=force_streaming).copy(source, destination, jobs)

    assert missing in str(info.value)
    assert "backup/gone" in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


@pytest.mark.parametrize("force_streaming", [False, True])
@pytest.mark.parametrize("kind", ["memory", "local"])
def test_size_mismatch_is_detected(
    kind: str,
    force_streaming: bool,
    mem_src: StorageLocation,
    mem_dst: StorageLocation,
    local_src: StorageLocation,
    local_dst: StorageLocation,
) -> None:
    source, destination = (mem_src, mem_dst) if kind == "memory" else (local_src, local_dst)
    jobs, _ = _make_jobs(source, destination, [10, 20])
    wrong = CopyJob(jobs[1].source, jobs[1].destination, size=21)

    with pytest.raises(StorageError, match="verification failed") as info:
        FsspecCopier(force_streaming=force_streaming, chunk_size=CHUNK).copy(
            source, destination, [jobs[0], wrong]
        )

    message = str(info.value)
    assert wrong.destination in message
    assert "has 20 bytes, expected 21" in message
    assert jobs[0].destination not in message


@pytest.mark.parametrize("force_streaming", [False, True])
def test_progress_events(force_streaming: bool, mem_src: StorageLocation, local_dst: StorageLocation) -> None:
    source = mem_src
    destination = mem_src if not force_streaming else local_dst
    jobs, _ = _make_jobs(source, destination, SIZES)
    progress = RecordingProgress()

    FsspecCopier(force_streaming=force_streaming, chunk_size=CHUNK).copy(source, destination, jobs, progress)

    assert progress.totals == [(len(SIZES), sum(SIZES))]
    assert sorted(progress.done) == sorted((job.destination, job.size) for job in jobs)


@pytest.mark.parametrize("force_streaming", [False, True])
def test_many_small_files_run_concurrently(
    force_streaming: bool, mem_src: StorageLocation, mem_dst: StorageLocation
) -> None:
    jobs, expected = _make_jobs(mem_src, mem_dst, [i % 13 for i in range(200)])

    # Every file_done waits until 4 workers are inside at once: only truly concurrent copies pass.
    class BarrierProgress(RecordingProgress):
        barrier = threading.Barrier(4)

        def file_done(self, path: str, nbytes: int) -> None:
            self.barrier.wait(timeout=10)
            super().file_done(path, nbytes)

    progress = BarrierProgress()
    result = FsspecCopier(concurrency=4, force_streaming=force_streaming, chunk_size=CHUNK).copy(
        mem_src, mem_dst, jobs, progress
    )

    assert result.files == 200
    assert len(progress.done) == 200
    _assert_copied(mem_dst, expected)


def test_empty_job_list_touches_nothing() -> None:
    # A protocol fsspec does not know: opening its filesystem would raise.
    nowhere = StorageLocation("nosuchproto://bucket/root")
    progress = RecordingProgress()

    result = FsspecCopier().copy(nowhere, nowhere, [], progress)

    assert result == CopyResult(files=0, bytes_copied=0, server_side=True, bytes_through_client=0)
    assert progress.totals == []
    assert progress.done == []


def test_duplicate_destinations_are_refused(mem_src: StorageLocation, mem_dst: StorageLocation) -> None:
    jobs, _ = _make_jobs(mem_src, mem_dst, [1, 2])

    with pytest.raises(ValueError, match="same destination"):
        FsspecCopier().copy(mem_src, mem_dst, [jobs[0], CopyJob(jobs[1].source, jobs[0].destination, 2)])


@pytest.mark.parametrize("kwargs", [{"concurrency": 0}, {"chunk_size": 0}, {"part_size": 0}])
def test_invalid_settings(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        FsspecCopier(**kwargs)  # type: ignore[arg-type]


def test_buffer_budget_must_hold_a_part() -> None:
    with pytest.raises(InvalidOptionError, match=r"max_buffered=1024 is not valid with part_size=2048"):
        FsspecCopier(part_size=2048, max_buffered=1024)


@pytest.mark.parametrize("part_size", [1000, 4096, 70_000])
def test_streaming_in_small_parts_through_a_small_budget(
    part_size: int, local_src: StorageLocation, mem_dst: StorageLocation
) -> None:
    # parts smaller, equal to and larger than the files; the budget lets one part through at a time
    jobs, expected = _make_jobs(local_src, mem_dst, [*SIZES, 4096, 8192])

    result = FsspecCopier(chunk_size=CHUNK, part_size=part_size, max_buffered=part_size, concurrency=4).copy(
        local_src, mem_dst, jobs
    )

    assert result.bytes_through_client == sum(SIZES) + 4096 + 8192
    _assert_copied(mem_dst, expected)


def test_byte_budget_waits_for_room() -> None:
    budget = ByteBudget(10)
    entered = threading.Event()

    def second() -> None:
        with budget.hold(6):
            entered.set()

    with budget.hold(6):
        worker = threading.Thread(target=second)
        worker.start()
        assert not entered.wait(0.2)  # 6 + 6 > 10: the second holder waits
    assert entered.wait(5)
    worker.join()
    assert budget.peak == 6
    with budget.hold(50):  # more than the capacity is clamped to it, not refused or waited on forever
        assert budget.peak == 10


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        CopyJob("a", "b", -1)


def test_credentials_never_in_error_text(tmp_path: Path) -> None:
    # Local filesystems accept (and ignore) extra options, which lets a test carry a "secret" without
    # a cloud store. The secret is also put into a path, so an unscrubbed message would show it.
    secret = "hunter2-very-secret-token"
    source = StorageLocation(str(tmp_path / "src"), storage_options={"token": secret})
    destination = StorageLocation(str(tmp_path / "dst"), storage_options={"token": secret})
    missing = source.join(secret, "binlog")

    for force_streaming in (False, True):
        with pytest.raises(StorageError) as info:
            FsspecCopier(force_streaming=force_streaming).copy(
                source, destination, [CopyJob(missing, destination.join("x"), 1)]
            )
        assert secret not in str(info.value)
        assert "***" in str(info.value)
        assert secret not in repr(source)


# --- S3 through moto: the async (s3fs) server-side path. Skipped if s3fs or moto are not installed.


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, object]]:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield {
            "key": "AKIAEXAMPLEKEY",
            "secret": "s3-secret-that-must-not-leak",
            "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "us-west-2"},
        }
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_options: dict[str, object]) -> tuple[StorageLocation, StorageLocation]:
    bucket = f"copier-{uuid.uuid4().hex[:12]}"
    milvus = StorageLocation(f"s3://{bucket}/files", storage_options=s3_options)
    milvus.fs.mkdir(bucket)
    backup = StorageLocation(f"s3://{bucket}/backup", storage_options=s3_options)
    return milvus, backup


def test_s3_to_s3_is_server_side(s3_bucket: tuple[StorageLocation, StorageLocation]) -> None:
    source, destination = s3_bucket
    jobs, expected = _make_jobs(source, destination, SIZES)
    progress = RecordingProgress()

    result = FsspecCopier(concurrency=3).copy(source, destination, jobs, progress)

    assert result == CopyResult(
        files=len(SIZES), bytes_copied=sum(SIZES), server_side=True, bytes_through_client=0
    )
    assert sorted(progress.done) == sorted((job.destination, job.size) for job in jobs)
    _assert_copied(destination, expected)


def test_s3_to_memory_streams(
    s3_bucket: tuple[StorageLocation, StorageLocation], mem_dst: StorageLocation
) -> None:
    source, _ = s3_bucket
    jobs, expected = _make_jobs(source, mem_dst, SIZES)

    result = FsspecCopier(chunk_size=CHUNK).copy(source, mem_dst, jobs)

    assert result.bytes_through_client == sum(SIZES)
    assert not result.server_side
    _assert_copied(mem_dst, expected)


@pytest.mark.parametrize("force_streaming", [False, True])
def test_s3_missing_source_and_secret_kept_out(
    s3_bucket: tuple[StorageLocation, StorageLocation], force_streaming: bool
) -> None:
    source, destination = s3_bucket
    jobs, _ = _make_jobs(source, destination, [5])
    missing = source.join("insert_log/1/2/404/100/404")
    jobs.append(CopyJob(missing, destination.join("binlogs/gone"), 5))

    with pytest.raises(StorageError, match="missing source file") as info:
        FsspecCopier(force_streaming=force_streaming).copy(source, destination, jobs)

    assert f"s3://{missing}" in str(info.value)
    assert "s3-secret-that-must-not-leak" not in str(info.value)


def test_s3_size_mismatch(s3_bucket: tuple[StorageLocation, StorageLocation]) -> None:
    source, destination = s3_bucket
    jobs, _ = _make_jobs(source, destination, [5, 9])

    with pytest.raises(StorageError, match="has 9 bytes, expected 8"):
        FsspecCopier().copy(source, destination, [jobs[0], CopyJob(jobs[1].source, jobs[1].destination, 8)])


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_destination_missing_after_copy_is_detected(
    kind: str,
    mem_src: StorageLocation,
    mem_dst: StorageLocation,
    local_src: StorageLocation,
    local_dst: StorageLocation,
) -> None:
    # Server-side cp_file of a *directory* succeeds and makes a directory, not a file: the listing check
    # must still report the destination file as missing.
    source, destination = (mem_src, mem_dst) if kind == "memory" else (local_src, local_dst)
    directory = source.join("insert_log/1/2/3")
    source.fs.makedirs(directory, exist_ok=True)
    job = CopyJob(directory, destination.join("backup/3"), 0)

    with pytest.raises(StorageError, match="is missing after copying") as info:
        FsspecCopier().copy(source, destination, [job])

    assert job.destination in str(info.value)
