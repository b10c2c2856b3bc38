"""Error translation for the gRPC boundary: every gRPC error and error status becomes one of ours.

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

import grpc
from pymilvus.grpc_gen import common_pb2

from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    MilvusAuthenticationError,
    MilvusBackupError,
    MilvusConnectionError,
    MilvusOperationError,
    MilvusPermissionError,
)
from milvus_backup_lib.options import DEFAULT_DATABASE

__all__ = ["failed", "grpc_code", "rpc_error", "status_error", "status_of"]


def status_error(
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


def grpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
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


def rpc_error(operation: str, exc: grpc.RpcError, target: str, who: str = "") -> MilvusBackupError:
    """Our error for a failed RPC. ``who`` names the credentials ("user 'u1'", "the token"), never them."""
    code = grpc_code(exc)
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


def status_of(response: object) -> common_pb2.Status | None:
    if isinstance(response, common_pb2.Status):
        return response
    status = getattr(response, "status", None)
    return status if isinstance(status, common_pb2.Status) else None


def failed(status: common_pb2.Status) -> bool:
    return bool(status.code != 0 or status.error_code != common_pb2.Success)
