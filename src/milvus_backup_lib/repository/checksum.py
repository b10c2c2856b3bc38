"""Checksums of backed-up files: ``md5:<hex>``, recorded in ``meta/milvus_backup_lib.json``.

MD5 because every object store we support reports it for plain uploads and server-side copies without
reading the bytes (S3's ETag of a single-part object, GCS's ``md5Hash``, Azure's ``Content-MD5`` when
set), so a backup on an object store gets its checksums from a listing; elsewhere, and when the store
does not say, the file is read once. It guards against corruption and truncation, not against an
attacker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.retry import call_with_retries
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["compute_checksums", "md5_of", "store_md5"]

_CHUNK = 2**20  # 1 MiB: checksums read with bounded memory (threads x chunk)


def _md5_once(location: StorageLocation, path: str, chunk_size: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with location.fs.open(path, "rb", block_size=chunk_size) as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return "md5:" + digest.hexdigest()


def md5_of(location: StorageLocation, path: str, chunk_size: int = _CHUNK) -> str:
    """``md5:<hex>`` of a file, read in bounded chunks (a transient failure rereads it).

    Raises :class:`StorageError` naming the file, also when it does not exist (its ``__cause__`` is
    then the ``FileNotFoundError``)."""
    try:
        return call_with_retries(f"checksum {path}", _md5_once, location, path, chunk_size)
    except FileNotFoundError as exc:
        raise StorageError(
            f"{path} in {location.url} vanished while its checksum was computed (deleted meanwhile, by "
            "Milvus's compaction and GC or another process); run the operation again"
        ) from exc
    except Exception as exc:
        raise StorageError(
            f"cannot read {path} to checksum it: {type(exc).__name__}: {scrub(str(exc), location)}"
        ) from exc


def store_md5(entry: Mapping[str, Any]) -> str | None:
    """The MD5 an object store reports in a listing/info entry, or None if it reports none."""
    etag = entry.get("ETag") or entry.get("etag")
    if isinstance(etag, str):
        etag = etag.strip('"')
        if len(etag) == 32 and "-" not in etag:  # multipart ETags ("...-3") are not an MD5
            try:
                int(etag, 16)
            except ValueError:
                pass
            else:
                return "md5:" + etag.lower()
    md5_hash = entry.get("md5Hash")
    if isinstance(md5_hash, str):
        try:
            return "md5:" + base64.b64decode(md5_hash).hex()
        except (binascii.Error, ValueError):
            pass
    settings = entry.get("content_settings")
    content_md5 = settings.get("content_md5") if isinstance(settings, Mapping) else None
    if content_md5 is None and settings is not None:
        content_md5 = getattr(settings, "content_md5", None)
    if isinstance(content_md5, bytes | bytearray) and len(content_md5) == 16:
        return "md5:" + bytes(content_md5).hex()
    return None


def compute_checksums(
    location: StorageLocation,
    paths: Iterable[str],
    *,
    concurrency: int = 8,
    trust_store: bool = True,
    on_done: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """``{path: md5:<hex>}`` for files in ``location``; from the store's own MD5 where it has one
    (``trust_store``), else by reading the file."""
    paths = list(paths)

    def one(path: str) -> tuple[str, str]:
        checksum = None
        if trust_store and not location.is_local and location.protocol != "memory":
            try:
                checksum = store_md5(location.fs.info(path))
            except FileNotFoundError:
                checksum = None  # md5_of says which file vanished
            except Exception:
                checksum = None
        if checksum is None:
            checksum = md5_of(location, path)
        if on_done is not None:
            on_done(path)
        return path, checksum

    if not paths:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="checksum") as pool:
        return dict(pool.map(one, paths))
