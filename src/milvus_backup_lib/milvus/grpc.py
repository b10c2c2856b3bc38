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

What Milvus 2.3.5 answers for credentials and privileges (seen on the embedded server started with
``common.security.authorizationEnabled: true``), and what it becomes here:

- no ``authorization`` header: gRPC ``UNAUTHENTICATED`` "missing authorization in header", for every
  RPC, ``Connect`` and ``GetVersion`` included -> :class:`MilvusAuthenticationError`;
- a wrong password or an unknown user: ``UNAUTHENTICATED`` "auth check failure, please check username
  and password are correct" (a token that is not ``user:password``: "... api key is correct")
  -> :class:`MilvusAuthenticationError`;
- a user without the privilege: ``PERMISSION_DENIED`` "PrivilegeListDatabases: permission deny to u1"
  -> :class:`MilvusPermissionError`. A user without any grant may still call ``Connect``,
  ``GetVersion``, ``ShowCollections``, ``DescribeCollection`` and ``GetPersistentSegmentInfo``;
  ``ListDatabases``, ``ShowPartitions``, ``GetLoadState`` (checked against the ``Load``
  privilege), ``Flush``, ``CreateCollection`` and the RBAC reads are refused;
- the rate limiter (``quotaAndLimits``): not a gRPC error but an answer whose status has code 8,
  legacy code 49 (``RateLimit``) and the reason "... rate limit exceeded[rate=0.5]" -> retried.

An error status whose code is ``PermissionDenied`` or whose reason says "permission denied" (or
"deny") is taken as a permission error too. A TLS handshake failure (gRPC ``UNAVAILABLE``) is a
:class:`MilvusConnectionError` that is not retried.
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
    MilvusBackupError,
    MilvusConnectionError,
    MilvusOperationError,
    MilvusPermissionError,
)
from milvus_backup_lib.options import DEFAULT_DATABASE, MilvusConnection
from milvus_backup_lib.retry import RetryPolicy, is_transient

__all__ = ["FlushResult", "GrantInfo", "GrpcMilvus", "ImportState", "PartitionInfo", "open_milvus"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_MESSAGE = 2**31 - 1
#: The new ``merr`` code and the legacy ``commonpb.ErrorCode`` Milvus 2.3.5 answers when rate-limited.
_RATE_LIMIT_CODE = 8
_LEGACY_RATE_LIMIT = 49
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


@attrs.frozen
class GrantInfo:
    """One privilege granted to a role: ``privilege`` on ``object_type`` ``object_name`` in ``db_name``.

    ``object_type`` is ``Global``, ``Collection`` or ``User``; ``object_name`` a name or ``*``;
    ``db_name`` a database or ``*`` (every database). ``grantor`` is who granted it (informational).
    """

    role: str
    object_type: str
    object_name: str
    privilege: str
    db_name: str = DEFAULT_DATABASE
    grantor: str = ""

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a grant (everything but the grantor)."""
        return (self.role, self.object_type, self.object_name, self.privilege, self.db_name)

    def __str__(self) -> str:
        return f"{self.privilege} on {self.object_type} {self.db_name}.{self.object_name} to role {self.role}"


def _status_error(
    operation: str, status: common_pb2.Status, *, db: str = "", coll: str = "", target: str = ""
) -> MilvusBackupError:
    reason = status.reason or status.detail or common_pb2.ErrorCode.Name(status.error_code)
    lowered = reason.lower()
    not_found = status.error_code in (common_pb2.CollectionNotExists, common_pb2.CollectionNameNotFound)
    if coll and (not_found or "collection not found" in lowered or "can't find collection" in lowered):
        return CollectionNotFoundError(db or DEFAULT_DATABASE, coll)
    if "database not found" in lowered or ("database:" in lowered and "not exist" in lowered):
        return DatabaseNotFoundError(db or DEFAULT_DATABASE)
    where = f"Milvus at {target}" if target else "Milvus"
    # Not any reason naming a privilege: "not found the privilege name[X]" answers a bad grant.
    if status.error_code == common_pb2.PermissionDenied or "permission den" in lowered:
        return MilvusPermissionError(f"{where} refused {operation}: {reason}")
    if "auth" in lowered and ("fail" in lowered or "invalid" in lowered):
        return MilvusAuthenticationError(f"{where}: authentication failed ({operation}): {reason}")
    return MilvusOperationError(operation, reason, status.code or status.error_code)


def _grpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    result = code()
    return result if isinstance(result, grpc.StatusCode) else None


def _grpc_details(exc: grpc.RpcError) -> str:
    details = getattr(exc, "details", None)
    text = details() if callable(details) else None
    return str(text) if text else str(exc)


#: Lower-cased fragments of the details gRPC gives (as UNAVAILABLE) when the TLS handshake fails.
_TLS_FAILURES = ("handshake failed", "certificate_verify_failed", "ssl_error", "wrong_version_number")


def _rpc_error(operation: str, exc: grpc.RpcError, target: str, who: str = "") -> MilvusBackupError:
    """Our error for a failed RPC. ``who`` names the credentials ("user 'u1'", "the token"), never them."""
    code = _grpc_code(exc)
    details = _grpc_details(exc)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        if any(fragment in details.lower() for fragment in _TLS_FAILURES):
            tls = MilvusConnectionError(
                f"the TLS handshake with Milvus at {target} failed ({operation}): {details}; check "
                "ca_cert_path and server_name, or use http:// for a server without TLS"
            )
            tls.retryable = False  # a certificate does not become valid by itself
            return tls
        return MilvusConnectionError(f"cannot reach Milvus at {target} ({operation}): {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if not who:
            return MilvusAuthenticationError(
                f"Milvus at {target} requires authentication ({operation}): give MilvusConnection "
                f"user and password, or token ({details})"
            )
        return MilvusAuthenticationError(f"Milvus at {target} rejected {who} ({operation}): {details}")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return MilvusPermissionError(
            f"Milvus at {target} refused {operation}" + (f" to {who}" if who else "") + f": {details}"
        )
    return MilvusOperationError(operation, f"{code.name if code else 'error'}: {details}")


def _status_of(response: object) -> common_pb2.Status | None:
    if isinstance(response, common_pb2.Status):
        return response
    status = getattr(response, "status", None)
    return status if isinstance(status, common_pb2.Status) else None


def _failed(status: common_pb2.Status) -> bool:
    return bool(status.code != 0 or status.error_code != common_pb2.Success)


class GrpcMilvus:
    """A connection to one Milvus server. Use as a context manager or call :meth:`close`.

    ``retry`` replaces the default policy for transient failures (6 attempts, backoff from 0.2 s up
    to 5 s, all within ``connection.timeout`` seconds of the first attempt).
    """

    def __init__(self, connection: MilvusConnection, *, retry: RetryPolicy | None = None) -> None:
        self.connection = connection
        self._retry = retry or RetryPolicy(
            attempts=6,
            timeout=max(connection.timeout, 1.0),
            wait_initial=0.2,
            wait_max=5.0,
            wait_jitter=0.5,
        )
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
        #: Who we are, for error messages: never the password or the token itself.
        self._who = ""
        if connection.token:
            auth = base64.b64encode(connection.token.encode()).decode()
            self._who = "the token"
        elif connection.user:
            auth = base64.b64encode(f"{connection.user}:{connection.password or ''}".encode()).decode()
            self._who = f"user {connection.user!r}"
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
        *,
        idempotent: bool = True,
    ) -> T:
        """``method(request)``, retried while it fails transiently; gRPC errors become ours.

        ``idempotent=False`` (the call changes something) is not retried after ``DEADLINE_EXCEEDED``:
        the server may have done it. An answer with an error status is returned (the caller checks it
        with :meth:`_ok`) unless the status is transient (rate limit, not ready), which is retried.
        """
        result = self._try_call(operation, method, request, db, timeout, idempotent, optional=False)
        assert result is not None  # optional=False: UNIMPLEMENTED raises
        return result

    def _call_optional(
        self, operation: str, method: Callable[..., T], request: Any, db: str | None = None
    ) -> T | None:
        """As :meth:`_call` (idempotent), but None when the server does not implement the RPC."""
        return self._try_call(operation, method, request, db, None, True, optional=True)

    def _try_call(
        self,
        operation: str,
        method: Callable[..., T],
        request: Any,
        db: str | None,
        timeout: float | None,
        idempotent: bool,
        *,
        optional: bool,
    ) -> T | None:
        def attempt() -> T | None:
            try:
                result: T = method(
                    request, metadata=self._metadata(db), timeout=timeout or self.connection.timeout
                )
            except grpc.RpcError as exc:
                code = _grpc_code(exc)
                if optional and code == grpc.StatusCode.UNIMPLEMENTED:
                    return None
                error = _rpc_error(operation, exc, self.target, self._who)
                if not idempotent and code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    error.retryable = False
                raise error from exc
            status = _status_of(result)
            if status is not None and _failed(status):
                error = _status_error(operation, status, db=db or "", target=self.target)
                if is_transient(error):  # Milvus's rate limiter answers with a status, not a gRPC error
                    raise error
            return result

        return self._retry.call(operation, attempt)

    def _ok(self, operation: str, status: common_pb2.Status, *, db: str = "", coll: str = "") -> None:
        if _failed(status):
            raise _status_error(operation, status, db=db, coll=coll, target=self.target)

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

    def create_database(self, db: str) -> None:
        """Create a database."""
        resp = self._call(
            "CreateDatabase",
            self._stub.CreateDatabase,
            milvus_pb2.CreateDatabaseRequest(db_name=db),
            idempotent=False,
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
        resp = self._call("CreateCollection", self._stub.CreateCollection, req, db, idempotent=False)
        self._ok("CreateCollection", resp, db=db, coll=name)

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
            extra_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params],
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
        if _failed(resp.status):
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
        resp = self._call("Import", self._stub.Import, req, db, idempotent=False)
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

    # -- users, roles and grants (RBAC) -------------------------------------------------------------

    def list_users(self) -> list[str]:
        """``ListCredUsers``: the names of every user with a password."""
        resp = self._call("ListCredUsers", self._stub.ListCredUsers, milvus_pb2.ListCredUsersRequest())
        self._ok("ListCredUsers", resp.status)
        return list(resp.usernames)

    def user_roles(self) -> dict[str, tuple[str, ...]]:
        """``SelectUser`` with role info: each user's roles (the implicit ``public`` is not listed)."""
        req = milvus_pb2.SelectUserRequest(include_role_info=True)
        resp = self._call("SelectUser", self._stub.SelectUser, req)
        self._ok("SelectUser", resp.status)
        return {r.user.name: tuple(role.name for role in r.roles) for r in resp.results}

    def list_roles(self) -> list[str]:
        """``SelectRole``: the names of every role, the built-in ``admin`` and ``public`` included."""
        resp = self._call("SelectRole", self._stub.SelectRole, milvus_pb2.SelectRoleRequest())
        self._ok("SelectRole", resp.status)
        return [r.role.name for r in resp.results]

    def role_grants(self, role: str, db: str) -> list[GrantInfo]:
        """``SelectGrant``: the privileges granted to ``role`` in database ``db`` and in every database.

        Milvus 2.3.5 answers only the grants whose database is ``db`` or ``*``, so a caller wanting
        all of them asks once per database.
        """
        entity = milvus_pb2.GrantEntity(role=milvus_pb2.RoleEntity(name=role), db_name=db)
        resp = self._call(
            "SelectGrant", self._stub.SelectGrant, milvus_pb2.SelectGrantRequest(entity=entity), db
        )
        self._ok("SelectGrant", resp.status, db=db)
        return [
            GrantInfo(
                role=e.role.name or role,
                object_type=e.object.name,
                object_name=e.object_name,
                privilege=e.grantor.privilege.name,
                db_name=e.db_name or db,
                grantor=e.grantor.user.name,
            )
            for e in resp.entities
        ]

    def create_role(self, role: str) -> None:
        """``CreateRole``."""
        req = milvus_pb2.CreateRoleRequest(entity=milvus_pb2.RoleEntity(name=role))
        self._ok("CreateRole", self._call("CreateRole", self._stub.CreateRole, req, idempotent=False))

    def create_user(self, user: str, password: str) -> None:
        """``CreateCredential``: a user with a password (sent base64-encoded, as the SDKs do)."""
        req = milvus_pb2.CreateCredentialRequest(
            username=user, password=base64.b64encode(password.encode()).decode()
        )
        self._ok(
            "CreateCredential",
            self._call("CreateCredential", self._stub.CreateCredential, req, idempotent=False),
        )

    def grant_privilege(self, grant: GrantInfo) -> None:
        """``OperatePrivilege`` (Grant). Granting a privilege the role already has changes nothing."""
        entity = milvus_pb2.GrantEntity(
            role=milvus_pb2.RoleEntity(name=grant.role),
            object=milvus_pb2.ObjectEntity(name=grant.object_type),
            object_name=grant.object_name,
            db_name=grant.db_name,
            grantor=milvus_pb2.GrantorEntity(privilege=milvus_pb2.PrivilegeEntity(name=grant.privilege)),
        )
        req = milvus_pb2.OperatePrivilegeRequest(entity=entity, type=milvus_pb2.Grant)
        self._ok("OperatePrivilege", self._call("OperatePrivilege", self._stub.OperatePrivilege, req))

    def add_user_to_role(self, user: str, role: str) -> None:
        """``OperateUserRole`` (AddUserToRole). Adding a user to a role it has changes nothing."""
        req = milvus_pb2.OperateUserRoleRequest(username=user, role_name=role, type=milvus_pb2.AddUserToRole)
        self._ok("OperateUserRole", self._call("OperateUserRole", self._stub.OperateUserRole, req))


@contextmanager
def open_milvus(connection: MilvusConnection) -> Iterator[GrpcMilvus]:
    """Connect (checking reachability and credentials) and close at the end."""
    milvus = GrpcMilvus(connection)
    try:
        milvus.connect()
        yield milvus
    finally:
        milvus.close()
