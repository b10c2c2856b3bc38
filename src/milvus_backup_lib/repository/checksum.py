"""Checksums of backed-up files: ``md5:<hex>``, recorded in ``meta/milvus_backup_lib.json``.

An MD5 the store reports is taken only where the store vouches that it is the MD5 of the bytes:

- S3 (and S3-compatible stores): the ``ETag`` of ``head_object`` for a single-part upload that is not
  encrypted with SSE-KMS or SSE-C. AWS documents that the ETag of an object "encrypted by SSE-C or
  SSE-KMS" and of a multipart upload ("...-N") is not an MD5 of its data (S3 API reference, ``Object``:
  ``ETag``); a listing does not say how an object is encrypted, so its ETag is never taken.
- GCS: ``md5Hash``, which GCS omits for composite objects (made by compose, or by a parallel upload).
- Azure: ``Content-MD5`` (``content_settings.content_md5``), only when it is set.

Everywhere else (local disk, memory, HTTP, and the objects above that do not qualify) the file is read
once, in 1 MiB chunks (bounded memory), under a retry budget sized for the file. It guards against
corruption and truncation, not against an attacker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.retry import DEFAULT_POLICY, budget_for
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["compute_checksums", "md5_of", "s3_head_md5", "store_checksum", "store_md5"]

_CHUNK = 2**20  # 1 MiB: checksums read with bounded memory (threads x chunk)
_S3_PROTOCOLS = frozenset({"s3", "s3a"})
#: ``ServerSideEncryption`` values whose ETag is not the MD5 of the data (SSE-S3, ``AES256``, keeps it).
_S3_KMS = frozenset({"aws:kms", "aws:kms:dsse"})


def _md5_once(location: StorageLocation, path: str, chunk_size: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with location.fs.open(path, "rb", block_size=chunk_size) as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return "md5:" + digest.hexdigest()


def md5_of(location: StorageLocation, path: str, chunk_size: int = _CHUNK, *, size: int | None = None) -> str:
    """``md5:<hex>`` of a file, read in bounded chunks (a transient failure rereads it).

    ``size`` (bytes, when known) sizes the retry budget, so a read that fails late in a large file is
    tried again (see :func:`milvus_backup_lib.retry.budget_for`). Raises :class:`StorageError` naming
    the file, also when it does not exist (its ``__cause__`` is then the ``FileNotFoundError``)."""
    policy = DEFAULT_POLICY if size is None else budget_for(size)
    try:
        return policy.call(f"checksum {path}", _md5_once, location, path, chunk_size)
    except FileNotFoundError as exc:
        raise StorageError(
            f"{path} in {location.url} vanished while its checksum was computed (deleted meanwhile, by "
            "Milvus's compaction and GC or another process); run the operation again"
        ) from exc
    except Exception as exc:
        raise StorageError(
            f"cannot read {path} to checksum it: {type(exc).__name__}: {scrub(str(exc), location)}"
        ) from exc


def _etag_md5(etag: object) -> str | None:
    """``md5:<hex>`` of an ETag shaped like an MD5 (32 hex digits, no ``-N`` multipart suffix)."""
    if not isinstance(etag, str):
        return None
    etag = etag.strip().strip('"')
    if len(etag) != 32 or "-" in etag:
        return None
    try:
        int(etag, 16)
    except ValueError:
        return None
    return "md5:" + etag.lower()


def s3_head_md5(head: Mapping[str, Any]) -> str | None:
    """The MD5 an S3 ``head_object`` answer vouches for: its ETag for a single-part object without
    SSE-KMS or SSE-C; None otherwise (then the file has to be read)."""
    if head.get("ServerSideEncryption") in _S3_KMS or head.get("SSECustomerAlgorithm"):
        return None
    parts = head.get("PartsCount")
    if isinstance(parts, int) and parts > 1:
        return None
    return _etag_md5(head.get("ETag"))


def store_md5(entry: Mapping[str, Any]) -> str | None:
    """The MD5 a GCS or Azure info entry vouches for (``md5Hash``, ``content_md5``), or None.

    An S3 ETag in the entry is not taken: a listing or ``info`` does not say whether the object is
    encrypted with SSE-KMS or SSE-C, which makes the ETag something else (:func:`s3_head_md5` decides
    from a ``head_object`` answer)."""
    md5_hash = entry.get("md5Hash")
    if isinstance(md5_hash, str) and md5_hash:
        try:
            raw = base64.b64decode(md5_hash, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 16:
            return "md5:" + raw.hex()
    settings = entry.get("content_settings")
    content_md5 = settings.get("content_md5") if isinstance(settings, Mapping) else None
    if content_md5 is None and settings is not None:
        content_md5 = getattr(settings, "content_md5", None)
    if isinstance(content_md5, bytes | bytearray) and len(content_md5) == 16:
        return "md5:" + bytes(content_md5).hex()
    return None


def store_checksum(location: StorageLocation, path: str) -> tuple[str | None, int | None]:
    """The MD5 the store vouches for (None when it vouches for none) and the size it reports.

    One request: ``head_object`` on S3, the object's metadata elsewhere. Raises what the store raises
    (``FileNotFoundError`` for a missing file)."""
    fs = location.fs
    if location.protocol in _S3_PROTOCOLS and hasattr(fs, "call_s3"):
        bucket, key, _ = fs.split_path(path)
        head = DEFAULT_POLICY.call(f"head {path}", fs.call_s3, "head_object", Bucket=bucket, Key=key)
        size = head.get("ContentLength")
        return s3_head_md5(head), size if isinstance(size, int) else None
    info = DEFAULT_POLICY.call(f"info {path}", fs.info, path)
    size = info.get("size")
    return store_md5(info), size if isinstance(size, int) else None


def compute_checksums(
    location: StorageLocation,
    paths: Iterable[str],
    *,
    concurrency: int = 8,
    trust_store: bool = True,
    on_done: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """``{path: md5:<hex>}`` for files in ``location``; from the store's own MD5 where it vouches for
    one (``trust_store``), else by reading the file."""
    paths = list(paths)

    def one(path: str) -> tuple[str, str]:
        checksum, size = None, None
        if trust_store and not location.is_local and location.protocol != "memory":
            try:
                checksum, size = store_checksum(location, path)
            except FileNotFoundError:
                checksum = None  # md5_of says which file vanished
            except Exception:
                checksum = None  # the metadata request failed: reading the file decides
        if checksum is None:
            checksum = md5_of(location, path, size=size)
        if on_done is not None:
            on_done(path)
        return path, checksum

    if not paths:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="checksum") as pool:
        return dict(pool.map(one, paths))
