"""Which errors are transient: the classifier behind :mod:`milvus_backup_lib.retry`.

:func:`is_transient` (re-exported by :mod:`milvus_backup_lib.retry`) says whether an error can go away
by itself; :func:`describe` names an error and what decided its verdict for a log line, from a fixed
vocabulary and never from the error's message; :func:`endpoint_of` finds the host an error was about
(``host:port``, from the attributes of the connection errors that carry one), for the same lines.

The ``__cause__`` chain is followed: the first link with a verdict decides,
so s3fs's ``OSError`` made from a botocore ``SlowDown`` and our ``StorageError`` raised ``from`` a
connection reset are transient, while a ``ManifestError`` is permanent whatever caused it.

Transient:

- throttling: S3 ``SlowDown``, ``Throttling``, ``RequestLimitExceeded`` (and the other codes of
  ``_S3_TRANSIENT_CODES``), HTTP 429, Azure ``ServerBusy``, gRPC ``RESOURCE_EXHAUSTED``, a Milvus
  "rate limit" (or legacy code 49), "too many concurrent requests", "service not ready/unavailable";
- timeouts: ``TimeoutError`` (= ``socket.timeout``), asyncio's and concurrent.futures'
  ``TimeoutError``, botocore ``ReadTimeoutError``/``ConnectTimeoutError``, aiohttp
  ``ServerTimeoutError``, requests ``Timeout``, HTTP 408, S3 ``RequestTimeout``, gRPC ``DEADLINE_EXCEEDED``;
- connections: ``ConnectionError`` and its subclasses (reset, aborted, broken pipe, refused), errno
  ``ENETUNREACH``/``EHOSTUNREACH``/``ENETDOWN``/..., DNS ``EAI_AGAIN``, botocore
  ``EndpointConnectionError``/``ConnectionClosedError``/``HTTPClientError``, aiohttp
  ``ClientConnectionError``/``ClientPayloadError``, Azure ``ServiceRequestError``/``ServiceResponseError``,
  google-auth ``TransportError``, truncated bodies, gcsfs ``ChecksumError``, aiohttp
  ``ServerDisconnectedError``;
- a TLS connection cut short: ``ssl.SSLEOFError`` ("EOF occurred in violation of protocol",
  ``UNEXPECTED_EOF_WHILE_READING``) and ``ssl.SSLZeroReturnError``, also when botocore's,
  requests', urllib3's or aiohttp's SSL error wraps one (a load balancer or proxy closing an idle or
  long connection says this, not a certificate problem);
- server errors: HTTP 5xx except 501 and 505 (botocore ``ClientError``, gcsfs ``HttpError``, Azure
  ``HttpResponseError``, aiohttp ``ClientResponseError``, google-api-core errors); gRPC ``UNAVAILABLE``;
- errors that say so: ``.retryable`` (our ``MilvusConnectionError``, ``FlushTimeoutError``;
  google-auth) or ``.retriable`` (pymilvus) is True.

Permanent: everything else, in particular not found (``FileNotFoundError``, HTTP 404, ``NoSuchKey``,
``NoSuchBucket``, Azure ``ResourceNotFoundError``), access denied (``PermissionError``, 401, 403,
``AccessDenied``), bad requests (400 and the other 4xx), other gRPC codes, TLS certificate and other SSL
set-up errors, DNS names that do not resolve, ``ValueError``, ``TypeError``, ``LookupError``,
``AttributeError``, ``NotImplementedError``, every ``MilvusBackupError`` without ``retryable`` (the
wrappers ``StorageError`` and ``MilvusOperationError``, the base class and the groups ``MilvusError``,
``BackupError``, ``RestoreError`` themselves defer to their cause, and are permanent without one),
errors nobody classified, and ``BaseException``s that are not ``Exception``s (interrupts,
cancellation), which are never caught at all.

``ConnectionRefusedError`` is transient on purpose: it is what a restarting MinIO or Milvus pod, or a
load balancer without a healthy backend, answers for a few seconds. A wrong port answers it too; that
costs the bounded retries (seconds) before the same error reaches the caller.

Third-party exception types are recognised by their qualified class names and attributes, never
imported, so this module works without s3fs, gcsfs, adlfs, aiohttp or botocore installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import socket
import ssl
from urllib.parse import urlsplit

import attrs

from milvus_backup_lib.errors import (
    BackupError,
    MilvusBackupError,
    MilvusError,
    MilvusOperationError,
    RestoreError,
    StorageError,
)

__all__ = ["describe", "endpoint_of", "is_transient"]

#: How many ``__cause__`` links are inspected; chains are short, this only guards against cycles.
_MAX_CHAIN = 16

_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ETIMEDOUT",
        "ECONNRESET",
        "ECONNABORTED",
        "ECONNREFUSED",
        "EPIPE",
        "ENETDOWN",
        "ENETUNREACH",
        "ENETRESET",
        "EHOSTDOWN",
        "EHOSTUNREACH",
    )
    if hasattr(errno, name)
)

#: S3 error codes that mean "slow down" or "try again" (AWS's "retryable errors" list and s3fs's).
_S3_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "OperationAborted",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)

#: Azure Storage error codes for throttling and server-side timeouts (they also come with a 5xx).
_AZURE_TRANSIENT_CODES = frozenset({"ServerBusy", "OperationTimedOut", "InternalError", "ServiceUnavailable"})

_GRPC_TRANSIENT_CODES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})

#: Milvus reasons that Milvus itself marks retriable (``merr``: rate limit, queue full, not ready).
_MILVUS_TRANSIENT_REASONS = (
    "rate limit",
    "ratelimit",
    "too many concurrent requests",
    "service not ready",
    "service unavailable",
)
#: Our gRPC translation writes ``"{StatusCode.name}: {details}"`` as the reason.
_MILVUS_TRANSIENT_PREFIXES = tuple(f"{code}:" for code in sorted(_GRPC_TRANSIENT_CODES))
#: The legacy ``commonpb.ErrorCode.RateLimit``. (Code 8 is also "rate limit" in the new ``merr`` codes,
#: but the same number is the legacy ``IllegalIndexType``: only the reason text tells them apart.)
_MILVUS_LEGACY_RATE_LIMIT = 49

#: Checked before the transient names: these subclass a transient type but retrying cannot help.
_PERMANENT_NAMES = frozenset(
    {
        "aiohttp.client_exceptions.ClientSSLError",
        "botocore.exceptions.SSLError",
        "requests.exceptions.SSLError",
        "azure.core.exceptions.ResourceNotFoundError",
        "azure.core.exceptions.ResourceExistsError",
        "azure.core.exceptions.ClientAuthenticationError",
    }
)

#: SSL errors of the HTTP stacks: permanent unless what they wrap is a TLS connection cut short.
_TLS_WRAPPER_NAMES = frozenset(
    {
        "aiohttp.client_exceptions.ClientSSLError",
        "botocore.exceptions.SSLError",
        "requests.exceptions.SSLError",
        "urllib3.exceptions.SSLError",
    }
)
#: OpenSSL's reason, and Python's text, for a peer that closed the connection without a TLS goodbye.
_TLS_EOF_REASONS = frozenset({"UNEXPECTED_EOF_WHILE_READING", "EOF"})
_TLS_EOF_TEXTS = ("EOF occurred in violation of protocol", "UNEXPECTED_EOF_WHILE_READING")

_TRANSIENT_NAMES = frozenset(
    {
        "botocore.exceptions.HTTPClientError",
        "botocore.exceptions.ConnectionError",
        "botocore.exceptions.ReadTimeoutError",
        "botocore.exceptions.ConnectTimeoutError",
        "botocore.exceptions.EndpointConnectionError",
        "botocore.exceptions.ConnectionClosedError",
        "botocore.exceptions.ResponseStreamingError",
        "urllib3.exceptions.ProtocolError",
        "urllib3.exceptions.TimeoutError",
        "requests.exceptions.ConnectionError",
        "requests.exceptions.Timeout",
        "requests.exceptions.ChunkedEncodingError",
        "aiohttp.client_exceptions.ClientConnectionError",
        "aiohttp.client_exceptions.ClientPayloadError",
        "azure.core.exceptions.ServiceRequestError",
        "azure.core.exceptions.ServiceResponseError",
        "azure.core.exceptions.IncompleteReadError",
        "google.auth.exceptions.TransportError",
        "gcsfs.retry.ChecksumError",
        "http.client.IncompleteRead",
    }
)

_TIMEOUT_TYPES: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncio.TimeoutError,
    concurrent.futures.TimeoutError,
)
_PERMANENT_OS_TYPES: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    PermissionError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
)
_PERMANENT_TYPES: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    NotImplementedError,
    ArithmeticError,
    AssertionError,
    RecursionError,
    MemoryError,
)
#: Our errors that only wrap another one: the wrapped error decides. The base and the group classes
#: (not their subclasses) say only where an error came from, so their cause decides too.
_WRAPPER_TYPES = (
    MilvusBackupError,
    MilvusError,
    StorageError,
    BackupError,
    RestoreError,
    MilvusOperationError,
)


@attrs.frozen
class _Verdict:
    transient: bool
    #: What decided, from a fixed vocabulary (never an exception's message): ``HTTP 503``, ``S3 SlowDown``.
    reason: str


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps, through ``__cause__``) is an error that may go away if retried.

    See the module docstring for the table. Unknown errors are permanent.
    """
    return _classify(exc)[0].transient


def _classify(exc: BaseException) -> tuple[_Verdict, BaseException]:
    """The verdict on ``exc`` and the link of its ``__cause__`` chain that decided it."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(link))
        verdict = _verdict(link)
        if verdict is not None:
            return verdict, link
        link = link.__cause__
    return _Verdict(False, "unknown error"), exc


def _names(exc: BaseException) -> frozenset[str]:
    return frozenset(f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__)


def _verdict(exc: BaseException) -> _Verdict | None:
    """The verdict on one link of a chain, or None when the link only wraps its cause."""
    if not isinstance(exc, Exception):
        return _Verdict(False, "interrupted")  # KeyboardInterrupt, CancelledError, SystemExit
    if isinstance(exc, MilvusBackupError):
        return _our_verdict(exc)
    for attribute in ("retryable", "retriable"):  # google-auth, pymilvus
        if getattr(exc, attribute, None) is True:
            return _Verdict(True, "retryable")
    names = _names(exc)
    if _tls_cut_short(exc):
        return _Verdict(True, "TLS EOF")
    if isinstance(exc, ssl.SSLCertVerificationError) or names & _PERMANENT_NAMES:
        return _Verdict(False, "TLS or authentication")
    verdict = _status_verdict(exc, names)
    if verdict is not None:
        return verdict
    if names & _TRANSIENT_NAMES:
        return _Verdict(True, "connection")
    return _builtin_verdict(exc)


def _tls_cut_short(exc: BaseException, depth: int = 0) -> bool:
    """Whether ``exc`` is (or is an SSL error of an HTTP stack wrapping) a TLS connection cut short."""
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return True
    if depth > 4 or isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if not (isinstance(exc, ssl.SSLError) or _names(exc) & _TLS_WRAPPER_NAMES):
        return False
    if getattr(exc, "reason", None) in _TLS_EOF_REASONS:
        return True
    if any(eof in str(exc) for eof in _TLS_EOF_TEXTS):
        return True
    # botocore keeps the wrapped error in kwargs["error"] (raised without "from"), aiohttp in os_error.
    kwargs = getattr(exc, "kwargs", None)
    inner = [kwargs.get("error") if isinstance(kwargs, dict) else None, getattr(exc, "os_error", None)]
    inner += [exc.__cause__, exc.__context__, *exc.args]
    return any(isinstance(e, BaseException) and _tls_cut_short(e, depth + 1) for e in inner)


def _our_verdict(exc: MilvusBackupError) -> _Verdict | None:
    if exc.retryable:
        return _Verdict(True, "retryable")
    if isinstance(exc, MilvusOperationError):
        reason = exc.reason.lower()
        if (
            any(text in reason for text in _MILVUS_TRANSIENT_REASONS)
            or exc.reason.startswith(_MILVUS_TRANSIENT_PREFIXES)
            or exc.code == _MILVUS_LEGACY_RATE_LIMIT
        ):
            return _Verdict(True, "Milvus rate limit or not ready")
    if type(exc) in _WRAPPER_TYPES:
        return None
    return _Verdict(False, type(exc).__name__)


def _http_verdict(status: object, what: str) -> _Verdict | None:
    if not isinstance(status, int) or isinstance(status, bool):
        return None
    if status in (408, 429) or (500 <= status < 600 and status not in (501, 505)):
        return _Verdict(True, f"{what} {status}")
    if 300 <= status < 600:
        return _Verdict(False, f"{what} {status}")
    return None


def _status_verdict(exc: BaseException, names: frozenset[str]) -> _Verdict | None:
    """Errors that carry an HTTP status, a gRPC code or a Milvus code."""
    if "botocore.exceptions.ClientError" in names:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            code = error.get("Code") if isinstance(error, dict) else None
            if code in _S3_TRANSIENT_CODES:
                return _Verdict(True, f"S3 {code}")
            metadata = response.get("ResponseMetadata") or {}
            status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
            return _http_verdict(status, "HTTP")
        return None
    if "azure.core.exceptions.HttpResponseError" in names:
        code = getattr(exc, "error_code", None)
        if isinstance(code, str) and code in _AZURE_TRANSIENT_CODES:
            return _Verdict(True, f"Azure {code}")
        return _http_verdict(getattr(exc, "status_code", None), "HTTP")
    if "gcsfs.retry.HttpError" in names or "google.api_core.exceptions.GoogleAPICallError" in names:
        return _http_verdict(getattr(exc, "code", None), "HTTP")
    if "aiohttp.client_exceptions.ClientResponseError" in names:
        return _http_verdict(getattr(exc, "status", None), "HTTP")
    if "grpc.RpcError" in names:
        name = _grpc_code_name(exc)
        if name is None:
            return None
        return _Verdict(name in _GRPC_TRANSIENT_CODES, f"gRPC {name}")
    # pymilvus's own retry decorator takes these two codes for the rate limit.
    if "pymilvus.exceptions.MilvusException" in names and (
        getattr(exc, "code", None) == 8 or getattr(exc, "compatible_code", None) == _MILVUS_LEGACY_RATE_LIMIT
    ):
        return _Verdict(True, "Milvus rate limit")
    return None


def _grpc_code_name(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    try:
        status = code()
    except Exception:  # a bare RpcError() has no code
        return None
    name = getattr(status, "name", None)
    return name if isinstance(name, str) else None


def _builtin_verdict(exc: Exception) -> _Verdict | None:
    if isinstance(exc, _TIMEOUT_TYPES):
        return _Verdict(True, "timeout")
    if isinstance(exc, _PERMANENT_OS_TYPES):
        return _Verdict(False, type(exc).__name__)
    if isinstance(exc, ConnectionError):
        return _Verdict(True, "connection")
    if isinstance(exc, socket.gaierror):
        # "Temporary failure in name resolution"; an unknown host stays unknown.
        return _Verdict(exc.errno == socket.EAI_AGAIN, "DNS")
    if isinstance(exc, OSError):
        code = exc.errno
        if code is not None and code in _TRANSIENT_ERRNOS:
            return _Verdict(True, f"errno {errno.errorcode.get(code, code)}")
        return None  # s3fs and gcsfs raise plain OSErrors from the real error: look at the cause
    if isinstance(exc, _PERMANENT_TYPES):
        return _Verdict(False, type(exc).__name__)
    return None


def describe(exc: BaseException) -> str:
    """The error for a log line: type names and the deciding code, never a message."""
    verdict, decided_by = _classify(exc)
    if decided_by is exc:
        return f"{type(exc).__name__} ({verdict.reason})"
    return f"{type(exc).__name__} from {type(decided_by).__name__} ({verdict.reason})"


#: Connection errors that carry the endpoint they failed on: botocore's (``kwargs["endpoint_url"]``),
#: aiohttp's connector error (``host``, ``port``).
_BOTOCORE_ENDPOINT_NAMES = frozenset(
    {
        "botocore.exceptions.EndpointConnectionError",
        "botocore.exceptions.ConnectTimeoutError",
        "botocore.exceptions.ReadTimeoutError",
        "botocore.exceptions.ConnectionClosedError",
    }
)
_AIOHTTP_CONNECTOR = "aiohttp.client_exceptions.ClientConnectorError"


def _host_port(host: object, port: object) -> str:
    if not isinstance(host, str) or not host:
        return ""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if isinstance(port, int) and not isinstance(port, bool) else shown


def endpoint_of(exc: BaseException) -> str:
    """``host:port`` of the endpoint ``exc`` (or an error in its ``__cause__`` chain) failed on, or "".

    Only the host and port are taken (never a URL's user, path or query), from the errors known to
    carry them; everything else gives "".
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(link))
        names = _names(link)
        if names & _BOTOCORE_ENDPOINT_NAMES:
            kwargs = getattr(link, "kwargs", None)
            url = kwargs.get("endpoint_url") if isinstance(kwargs, dict) else None
            if isinstance(url, str):
                try:
                    parts = urlsplit(url)
                    found = _host_port(parts.hostname, parts.port)
                except ValueError:
                    found = ""
                if found:
                    return found
        if _AIOHTTP_CONNECTOR in names:
            found = _host_port(getattr(link, "host", None), getattr(link, "port", None))
            if found:
                return found
        link = link.__cause__
    return ""
