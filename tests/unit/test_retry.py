"""The retry wrapper: which errors are transient, that retries happen, stop and log no secret.

stamina's testing mode is on for every test here (no sleeping) unless a test turns it off itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import itertools
import logging
import socket
import ssl
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import stamina

from milvus_backup_lib import retry
from milvus_backup_lib.errors import (
    BackupNotFoundError,
    FlushTimeoutError,
    ImportFailedError,
    InvalidNameError,
    ManifestError,
    MilvusAuthenticationError,
    MilvusBackupError,
    MilvusConnectionError,
    MilvusOperationError,
    MilvusPermissionError,
    StorageError,
    StorageRootNotFoundError,
)
from milvus_backup_lib.retry import (
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    is_transient,
    retrying,
    set_testing,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "AKIA-very-secret-key"


@pytest.fixture(autouse=True)
def no_sleeping() -> Iterator[None]:
    with set_testing(True):
        yield


def chain(*errors: BaseException) -> BaseException:
    """``errors[0]`` raised from ``errors[1]`` raised from ...: each one's ``__cause__`` is the next."""
    for outer, inner in itertools.pairwise(errors):
        outer.__cause__ = inner
    return errors[0]


# --------------------------------------------------------------------------- classification

BUILTIN_CASES: list[tuple[str, BaseException, bool]] = [
    ("connection reset", ConnectionResetError(errno.ECONNRESET, "reset"), True),
    ("connection aborted", ConnectionAbortedError("aborted"), True),
    ("broken pipe", BrokenPipeError(errno.EPIPE, "pipe"), True),
    ("connection refused (restarting server)", ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
    ("plain ConnectionError", ConnectionError("gone"), True),
    ("TimeoutError", TimeoutError("slow"), True),
    ("socket.timeout", socket.timeout("timed out"), True),  # noqa: UP041 - the alias is the point
    ("asyncio.TimeoutError", asyncio.TimeoutError(), True),
    ("concurrent TimeoutError", concurrent.futures.TimeoutError(), True),
    ("OSError ETIMEDOUT", OSError(errno.ETIMEDOUT, "timed out"), True),
    ("network unreachable", OSError(errno.ENETUNREACH, "unreachable"), True),
    ("host unreachable", OSError(errno.EHOSTUNREACH, "unreachable"), True),
    ("DNS try again", socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), True),
    ("DNS unknown host", socket.gaierror(socket.EAI_NONAME, "Name or service not known"), False),
    ("OSError EIO without cause", OSError(errno.EIO, "io"), False),
    ("plain OSError", OSError("something"), False),
    ("FileNotFoundError", FileNotFoundError(errno.ENOENT, "missing", "/x"), False),
    ("PermissionError", PermissionError(errno.EACCES, "denied"), False),
    ("FileExistsError", FileExistsError("exists"), False),
    ("IsADirectoryError", IsADirectoryError("dir"), False),
    ("certificate", ssl.SSLCertVerificationError("certificate verify failed"), False),
    ("ValueError", ValueError("bad"), False),
    ("TypeError", TypeError("bad"), False),
    ("KeyError", KeyError("k"), False),
    ("AttributeError", AttributeError("a"), False),
    ("RecursionError", RecursionError(), False),
    ("RuntimeError", RuntimeError("?"), False),
    ("Exception", Exception("?"), False),
    ("KeyboardInterrupt", KeyboardInterrupt(), False),
    ("CancelledError", asyncio.CancelledError(), False),
    ("SystemExit", SystemExit(1), False),
]

OUR_CASES: list[tuple[str, BaseException, bool]] = [
    ("MilvusConnectionError", MilvusConnectionError("cannot reach"), True),
    ("FlushTimeoutError", FlushTimeoutError("flush"), True),
    ("rate limit (new merr reason)", MilvusOperationError("Insert", "rate limit exceeded[rate=1]", 8), True),
    ("rate limit (legacy code name)", MilvusOperationError("Flush", "RateLimit", 49), True),
    ("legacy RateLimit code", MilvusOperationError("Insert", "deny to write", 49), True),
    ("queue full", MilvusOperationError("Search", "too many concurrent requests, queue is full", 4), True),
    ("not ready", MilvusOperationError("Load", "service not ready[standby]", 1), True),
    ("RESOURCE_EXHAUSTED", MilvusOperationError("Search", "RESOURCE_EXHAUSTED: try later"), True),
    # Code 8 is "rate limit" in the new codes but IllegalIndexType in the legacy ones: the reason decides.
    ("code 8 without rate limit", MilvusOperationError("CreateIndex", "IllegalIndexType", 8), False),
    ("other operation error", MilvusOperationError("CreateCollection", "already exists", 65535), False),
    ("StorageError, no cause", StorageError("copy verification failed"), False),
    ("StorageRootNotFoundError", StorageRootNotFoundError("no bucket"), False),
    ("ManifestError", ManifestError("full_meta.json", "not JSON"), False),
    ("BackupNotFoundError", BackupNotFoundError("b", "memory://r"), False),
    ("MilvusPermissionError", MilvusPermissionError("no privilege"), False),
    ("MilvusAuthenticationError", MilvusAuthenticationError("wrong password"), False),
    ("InvalidNameError", InvalidNameError("bad name"), False),
    ("ImportFailedError", ImportFailedError("0 rows"), False),
    ("bare MilvusBackupError", MilvusBackupError("?"), False),
]

CHAIN_CASES: list[tuple[str, BaseException, bool]] = [
    ("StorageError from a reset", chain(StorageError("copy failed"), ConnectionResetError()), True),
    ("StorageError from a missing file", chain(StorageError("copy failed"), FileNotFoundError()), False),
    ("three links", chain(StorageError("x"), OSError(errno.EIO, "io"), TimeoutError()), True),
    ("RuntimeError from a timeout", chain(RuntimeError("wrapped"), TimeoutError()), True),
    ("operation error from UNAVAILABLE", chain(MilvusOperationError("Flush", "x"), ConnectionError()), True),
    # A definite verdict on an outer link wins over its cause.
    ("ManifestError from a reset", chain(ManifestError("f", "d"), ConnectionResetError()), False),
    ("PermissionError from a timeout", chain(PermissionError("denied"), TimeoutError()), False),
    ("timeout from a permission error", chain(TimeoutError(), PermissionError()), True),
    (
        "root missing from a reset",
        chain(StorageRootNotFoundError("no bucket"), ConnectionResetError()),
        False,
    ),
]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [pytest.param(exc, expected, id=name) for name, exc, expected in BUILTIN_CASES + OUR_CASES + CHAIN_CASES],
)
def test_classification(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_only_the_cause_chain_counts_not_the_context() -> None:
    # An error raised while handling a transient one (without "from") is judged on its own.
    def clean_up() -> None:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise StorageError("cleanup failed") from None

    with pytest.raises(StorageError) as raised:
        clean_up()
    assert isinstance(raised.value.__context__, ConnectionResetError)
    assert is_transient(raised.value) is False


def test_cause_cycles_terminate() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert is_transient(a) is False
    a.__cause__ = chain(RuntimeError("c"), b)
    assert is_transient(a) is False


def test_long_chains_are_followed_far_enough() -> None:
    links: list[BaseException] = [RuntimeError(str(i)) for i in range(10)]
    assert is_transient(chain(*links, ConnectionResetError())) is True


# Third-party errors, with the real classes where installed (the "all" and "test" extras install them).


def _botocore_client_error(code: str, status: int) -> BaseException:
    botocore = pytest.importorskip("botocore.exceptions")
    return botocore.ClientError(
        {"Error": {"Code": code, "Message": SECRET}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, True),
        ("Throttling", 400, True),
        ("RequestLimitExceeded", 400, True),
        ("RequestTimeout", 400, True),
        ("InternalError", 500, True),
        ("ServiceUnavailable", 503, True),
        ("Whatever", 502, True),
        ("TooManyRequests", 429, True),
        ("NoSuchKey", 404, False),
        ("NoSuchBucket", 404, False),
        ("AccessDenied", 403, False),
        ("InvalidArgument", 400, False),
        ("NotImplemented", 501, False),
    ],
)
def test_s3_client_errors(code: str, status: int, expected: bool) -> None:
    error = _botocore_client_error(code, status)
    assert is_transient(error) is expected
    # As s3fs raises them: a translated OSError with the ClientError as its cause.
    translated = FileNotFoundError() if status == 404 else OSError(errno.EBUSY, "busy")
    assert is_transient(chain(translated, error)) is expected
    assert is_transient(chain(StorageError("copying failed"), translated, error)) is expected


def test_botocore_connection_errors() -> None:
    botocore = pytest.importorskip("botocore.exceptions")
    for error in (
        botocore.ReadTimeoutError(endpoint_url="http://minio:9000"),
        botocore.ConnectTimeoutError(endpoint_url="http://minio:9000"),
        botocore.EndpointConnectionError(endpoint_url="http://minio:9000"),
        botocore.ConnectionClosedError(endpoint_url="http://minio:9000"),
        botocore.ResponseStreamingError(error="IncompleteRead"),
    ):
        assert is_transient(error), error
    assert not is_transient(botocore.NoCredentialsError())
    assert not is_transient(botocore.SSLError(endpoint_url="https://s3", error="certificate verify failed"))


def test_aiohttp_errors() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    assert is_transient(aiohttp.ServerTimeoutError("timeout"))
    assert is_transient(aiohttp.ServerDisconnectedError())
    assert is_transient(aiohttp.ClientPayloadError("truncated"))
    assert is_transient(aiohttp.ClientResponseError(None, (), status=503))  # type: ignore[arg-type]
    assert is_transient(aiohttp.ClientResponseError(None, (), status=429))  # type: ignore[arg-type]
    assert not is_transient(aiohttp.ClientResponseError(None, (), status=404))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "expected"), [(429, True), (500, True), (503, True), (400, False), (401, False)]
)
def test_gcsfs_http_errors(code: int, expected: bool) -> None:
    gcsfs_retry = pytest.importorskip("gcsfs.retry")
    assert is_transient(gcsfs_retry.HttpError({"code": code, "message": SECRET})) is expected


def test_gcsfs_checksum_error_is_transient() -> None:
    gcsfs_retry = pytest.importorskip("gcsfs.retry")
    assert is_transient(gcsfs_retry.ChecksumError("md5 mismatch"))


def test_azure_errors() -> None:
    azure = pytest.importorskip("azure.core.exceptions")
    busy = azure.HttpResponseError("busy")
    busy.status_code, busy.error_code = 503, "ServerBusy"
    assert is_transient(busy)
    server = azure.HttpResponseError("internal")
    server.status_code = 500
    assert is_transient(server)
    throttled = azure.HttpResponseError("throttled")
    throttled.status_code = 429
    assert is_transient(throttled)
    bad = azure.HttpResponseError("bad request")
    bad.status_code = 400
    assert not is_transient(bad)
    assert is_transient(azure.ServiceRequestError("connection failed"))
    assert is_transient(azure.ServiceResponseError("connection dropped"))
    assert not is_transient(azure.ResourceNotFoundError("no blob"))
    assert not is_transient(azure.ClientAuthenticationError("bad key"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("UNAVAILABLE", True),
        ("RESOURCE_EXHAUSTED", True),
        ("DEADLINE_EXCEEDED", True),
        ("NOT_FOUND", False),
        ("PERMISSION_DENIED", False),
        ("INVALID_ARGUMENT", False),
        ("UNIMPLEMENTED", False),
    ],
)
def test_grpc_errors(name: str, expected: bool) -> None:
    grpc = pytest.importorskip("grpc")

    class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
        def code(self) -> Any:
            return grpc.StatusCode[name]

    assert is_transient(FakeRpcError()) is expected
    assert is_transient(chain(MilvusOperationError("Insert", "failed"), FakeRpcError())) is expected


def test_bare_grpc_error_without_code_is_permanent() -> None:
    grpc = pytest.importorskip("grpc")
    assert not is_transient(grpc.RpcError())


def test_pymilvus_and_google_auth_errors() -> None:
    pymilvus = pytest.importorskip("pymilvus.exceptions")
    assert is_transient(pymilvus.MilvusException(code=8, message="rate limit exceeded"))
    assert is_transient(pymilvus.MilvusException(code=1, message="x", retriable=True))
    assert not is_transient(pymilvus.MilvusException(code=1100, message="invalid parameter"))
    google_auth = pytest.importorskip("google.auth.exceptions")
    assert is_transient(google_auth.TransportError("connection reset"))
    assert not is_transient(google_auth.RefreshError("invalid_grant"))
    assert is_transient(google_auth.RefreshError("temporarily unavailable", retryable=True))


def test_requests_errors() -> None:
    requests = pytest.importorskip("requests.exceptions")
    assert is_transient(requests.ConnectionError("reset"))
    assert is_transient(requests.ReadTimeout("slow"))
    assert is_transient(requests.ChunkedEncodingError("truncated"))
    assert not is_transient(requests.SSLError("certificate verify failed"))


def _fake(module: str, name: str, base: type[Exception] = Exception, **attributes: Any) -> Exception:
    """An exception whose class claims to come from ``module``: how the classifier sees it uninstalled."""
    cls = type(name, (base,), {"__module__": module, "__qualname__": name})
    error = cls("fake")
    for key, value in attributes.items():
        setattr(error, key, value)
    return error


def test_third_party_errors_are_recognised_by_name_without_importing_them() -> None:
    slow_down = _fake(
        "botocore.exceptions",
        "ClientError",
        response={"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
    )
    no_such_key = _fake(
        "botocore.exceptions",
        "ClientError",
        response={"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}},
    )
    assert is_transient(slow_down)
    assert not is_transient(no_such_key)
    assert is_transient(_fake("gcsfs.retry", "HttpError", code=503))
    assert not is_transient(_fake("gcsfs.retry", "HttpError", code=403))
    assert is_transient(_fake("azure.core.exceptions", "HttpResponseError", status_code=503, error_code=None))
    assert is_transient(_fake("botocore.exceptions", "HTTPClientError"))
    # A malformed response is not a crash, just no verdict.
    assert not is_transient(_fake("botocore.exceptions", "ClientError", response="garbage"))
    assert not is_transient(_fake("botocore.exceptions", "ClientError", response={"Error": "x"}))


def test_the_module_needs_no_storage_backend_installed() -> None:
    blocked = [
        "botocore",
        "aiobotocore",
        "s3fs",
        "gcsfs",
        "adlfs",
        "aiohttp",
        "azure",
        "google.auth",
    ]  # not requests: pymilvus imports it
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "from milvus_backup_lib.retry import is_transient\n"
        "assert is_transient(ConnectionResetError())\n"
        "assert not is_transient(FileNotFoundError())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------- retrying


class Flaky:
    """Raises the given errors one per call, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: Any = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args, self.kwargs = args, kwargs
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_transient_errors_are_retried_until_success() -> None:
    flaky = Flaky(ConnectionResetError(), TimeoutError(), result=42)
    assert call_with_retries("read manifest", flaky, "a", b=2) == 42
    assert flaky.calls == 3
    assert flaky.args == ("a",)
    assert flaky.kwargs == {"b": 2}


def test_keyword_arguments_named_like_ours_reach_the_function() -> None:
    flaky = Flaky()
    call_with_retries("op", flaky, operation="theirs", attempts=7)
    assert flaky.kwargs == {"operation": "theirs", "attempts": 7}


def test_a_permanent_error_is_raised_at_once_unchanged() -> None:
    error = PermissionError("denied")
    flaky = Flaky(error)
    with pytest.raises(PermissionError) as raised:
        call_with_retries("write", flaky)
    assert raised.value is error
    assert flaky.calls == 1


def test_a_permanent_error_after_transient_ones_stops_the_retries() -> None:
    flaky = Flaky(ConnectionResetError(), FileNotFoundError("gone"), ConnectionResetError())
    with pytest.raises(FileNotFoundError):
        call_with_retries("read", flaky)
    assert flaky.calls == 2


def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    errors = [ConnectionResetError(f"reset {i}") for i in range(3)]
    cause = TimeoutError("underlying")
    wrapped = chain(StorageError("copy failed"), cause)
    flaky = Flaky(*errors, wrapped, ConnectionResetError("never raised"))
    with pytest.raises(StorageError) as raised:
        RetryPolicy(attempts=4).call("copy", flaky)
    assert raised.value is wrapped
    assert raised.value.__cause__ is cause
    assert flaky.calls == 4


def test_interrupts_are_not_retried() -> None:
    flaky = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        call_with_retries("copy", flaky)
    assert flaky.calls == 1


def test_the_decorator_retries_every_call() -> None:
    flaky = Flaky(ConnectionResetError(), result="ok")

    @retrying("list backups", attempts=3)
    def list_backups(root: str) -> str:
        """Docstring kept."""
        return str(flaky(root))

    assert list_backups("memory://r") == "ok"
    assert flaky.calls == 2
    assert list_backups.__name__ == "list_backups"
    assert list_backups.__doc__ == "Docstring kept."


def test_coroutines_are_retried() -> None:
    flaky = Flaky(TimeoutError(), ConnectionResetError(), result=b"bytes")

    async def cat_file(path: str) -> Any:
        return flaky(path)

    assert asyncio.run(acall_with_retries("cat_file", cat_file, "/x")) == b"bytes"
    assert flaky.calls == 3

    permanent = Flaky(FileNotFoundError("/x"))

    async def missing(path: str) -> Any:
        return permanent(path)

    with pytest.raises(FileNotFoundError):
        asyncio.run(RetryPolicy(attempts=3).acall("cat_file", missing, "/x"))
    assert permanent.calls == 1


def test_testing_mode_never_sleeps() -> None:
    policy = RetryPolicy(attempts=4, wait_initial=30.0, wait_max=30.0, wait_jitter=0.0)
    flaky = Flaky(*(ConnectionResetError() for _ in range(3)))
    started = time.monotonic()
    assert policy.call("copy", flaky) == "done"
    assert time.monotonic() - started < 5
    assert flaky.calls == 4


def test_testing_mode_can_cap_the_attempts_and_restores_the_previous_mode() -> None:
    assert stamina.is_testing()
    with set_testing(True, attempts=2):
        flaky = Flaky(ConnectionResetError(), ConnectionResetError(), ConnectionResetError())
        with pytest.raises(ConnectionResetError):
            call_with_retries("copy", flaky)
        assert flaky.calls == 2
    assert stamina.is_testing()
    with set_testing(False):
        assert not stamina.is_testing()
    assert stamina.is_testing()


def test_real_backoff_outside_testing_mode() -> None:
    with set_testing(False):
        flaky = Flaky(ConnectionResetError(), ConnectionResetError())
        policy = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002, wait_jitter=0.0)
        assert policy.call("copy", flaky) == "done"
        assert flaky.calls == 3


def test_the_timeout_bounds_the_retries_outside_testing_mode() -> None:
    with set_testing(False):
        flaky = Flaky(*(ConnectionResetError() for _ in range(1000)))
        policy = RetryPolicy(attempts=1000, timeout=0.2, wait_initial=0.02, wait_max=0.02, wait_jitter=0.0)
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            policy.call("copy", flaky)
        assert time.monotonic() - started < 5
        assert 2 <= flaky.calls < 100


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"timeout": 0}, {"timeout": -1.0}, {"wait_initial": -1.0}, {"wait_max": -0.5}],
)
def test_policy_values_are_checked(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - attrs' validators word their own messages
        RetryPolicy(**kwargs)


def test_no_timeout_is_allowed() -> None:
    assert RetryPolicy(timeout=None).call("op", Flaky(ConnectionResetError())) == "done"


# --------------------------------------------------------------------------- logging


def test_each_retry_is_logged_with_operation_and_error_type(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slow_down = chain(OSError(errno.EBUSY, "busy"), _botocore_client_error("SlowDown", 503))
    flaky = Flaky(ConnectionResetError(), slow_down)
    call_with_retries("write meta/backup_meta.json", flaky)
    ours = [r for r in caplog.records if r.name == "milvus_backup_lib.retry"]
    assert [r.levelno for r in ours] == [logging.INFO, logging.INFO]
    first, second = (r.getMessage() for r in ours)
    assert "write meta/backup_meta.json" in first
    assert "attempt 2" in first
    assert "ConnectionResetError" in first
    assert "attempt 3" in second
    assert "OSError from ClientError (S3 SlowDown)" in second


def test_giving_up_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TimeoutError):
        RetryPolicy(attempts=2).call("flush", Flaky(TimeoutError(), TimeoutError()))
    messages = [r.getMessage() for r in caplog.records if r.name == "milvus_backup_lib.retry"]
    assert messages[-1] == "giving up on flush after 2 attempt(s): TimeoutError (timeout)"


def test_permanent_errors_are_not_logged_as_retries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermissionError):
        call_with_retries("write", Flaky(PermissionError(SECRET)))
    assert not [r for r in caplog.records if r.name == "milvus_backup_lib.retry"]


def _everything_logged(records: list[logging.LogRecord]) -> str:
    """Every part of every record a handler or a structured formatter could print."""
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.extend(repr(value) for value in vars(record).values())
    return "\n".join(parts)


def test_no_secret_reaches_any_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, stamina's own instrumentation included
    errors = [
        ConnectionResetError(f"reset while sending key={SECRET}"),
        chain(StorageError(f"copying s3://b/k?X-Amz-Signature={SECRET} failed"), TimeoutError(SECRET)),
        _botocore_client_error("SlowDown", 503),  # its message is SECRET
        MilvusOperationError("Insert", f"rate limit exceeded for token {SECRET}", 8),
        ConnectionResetError(SECRET),
    ]
    with pytest.raises(ConnectionResetError):
        RetryPolicy(attempts=5).call("copy segment 1", Flaky(*errors), SECRET, token=SECRET)
    assert [r for r in caplog.records if r.name == "milvus_backup_lib.retry"]
    assert SECRET not in _everything_logged(caplog.records)


def test_the_default_policy() -> None:
    expected = RetryPolicy(attempts=5, timeout=60.0, wait_initial=0.1, wait_max=5.0, wait_jitter=1.0)
    assert expected == retry.DEFAULT_POLICY
