"""The Milvus RPCs this library needs, over gRPC with pymilvus's generated stubs.

We talk to the server with raw requests rather than through pymilvus's high-level client because a
backup needs what the high-level API hides or reshapes: the raw ``ValueField`` of default values, the
flush's segment IDs and flush timestamp, channel checkpoints, ``db_name`` on each request, and the
``backup`` option of ``Import``. Every error leaves this module as one of the library's own errors.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlparse

import attrs
import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from milvus_backup_lib._version import __version__
from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    FlushTimeoutError,
    MilvusAuthenticationError,
    MilvusConnectionError,
    MilvusOperationError,
    MilvusPermissionError,
)
from milvus_backup_lib.options import DEFAULT_DATABASE, MilvusConnection

__all__ = ["FlushResult", "GrpcMilvus", "ImportState", "PartitionInfo", "open_milvus"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_MESSAGE = 2**31 - 1
_LOAD_STATES = {
    common_pb2.LoadStateNotExist: "NotExist",
    common_pb2.LoadStateNotLoad: "NotLoad",
    common_pb2.LoadStateLoading: "Loading",
    common_pb2.LoadStateLoaded: "Loaded",
}


@attrs.frozen
class FlushResult:
    """What a flush returned: the segments it sealed and the flush timestamp (TSO)."""

    segment_ids: tuple[int, ...]
    flushed_segment_ids: tuple[int, ...]
    flush_ts: int
    seal_time: int


@attrs.frozen
class PartitionInfo:
    """A partition's name and ID."""

    name: str
    id: int


@attrs.frozen
class ImportState:
    """State of a bulk import task."""

    task_id: int
    state: str  # Pending, Started, Persisted, Completed, Failed, ...
    row_count: int
    reason: str
    segment_ids: tuple[int, ...]


def _status_error(operation: str, status: common_pb2.Status, *, db: str = "", coll: str = "") -> Exception:
    reason = status.reason or status.detail or common_pb2.ErrorCode.Name(status.error_code)
    lowered = reason.lower()
    not_found = status.error_code in (common_pb2.CollectionNotExists, common_pb2.CollectionNameNotFound)
    if coll and (not_found or "collection not found" in lowered or "can't find collection" in lowered):
        return CollectionNotFoundError(db or DEFAULT_DATABASE, coll)
    if "database not found" in lowered or ("database:" in lowered and "not exist" in lowered):
        return DatabaseNotFoundError(db or DEFAULT_DATABASE)
    if status.error_code == common_pb2.PermissionDenied or "permission" in lowered or "privilege" in lowered:
        return MilvusPermissionError(f"Milvus {operation} refused: {reason}")
    if "auth" in lowered and ("fail" in lowered or "invalid" in lowered):
        return MilvusAuthenticationError(f"Milvus {operation}: authentication failed: {reason}")
    return MilvusOperationError(operation, reason, status.code or status.error_code)


def _rpc_error(operation: str, exc: grpc.RpcError, target: str) -> Exception:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE or code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return MilvusConnectionError(f"cannot reach Milvus at {target} ({operation}): {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return MilvusAuthenticationError(f"Milvus at {target} rejected the credentials: {details}")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return MilvusPermissionError(f"Milvus at {target} refused {operation}: {details}")
    return MilvusOperationError(operation, f"{code.name if code else 'error'}: {details}")


class GrpcMilvus:
    """A connection to one Milvus server. Use as a context manager or call :meth:`close`."""

    def __init__(self, connection: MilvusConnection) -> None:
        self.connection = connection
        parsed = urlparse(connection.uri if "://" in connection.uri else f"http://{connection.uri}")
        if parsed.scheme not in ("http", "https", "tcp", "grpc"):
            raise MilvusConnectionError(
                f"unsupported Milvus URI scheme {parsed.scheme!r} (use http:// or https://)"
            )
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 19530
        self.target = f"{self.host}:{self.port}"
        self.secure = parsed.scheme == "https"
        options: list[tuple[str, str | int]] = [
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.keepalive_time_ms", 55_000),
        ]
        if connection.server_name:
            options.append(("grpc.ssl_target_name_override", connection.server_name))
        if self.secure:
            root = None
            if connection.ca_cert_path:
                try:
                    with open(connection.ca_cert_path, "rb") as fh:
                        root = fh.read()
                except OSError as exc:
                    raise MilvusConnectionError(
                        f"cannot read the CA certificate {connection.ca_cert_path!r}: {exc.strerror}"
                    ) from exc
            self._channel = grpc.secure_channel(
                self.target, grpc.ssl_channel_credentials(root), options=options
            )
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
        self._stub = milvus_pb2_grpc.MilvusServiceStub(self._channel)
        auth: str | None = None
        if connection.token:
            auth = base64.b64encode(connection.token.encode()).decode()
        elif connection.user:
            auth = base64.b64encode(f"{connection.user}:{connection.password or ''}".encode()).decode()
        self._auth = auth
        self._version: str | None = None

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> GrpcMilvus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GrpcMilvus({self.target!r})"

    def _metadata(self, db: str | None) -> list[tuple[str, str]]:
        md = [("dbname", db or DEFAULT_DATABASE)]
        if self._auth:
            md.append(("authorization", self._auth))
        return md

    def _call(
        self,
        operation: str,
        method: Callable[..., T],
        request: Any,
        db: str | None = None,
        timeout: float | None = None,
    ) -> T:
        try:
            result: T = method(
                request, metadata=self._metadata(db), timeout=timeout or self.connection.timeout
            )
            return result
        except grpc.RpcError as exc:
            raise _rpc_error(operation, exc, self.target) from None

    def _ok(self, operation: str, status: common_pb2.Status, *, db: str = "", coll: str = "") -> None:
        if status.code != 0 or status.error_code != common_pb2.Success:
            raise _status_error(operation, status, db=db, coll=coll)

    # -- server -----------------------------------------------------------------------------------

    def connect(self) -> str:
        """Check that the server answers and the credentials work; return the server version."""
        request = milvus_pb2.ConnectRequest(
            client_info=common_pb2.ClientInfo(sdk_type="milvus-backup-lib", sdk_version=__version__)
        )
        try:
            resp = self._stub.Connect(request, metadata=self._metadata(None), timeout=self.connection.timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise _rpc_error("Connect", exc, self.target) from None
        else:
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
        try:
            resp = self._stub.ListDatabases(
                milvus_pb2.ListDatabasesRequest(),
                metadata=self._metadata(None),
                timeout=self.connection.timeout,
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return [DEFAULT_DATABASE]
            raise _rpc_error("ListDatabases", exc, self.target) from None
        self._ok("ListDatabases", resp.status)
        return list(resp.db_names)

    def create_database(self, db: str) -> None:
        """Create a database."""
        resp = self._call(
            "CreateDatabase", self._stub.CreateDatabase, milvus_pb2.CreateDatabaseRequest(db_name=db)
        )
        self._ok("CreateDatabase", resp, db=db)

    def list_collections(self, db: str) -> list[str]:
        """Collection names in ``db``."""
        resp = self._call(
            "ShowCollections", self._stub.ShowCollections, milvus_pb2.ShowCollectionsRequest(db_name=db), db
        )
        self._ok("ShowCollections", resp.status, db=db)
        return list(resp.collection_names)

    def describe_collection(self, db: str, name: str) -> milvus_pb2.DescribeCollectionResponse:
        """The raw ``DescribeCollection`` answer."""
        req = milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name)
        resp = self._call("DescribeCollection", self._stub.DescribeCollection, req, db)
        self._ok("DescribeCollection", resp.status, db=db, coll=name)
        return resp

    def has_collection(self, db: str, name: str) -> bool:
        """Whether ``db.name`` exists."""
        try:
            self.describe_collection(db, name)
        except CollectionNotFoundError:
            return False
        return True

    def describe_indexes(self, db: str, name: str) -> list[Any]:
        """The collection's index descriptions (empty when it has none)."""
        req = milvus_pb2.DescribeIndexRequest(db_name=db, collection_name=name)
        resp = self._call("DescribeIndex", self._stub.DescribeIndex, req, db)
        if (
            resp.status.error_code == common_pb2.IndexNotExist
            or "index not found" in resp.status.reason.lower()
        ):
            return []
        self._ok("DescribeIndex", resp.status, db=db, coll=name)
        return list(resp.index_descriptions)

    def show_partitions(self, db: str, name: str) -> list[PartitionInfo]:
        """The collection's partitions, in creation order."""
        req = milvus_pb2.ShowPartitionsRequest(db_name=db, collection_name=name)
        resp = self._call("ShowPartitions", self._stub.ShowPartitions, req, db)
        self._ok("ShowPartitions", resp.status, db=db, coll=name)
        return [PartitionInfo(n, i) for n, i in zip(resp.partition_names, resp.partitionIDs, strict=True)]

    def load_state(self, db: str, name: str, partitions: Sequence[str] = ()) -> str:
        """``NotLoad``, ``Loading`` or ``Loaded``."""
        req = milvus_pb2.GetLoadStateRequest(
            db_name=db, collection_name=name, partition_names=list(partitions)
        )
        resp = self._call("GetLoadState", self._stub.GetLoadState, req, db)
        self._ok("GetLoadState", resp.status, db=db, coll=name)
        return _LOAD_STATES.get(resp.state, "NotLoad")

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
        return FlushResult(
            segment_ids=tuple(resp.coll_segIDs[name].data) if name in resp.coll_segIDs else (),
            flushed_segment_ids=tuple(resp.flush_coll_segIDs[name].data)
            if name in resp.flush_coll_segIDs
            else (),
            flush_ts=int(resp.coll_flush_ts.get(name, 0)),
            seal_time=int(resp.coll_seal_times.get(name, 0)),
        )

    def wait_flushed(
        self,
        db: str,
        name: str,
        flush: FlushResult,
        timeout: float = 600.0,
        interval: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> dict[str, bytes]:
        """Poll ``GetFlushState`` until the flush is durable; return channel checkpoints (serialized).

        ``on_wait`` is called with the seconds waited so far after each unsuccessful poll.
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
                cps = getattr(resp, "channel_cps", None) or {}
                return {k: v.SerializeToString() for k, v in cps.items()}
            if time.monotonic() > deadline:
                raise FlushTimeoutError(f"flush of {db}.{name} not finished after {timeout:.0f} s")
            if on_wait is not None:
                on_wait(time.monotonic() - started)
            time.sleep(interval)

    def persistent_segments(self, db: str, name: str) -> list[Any]:
        """``GetPersistentSegmentInfo``: the collection's persisted segments (any state)."""
        req = milvus_pb2.GetPersistentSegmentInfoRequest(dbName=db, collectionName=name)
        resp = self._call("GetPersistentSegmentInfo", self._stub.GetPersistentSegmentInfo, req, db)
        self._ok("GetPersistentSegmentInfo", resp.status, db=db, coll=name)
        return list(resp.infos)

    # -- restore side -----------------------------------------------------------------------------

    def create_collection(
        self,
        db: str,
        name: str,
        schema: schema_pb2.CollectionSchema,
        *,
        shards_num: int,
        consistency_level: int,
        properties: Sequence[tuple[str, str]] = (),
        num_partitions: int = 0,
    ) -> None:
        """Create a collection from a raw schema."""
        req = milvus_pb2.CreateCollectionRequest(
            db_name=db,
            collection_name=name,
            schema=schema.SerializeToString(),
            shards_num=shards_num,
            consistency_level=consistency_level,
            properties=[common_pb2.KeyValuePair(key=k, value=v) for k, v in properties],
            num_partitions=num_partitions,
        )
        resp = self._call("CreateCollection", self._stub.CreateCollection, req, db)
        self._ok("CreateCollection", resp, db=db, coll=name)

    def drop_collection(self, db: str, name: str) -> None:
        """Drop a collection."""
        req = milvus_pb2.DropCollectionRequest(db_name=db, collection_name=name)
        resp = self._call("DropCollection", self._stub.DropCollection, req, db)
        self._ok("DropCollection", resp, db=db, coll=name)

    def create_partition(self, db: str, name: str, partition: str) -> None:
        """Create a partition."""
        req = milvus_pb2.CreatePartitionRequest(db_name=db, collection_name=name, partition_name=partition)
        resp = self._call("CreatePartition", self._stub.CreatePartition, req, db)
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
            extra_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params],
        )
        resp = self._call("CreateIndex", self._stub.CreateIndex, req, db)
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
        resp = self._call("CreateAlias", self._stub.CreateAlias, req, db)
        self._ok("CreateAlias", resp, db=db, coll=name)

    def drop_alias(self, db: str, alias: str) -> None:
        """Drop an alias."""
        resp = self._call(
            "DropAlias", self._stub.DropAlias, milvus_pb2.DropAliasRequest(db_name=db, alias=alias), db
        )
        self._ok("DropAlias", resp, db=db)

    def describe_alias(self, db: str, alias: str) -> str | None:
        """The collection an alias points to, or None if there is no such alias."""
        req = milvus_pb2.DescribeAliasRequest(db_name=db, alias=alias)
        try:
            resp = self._stub.DescribeAlias(req, metadata=self._metadata(db), timeout=self.connection.timeout)
        except grpc.RpcError as exc:
            raise _rpc_error("DescribeAlias", exc, self.target) from None
        if resp.status.code != 0 or resp.status.error_code != common_pb2.Success:
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
            options=[common_pb2.KeyValuePair(key=k, value=v) for k, v in options],
        )
        resp = self._call("Import", self._stub.Import, req, db)
        self._ok("Import", resp.status, db=db, coll=name)
        return list(resp.tasks)

    def import_state(self, db: str, task_id: int) -> ImportState:
        """The state of an import task."""
        req = milvus_pb2.GetImportStateRequest(task=task_id)
        resp = self._call("GetImportState", self._stub.GetImportState, req, db)
        self._ok("GetImportState", resp.status, db=db)
        infos = {kv.key: kv.value for kv in resp.infos}
        return ImportState(
            task_id=task_id,
            state=common_pb2.ImportState.Name(resp.state).removeprefix("Import"),
            row_count=int(resp.row_count),
            reason=infos.get("failed_reason", ""),
            segment_ids=tuple(resp.segment_ids),
        )

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
