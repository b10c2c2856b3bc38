"""Streaming one file through this process with bounded memory (the cross-store path of the copier).

A file is read from its source in parts of ``part_size`` bytes, each filled in place (in its own
anonymous memory map) from reads of at most ``chunk_size`` bytes, and each part is handed to the
destination whole, then unmapped. Every part held by any copy of one
:meth:`~milvus_backup_lib.backup.copier.FsspecCopier.copy` call is counted against one
:class:`ByteBudget`, so the bytes held at once stay below the budget however many files are in
flight and however large they are.

On S3 (s3fs) the parts go out through the multipart upload API itself (``CreateMultipartUpload``,
``UploadPart``, ``CompleteMultipartUpload`` through ``S3FileSystem.call_s3``, which adds the
filesystem's ``s3_additional_kwargs`` such as server-side encryption): s3fs's own writer copies its
buffer for every part and grows it past the block size (measured: ~190 MiB held per 64 MiB file
with its 50 MiB default block), and a failed upload is aborted so no part is left behind. A file that
fits one part is one ``PutObject``. Other stores get the parts through ``fs.open(path, "wb",
block_size=part_size)``, whose own buffer then holds at most about one more part.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mmap
import threading
from typing import TYPE_CHECKING, Any

from milvus_backup_lib.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["ByteBudget", "stream_file"]

#: S3's smallest part (every part but the last) and its most parts per upload.
S3_MIN_PART = 5 * 2**20
S3_MAX_PARTS = 10_000


class ByteBudget:
    """At most ``capacity`` bytes held at once, across threads.

    A holder takes at most ``capacity`` (a larger request is clamped, so it waits for everything
    else to be returned rather than forever). Each copy holds one part at a time and returns it
    before asking for the next, so holders never wait on each other in a cycle.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a byte budget must be >= 1 byte, got {capacity}")
        self.capacity = capacity
        self._free = capacity
        self._lowest_free = capacity
        self._changed = threading.Condition()

    @property
    def peak(self) -> int:
        """The most bytes held at once so far."""
        return self.capacity - self._lowest_free

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        nbytes = max(0, min(nbytes, self.capacity))
        with self._changed:
            self._changed.wait_for(lambda: self._free >= nbytes)
            self._free -= nbytes
            self._lowest_free = min(self._lowest_free, self._free)
        try:
            yield
        finally:
            with self._changed:
                self._free += nbytes
                self._changed.notify_all()


class _Source:
    """Reads parts of a file, each filled in place in its own memory map, ``chunk_size`` bytes per read."""

    def __init__(self, reader: Any, expected_size: int, chunk_size: int) -> None:
        self._reader = reader
        self._remaining = expected_size
        self._chunk_size = chunk_size
        self._readinto = getattr(reader, "readinto", None)
        self.copied = 0
        self.digest = hashlib.md5(usedforsecurity=False)

    def want(self, part_size: int) -> int:
        """How many bytes the next part should ask for.

        While the listing's size is not reached: at most what is left of it, plus one byte so that a
        short answer proves the end (a file that fits one part then needs a single read). Past the
        listed size (a file that grew), whole parts: the size check after the copy reports it.
        """
        if self._remaining > 0:
            return min(part_size, self._remaining + 1)
        return part_size if self._remaining < 0 else 1

    @contextlib.contextmanager
    def read(self, want: int) -> Iterator[memoryview]:
        """The next part (at most ``want`` bytes; shorter only at the end), valid inside the block.

        The part lives in its own anonymous memory map, returned to the system when the block ends:
        heap buffers of this size would stay in glibc's per-thread arenas (measured: the process
        kept ~120 MiB more than the parts in flight).
        """
        memory = mmap.mmap(-1, max(want, 1))
        try:
            filled = 0
            with memoryview(memory) as view:
                while filled < want:
                    with view[filled : filled + min(self._chunk_size, want - filled)] as window:
                        if self._readinto is not None:
                            got = int(self._readinto(window) or 0)
                        else:
                            data = self._reader.read(len(window))
                            got = len(data)
                            window[:got] = data
                    if not got:
                        break
                    filled += got
                self._remaining -= filled
                self.copied += filled
                with view[:filled] as part:
                    self.digest.update(part)
                    yield part
        finally:
            with contextlib.suppress(BufferError):  # a view still held: the map goes with its last user
                memory.close()


class _PartBody(io.RawIOBase):
    """A read-only, seekable file over one part, so that the HTTP client streams it in small pieces.

    Given ``bytes`` or a ``bytearray``, botocore and aiohttp each copy the part once more (botocore
    wraps ``bytes`` in a ``BytesIO`` whose buffer aiohttp then exports; aiohttp slices a
    ``bytearray`` to the content length; asyncio's transport keeps what the socket did not take),
    measured with tracemalloc at about 2.5 times the part per upload. A file-like body is read 64 KiB at
    a time by aiohttp, and botocore computes its checksums by reading and seeking back.
    """

    def __init__(self, part: memoryview) -> None:
        super().__init__()
        self._view = memoryview(part)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._view.nbytes

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._view.nbytes}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        end = self._view.nbytes if size is None or size < 0 else min(self._view.nbytes, self._position + size)
        data = bytes(self._view[self._position : end]) if end > self._position else b""
        self._position = max(self._position, end)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._view.release()
        super().close()


def _call_s3_with_part(fs: Any, method: str, part: memoryview, **kwargs: Any) -> Any:
    with _PartBody(part) as body:
        return fs.call_s3(method, Body=body, **kwargs)


def s3_part_size(part_size: int, expected_size: int) -> int:
    """The part size for an S3 upload: at least S3's minimum, large enough to stay within 10,000 parts."""
    return max(part_size, S3_MIN_PART, -(-expected_size // (S3_MAX_PARTS - 1)))


def _is_s3(location: StorageLocation) -> bool:
    fs = location.fs
    return location.protocol in {"s3", "s3a"} and callable(getattr(fs, "call_s3", None))


def stream_file(
    source: StorageLocation,
    destination: StorageLocation,
    source_path: str,
    destination_path: str,
    expected_size: int,
    *,
    chunk_size: int,
    part_size: int,
    budget: ByteBudget,
) -> tuple[int, str]:
    """Copy one file through this process; return the bytes moved and ``md5:<hex>`` of them.

    On failure nothing is left at the destination (on S3 the multipart upload is aborted, or a
    one-part upload never happened; elsewhere the file is removed, best effort) and the error
    propagates.
    """
    with source.fs.open(source_path, "rb", block_size=chunk_size) as reader:
        parts = _Source(reader, expected_size, chunk_size)
        sink: _S3Upload | _FileUpload
        if _is_s3(destination):
            part_size = s3_part_size(part_size, expected_size)
            sink = _S3Upload(destination, destination_path, expected_size)
        else:
            sink = _FileUpload(destination, destination_path, part_size)
        try:
            more = True
            while more:
                want = parts.want(part_size)
                # the part is freed (inner context) before the budget is returned
                with budget.hold(want), parts.read(want) as part:
                    more = sink.send(part, want)
            sink.finish()
        except BaseException:
            sink.abandon()
            raise
    return parts.copied, "md5:" + parts.digest.hexdigest()


class _S3Upload:
    """One object written with S3's multipart API, or one ``PutObject`` when it fits one part."""

    def __init__(self, destination: StorageLocation, path: str, expected_size: int) -> None:
        self._expected_size = expected_size
        self._fs = destination.fs
        self._path = path
        self._bucket, self._key, _ = self._fs.split_path(path)
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def send(self, part: memoryview, want: int) -> bool:
        """Upload one part; whether more may follow (a short part is the last)."""
        where = {"Bucket": self._bucket, "Key": self._key}
        if len(part) == want < S3_MIN_PART:
            # Asked for the rest of the listed size plus one byte, and got it all: the file is longer
            # than listed. S3 would refuse this small part at the end ("EntityTooSmall"), which
            # would not say why; the listing cannot be trusted for this file, so say that.
            raise StorageError(
                f"the source has more bytes than its listing gave ({self._expected_size}): it changed "
                "while being copied; run the backup again (pause GC, stop writes to the collection)"
            )
        if self._upload_id is None and len(part) < want:
            _call_s3_with_part(self._fs, "put_object", part, **where)
            return False
        if not part:
            return False
        if self._upload_id is None:
            self._upload_id = self._fs.call_s3("create_multipart_upload", **where)["UploadId"]
        number = len(self._parts) + 1
        answer = _call_s3_with_part(
            self._fs, "upload_part", part, UploadId=self._upload_id, PartNumber=number, **where
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        return len(part) == want

    def finish(self) -> None:
        if self._upload_id is not None:
            self._fs.call_s3(
                "complete_multipart_upload",
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
        with contextlib.suppress(Exception):
            self._fs.invalidate_cache(self._path)

    def abandon(self) -> None:
        # An unfinished multipart upload is not listed as an object, but its parts are kept (and
        # billed) until it is aborted.
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                self._fs.call_s3(
                    "abort_multipart_upload", Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
            self._upload_id = None


class _FileUpload:
    """One file written through ``fs.open(path, "wb", block_size=part_size)`` (any other store)."""

    def __init__(self, destination: StorageLocation, path: str, part_size: int) -> None:
        self._destination = destination
        self._path = path
        self._writer = destination.fs.open(path, "wb", block_size=part_size)

    def send(self, part: memoryview, want: int) -> bool:
        if part:
            self._writer.write(part)
        return len(part) == want

    def finish(self) -> None:
        self._writer.close()  # object stores upload the last part here: it can fail too

    def abandon(self) -> None:
        """Best effort: drop a half-written file, so no truncated file remains."""
        # fsspec's ``discard()`` would not mark the file closed, and its finaliser would then commit it.
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(Exception):
            self._destination.fs.rm_file(self._path)
