"""Reading a logical backup (:mod:`milvus_backup_lib.backup.logical`): its Parquet files, partition by
partition, as the same record batches a physical backup gives.

The files already hold the reader's column names and Arrow types (the logical writer writes them with
:func:`milvus_backup_lib.backup.logical_rows.arrow_schema`) and only live rows (deletes were applied by
the server's query at backup time). Memory holds one Parquet row group (one query page) at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from milvus_backup_lib.errors import CorruptBinlogError
from milvus_backup_lib.manifest.model import CollectionBackupInfo
from milvus_backup_lib.reader._arrow import arrow
from milvus_backup_lib.repository.store import LibraryMeta
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["logical_batches"]


def _file_batches(location: StorageLocation, path: str, batch_rows: int, schema: Any) -> Iterator[Any]:
    pa, pq = arrow()
    names = list(schema.names)
    try:
        with location.fs.open(path, "rb") as fh:
            parquet = pq.ParquetFile(fh)
            stored = set(parquet.schema_arrow.names)
            wanted = [n for n in names if n in stored]
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=wanted):
                columns = []
                for field in schema:
                    if field.name in stored:
                        column = batch.column(field.name)
                        columns.append(column if column.type == field.type else column.cast(field.type))
                    else:  # a field added to the schema after the backup's files were written
                        columns.append(pa.nulls(batch.num_rows, field.type))
                yield pa.RecordBatch.from_arrays(columns, schema=schema)
    except FileNotFoundError:
        raise CorruptBinlogError(path, 0, "the Parquet file of a logical backup is missing") from None
    except CorruptBinlogError:
        raise
    except Exception as exc:  # pyarrow's ArrowInvalid (not Parquet, truncated), a failed cast
        raise CorruptBinlogError(path, 0, f"not a readable Parquet file: {exc}") from None


def logical_batches(
    location: StorageLocation,
    backup_dir: str,
    coll: CollectionBackupInfo,
    library: LibraryMeta,
    partitions: set[str] | None,
    batch_rows: int,
    schema: Any,
) -> Iterator[tuple[str, int, Iterator[Any]]]:
    """``(partition name, file number, batches)`` of each Parquet file of the ``partitions`` named
    (None: all of them)."""
    stored = library.logical.get(coll.qualified_name, {})
    for part in coll.partition_backups:
        if partitions is not None and part.partition_name not in partitions:
            continue
        files: Sequence[str] = sorted(stored.get(part.partition_name, {}).get("files", {}))
        for number, key in enumerate(files):
            yield (
                part.partition_name,
                number,
                _file_batches(location, f"{backup_dir}/{key}", batch_rows, schema),
            )
