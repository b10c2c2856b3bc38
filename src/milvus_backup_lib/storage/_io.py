"""The storage funnel's helpers that touch the store directly: crash-safe local writes, S3 bulk
deletes that check every key, and the client timeouts set where the user set none."""

from __future__ import annotations

import contextlib
import inspect
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync

from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.retry import call_with_retries

if TYPE_CHECKING:
    from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["bulk_delete_s3", "single_request_read", "with_default_timeouts", "write_local_atomically"]


def with_default_timeouts(protocol: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with a connect timeout and few client-side retries where the user set none: the
    library's own retry layer retries transient errors, and an endpoint that does not answer must
    fail in seconds, not after botocore's or adlfs's own minutes of retries."""
    result = dict(options)
    if protocol in ("s3", "s3a"):
        config = dict(result.get("config_kwargs") or {})
        config.setdefault("connect_timeout", 5)
        config.setdefault("retries", {"max_attempts": 2, "mode": "standard"})
        result["config_kwargs"] = config
    elif protocol in ("az", "abfs", "abfss"):
        result.setdefault("connection_timeout", 5)
    return result


def single_request_read(fs: object) -> dict[str, Any]:
    """The ``cat_file`` keywords that read a small file whole in one request.

    s3fs (2025.x on) first asks the object's size (``HeadObject``) to decide whether to download it in
    parallel ranges (``_cat_file``: ``max_concurrency > 1`` then ``_size``), which doubles the requests
    of every small meta file read; ``max_concurrency=1`` makes it one ``GetObject``. Nothing for a
    filesystem whose ``_cat_file`` has no such keyword (local, memory, older s3fs)."""
    cat_file = getattr(type(fs), "_cat_file", None)
    if cat_file is None:
        return {}
    try:
        parameters = inspect.signature(cat_file).parameters
    except (TypeError, ValueError):
        return {}
    return {"max_concurrency": 1} if "max_concurrency" in parameters else {}


def write_local_atomically(path: str, data: bytes) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def bulk_delete_s3(location: StorageLocation, path: str) -> None:
    """Delete every key below ``path`` with S3 ``DeleteObjects``, raising on any per-key failure
    (s3fs's ``_bulk_delete`` sends ``Quiet`` and ignores the ``Errors`` of the answer)."""
    fs: Any = location.fs
    keys = sorted(location.list_files(path, fresh=True))
    bucket = location.bucket
    failed: list[str] = []
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key.split("/", 1)[1]} for key in keys[start : start + 1000]]
        delete = {"Objects": batch, "Quiet": True}
        out = call_with_retries(
            f"remove {path}", sync, fs.loop, fs._call_s3, "delete_objects", Bucket=bucket, Delete=delete
        )
        failed += [f"{e.get('Key')} ({e.get('Code', '?')})" for e in out.get("Errors") or ()]
    fs.invalidate_cache(path)
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise StorageError(
            f"S3 refused to delete {len(failed)} of {len(keys)} object(s) under {path} in {location.url}: "
            f"{shown}; check the credentials' s3:DeleteObject permission and any object lock, then delete again"
        )
