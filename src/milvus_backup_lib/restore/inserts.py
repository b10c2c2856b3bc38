"""Restore by inserts: the rows of a backup read offline (:class:`~milvus_backup_lib.reader.BackupReader`,
deletes applied) and inserted into the target in batches, for targets that cannot bulk-import them.

Memory is bounded whatever the collection's size: the reader holds one Parquet row group per field of
one segment, and at most ``depth + workers`` batches wait or are in flight, each at most
``batch_rows`` rows and ``batch_bytes`` bytes (Arrow size; the request is about as large, and Milvus's
gRPC messages end at 64 MiB, ``grpc.serverMaxRecvSize``). Reading and inserting overlap: this thread
reads and slices while ``workers`` threads insert (gRPC calls release the GIL), so a restore beats a
loop that reads a batch and then inserts it (docs/benchmarks.md).

The rows are counted on the way: every batch must be taken whole by the server, and after the inserts
the target must hold exactly the rows read (:func:`check_inserted_rows`), flushed and counted.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from milvus_backup_lib.errors import InsertFailedError
from milvus_backup_lib.manifest.model import BackupInfo, CollectionSchema
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.reader import BackupReader
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import InsertData, Step
from milvus_backup_lib.restore.report import ImportOutcome

__all__ = ["InsertRestore", "check_inserted_rows", "insert_columns", "slices"]

_DONE = object()


def insert_columns(schema: CollectionSchema) -> list[str]:
    """The columns an insert takes: every field but an auto-ID primary key and function outputs (the
    server generates both), and ``$meta`` for a dynamic schema."""
    names = [
        f.name
        for f in schema.fields
        if not f.is_dynamic and not (f.is_primary_key and f.auto_id) and not f.is_function_output
    ]
    if schema.enable_dynamic_field:
        names.append("$meta")
    return names


def slices(batches: Iterator[Any], max_rows: int, max_bytes: int) -> Iterator[Any]:
    """``batches`` cut so that none has more than ``max_rows`` rows or (as far as rows allow) ``max_bytes``."""
    for batch in batches:
        if not batch.num_rows:
            continue
        per_row = max(1, batch.nbytes // batch.num_rows)
        step = max(1, min(max_rows, max_bytes // per_row))
        for start in range(0, batch.num_rows, step):
            yield batch.slice(start, step)


def pipeline(
    items: Iterator[Any], consume: Callable[[Any], None], workers: int, depth: int, check: Callable[[], None]
) -> None:
    """Run ``consume`` on each item in ``workers`` threads while this thread draws the next items; at
    most ``depth`` items wait. The first failure (here or in a worker) stops both sides and is raised."""
    todo: queue.Queue[Any] = queue.Queue(maxsize=depth)
    failed = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        while (item := todo.get()) is not _DONE:
            if failed.is_set():
                continue  # drain, so the producer never blocks
            try:
                consume(item)
            except BaseException as exc:
                errors.append(exc)
                failed.set()

    threads = [threading.Thread(target=work, name=f"restore-insert-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for item in items:
            check()
            while not failed.is_set():
                try:
                    todo.put(item, timeout=0.2)
                    break
                except queue.Full:
                    check()
            if failed.is_set():
                break
    except BaseException:
        failed.set()
        raise
    finally:
        for _ in threads:
            todo.put(_DONE)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


class InsertRestore:
    """Inserts the rows of backed-up collections into their targets, partition by partition."""

    def __init__(
        self,
        milvus: MilvusCluster,
        reader: BackupReader,
        progress: Progress = NULL_PROGRESS,
        check: Callable[[], None] = lambda: None,
        *,
        workers: int = 2,
    ) -> None:
        self.milvus = milvus
        self.reader = reader
        self.progress = progress
        self.check = check
        self.workers = max(1, workers)

    def collection(
        self, options: RestoreOptions, backup: BackupInfo, steps: Sequence[Step], existed: bool
    ) -> list[ImportOutcome]:
        """Run the insert steps among ``steps`` (one collection's) and check the row count: the target
        must gain exactly the rows read, the backup's live rows, or :class:`InsertFailedError` is raised.
        ``existed``: the target held rows before (``skip_create``), counted first."""
        inserts = [s for s in steps if isinstance(s, InsertData)]
        source, target = inserts[0].source, inserts[0].target
        schema = backup.collection(source.database, source.collection).schema
        db, name = target.database, target.collection
        before = settled_rows(self.milvus, db, name) if existed else 0
        outcomes = [
            self.partition(step, schema, options.insert_batch_rows, options.insert_batch_bytes)
            for step in inserts
        ]
        after = settled_rows(self.milvus, db, name)
        check_inserted_rows(str(target), before, sum(o.imported_rows for o in outcomes), after)
        return outcomes

    def partition(
        self, step: InsertData, schema: CollectionSchema, batch_rows: int, batch_bytes: int
    ) -> ImportOutcome:
        """Insert the live rows of one backed-up partition; ``imported_rows`` is the rows inserted."""
        started = time.monotonic()
        target, db, name = str(step.target), step.target.database, step.target.collection
        lock = threading.Lock()
        inserted = [0]

        def insert(batch: Any) -> None:
            taken = self.milvus.insert_rows(db, name, step.into or None, batch, schema)
            if taken != batch.num_rows:
                raise InsertFailedError(
                    f"insert into {target} took {taken} of {batch.num_rows} rows (from partition "
                    f"{step.partition!r} of the backup); restore again with drop_existing"
                )
            with lock:
                inserted[0] += taken
            self.progress.rows_inserted(target, step.partition, taken)

        batches = self.reader.iter_batches(
            str(step.source), batch_rows, partitions=[step.partition], columns=insert_columns(schema)
        )
        pipeline(slices(batches, batch_rows, batch_bytes), insert, self.workers, 2 * self.workers, self.check)
        expected = step.rows
        library = self.reader.library
        if library is not None and library.is_logical:
            # A logical backup records the rows of each partition: every one of them must have gone in.
            expected = library.partition_rows(str(step.source)).get(step.partition, 0)
            if inserted[0] != expected:
                raise InsertFailedError(
                    f"inserted {inserted[0]} rows into {target} from partition {step.partition!r} of the "
                    f"logical backup, which records {expected}: the backup is damaged or incomplete "
                    "(verify_backup(level='checksum') says which file)"
                )
        return ImportOutcome(
            partition=step.partition,
            files=(),
            expected_rows=expected,
            delete_entries=0,
            imported_rows=inserted[0],
            seconds=time.monotonic() - started,
            staged=False,
        )


def check_inserted_rows(target: str, before: int, inserted: int, after: int) -> None:
    """Raise :class:`InsertFailedError` unless the target went from ``before`` to ``before + inserted`` rows."""
    if after - before != inserted:
        raise InsertFailedError(
            f"{target} holds {after} rows after inserting {inserted} live rows of the backup "
            f"(it held {before} before): the restore is incomplete; restore again with drop_existing"
        )


def settled_rows(milvus: MilvusCluster, db: str, name: str) -> int:
    """The collection's rows once everything inserted is flushed (``GetCollectionStatistics``)."""
    milvus.wait_flushed(db, name, milvus.flush(db, name))
    return milvus.statistics_row_count(db, name)
