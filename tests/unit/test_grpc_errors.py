"""Translation of gRPC errors and Milvus error statuses into the library's errors (milvus/grpc_errors.py)."""

from __future__ import annotations

import grpc
import pytest
from pymilvus.grpc_gen import common_pb2

from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    MilvusAuthenticationError,
    MilvusConnectionError,
    MilvusOperationError,
    MilvusPermissionError,
)
from milvus_backup_lib.milvus.grpc_errors import failed, rpc_error, status_error, status_of
from milvus_backup_lib.retry import is_transient

TARGET = "127.0.0.1:19530"


class FakeRpcError(grpc.RpcError):
    """What a grpc call raises: an ``RpcError`` that is also a ``Call`` with ``code()`` and ``details()``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_unauthenticated_is_an_authentication_error() -> None:
    exc = FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "missing authorization in header")
    anonymous = rpc_error("ListDatabases", exc, TARGET)
    assert isinstance(anonymous, MilvusAuthenticationError) and "requires authentication" in str(anonymous)
    rejected = rpc_error(
        "ListDatabases",
        FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "auth check failure"),
        TARGET,
        "user 'u1'",
    )
    assert isinstance(rejected, MilvusAuthenticationError) and "rejected user 'u1'" in str(rejected)
    assert not is_transient(rejected)


def test_permission_denied_is_a_permission_error() -> None:
    exc = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "PrivilegeListDatabases: permission deny to u1")
    err = rpc_error("ListDatabases", exc, TARGET, "user 'u1'")
    assert isinstance(err, MilvusPermissionError) and "PrivilegeListDatabases" in str(err)
    assert not is_transient(err)


def test_unavailable_is_a_retryable_connection_error() -> None:
    err = rpc_error(
        "GetVersion", FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"), TARGET
    )
    assert isinstance(err, MilvusConnectionError) and err.retryable
    assert TARGET in str(err) and is_transient(err)


@pytest.mark.parametrize(
    "details",
    [
        "failed to connect to all addresses; last error: UNKNOWN: Ssl handshake failed: SSL_ERROR_SSL",
        "error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
    ],
)
def test_a_tls_handshake_failure_is_not_retried(details: str) -> None:
    err = rpc_error("Connect", FakeRpcError(grpc.StatusCode.UNAVAILABLE, details), TARGET)
    assert isinstance(err, MilvusConnectionError) and not err.retryable
    assert "TLS handshake" in str(err) and not is_transient(err)


def test_other_grpc_codes_are_operation_errors_named_by_their_code() -> None:
    err = rpc_error("Flush", FakeRpcError(grpc.StatusCode.INTERNAL, "boom"), TARGET)
    assert isinstance(err, MilvusOperationError) and "INTERNAL: boom" in str(err)
    assert not is_transient(err)


def test_a_collection_not_found_status_names_the_collection() -> None:
    status = common_pb2.Status(error_code=common_pb2.CollectionNotExists, reason="can't find collection: c1")
    err = status_error("DescribeCollection", status, db="db1", coll="c1")
    assert isinstance(err, CollectionNotFoundError) and (err.database, err.collection) == ("db1", "c1")
    # the new-style status: code 100 and only the reason says so
    modern = common_pb2.Status(code=100, reason="collection not found[collection=c1]")
    assert isinstance(status_error("DescribeCollection", modern, coll="c1"), CollectionNotFoundError)
    # without a collection in the call it stays an operation error
    assert type(status_error("ShowCollections", status)) is MilvusOperationError


def test_a_database_not_found_status() -> None:
    status = common_pb2.Status(code=800, reason="database not found[database=nodb]")
    err = status_error("ShowCollections", status, db="nodb")
    assert isinstance(err, DatabaseNotFoundError) and err.database == "nodb"


def test_a_rate_limit_status_is_transient_and_an_ordinary_failure_is_not() -> None:
    limited = common_pb2.Status(
        code=8,
        error_code=common_pb2.RateLimit,
        reason="request is rejected by grpc RateLimiter middleware, please retry later: rate limit exceeded[rate=0.5]",
    )
    err = status_error("Flush", limited, coll="c1")
    assert isinstance(err, MilvusOperationError) and is_transient(err)
    plain = common_pb2.Status(error_code=common_pb2.UnexpectedError, reason="segment not flushed")
    assert not is_transient(status_error("Flush", plain, coll="c1"))


def test_a_permission_status_is_a_permission_error() -> None:
    status = common_pb2.Status(
        error_code=common_pb2.PermissionDenied, reason="PrivilegeLoad: permission deny to u1"
    )
    assert isinstance(status_error("GetLoadState", status, coll="c1", target=TARGET), MilvusPermissionError)


def test_status_helpers() -> None:
    ok = common_pb2.Status()
    assert not failed(ok) and failed(common_pb2.Status(code=5)) and failed(common_pb2.Status(error_code=1))
    assert status_of(ok) is ok and status_of(object()) is None
