"""Logical backups: rows read through the client (``query_iterator``), stored as Parquet.

For servers whose storage cannot be reached (Milvus Lite, a managed cluster): no bucket access, no
binlogs. The backup directory holds the usual meta files (schema, partitions, indexes, aliases; no
segments) and, per partition, Parquet files under
``logical/{db}/{collection}/{partition index}-{partition id}/part-{n:05d}.parquet`` (the index keeps
keys unique where the server reports every ID as 0, as Milvus Lite does). Columns are the schema's
fields in schema order and the dynamic field as ``$meta`` (JSON text), typed as the offline reader
returns them (:mod:`milvus_backup_lib.reader._arrow`), so the reader reads both kinds of backup alike.
``meta/milvus_backup_lib.json`` marks it (``strategy: "logical"``) and records each file's size,
checksum and rows, and each partition's rows (:class:`~milvus_backup_lib.repository.store.LibraryMeta`).

Reading and writing overlap: a thread pulls pages from the server into a bounded queue while this one
converts them to Arrow and writes them; memory holds at most ``QUEUE_PAGES + 1`` pages and one open
Parquet writer. A partition-key collection is read whole (Milvus refuses partition names in its
queries) and stored under its first partition.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import attrs

from milvus_backup_lib.backup.copier import CopyResult
from milvus_backup_lib.backup.logical_rows import RowConverter, page_rows_for
from milvus_backup_lib.errors import (
    InvalidOptionError,
    MilvusOperationError,
    MissingDependencyError,
    StorageError,
)
from milvus_backup_lib.manifest.model import BackupInfo, CollectionBackupInfo, PartitionBackupInfo
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.progress import Progress
from milvus_backup_lib.reader._arrow import arrow
from milvus_backup_lib.reader._reader import _with_dynamic_field
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.storage.location import StorageLocation

__all__ = [
    "FILE_ROWS",
    "LOGICAL_DIR",
    "PAGE_ROWS",
    "LogicalResult",
    "LogicalWriter",
    "need_milvus_storage",
    "partition_dir",
    "read_ahead",
]

log = logging.getLogger(__name__)

LOGICAL_DIR = "logical"
#: Rows a ``query_iterator`` page asks for at most (Milvus caps one query at 16384 rows); fewer for wide
#: rows, so that a page stays within ``logical_rows.PAGE_BUDGET`` bytes of Python objects.
PAGE_ROWS = 8192
#: Rows of one Parquet file at most; a partition with more gets several.
FILE_ROWS = 1_000_000
#: Pages read ahead of the writer: with the one being read and the one being written, at most 5 pages
#: (5 x 32 MiB) are held at once.
QUEUE_PAGES = 3
_DONE = object()


def partition_dir(coll: CollectionBackupInfo, index: int, partition: PartitionBackupInfo) -> str:
    """The backup-relative directory of a partition's Parquet files."""
    return (
        f"{LOGICAL_DIR}/{coll.db_name or 'default'}/{coll.collection_name}/{index}-{partition.partition_id}"
    )


def need_milvus_storage(value: StorageLocation | None, what: str) -> StorageLocation:
    """``value``, or :class:`InvalidOptionError` saying that ``what`` needs Milvus's storage."""
    if value is None:
        raise InvalidOptionError(
            "milvus_storage",
            None,
            "the URL of Milvus's storage (its bucket and rootPath, or its local data directory), such as "
            "'s3://bucket/files'; or back up with strategy='logical', which reads rows through the server",
            detail=f"for {what}: it copies Milvus's own files",
        )
    return value


@attrs.frozen
class LogicalResult:
    """What :meth:`LogicalWriter.write` stored: the manifest with sizes, and our record of the files."""

    info: BackupInfo
    copy: CopyResult
    #: backup-relative key -> size, -> ``md5:<hex>``
    files: dict[str, int]
    checksums: dict[str, str]
    #: ``{qualified: {partition: {"rows": n, "files": {key: rows}}}}`` (``LibraryMeta.logical``)
    logical: dict[str, Any]
    seconds: float


class _HashingFile:
    """A binary file object that counts and hashes what is written through it."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.md5.update(view)
        self.size += len(view)
        self.raw.write(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.raw.close()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False


def read_ahead(
    pages: Iterator[list[dict[str, Any]]], depth: int = QUEUE_PAGES
) -> Generator[list[dict[str, Any]], None, None]:
    """``pages``, pulled by a thread into a queue of ``depth`` pages; an error there is raised here.
    Leaving early stops the thread (and closes ``pages``) within a page."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pull() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pull, name="logical-read", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@attrs.define
class LogicalWriter:
    """Writes the rows of a snapshot's collections (read from ``cluster``) into backup ``name``."""

    cluster: MilvusCluster
    repository: BackupRepository
    name: str
    lock: BackupLock
    #: Rows of a query page; None: :data:`PAGE_ROWS`, fewer for wide rows (:func:`page_rows_for`).
    page_rows: int | None = None
    file_rows: int = FILE_ROWS

    @property
    def location(self) -> StorageLocation:
        return self.repository.location

    def check(self, info: BackupInfo) -> None:
        """Refuse, before anything is written, a collection a query cannot read (not loaded), and a
        logical backup without pyarrow (the ``arrow`` extra)."""
        try:
            import pyarrow.parquet  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "pyarrow", "arrow", "a logical backup (strategy='logical')"
            ) from None
        for coll in info.collection_backups:
            if coll.load_state != "Loaded":
                raise MilvusOperationError(
                    "Query",
                    f"collection {coll.qualified_name} is not loaded ({coll.load_state or 'NotLoad'}); a "
                    "logical backup reads rows by query: load it (MilvusClient.load_collection) and back up again",
                )

    def write(self, info: BackupInfo, progress: Progress) -> LogicalResult:
        """Read every partition of every collection of ``info`` and store it; ``info`` with sizes."""
        started = time.monotonic()
        self.check(info)
        files: dict[str, int] = {}
        checksums: dict[str, str] = {}
        logical: dict[str, Any] = {}
        collections = []
        for coll in info.collection_backups:
            progress.collection_started(coll.qualified_name)
            per_partition: dict[str, Any] = {}
            parts = []
            for index, part in enumerate(coll.partition_backups):
                written = self._partition(coll, index, part, progress)
                per_partition[part.partition_name] = {
                    "rows": sum(rows for _, _, rows, _ in written),
                    "files": {key: rows for key, _, rows, _ in written},
                }
                for key, size, _, digest in written:
                    files[key], checksums[key] = size, digest
                parts.append(attrs.evolve(part, size=sum(size for _, size, _, _ in written)))
            logical[coll.qualified_name] = per_partition
            collections.append(
                attrs.evolve(coll, partition_backups=tuple(parts), size=sum(p.size for p in parts))
            )
            progress.collection_done(coll.qualified_name)
        total = sum(files.values())
        return LogicalResult(
            info=attrs.evolve(info, collection_backups=tuple(collections), size=total),
            copy=CopyResult(
                files=len(files), bytes_copied=total, server_side=False, bytes_through_client=total
            ),
            files=files,
            checksums=checksums,
            logical=logical,
            seconds=time.monotonic() - started,
        )

    def _partition(
        self, coll: CollectionBackupInfo, index: int, part: PartitionBackupInfo, progress: Progress
    ) -> list[tuple[str, int, int, str]]:
        """Write one partition: ``(key, size, rows, checksum)`` of each file (none for no rows)."""
        schema = coll.schema
        whole = schema.partition_key_field is not None
        if whole and index > 0:  # read with the first partition: the rows of all of them
            return []
        fields = _with_dynamic_field(schema)
        converter = RowConverter(fields)
        page_rows = self.page_rows or page_rows_for(fields, PAGE_ROWS)
        db = coll.db_name or "default"
        pages = self.cluster.iter_rows(
            db, coll.collection_name, "" if whole else part.partition_name, page_rows, ["*"]
        )
        out: list[tuple[str, int, int, str]] = []
        writer: _ParquetFile | None = None
        directory = partition_dir(coll, index, part)
        # closing(): on any error the reader thread stops now, not when the traceback is freed.
        with contextlib.closing(read_ahead(pages)) as ahead:
            try:
                for page in ahead:
                    batch = converter.batch(page)
                    if writer is not None and writer.rows + batch.num_rows > self.file_rows and writer.rows:
                        out.append(writer.close())
                        writer = None
                    if writer is None:
                        self.lock.check()  # a writer that lost the lock stops within a file
                        key = f"{directory}/part-{len(out):05d}.parquet"
                        path = self.repository.path(self.name, key)
                        writer = _ParquetFile(self.location, path, key, converter)
                    writer.write(batch)
            except BaseException:
                if writer is not None:
                    writer.abandon()
                raise
        if writer is not None:
            out.append(writer.close())
        for key, size, _, _ in out:
            progress.file_done(key, size)
        return out


class _ParquetFile:
    """One Parquet file being written, its bytes hashed on the way."""

    def __init__(self, location: StorageLocation, path: str, key: str, converter: RowConverter) -> None:
        _, pq = arrow()
        self.key, self.path, self.rows = key, path, 0
        try:
            if location.is_local:
                location.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.file = _HashingFile(location.fs.open(path, "wb"))
        except Exception as exc:
            raise StorageError(
                f"cannot write {path} in {location.url}: {location.scrubbed(str(exc))}"
            ) from exc
        self.location = location
        self.writer = pq.ParquetWriter(
            self.file, converter.schema, compression="zstd", use_dictionary=converter.dictionary_columns
        )

    def write(self, batch: Any) -> None:
        if batch.num_rows:
            self.writer.write_batch(batch)
            self.rows += batch.num_rows

    def abandon(self) -> None:
        """Drop the file being written (an upload not yet committed is discarded where fsspec can)."""
        discard = getattr(self.file.raw, "discard", None)
        try:
            if discard is not None:
                discard()
            else:
                self.file.close()
        except Exception:  # best effort: the backup failed already, for the reason being raised
            log.debug("could not drop %s", self.path, exc_info=True)

    def close(self) -> tuple[str, int, int, str]:
        """Finish the file: its key, size, rows and checksum."""
        try:
            self.writer.close()
            self.file.close()
        except Exception as exc:
            raise StorageError(
                f"cannot write {self.path} in {self.location.url}: {self.location.scrubbed(str(exc))}"
            ) from exc
        return self.key, self.file.size, self.rows, "md5:" + self.file.md5.hexdigest()
