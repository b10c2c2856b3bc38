"""Segment copier: copy jobs in, bytes moved and verified out.

Like upstream milvus-backup (``coll_dml_task.go``), a copy between two locations of the same store
(same protocol and credentials) is done server-side, so the bytes never cross this process: one
``CopyObject`` per file on object stores, a kernel copy on local disks. Between different stores the
bytes are streamed through this process in bounded chunks. Either way every destination file is
checked afterwards against the size the source listing promised, as upstream's ``verifySegmentsData``
does, so a truncated or missing file fails the backup instead of failing a restore months later.
"""

from __future__ import annotations

import asyncio
import posixpath
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs
import fsspec.asyn
from fsspec import AbstractFileSystem
from fsspec.asyn import AsyncFileSystem

from milvus_backup_lib.backup.streaming import ByteBudget, stream_file
from milvus_backup_lib.errors import InvalidOptionError, StorageError
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.retry import budget_for, call_with_retries
from milvus_backup_lib.storage.location import StorageLocation, scrub

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = ["CopyJob", "CopyResult", "FsspecCopier", "SegmentCopier"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: How many problems a verification error lists before summarising the rest.
_MAX_LISTED_PROBLEMS = 10


@attrs.frozen
class CopyJob:
    """One file to copy: a path in the source location's filesystem to a path in the destination's."""

    source: str
    destination: str
    #: The size the source listing reported; the copy is verified against it.
    size: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen
class CopyResult:
    """What a copy did."""

    files: int
    bytes_copied: int
    #: Whether the server-side path ran (bytes stayed in the store) rather than streaming.
    server_side: bool
    #: Bytes that crossed this process (0 for server-side copies).
    bytes_through_client: int
    #: ``md5:<hex>`` of the files that streamed through this process, by destination path (computed
    #: on the way, at no extra read); server-side copies leave it empty.
    checksums: dict[str, str] = attrs.field(factory=dict)


class SegmentCopier(Protocol):
    """Copies files between two storage locations and verifies the result."""

    def copy(
        self,
        source: StorageLocation,
        destination: StorageLocation,
        jobs: Sequence[CopyJob],
        progress: Progress = NULL_PROGRESS,
    ) -> CopyResult:
        """Copy every job, then check each destination file has the expected size.

        Raises :class:`StorageError` naming the file if a source is missing, a copy fails, or a
        destination file is missing or has the wrong size afterwards.
        """
        ...


@attrs.frozen
class FsspecCopier:
    """A :class:`SegmentCopier` over fsspec filesystems.

    ``concurrency`` bounds the files in flight; ``force_streaming`` streams even within one store
    (for stores whose server-side copy is broken or not allowed). When streaming, a file is never
    held whole: it is read ``chunk_size`` bytes at a time into parts of ``part_size`` bytes, each
    uploaded as it fills (one multipart-upload part on S3, where parts are at least 5 MiB and large
    enough for 10,000 parts to hold the file), and the parts held at once by all files in flight
    together never exceed ``max_buffered`` bytes: the copy holds about ``max_buffered`` plus one
    read (``chunk_size``) per file in flight, however large the files.

    Progress events (``files_total`` once, then ``file_done`` per file) may arrive from worker
    threads or from fsspec's I/O thread: the progress object must be thread-safe and quick.
    A file whose streaming copy failed midway is removed (best effort), so a truncated file is
    never left looking complete.
    """

    concurrency: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    chunk_size: int = attrs.field(default=8 * 2**20, validator=attrs.validators.ge(1))
    force_streaming: bool = False
    part_size: int = attrs.field(default=16 * 2**20, validator=attrs.validators.ge(1))
    max_buffered: int = attrs.field(default=128 * 2**20)

    @max_buffered.validator
    def _check_max_buffered(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < self.part_size:
            # a part is held whole while it is uploaded
            raise InvalidOptionError(
                "max_buffered",
                value,
                "a number of bytes >= part_size, or a smaller part_size",
                detail=f"with part_size={self.part_size}",
            )

    def copy(
        self,
        source: StorageLocation,
        destination: StorageLocation,
        jobs: Sequence[CopyJob],
        progress: Progress = NULL_PROGRESS,
    ) -> CopyResult:
        """Copy every job, then check each destination file has the expected size.

        Raises :class:`StorageError` naming the file if a source is missing, a copy fails, or a
        destination file is missing or has the wrong size afterwards; ``ValueError`` if two jobs
        share a destination.
        """
        jobs = list(jobs)
        server_side = source.same_store(destination) and not self.force_streaming
        if not jobs:
            return CopyResult(files=0, bytes_copied=0, server_side=server_side, bytes_through_client=0)
        _check_unique_destinations(jobs)
        if server_side and not _has_server_side_copy(source.fs):
            server_side = False

        progress.files_total(len(jobs), sum(job.size for job in jobs))
        checksums: dict[str, str] = {}
        if not destination.fs.async_impl:
            # Filesystems with real directories (local disk, SFTP...) need parents before a file;
            # object stores have none, and creating "directory" markers there would only add requests.
            _make_parent_dirs(destination, jobs)

        if server_side and source.fs.async_impl:
            self._copy_server_side_async(source, destination, jobs, progress)
            through_client = 0
        elif server_side:
            self._run_bounded(jobs, lambda job: _copy_server_side(source, destination, job, progress))
            through_client = 0
        else:
            # results come back in completion order: carry each file's destination with its result
            budget = ByteBudget(self.max_buffered)
            streamed = self._run_bounded(
                jobs,
                lambda job: (job.destination, *_stream(source, destination, job, self, budget, progress)),
            )
            through_client = sum(n for _, n, _ in streamed)
            checksums = {path: digest for path, _, digest in streamed}

        self._verify(source, destination, jobs)
        return CopyResult(
            files=len(jobs),
            bytes_copied=sum(job.size for job in jobs),
            server_side=server_side,
            bytes_through_client=through_client,
            checksums=checksums,
        )

    def _copy_server_side_async(
        self,
        source: StorageLocation,
        destination: StorageLocation,
        jobs: Sequence[CopyJob],
        progress: Progress,
    ) -> None:
        # fsspec's batched ``fs.copy(list, list, batch_size=n)`` would do the same requests, but it
        # raises the bare first exception without saying which pair failed, reports no per-file
        # progress, and keeps copying after a failure. So we drive ``_cp_file`` (the per-file
        # coroutine every async fsspec backend implements, and what ``fs.copy`` calls) ourselves.
        fs = source.fs
        outcome: list[tuple[CopyJob, BaseException]] = []

        async def copy_all() -> None:
            limit = asyncio.Semaphore(self.concurrency)

            async def copy_one(job: CopyJob) -> None:
                async with limit:
                    if outcome:  # fail fast: start nothing new once a copy failed
                        return
                    try:
                        await budget_for(job.size).acall(
                            f"copy {_display(source, job.source)}", fs._cp_file, job.source, job.destination
                        )
                    except Exception as exc:
                        outcome.append((job, exc))
                        return
                progress.file_done(job.destination, job.size)

            await asyncio.gather(*(copy_one(job) for job in jobs))

        fsspec.asyn.sync(fs.loop, copy_all)
        if outcome:
            job, exc = outcome[0]
            raise _copy_error(source, destination, job, exc) from exc

    def _run_bounded(self, items: Iterable[_T], work: Callable[[_T], _R]) -> list[_R]:
        """``work`` on every item with at most ``concurrency`` running and ``2 * concurrency`` queued.

        The first exception stops new submissions and is raised once the running ones finish.
        """
        results: list[_R] = []
        with ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="milvus-backup-copy"
        ) as pool:
            pending: set[Future[_R]] = set()
            for item in items:
                if len(pending) >= 2 * self.concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    results.extend(future.result() for future in done)
                pending.add(pool.submit(work, item))
            results.extend(future.result() for future in as_completed(pending))
        return results

    def _verify(self, source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
        """Raise :class:`StorageError` unless every destination exists with exactly the expected size."""
        fs = destination.fs
        by_parent: dict[str, list[CopyJob]] = {}
        for job in jobs:
            by_parent.setdefault(posixpath.dirname(_normalize(fs, job.destination)), []).append(job)

        def _problems(parent: str, found: dict[str, int]) -> list[str]:
            problems = []
            for job in by_parent[parent]:
                size = found.get(_normalize(fs, job.destination))
                if size is None:
                    problems.append(
                        f"{_display(destination, job.destination)} is missing after copying "
                        f"(expected {job.size} bytes from {_display(source, job.source)})"
                    )
                elif size != job.size:
                    problems.append(
                        f"{_display(destination, job.destination)} has {size} bytes, expected {job.size} "
                        f"(source {_display(source, job.source)})"
                    )
            return problems

        parents = sorted(by_parent)
        common = posixpath.commonpath(parents) if parents else ""
        if not destination.is_local and len(parents) >= 4 and common.count("/") >= 1:
            # On object stores a listing is a request: Milvus keeps one file per field directory, so
            # listing each parent costs a request per file (measured: most of the S3 copy overhead in
            # the benchmark). One recursive listing of the common prefix answers for all of them.
            found_all = _find_sizes(destination, common)

            def sizes_in(parent: str) -> dict[str, int]:
                return found_all
        else:

            def sizes_in(parent: str) -> dict[str, int]:
                return _list_sizes(destination, parent)

        def problems_in(parent: str) -> list[str]:
            return _problems(parent, sizes_in(parent))

        problems = [p for listed in self._run_bounded(parents, problems_in) for p in listed]
        if problems:
            shown = problems[:_MAX_LISTED_PROBLEMS]
            more = len(problems) - len(shown)
            text = "copy verification failed: " + "; ".join(shown) + (f"; and {more} more" if more else "")
            raise StorageError(scrub(text, source, destination))


def _check_unique_destinations(jobs: Sequence[CopyJob]) -> None:
    seen: set[str] = set()
    for job in jobs:
        if job.destination in seen:
            raise ValueError(f"two copy jobs write the same destination {job.destination!r}")
        seen.add(job.destination)


def _has_server_side_copy(fs: AbstractFileSystem) -> bool:
    """Whether the filesystem implements a real one-file copy (HTTP, for one, does not)."""
    if fs.async_impl:
        return getattr(type(fs), "_cp_file", None) is not AsyncFileSystem._cp_file
    return getattr(type(fs), "cp_file", None) is not AbstractFileSystem.cp_file


def _make_parent_dirs(destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
    fs = destination.fs
    for parent in sorted({posixpath.dirname(_normalize(fs, job.destination)) for job in jobs}):
        try:
            fs.makedirs(parent, exist_ok=True)
        except Exception as exc:
            text = f"cannot create destination directory {_display(destination, parent)}: {_describe(exc)}"
            raise StorageError(scrub(text, destination)) from exc


def _copy_server_side(
    source: StorageLocation, destination: StorageLocation, job: CopyJob, progress: Progress
) -> None:
    try:
        budget_for(job.size).call(
            f"copy {_display(source, job.source)}", source.fs.cp_file, job.source, job.destination
        )
    except Exception as exc:
        raise _copy_error(source, destination, job, exc) from exc
    progress.file_done(job.destination, job.size)


def _stream(
    source: StorageLocation,
    destination: StorageLocation,
    job: CopyJob,
    settings: FsspecCopier,
    budget: ByteBudget,
    progress: Progress,
) -> tuple[int, str]:
    """Copy one file through this process in bounded parts (see :mod:`.streaming`); bytes moved, MD5.

    A transient failure restarts this file from its first byte (the partial upload is abandoned first).
    The retry budget grows with the file (a failure after minutes of streaming is retried), but an
    attempt is never cut by time: a cut synchronous attempt would go on writing beside its retry.
    """
    policy = attrs.evolve(budget_for(job.size), attempt_timeout=None)
    try:
        copied, digest = policy.call(
            f"stream {_display(source, job.source)}",
            stream_file,
            source,
            destination,
            job.source,
            job.destination,
            job.size,
            chunk_size=settings.chunk_size,
            part_size=settings.part_size,
            budget=budget,
        )
    except Exception as exc:
        raise _copy_error(source, destination, job, exc) from exc
    progress.file_done(job.destination, copied)
    return copied, digest


def _copy_error(
    source: StorageLocation, destination: StorageLocation, job: CopyJob, exc: BaseException
) -> StorageError:
    src, dst = _display(source, job.source), _display(destination, job.destination)
    if isinstance(exc, FileNotFoundError) and not _exists(source, job.source):
        text = f"missing source file {src} (to be copied to {dst})"
    else:
        text = f"copying {src} to {dst} failed: {_describe(exc)}"
    return StorageError(scrub(text, source, destination))


def _exists(location: StorageLocation, path: str) -> bool:
    try:
        return bool(location.fs.exists(path))
    except Exception:
        # Cannot tell: assume it exists so the original error is reported as it is.
        return True


def _find_sizes(destination: StorageLocation, prefix: str) -> dict[str, int]:
    """Every file below ``prefix`` (recursively), by normalized path, with its size."""
    fs = destination.fs

    def find() -> Any:
        fs.invalidate_cache(prefix)
        return destination.find_files(prefix)

    try:
        entries = call_with_retries(f"list {_display(destination, prefix)}", find)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        text = f"cannot list destination prefix {_display(destination, prefix)}: {_describe(exc)}"
        raise StorageError(scrub(text, destination)) from exc
    return {
        _normalize(fs, name): int(entry.get("size") or 0)
        for name, entry in entries.items()
        if entry.get("type") != "directory"
    }


def _list_sizes(destination: StorageLocation, parent: str) -> dict[str, int]:
    """The files directly in ``parent``, by normalized path, with their sizes."""
    fs = destination.fs

    def ls() -> Any:
        fs.invalidate_cache(parent)  # s3fs/gcsfs cache listings; we need what the store holds now
        return fs.ls(parent, detail=True)

    try:
        entries = call_with_retries(f"list {_display(destination, parent)}", ls)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        text = f"cannot list destination directory {_display(destination, parent)}: {_describe(exc)}"
        raise StorageError(scrub(text, destination)) from exc
    return {
        _normalize(fs, entry["name"]): int(entry.get("size") or 0)
        for entry in entries
        if entry.get("type") != "directory"
    }


def _normalize(fs: AbstractFileSystem, path: str) -> str:
    return str(fs._strip_protocol(path)).rstrip("/")


def _display(location: StorageLocation, path: str) -> str:
    """``path`` as a user would write it: plain for local files, with the scheme otherwise."""
    return path if location.is_local else f"{location.protocol}://{path}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
