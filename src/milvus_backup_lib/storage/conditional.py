"""Conditional writes of one small object, on every backend: the primitives of the backup lock.

Each store compares and swaps in its own way, always done by the store itself, never read-then-write:

- S3: ``PutObject`` with ``If-None-Match: *`` (create) or ``If-Match: <ETag>`` (replace);
- GCS: multipart uploads with ``ifGenerationMatch=0`` (create) or ``=<generation>`` (replace, delete);
- Azure Blob: ``overwrite=False`` (create) or ``etag`` + ``MatchConditions.IfNotModified``;
- local disk: the whole file is written to a temporary name and fsynced, then ``os.link`` onto the
  name (fails if it exists: create) or, under an ``flock`` of the directory, compared and renamed
  over it (replace); a reader never sees a partial file;
- fsspec's memory store (one process): a process-wide mutex around compare and write.

A version is opaque: the ETag, the generation, or the MD5 of the content on local disk and in memory.
:func:`read_versioned` also gives the object's age measured on the store's own clock (its
Last-Modified against the HTTP ``Date`` of the same answer; on local disk and in memory the file's
mtime against this machine's clock), so clock skew between writers does not matter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Iterator

from milvus_backup_lib.storage._conditional_base import (
    ConditionalBackend,
    Versioned,
    age_between,
    is_conflict,
    md5_hex,
)
from milvus_backup_lib.storage._conditional_cloud import AzureConditional, GcsConditional, S3Conditional
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["Versioned", "create_exclusive", "read_versioned", "remove_if", "replace_if"]

_memory_mutex = threading.Lock()


def read_versioned(location: StorageLocation, path: str) -> Versioned | None:
    """The object at ``path`` with its version, or None if there is none."""
    return _backend(location).read(path)


def create_exclusive(location: StorageLocation, path: str, data: bytes) -> str | None:
    """Write ``data`` at ``path`` only if nothing is there; its new version, or None if something is."""
    return _backend(location).create(path, data)


def replace_if(location: StorageLocation, path: str, data: bytes, version: str) -> str | None:
    """Overwrite ``path`` only if it is still at ``version``; the new version, or None if it is not."""
    return _backend(location).replace(path, data, version)


def remove_if(location: StorageLocation, path: str, version: str) -> bool:
    """Delete ``path`` only if it is still at ``version``; whether it was deleted."""
    return _backend(location).remove(path, version)


class _Local(ConditionalBackend):
    """Local disk: whole files renamed or linked into place; compare-and-swap under a directory flock."""

    def read(self, path: str) -> Versioned | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as fh:
            stat = os.fstat(fh.fileno())
            data = fh.read()
        return Versioned(data, md5_hex(data), age_between(time.time(), stat.st_mtime))

    def _temp(self, path: str, data: bytes) -> str:
        temp = f"{path}.{uuid.uuid4().hex}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return temp

    @contextlib.contextmanager
    def _guard(self, path: str) -> Iterator[None]:
        """An exclusive ``flock`` on the lock's directory: one compare-and-swap at a time, across processes."""
        import fcntl  # POSIX only: imported here so the package still imports elsewhere

        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _sync_dir(self, path: str) -> None:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(self, path: str, data: bytes) -> str | None:
        temp = self._temp(path, data)
        try:
            os.link(temp, path)  # atomic, and never over an existing file
        except FileExistsError:
            return None
        finally:
            os.unlink(temp)
        self._sync_dir(path)
        return md5_hex(data)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        temp = self._temp(path, data)
        try:
            with self._guard(path):
                current = self.read(path)
                if current is None or current.version != version:
                    return None
                os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._sync_dir(path)
        return md5_hex(data)

    def remove(self, path: str, version: str) -> bool:
        with self._guard(path):
            current = self.read(path)
            if current is None or current.version != version:
                return False
            os.unlink(path)
        return True


class _Memory(ConditionalBackend):
    """fsspec's memory store lives in this process: a process-wide mutex makes compare and write one step."""

    def _read(self, path: str) -> Versioned | None:
        try:
            data = self.fs.cat_file(path)
            created = self.fs.info(path).get("created")
        except FileNotFoundError:
            return None
        modified = created.timestamp() if isinstance(created, dt.datetime) else created
        return Versioned(data, md5_hex(data), age_between(time.time(), modified))

    def read(self, path: str) -> Versioned | None:
        with _memory_mutex:
            return self._read(path)

    def create(self, path: str, data: bytes) -> str | None:
        with _memory_mutex:
            if self.fs.exists(path):
                return None
            self.fs.pipe_file(path, data)
        return md5_hex(data)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        with _memory_mutex:
            current = self._read(path)
            if current is None or current.version != version:
                return None
            self.fs.pipe_file(path, data)
        return md5_hex(data)

    def remove(self, path: str, version: str) -> bool:
        with _memory_mutex:
            current = self._read(path)
            if current is None or current.version != version:
                return False
            self.fs.rm_file(path)
        return True


def _backend(location: StorageLocation) -> ConditionalBackend:
    protocol = location.protocol
    if location.is_local:
        return _Local(location)
    if protocol == "memory":
        return _Memory(location)
    if protocol in ("s3", "s3a"):
        return S3Conditional(location)
    if protocol in ("gs", "gcs"):
        return GcsConditional(location)
    if protocol in ("az", "abfs", "abfss"):
        return AzureConditional(location)
    return _Generic(location)


class _Generic(ConditionalBackend):
    """Any other fsspec store: only its exclusive create (``mode="create"``) is conditional."""

    def read(self, path: str) -> Versioned | None:
        try:
            self.fs.invalidate_cache(path)
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return Versioned(data, md5_hex(data), None)

    def create(self, path: str, data: bytes) -> str | None:
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return None
        except Exception as exc:
            if is_conflict(exc):
                return None
            raise
        return md5_hex(data)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        current = self.read(path)  # not atomic: no store-side condition is known for this backend
        if current is None or current.version != version:
            return None
        self.fs.pipe_file(path, data)
        return md5_hex(data)

    def remove(self, path: str, version: str) -> bool:
        current = self.read(path)
        if current is None or current.version != version:
            return False
        self.fs.rm_file(path)
        return True
