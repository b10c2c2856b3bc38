"""The gRPC plumbing under :class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus`: channel, credentials,
per-call database header, retries of transient failures, and error translation of every answer.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2_grpc

from milvus_backup_lib.errors import MilvusConnectionError
from milvus_backup_lib.milvus.gc import HttpGcControl
from milvus_backup_lib.milvus.grpc_errors import failed, grpc_code, rpc_error, status_error, status_of
from milvus_backup_lib.milvus.rest import RestSegmentDescriber
from milvus_backup_lib.options import DEFAULT_DATABASE, MilvusConnection
from milvus_backup_lib.retry import RetryPolicy, is_transient

__all__ = ["GrpcChannel", "management_url"]

T = TypeVar("T")
_C = TypeVar("_C", bound="GrpcChannel")

_MAX_MESSAGE = 2**31 - 1


def management_url(connection: MilvusConnection) -> str:
    """Milvus's HTTP management endpoint: ``connection.management_url``, else ``http://`` port 9091 of the
    URI's host.

    Plain ``http://`` even for an ``https://`` Milvus URI: TLS (``common.security.tlsMode``) covers the
    gRPC/REST port only; the management port is served by ``server.ListenAndServe()`` without TLS
    (milvus ``internal/http/server.go``, ``ServeHTTP``), so ``https://HOST:9091`` fails the handshake on
    a stock deployment. A proxy that terminates TLS in front of it is given as ``management_url``.
    """
    if connection.management_url:
        return connection.management_url
    parsed = urlparse(connection.uri if "://" in connection.uri else f"http://{connection.uri}")
    host = parsed.hostname or "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:9091"


class GrpcChannel:
    """A gRPC channel to one Milvus server with its credentials, and the one way RPCs are called.

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
        #: IDs of the REST import jobs this client started (their state is read over REST too).
        self._rest_jobs: set[int] = set()
        self._gc = HttpGcControl(management_url(connection))
        self._rest = RestSegmentDescriber.for_connection(connection)

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self: _C) -> _C:
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
                code = grpc_code(exc)
                if optional and code == grpc.StatusCode.UNIMPLEMENTED:
                    return None
                error = rpc_error(operation, exc, self.target, self._who)
                if not idempotent and code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    error.retryable = False
                raise error from exc
            status = status_of(result)
            if status is not None and failed(status):
                error = status_error(operation, status, db=db or "", target=self.target)
                if is_transient(error):  # Milvus's rate limiter answers with a status, not a gRPC error
                    raise error
            return result

        return self._retry.call(operation, attempt)

    def _ok(self, operation: str, status: common_pb2.Status, *, db: str = "", coll: str = "") -> None:
        if failed(status):
            raise status_error(operation, status, db=db, coll=coll, target=self.target)
