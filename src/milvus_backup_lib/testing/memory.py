"""An in-memory Milvus cluster for fast tests of everything above the :class:`MilvusCluster` boundary.

:class:`InMemoryMilvus` implements every method of the Protocol over fsspec's memory filesystem, and
writes real segment files there (v1 binlogs, delete logs, storage v2 Parquet) that imports read back. It
imitates one Milvus version line, chosen by ``version``:

- ``2.3.x``: deletes of a flush become delta logs of the segments they hit; no GC control (the pause
  answers like the HTTP 404 of 2.3.5); the binlog importer refuses Float16, BFloat16, Sparse and Int8
  vectors ("Import util: unsupported data type", seen on 2.3.5).
- ``2.4.x`` and ``2.5.x``: deletes of a flush go to L0 segments (partition -1 when the delete named no
  partition); GC control; ``l0_import=true`` imports apply deletes. 2.5 writes v1 delete logs with the
  stream writer, whose delete event has no ``next_position`` (see :mod:`._memory_binlog`).
- ``2.6.x``: storage v2: segments are Parquet column groups and report ``storage_version=2``; delete logs
  are bare Parquet; importing storage v2 files needs the ``storage_version=2`` option.
- ``2.5.8`` and later: ``segment_binlogs`` lists each segment's committed binlogs (:mod:`._memory_segments`);
  before, it answers None (the REST API is absent). ``rows_per_file`` splits big segments into several
  files per field or column group. Struct array
  fields and ``AddCollectionField`` (see :mod:`._memory_schema`).

Sources are cited in :mod:`._memory_binlog`, :mod:`._memory_data` and :mod:`._memory_import`. Pass
``cluster.factory`` as ``BackupClient(milvus_factory=...)``; its storage is ``cluster.storage``. A data
API for tests: :meth:`insert`, :meth:`delete`, :meth:`compact`, :meth:`run_gc` and :meth:`rows` (what a
query returns: live rows by primary key, dynamic keys under their own names, JSON parsed, vectors as the
bytes Milvus stores). Needs pyarrow (the ``testing`` extra).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
from pymilvus.grpc_gen import msg_pb2

from milvus_backup_lib.errors import CollectionNotFoundError, DatabaseNotFoundError, MilvusOperationError
from milvus_backup_lib.manifest.model import CollectionSchema, DataType, IndexInfo
from milvus_backup_lib.milvus.protocol import MilvusCluster, MilvusFactory
from milvus_backup_lib.milvus.records import (
    ChannelCheckpoint,
    CollectionDescription,
    FlushResult,
    PartitionInfo,
    SegmentInfo,
)
from milvus_backup_lib.options import DEFAULT_DATABASE, MilvusConnection
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing._memory_admin import AdminState
from milvus_backup_lib.testing._memory_data import DataPlane
from milvus_backup_lib.testing._memory_jobs import ImportJobs
from milvus_backup_lib.testing._memory_rows import query_pages
from milvus_backup_lib.testing._memory_schema import DEFAULT_PARTITION, SchemaState
from milvus_backup_lib.testing._memory_segments import SegmentMeta
from milvus_backup_lib.testing._memory_state import Clock, Collection, Partition, VersionLine, field

__all__ = ["InMemoryMilvus", "field"]

_instances = itertools.count(1)


class InMemoryMilvus(ImportJobs, AdminState, SchemaState, SegmentMeta):
    """A Milvus cluster held in memory (see the module docstring). Thread-safe."""

    def __init__(
        self, version: str = "2.3.5", *, root: str | None = None, rows_per_file: int | None = None
    ) -> None:
        self.line = VersionLine.parse(version)
        instance = next(_instances)
        self.storage = StorageLocation(root or f"memory://milvus-{uuid.uuid4().hex[:12]}/files")
        # IDs look like Milvus's (about 4.5e17, beyond 2**53) and differ between instances.
        self._clock = Clock(450_000_000_000_000_000 + instance * 1_000_000_000_000)
        self._data = DataPlane(self.storage, self.line, self._clock, rows_per_file)
        self._lock = threading.RLock()
        self._dbs: dict[str, dict[str, Collection]] = {DEFAULT_DATABASE: {}}
        self._db_ids: dict[str, int] = {DEFAULT_DATABASE: 1}
        self._aliases: dict[tuple[str, str], str] = {}
        self._dropped: list[Collection] = []
        self._init_imports()
        #: The connections :attr:`factory` was opened with.
        self.connections: list[MilvusConnection] = []
        #: Every import request: ``(db, collection, partition, files, options)``.
        self.import_requests: list[tuple[str, str, str, tuple[str, ...], dict[str, str]]] = []
        self._init_admin()
        self._init_schema()

    def __repr__(self) -> str:
        return f"InMemoryMilvus({self.line.text!r}, storage={self.storage.url!r})"

    @property
    def factory(self) -> MilvusFactory:
        """A :data:`MilvusFactory` that yields this cluster whatever the connection says."""

        @contextmanager
        def open_cluster(connection: MilvusConnection) -> Iterator[MilvusCluster]:
            self.connections.append(connection)
            yield self

        return open_cluster

    # -- lookups ------------------------------------------------------------------------------------

    def _db(self, db: str) -> dict[str, Collection]:
        if db not in self._dbs:
            raise DatabaseNotFoundError(db)
        return self._dbs[db]

    def _coll(self, db: str, name: str) -> Collection:
        colls = self._db(db)
        name = self._aliases.get((db, name), name)
        if name not in colls:
            raise CollectionNotFoundError(db, name)
        return colls[name]

    def _partition_id(self, coll: Collection, partition: str, operation: str) -> int:
        part = coll.partition(partition)
        if part is None:
            raise MilvusOperationError(operation, f"partition not found[partition={partition}]")
        return part.partition_id

    # -- server -----------------------------------------------------------------------------------

    def server_version(self) -> str:
        return f"v{self.line.text}"

    def close(self) -> None:
        pass

    # -- databases and collections ------------------------------------------------------------------

    def list_databases(self) -> list[str]:
        with self._lock:
            return list(self._dbs)

    def list_collections(self, db: str) -> list[str]:
        with self._lock:
            return list(self._db(db))

    def describe_collection(self, db: str, name: str) -> CollectionDescription:
        with self._lock:
            coll = self._coll(db, name)
            # DescribeCollection does not list the hidden $meta field (milvus-backup reads it from etcd).
            visible = attrs.evolve(
                coll.schema, fields=tuple(f for f in coll.schema.fields if not f.is_dynamic)
            )
            return CollectionDescription(
                collection_id=coll.collection_id,
                name=coll.name,
                schema=visible,
                shards_num=coll.shards_num,
                consistency_level=coll.consistency_level,
                properties=coll.properties,
                db_id=self._db_ids[coll.db],
                created_timestamp=coll.created_ts,
                virtual_channel_names=tuple(coll.channels),
                physical_channel_names=tuple(c.rsplit("_", 1)[0] for c in coll.channels),
                aliases=tuple(self._aliases_of(coll)),
            )

    def _aliases_of(self, coll: Collection) -> list[str]:
        return sorted(a for (db, a), target in self._aliases.items() if db == coll.db and target == coll.name)

    def has_collection(self, db: str, name: str) -> bool:
        with self._lock:
            try:
                self._coll(db, name)
            except CollectionNotFoundError:
                return False
            return True

    def describe_indexes(self, db: str, name: str) -> list[IndexInfo]:
        with self._lock:
            return list(self._coll(db, name).indexes.values())

    def show_partitions(self, db: str, name: str) -> list[PartitionInfo]:
        with self._lock:
            return [PartitionInfo(p.name, p.partition_id) for p in self._coll(db, name).partitions]

    def load_state(self, db: str, name: str, partitions: Sequence[str] = ()) -> str:
        with self._lock:
            coll = self._coll(db, name)
            for p in partitions:
                self._partition_id(coll, p, "GetLoadState")
            return "Loaded" if coll.loaded else "NotLoad"

    def list_aliases(self, db: str, name: str) -> list[str]:
        with self._lock:
            return self._aliases_of(self._coll(db, name))

    # -- flush and segments -------------------------------------------------------------------------

    def flush(self, db: str, name: str) -> FlushResult:
        with self._lock:
            coll = self._coll(db, name)
            cps = self._data.channel_checkpoints(coll)  # taken before the flush timestamp, as datacoord does
            sealed, already = self._data.flush(coll)
            return FlushResult(tuple(sealed), tuple(already), self._clock.now(), int(time.time()), cps)

    def wait_flushed(
        self,
        db: str,
        name: str,
        flush: FlushResult,
        timeout: float = 600.0,
        interval: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> list[ChannelCheckpoint]:
        """Flushes here are synchronous: the channel checkpoints at the flush timestamp."""
        with self._lock:
            coll = self._coll(db, name)
            return [
                ChannelCheckpoint(
                    channel=ch,
                    position=msg_pb2.MsgPosition(
                        channel_name=ch, timestamp=flush.flush_ts
                    ).SerializeToString(),
                    timestamp=flush.flush_ts,
                )
                for ch in coll.channels
            ]

    def persistent_segments(self, db: str, name: str) -> list[SegmentInfo]:
        with self._lock:
            return [
                SegmentInfo(
                    segment_id=s.segment_id,
                    collection_id=s.collection_id,
                    partition_id=s.partition_id,
                    num_rows=s.num_rows,
                    state=s.state,
                    is_l0=s.is_l0,
                    insert_channel=s.channel,
                    storage_version=s.storage_version,
                )
                for s in self._coll(db, name).live_segments()
            ]

    # -- garbage collection -------------------------------------------------------------------------

    def run_gc(self) -> int:
        """One GC round: delete the files of dropped segments and collections, unless GC is paused.
        Returns the number of files deleted."""
        with self._lock:
            if self.gc_paused:
                return 0
            colls = [*(c for dbs in self._dbs.values() for c in dbs.values()), *self._dropped]
            dropped = [(c, s) for c in colls for s in list(c.segments.values()) if s.state == "Dropped"]
            removed = self._data.collect_garbage(dropped)
            self._dropped = [c for c in self._dropped if c.segments]
            return removed

    # -- collections (restore side, and the data API) ---------------------------------------------------

    def drop_collection(self, db: str, name: str) -> None:
        """Drop a collection (idempotent); its files stay until :meth:`run_gc`."""
        with self._lock:
            coll = self._db(db).pop(name, None)
            if coll is None:
                return
            for seg in coll.segments.values():
                seg.state = "Dropped"
            self._dropped.append(coll)
            for key in [k for k, target in self._aliases.items() if k[0] == db and target == name]:
                del self._aliases[key]

    def create_partition(self, db: str, name: str, partition: str) -> None:
        with self._lock:
            coll = self._coll(db, name)
            if coll.schema.partition_key_field is not None:
                raise MilvusOperationError(
                    "CreatePartition", "disable create partition if partition key mode is used"
                )
            if coll.partition(partition) is None:
                coll.partitions.append(Partition(partition, self._clock.next_id()))

    def create_index(
        self, db: str, name: str, field: str, index_name: str, params: Sequence[tuple[str, str]]
    ) -> None:
        with self._lock:
            coll = self._coll(db, name)
            if not any(f.name == field for f in coll.schema.fields):
                raise MilvusOperationError("CreateIndex", f"cannot create index on non-exist field: {field}")
            values = dict(params)
            existing = coll.indexes.get(field)
            if existing is not None and (existing.index_name, existing.params) != (index_name, values):
                raise MilvusOperationError("CreateIndex", "at most one distinct index is allowed per field")
            coll.indexes[field] = IndexInfo(
                field_name=field,
                index_name=index_name,
                index_type=values.get("index_type", ""),
                params=values,
                index_id=self._clock.next_id(),
            )

    def load_collection(self, db: str, name: str, timeout: float = 600.0) -> None:
        with self._lock:
            coll = self._coll(db, name)
            for spec in coll.schema.fields:
                if spec.data_type in DataType.VECTORS and spec.name not in coll.indexes:
                    raise MilvusOperationError(
                        "LoadCollection", f"index not found for vector field {spec.name}"
                    )
            coll.loaded = True

    def create_alias(self, db: str, name: str, alias: str) -> None:
        with self._lock:
            coll = self._coll(db, name)
            current = self._aliases.get((db, alias))
            if alias in self._db(db) or (current is not None and current != coll.name):
                raise MilvusOperationError("CreateAlias", f"alias {alias} is a collection or already aliased")
            self._aliases[(db, alias)] = coll.name

    def drop_alias(self, db: str, alias: str) -> None:
        with self._lock:
            self._aliases.pop((db, alias), None)

    def describe_alias(self, db: str, alias: str) -> str | None:
        with self._lock:
            return self._aliases.get((db, alias))

    def statistics_row_count(self, db: str, name: str) -> int:
        with self._lock:
            return sum(s.num_rows for s in self._coll(db, name).live_segments(level="L1"))

    def count_rows(self, db: str, name: str) -> int:
        with self._lock:
            coll = self._coll(db, name)
            if not coll.loaded:
                raise MilvusOperationError("Query", f"collection not loaded: {name}")
            return len(self._data.live_rows(coll))

    def iter_rows(
        self, db: str, name: str, partition: str, batch_rows: int, output_fields: Sequence[str] = ("*",)
    ) -> Iterator[list[dict[str, Any]]]:
        """Live rows of one partition in pages, shaped as pymilvus's ``query_iterator`` shapes them
        (:mod:`._memory_rows`); a query needs the collection loaded, as on a server."""
        with self._lock:
            coll = self._coll(db, name)
            if not coll.loaded:
                raise MilvusOperationError("Query", f"collection not loaded[collection={name}]")
            part = self._partition_id(coll, partition, "Query") if partition else None
            rows = self._data.live_rows(coll, part)
        return query_pages(coll, rows, batch_rows)

    # -- the data API ---------------------------------------------------------------------------------

    def insert(
        self, db: str, name: str, rows: Sequence[Mapping[str, Any]], partition: str = DEFAULT_PARTITION
    ) -> list[Any]:
        """Insert ``rows`` (by field name; unknown keys go to the dynamic field); their primary keys."""
        with self._lock:
            coll = self._coll(db, name)
            if coll.schema.partition_key_field is not None and partition == DEFAULT_PARTITION:
                partition = coll.partitions[0].name
            return self._data.insert(coll, rows, self._partition_id(coll, partition, "Insert"))

    def insert_rows(
        self, db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema
    ) -> int:
        """Insert an Arrow batch as the reader yields it: JSON as text, ``$meta`` keys as dynamic keys."""
        json_fields = {f.name for f in schema.fields if f.data_type == DataType.JSON and not f.is_dynamic}
        rows = []
        for row in batch.to_pylist():
            meta = row.pop("$meta", None)
            for key in json_fields & row.keys():
                row[key] = None if row[key] is None else json.loads(row[key])
            rows.append({**(json.loads(meta) if meta else {}), **row})
        return len(self.insert(db, name, rows, partition or DEFAULT_PARTITION))

    def delete(self, db: str, name: str, pks: Sequence[Any], partition: str | None = None) -> int:
        """Delete rows by primary key, in one partition or (``None``) in all of them."""
        with self._lock:
            coll = self._coll(db, name)
            partition_id = -1 if partition is None else self._partition_id(coll, partition, "Delete")
            return self._data.delete(coll, pks, partition_id)

    def compact(self, db: str, name: str) -> list[int]:
        """Merge each partition's flushed segments, dropping deleted rows; the new segment IDs."""
        with self._lock:
            return self._data.compact(self._coll(db, name))

    def rows(self, db: str, name: str) -> list[dict[str, Any]]:
        """The live rows, as a query would return them, sorted by primary key."""
        with self._lock:
            return self._data.live_rows(self._coll(db, name))
