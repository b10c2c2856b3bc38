"""The Milvus RPCs this library needs, over gRPC with pymilvus's generated stubs.

We talk to the server with raw requests rather than through pymilvus's high-level client because a
backup needs what the high-level API hides or reshapes: the raw ``ValueField`` of default values, the
flush's segment IDs and flush timestamp, channel checkpoints, ``db_name`` on each request, and the
``backup`` option of ``Import``. Every error leaves this module as one of the library's own errors.

Every RPC goes through one retry wrapper (:class:`~milvus_backup_lib.retry.RetryPolicy`, classified
by :func:`~milvus_backup_lib.retry.is_transient`): a call that ends ``UNAVAILABLE`` (connection
refused, a restarting server) or ``RESOURCE_EXHAUSTED``, or whose answer carries Milvus's rate-limit or
not-ready status, is tried again with backoff. ``DEADLINE_EXCEEDED`` is retried only for calls that
change nothing (the server may have done the others), and only while time is left. Authentication,
permission, not-found and every other error are raised at once. The whole series stops
``MilvusConnection.timeout`` seconds after the first attempt, so a server that is down fails in about
that time (``timeout=3`` and a refused connection: about 4 s, 5 attempts).

Errors are translated in :mod:`milvus_backup_lib.milvus.grpc_errors`; answers are converted to
records in :mod:`milvus_backup_lib.milvus.convert`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from milvus_backup_lib._version import __version__
from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    FlushTimeoutError,
    MilvusOperationError,
)
from milvus_backup_lib.manifest.model import CollectionSchema, DatabaseBackupInfo, FieldSchema, IndexInfo
from milvus_backup_lib.milvus import convert
from milvus_backup_lib.milvus._grpc_channel import management_url
from milvus_backup_lib.milvus.ez import fetch_ezk, is_encrypted
from milvus_backup_lib.milvus.grpc_errors import failed
from milvus_backup_lib.milvus.grpc_insert import GrpcInserts
from milvus_backup_lib.milvus.grpc_rbac import GrpcRbac
from milvus_backup_lib.milvus.grpc_rows import GrpcRows
from milvus_backup_lib.milvus.records import (
    ChannelCheckpoint,
    CollectionDescription,
    FlushResult,
    GcAnswer,
    ImportState,
    PartitionInfo,
    SegmentBinlogList,
    SegmentInfo,
    flush_poll_pause,
)
from milvus_backup_lib.milvus.rest_import import RestImports
from milvus_backup_lib.options import DEFAULT_DATABASE, MilvusConnection

__all__ = ["GrpcMilvus", "management_url", "open_milvus"]

log = logging.getLogger(__name__)

#: ``merr.ErrIndexNotFound`` (milvus pkg/util/merr/errors.go): the status code Milvus 2.3+ and Milvus
#: Lite answer DescribeIndex with when a collection has no index ("no index on collection ...").
_INDEX_NOT_FOUND = 700


class GrpcMilvus(GrpcRows, GrpcRbac, GrpcInserts):
    """A :class:`~milvus_backup_lib.milvus.protocol.MilvusCluster` over gRPC: one Milvus server.

    Use as a context manager or call :meth:`close`. Garbage collection is paused through the server's
    HTTP management port (:func:`management_url`).

    ``retry`` replaces the default policy for transient failures (6 attempts, backoff from 0.2 s up
    to 5 s, all within ``connection.timeout`` seconds of the first attempt).
    """

    # -- server -----------------------------------------------------------------------------------

    def connect(self) -> str:
        """Check that the server answers and the credentials work; return the server version."""
        request = milvus_pb2.ConnectRequest(
            client_info=common_pb2.ClientInfo(sdk_type="milvus-backup-lib", sdk_version=__version__)
        )
        resp = self._call_optional("Connect", self._stub.Connect, request)
        if resp is not None:  # servers before 2.2.9 have no Connect
            self._ok("Connect", resp.status)
        return self.server_version()

    def server_version(self) -> str:
        """The server's version string (``v2.3.5-lite``)."""
        if self._version is None:
            resp = self._call("GetVersion", self._stub.GetVersion, milvus_pb2.GetVersionRequest())
            self._ok("GetVersion", resp.status)
            self._version = resp.version
        return self._version

    # -- databases and collections ----------------------------------------------------------------

    def list_databases(self) -> list[str]:
        """Database names (``["default"]`` on servers without databases)."""
        resp = self._call_optional(
            "ListDatabases", self._stub.ListDatabases, milvus_pb2.ListDatabasesRequest()
        )
        if resp is None:
            return [DEFAULT_DATABASE]
        self._ok("ListDatabases", resp.status)
        return list(resp.db_names)

    def create_database(self, db: str, properties: Sequence[tuple[str, str]] = ()) -> None:
        """Create a database (with its properties)."""
        resp = self._call(
            "CreateDatabase",
            self._stub.CreateDatabase,
            milvus_pb2.CreateDatabaseRequest(db_name=db, properties=convert.key_values(properties)),
            idempotent=False,
        )
        self._ok("CreateDatabase", resp, db=db)

    def describe_database(self, db: str) -> DatabaseBackupInfo:
        """``DescribeDatabase`` (2.4.3+; 2.3.5 answers UNIMPLEMENTED: then only the name), and the
        encryption-zone key of an encrypted database from the management port, as milvus-backup reads
        them (``core/backup/database_task.go``)."""
        req = milvus_pb2.DescribeDatabaseRequest(db_name=db)
        resp = self._call_optional("DescribeDatabase", self._stub.DescribeDatabase, req, db)
        if resp is None:
            return DatabaseBackupInfo(db_name=db)
        self._ok("DescribeDatabase", resp.status, db=db)
        properties = tuple(convert.key_value_records(resp.properties))
        ezk = ""
        if is_encrypted(properties):
            ezk = fetch_ezk(management_url(self.connection), db, self.connection.timeout)
        return DatabaseBackupInfo(db_name=db, db_id=int(resp.dbID), properties=properties, ezk=ezk)

    def list_collections(self, db: str) -> list[str]:
        """Collection names in ``db``."""
        resp = self._call(
            "ShowCollections", self._stub.ShowCollections, milvus_pb2.ShowCollectionsRequest(db_name=db), db
        )
        self._ok("ShowCollections", resp.status, db=db)
        return list(resp.collection_names)

    def describe_collection(self, db: str, name: str) -> CollectionDescription:
        """What ``DescribeCollection`` answers, as a record."""
        req = milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name)
        resp = self._call("DescribeCollection", self._stub.DescribeCollection, req, db)
        self._ok("DescribeCollection", resp.status, db=db, coll=name)
        return convert.description_from_proto(resp)

    def has_collection(self, db: str, name: str) -> bool:
        """Whether ``db.name`` exists."""
        try:
            self.describe_collection(db, name)
        except CollectionNotFoundError:
            return False
        return True

    def describe_indexes(self, db: str, name: str) -> list[IndexInfo]:
        """The collection's index descriptions (empty when it has none)."""
        req = milvus_pb2.DescribeIndexRequest(db_name=db, collection_name=name)
        resp = self._call("DescribeIndex", self._stub.DescribeIndex, req, db)
        if (
            resp.status.error_code == common_pb2.IndexNotExist
            or resp.status.code == _INDEX_NOT_FOUND
            or "index not found" in resp.status.reason.lower()
        ):
            return []
        self._ok("DescribeIndex", resp.status, db=db, coll=name)
        return [convert.index_from_proto(d) for d in resp.index_descriptions]

    def show_partitions(self, db: str, name: str) -> list[PartitionInfo]:
        """The collection's partitions, in creation order."""
        req = milvus_pb2.ShowPartitionsRequest(db_name=db, collection_name=name)
        resp = self._call("ShowPartitions", self._stub.ShowPartitions, req, db)
        self._ok("ShowPartitions", resp.status, db=db, coll=name)
        # Milvus Lite (3.2.2) answers names without IDs: a partition ID is then 0, as its field IDs are.
        ids = list(resp.partitionIDs) or [0] * len(resp.partition_names)
        return [PartitionInfo(n, i) for n, i in zip(resp.partition_names, ids, strict=True)]

    def load_state(self, db: str, name: str, partitions: Sequence[str] = ()) -> str:
        """``NotLoad``, ``Loading`` or ``Loaded``."""
        req = milvus_pb2.GetLoadStateRequest(
            db_name=db, collection_name=name, partition_names=list(partitions)
        )
        resp = self._call("GetLoadState", self._stub.GetLoadState, req, db)
        self._ok("GetLoadState", resp.status, db=db, coll=name)
        return convert.load_state_name(resp.state)

    def list_aliases(self, db: str, name: str) -> list[str]:
        """Aliases of the collection."""
        req = milvus_pb2.ListAliasesRequest(db_name=db, collection_name=name)
        resp = self._call("ListAliases", self._stub.ListAliases, req, db)
        self._ok("ListAliases", resp.status, db=db, coll=name)
        return list(resp.aliases)

    # -- flush and segments -----------------------------------------------------------------------

    def flush(self, db: str, name: str) -> FlushResult:
        """Seal and flush the collection's growing segments."""
        resp = self._call(
            "Flush", self._stub.Flush, milvus_pb2.FlushRequest(db_name=db, collection_names=[name]), db
        )
        self._ok("Flush", resp.status, db=db, coll=name)
        return convert.flush_from_proto(resp, name)

    def wait_flushed(
        self,
        db: str,
        name: str,
        flush: FlushResult,
        timeout: float = 600.0,
        interval: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> list[ChannelCheckpoint]:
        """Poll ``GetFlushState`` until the flush is durable; return the flush's channel checkpoints.

        ``GetFlushStateResponse`` has no checkpoints (only ``status`` and ``flushed``): they come from the
        ``FlushResponse`` (:attr:`FlushResult.channel_checkpoints`), returned here once durable.

        ``on_wait`` is called with the seconds waited so far after each unsuccessful poll. The polls
        follow :func:`flush_poll_pause`: a flush with little or nothing to write is durable as soon as
        the channel checkpoint passes its timestamp (about 0.23 s on 2.3.5, one time tick), which a
        fixed half-second sleep would make every backup wait for.
        """
        started = time.monotonic()
        deadline = started + timeout
        while True:
            req = milvus_pb2.GetFlushStateRequest(
                segmentIDs=list(flush.segment_ids), flush_ts=flush.flush_ts, db_name=db, collection_name=name
            )
            resp = self._call("GetFlushState", self._stub.GetFlushState, req, db)
            self._ok("GetFlushState", resp.status, db=db, coll=name)
            if resp.flushed:
                return list(flush.channel_checkpoints)
            if time.monotonic() > deadline:
                raise FlushTimeoutError(f"flush of {db}.{name} not finished after {timeout:.0f} s")
            if on_wait is not None:
                on_wait(time.monotonic() - started)
            time.sleep(flush_poll_pause(time.monotonic() - started, interval))

    def persistent_segments(self, db: str, name: str) -> list[SegmentInfo]:
        """``GetPersistentSegmentInfo``: the collection's persisted segments (any state)."""
        req = milvus_pb2.GetPersistentSegmentInfoRequest(dbName=db, collectionName=name)
        resp = self._call("GetPersistentSegmentInfo", self._stub.GetPersistentSegmentInfo, req, db)
        self._ok("GetPersistentSegmentInfo", resp.status, db=db, coll=name)
        return [convert.segment_from_proto(info) for info in resp.infos]

    def segment_binlogs(
        self, db: str, collection_id: int, segment_ids: Sequence[int]
    ) -> dict[int, SegmentBinlogList] | None:
        """The REST segment-describe API (Milvus 2.5.8+) on the gRPC port; None where it is absent
        (2.3.5 answers 404) or failed (:mod:`milvus_backup_lib.milvus.rest`)."""
        return self._rest.describe(db, collection_id, segment_ids)

    # -- garbage collection -------------------------------------------------------------------------

    def pause_gc(self, seconds: int) -> GcAnswer:
        """Pause GC through the HTTP management port (renewing is pausing again)."""
        return self._gc.pause(seconds)

    def resume_gc(self) -> bool:
        """Resume GC through the HTTP management port."""
        return self._gc.resume()

    # -- restore side -----------------------------------------------------------------------------

    def create_collection(
        self,
        db: str,
        name: str,
        schema: CollectionSchema,
        *,
        shards_num: int,
        consistency_level: int,
        properties: Sequence[tuple[str, str]] = (),
        num_partitions: int = 0,
    ) -> None:
        """Create a collection with the fields of ``schema`` (``$meta`` is left out)."""
        req = milvus_pb2.CreateCollectionRequest(
            db_name=db,
            collection_name=name,
            schema=convert.schema_to_proto(schema, name).SerializeToString(),
            shards_num=shards_num,
            consistency_level=consistency_level,
            properties=convert.key_values(properties),
            num_partitions=num_partitions,
        )
        resp = self._call("CreateCollection", self._stub.CreateCollection, req, db, idempotent=False)
        self._ok("CreateCollection", resp, db=db, coll=name)

    def add_collection_field(self, db: str, name: str, field: FieldSchema) -> None:
        """``AddCollectionField`` (Milvus 2.6+): the server numbers the field after the existing ones."""
        req = milvus_pb2.AddCollectionFieldRequest(
            db_name=db, collection_name=name, schema=convert.field_to_proto(field).SerializeToString()
        )
        resp = self._try_call(
            "AddCollectionField", self._stub.AddCollectionField, req, db, None, False, optional=True
        )
        if resp is None:
            raise MilvusOperationError(
                "AddCollectionField",
                f"the server (Milvus {self.server_version()}) cannot add field {field.name!r} to {db}.{name}: "
                "adding fields to a collection needs Milvus 2.6 or newer; restore into such a server",
            )
        self._ok("AddCollectionField", resp, db=db, coll=name)

    def drop_collection(self, db: str, name: str) -> None:
        """Drop a collection."""
        req = milvus_pb2.DropCollectionRequest(db_name=db, collection_name=name)
        resp = self._call("DropCollection", self._stub.DropCollection, req, db, idempotent=False)
        self._ok("DropCollection", resp, db=db, coll=name)

    def create_partition(self, db: str, name: str, partition: str) -> None:
        """Create a partition."""
        req = milvus_pb2.CreatePartitionRequest(db_name=db, collection_name=name, partition_name=partition)
        resp = self._call("CreatePartition", self._stub.CreatePartition, req, db, idempotent=False)
        self._ok("CreatePartition", resp, db=db, coll=name)

    def create_index(
        self, db: str, name: str, field: str, index_name: str, params: Sequence[tuple[str, str]]
    ) -> None:
        """Create an index."""
        req = milvus_pb2.CreateIndexRequest(
            db_name=db,
            collection_name=name,
            field_name=field,
            index_name=index_name,
            extra_params=convert.key_values(params),
        )
        resp = self._call("CreateIndex", self._stub.CreateIndex, req, db, idempotent=False)
        self._ok("CreateIndex", resp, db=db, coll=name)

    def load_collection(self, db: str, name: str, timeout: float = 600.0) -> None:
        """Load a collection and wait until it is loaded."""
        req = milvus_pb2.LoadCollectionRequest(db_name=db, collection_name=name)
        resp = self._call("LoadCollection", self._stub.LoadCollection, req, db)
        self._ok("LoadCollection", resp, db=db, coll=name)
        deadline = time.monotonic() + timeout
        while self.load_state(db, name) != "Loaded":
            if time.monotonic() > deadline:
                raise MilvusOperationError("LoadCollection", f"{db}.{name} not loaded after {timeout:.0f} s")
            time.sleep(0.5)

    def create_alias(self, db: str, name: str, alias: str) -> None:
        """Create an alias for a collection."""
        req = milvus_pb2.CreateAliasRequest(db_name=db, collection_name=name, alias=alias)
        resp = self._call("CreateAlias", self._stub.CreateAlias, req, db, idempotent=False)
        self._ok("CreateAlias", resp, db=db, coll=name)

    def drop_alias(self, db: str, alias: str) -> None:
        """Drop an alias."""
        req = milvus_pb2.DropAliasRequest(db_name=db, alias=alias)
        resp = self._call("DropAlias", self._stub.DropAlias, req, db, idempotent=False)
        self._ok("DropAlias", resp, db=db)

    def describe_alias(self, db: str, alias: str) -> str | None:
        """The collection an alias points to, or None if there is no such alias."""
        req = milvus_pb2.DescribeAliasRequest(db_name=db, alias=alias)
        resp = self._call("DescribeAlias", self._stub.DescribeAlias, req, db)
        if failed(resp.status):
            return None
        return str(resp.collection) or None

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        """Start a bulk import; return its task IDs."""
        req = milvus_pb2.ImportRequest(
            db_name=db,
            collection_name=name,
            partition_name=partition,
            files=list(files),
            options=convert.key_values(options),
        )
        resp = self._call("Import", self._stub.Import, req, db, idempotent=False)
        self._ok("Import", resp.status, db=db, coll=name)
        return list(resp.tasks)

    def batch_imports(self) -> bool:
        """Milvus 2.4+ takes jobs of several segment groups (``ImportV2``, over REST)."""
        return convert.version_tuple(self.server_version()) >= (2, 4)

    def start_batch_import(
        self,
        db: str,
        name: str,
        partition: str,
        files: Sequence[Sequence[str]],
        options: Sequence[tuple[str, str]],
    ) -> list[int]:
        """Start one import job of several segment groups over REST (:mod:`.rest_import`); its job ID."""
        job = self._rest_imports().create(db, name, partition, files, dict(options))
        self._rest_jobs.add(job)
        return [job]

    def _rest_imports(self) -> RestImports:
        return RestImports.for_connection(self.connection)

    def import_state(self, db: str, task_id: int) -> ImportState:
        """The state of an import task (or of a REST import job this client started)."""
        if task_id in self._rest_jobs:
            return self._rest_imports().progress(db, task_id)
        req = milvus_pb2.GetImportStateRequest(task=task_id)
        resp = self._call("GetImportState", self._stub.GetImportState, req, db)
        self._ok("GetImportState", resp.status, db=db)
        return convert.import_state(task_id, resp)

    def list_import_tasks(self, db: str, name: str) -> list[ImportState]:
        """``ListImportTasks`` of the collection, newest included, with their files where the server says."""
        req = milvus_pb2.ListImportTasksRequest(collection_name=name, db_name=db, limit=0)
        resp = self._call("ListImportTasks", self._stub.ListImportTasks, req, db)
        self._ok("ListImportTasks", resp.status, db=db, coll=name)
        return [convert.import_state(int(t.id), t) for t in resp.tasks]

    def statistics_row_count(self, db: str, name: str) -> int:
        """``GetCollectionStatistics`` row count: the rows in the collection's persisted segments."""
        req = milvus_pb2.GetCollectionStatisticsRequest(db_name=db, collection_name=name)
        resp = self._call("GetCollectionStatistics", self._stub.GetCollectionStatistics, req, db)
        self._ok("GetCollectionStatistics", resp.status, db=db, coll=name)
        stats = {kv.key: kv.value for kv in resp.stats}
        return int(stats.get("row_count", 0))

    def count_rows(self, db: str, name: str) -> int:
        """``count(*)`` with strong consistency (the collection must be loaded)."""
        req = milvus_pb2.QueryRequest(
            db_name=db,
            collection_name=name,
            expr="",
            output_fields=["count(*)"],
            consistency_level=common_pb2.Strong,
            use_default_consistency=False,
        )
        resp = self._call("Query", self._stub.Query, req, db)
        self._ok("Query", resp.status, db=db, coll=name)
        for field in resp.fields_data:
            if field.field_name == "count(*)":
                return int(field.scalars.long_data.data[0])
        raise MilvusOperationError("Query", "count(*) missing from the answer")


@contextmanager
def open_milvus(connection: MilvusConnection) -> Iterator[GrpcMilvus]:
    """Connect (checking reachability and credentials) and close at the end."""
    milvus = GrpcMilvus(connection)
    try:
        milvus.connect()
        yield milvus
    finally:
        milvus.close()
