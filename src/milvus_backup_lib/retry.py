"""The one retry wrapper: an explicit transient/permanent classifier in front of :mod:`stamina`.

A call is tried again only when :func:`is_transient` says the error can go away by itself. Everything
else (a missing key, a refused credential, a bad request, a bug) is raised at once: retrying it would
only delay the error the user has to act on. Retries back off exponentially with jitter and a cap
(stamina's ``min(wait_max, wait_initial * 2 ** (n - 1) + random(0, wait_jitter))``), stop after
``attempts`` tries or ``timeout`` seconds, and re-raise the last error unchanged.

Which errors are transient. The ``__cause__`` chain is followed: the first link with a verdict decides,
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
  google-auth ``TransportError``, truncated bodies, gcsfs ``ChecksumError``;
- server errors: HTTP 5xx except 501 and 505 (botocore ``ClientError``, gcsfs ``HttpError``, Azure
  ``HttpResponseError``, aiohttp ``ClientResponseError``, google-api-core errors); gRPC ``UNAVAILABLE``;
- errors that say so: ``.retryable`` (our ``MilvusConnectionError``, ``FlushTimeoutError``;
  google-auth) or ``.retriable`` (pymilvus) is True.

Permanent: everything else, in particular not found (``FileNotFoundError``, HTTP 404, ``NoSuchKey``,
``NoSuchBucket``, Azure ``ResourceNotFoundError``), access denied (``PermissionError``, 401, 403,
``AccessDenied``), bad requests (400 and the other 4xx), other gRPC codes, TLS certificate and SSL
set-up errors, DNS names that do not resolve, ``ValueError``, ``TypeError``, ``LookupError``,
``AttributeError``, ``NotImplementedError``, every ``MilvusBackupError`` without ``retryable`` (the
wrappers ``StorageError`` and ``MilvusOperationError`` defer to their cause, and are permanent without
one), errors nobody classified, and ``BaseException``s that are not ``Exception``s (interrupts,
cancellation), which are never caught at all.

``ConnectionRefusedError`` is transient on purpose: it is what a restarting MinIO or Milvus pod, or a
load balancer without a healthy backend, answers for a few seconds. A wrong port answers it too; that
costs the bounded retries (seconds) before the same error reaches the caller.

Third-party exception types are recognised by their qualified class names and attributes, never
imported, so this module works without s3fs, gcsfs, adlfs, aiohttp or botocore installed.

Retries are logged at INFO under ``milvus_backup_lib.retry`` with the operation name, the error type
and a code taken from a fixed vocabulary (``HTTP 503``, ``S3 SlowDown``, ``gRPC UNAVAILABLE``): never
the error's message or arguments, which may quote a URL with a token or a credential. stamina's own
instrumentation sees only a stand-in exception whose repr is the error's type name.

Tests call :func:`set_testing` so retries happen without sleeping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import logging
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

import attrs
import stamina

from milvus_backup_lib.errors import MilvusBackupError, MilvusOperationError, StorageError

__all__ = [
    "DEFAULT_POLICY",
    "RetryPolicy",
    "acall_with_retries",
    "call_with_retries",
    "is_transient",
    "retrying",
    "set_testing",
]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

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
#: Our errors that only wrap another one: the wrapped error decides.
_WRAPPER_TYPES = (MilvusBackupError, StorageError, MilvusOperationError)


# --------------------------------------------------------------------------- classification


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
    if isinstance(exc, ssl.SSLCertVerificationError) or names & _PERMANENT_NAMES:
        return _Verdict(False, "TLS or authentication")
    verdict = _status_verdict(exc, names)
    if verdict is not None:
        return verdict
    if names & _TRANSIENT_NAMES:
        return _Verdict(True, "connection")
    return _builtin_verdict(exc)


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


def _describe(exc: BaseException) -> str:
    """The error for a log line: type names and the deciding code, never a message."""
    verdict, decided_by = _classify(exc)
    if decided_by is exc:
        return f"{type(exc).__name__} ({verdict.reason})"
    return f"{type(exc).__name__} from {type(decided_by).__name__} ({verdict.reason})"


# --------------------------------------------------------------------------- retrying


class _TransientFailure(Exception):
    """What stamina sees instead of a transient error: it retries on this type only.

    Its repr names only the wrapped error's type, so stamina's instrumentation (which logs the repr
    of the error that caused a retry) cannot print a message holding a secret.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error

    def __repr__(self) -> str:
        return f"TransientFailure({type(self.error).__name__})"


@attrs.frozen
class RetryPolicy:
    """How often and how long to retry transient errors; see the module docstring for the backoff.

    ``timeout`` (seconds, None for no limit) bounds the whole series of attempts, measured from the
    first; it does not interrupt an attempt that is running.
    """

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    timeout: float | None = attrs.field(default=60.0)
    wait_initial: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    wait_max: float = attrs.field(default=5.0, validator=attrs.validators.ge(0.0))
    wait_jitter: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))

    @timeout.validator
    def _check_timeout(self, attribute: attrs.Attribute[float | None], value: float | None) -> None:
        if value is not None and not value > 0:
            raise ValueError(f"timeout must be None or more than 0 seconds, not {value!r}")

    def _attempts(self) -> Any:
        return stamina.retry_context(
            on=_TransientFailure,
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )

    def call(self, operation: str, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)``, tried again while it raises a transient error.

        ``fn`` must be safe to repeat (idempotent). ``operation`` names it in log lines; it must not
        hold a secret. Raises the last error when the attempts or the time run out, and a permanent
        error at once; either way the error is the one ``fn`` raised, unchanged.
        """
        tracker = _Tracker(operation, self.attempts)
        try:
            for attempt in self._attempts():
                with attempt:
                    tracker.starting(attempt.num)
                    try:
                        return fn(*args, **kwargs)
                    except Exception as exc:
                        tracker.failed(exc)
                        raise
        except _TransientFailure as failure:
            error = failure.error
        else:  # pragma: no cover - stamina either returns a result or raises
            raise AssertionError("stamina ended without a result")
        tracker.giving_up(error)
        raise error

    async def acall(
        self, operation: str, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """The coroutine version of :meth:`call`: awaits ``fn(*args, **kwargs)``, sleeping with asyncio."""
        tracker = _Tracker(operation, self.attempts)
        try:
            async for attempt in self._attempts():
                with attempt:
                    tracker.starting(attempt.num)
                    try:
                        return await fn(*args, **kwargs)
                    except Exception as exc:
                        tracker.failed(exc)
                        raise
        except _TransientFailure as failure:
            error = failure.error
        else:  # pragma: no cover - stamina either returns a result or raises
            raise AssertionError("stamina ended without a result")
        tracker.giving_up(error)
        raise error


class _Tracker:
    """Logs retries of one call and turns transient errors into :class:`_TransientFailure`."""

    def __init__(self, operation: str, attempts: int) -> None:
        self.operation = operation
        self.attempts = attempts
        self.tries = 0
        self.last: str = ""

    def starting(self, num: int) -> None:
        self.tries = num
        if num > 1:
            log.info(
                "retrying %s (attempt %d of at most %d) after %s",
                self.operation,
                num,
                self.attempts,
                self.last,
            )

    def failed(self, exc: Exception) -> None:
        """Raise :class:`_TransientFailure` for a transient ``exc``; return (to re-raise it) otherwise."""
        if is_transient(exc):
            self.last = _describe(exc)
            raise _TransientFailure(exc) from exc

    def giving_up(self, error: Exception) -> None:
        log.info("giving up on %s after %d attempt(s): %s", self.operation, self.tries, _describe(error))


#: Five attempts within 60 s, waits from 0.1 s (plus up to 1 s of jitter) growing to at most 5 s.
DEFAULT_POLICY = RetryPolicy()


def call_with_retries(operation: str, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``fn(*args, **kwargs)`` under :data:`DEFAULT_POLICY`; see :meth:`RetryPolicy.call`."""
    return DEFAULT_POLICY.call(operation, fn, *args, **kwargs)


async def acall_with_retries(
    operation: str, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """Await ``fn(*args, **kwargs)`` under :data:`DEFAULT_POLICY`; see :meth:`RetryPolicy.acall`."""
    return await DEFAULT_POLICY.acall(operation, fn, *args, **kwargs)


def retrying(
    operation: str,
    *,
    attempts: int = 5,
    timeout: float | None = 60.0,
    wait_initial: float = 0.1,
    wait_max: float = 5.0,
    wait_jitter: float = 1.0,
) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """A decorator: every call of the decorated (synchronous, idempotent) function is retried.

    ``@retrying("write manifest")`` is ``RetryPolicy(...).call("write manifest", fn, ...)`` per call.
    """
    policy = RetryPolicy(
        attempts=attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_jitter,
    )

    def decorate(fn: Callable[_P, _T]) -> Callable[_P, _T]:
        @functools.wraps(fn)
        def retried(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return policy.call(operation, fn, *args, **kwargs)

        return retried

    return decorate


# --------------------------------------------------------------------------- tests


def set_testing(enabled: bool, *, attempts: int | None = None) -> AbstractContextManager[None]:
    """Turn stamina's testing mode on or off: retries happen at once, without sleeping or timeouts.

    With ``attempts=None`` each policy keeps its own number of attempts; an int caps it. Usable as a
    plain call (``set_testing(True)`` ... ``set_testing(False)``) or as a context manager that
    restores the previous mode on exit. The mode is process-wide (stamina's global configuration).
    """
    cap = sys.maxsize if attempts is None else attempts
    restore: AbstractContextManager[None] = stamina.set_testing(enabled, attempts=cap, cap=True)
    return restore
