"""Retries that fit large files: a budget sized by the file, a time limit per attempt, TLS EOFs retried.

Time is simulated where the test is about minutes (a fake clock stands in for ``time.monotonic`` and
``time.sleep``, which tenacity, under stamina, reads); only the per-attempt cut uses real (short) time.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from typing import TYPE_CHECKING

import pytest

from milvus_backup_lib.retry import (
    DEFAULT_POLICY,
    AttemptTimeoutError,
    RetryPolicy,
    budget_for,
    call_with_retries,
    is_transient,
    set_testing,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

MIB = 2**20


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` on simulated seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    with set_testing(False):  # testing mode switches timeouts off: the budget is what is tested
        monkeypatch.setattr(time, "monotonic", fake.monotonic)
        monkeypatch.setattr(time, "sleep", fake.sleep)
        yield fake


class LateFailingStream:
    """A stream of ``size`` bytes at 10 MiB/s that breaks after ``fail_after`` simulated seconds, once."""

    def __init__(self, clock: FakeClock, size: int, fail_after: float) -> None:
        self.clock = clock
        self.size = size
        self.fail_after = fail_after
        self.attempts = 0

    def __call__(self) -> int:
        self.attempts += 1
        if self.attempts == 1:
            self.clock.now += self.fail_after
            raise ConnectionResetError("connection reset by peer in the middle of the body")
        self.clock.now += self.size / (10 * MIB)
        return self.size


def test_a_stream_failing_after_90_s_is_not_retried_by_the_unsized_budget(clock: FakeClock) -> None:
    # What the issue reproduced: the budget counts from the first byte, so the late failure is final.
    stream = LateFailingStream(clock, 2048 * MIB, fail_after=90.0)
    with pytest.raises(ConnectionResetError):
        call_with_retries("stream big", stream)
    assert stream.attempts == 1


def test_a_stream_failing_after_90_s_is_retried_with_a_budget_sized_for_the_file(clock: FakeClock) -> None:
    size = 2048 * MIB
    stream = LateFailingStream(clock, size, fail_after=90.0)
    started = clock.now
    assert budget_for(size).call("stream big", stream) == size
    assert stream.attempts == 2
    assert clock.now - started >= 90 + size / (10 * MIB)


def test_the_sized_budget_still_ends(clock: FakeClock) -> None:
    policy = RetryPolicy(attempts=1000, timeout=60.0, wait_initial=1.0, wait_max=1.0, wait_jitter=0.0)
    sized = policy.budget_for(100 * MIB)
    calls = 0

    def always_late() -> None:
        nonlocal calls
        calls += 1
        clock.now += 120.0
        raise ConnectionResetError("reset")

    started = clock.now
    with pytest.raises(ConnectionResetError):
        sized.call("stream", always_late)
    assert sized.timeout is not None
    assert clock.now - started < sized.timeout + 121 + 1
    assert 2 <= calls < 1000


def test_budget_for_scales_with_the_size() -> None:
    small, large = DEFAULT_POLICY.budget_for(0), DEFAULT_POLICY.budget_for(1024 * MIB)
    assert small.attempt_timeout == DEFAULT_POLICY.attempt_overhead
    assert (
        large.attempt_timeout == DEFAULT_POLICY.attempt_overhead + 1024 * MIB / DEFAULT_POLICY.min_throughput
    )
    assert DEFAULT_POLICY.timeout is not None and small.timeout is not None and large.timeout is not None
    # Room for one attempt that fails (or is cut) late, and a whole retry.
    assert small.timeout == DEFAULT_POLICY.timeout + 2 * small.attempt_timeout
    assert large.timeout > 2 * large.attempt_timeout
    assert RetryPolicy(timeout=None).budget_for(MIB).timeout is None
    assert (large.attempts, large.wait_initial, large.endpoint) == (
        DEFAULT_POLICY.attempts,
        DEFAULT_POLICY.wait_initial,
        DEFAULT_POLICY.endpoint,
    )
    assert DEFAULT_POLICY.attempt_timeout is None  # unsized calls keep running as before


@pytest.mark.parametrize(
    "kwargs",
    [{"attempt_timeout": 0}, {"attempt_timeout": -1.0}, {"min_throughput": 0}, {"attempt_overhead": 0}],
)
def test_new_policy_values_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"attempt_timeout|min_throughput|attempt_overhead"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_attempt_limit_cuts_a_hung_attempt_and_the_retry_succeeds() -> None:
    release = threading.Event()
    calls = 0

    def hangs_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.wait(30)  # a read that never returns
            return "late"
        return "done"

    policy = RetryPolicy(attempts=3, attempt_timeout=0.2)
    started = time.monotonic()
    with set_testing(True):
        assert policy.call("stream", hangs_once) == "done"
    release.set()
    assert calls == 2
    assert time.monotonic() - started < 10


def test_an_attempt_that_always_hangs_ends_with_attempt_timeout_error() -> None:
    release = threading.Event()
    policy = RetryPolicy(attempts=2, attempt_timeout=0.1)
    with (
        set_testing(True),
        pytest.raises(AttemptTimeoutError, match=r"stream x took longer than 0 s, the limit of one attempt"),
    ):
        policy.call("stream x", release.wait, 30)
    release.set()
    assert is_transient(AttemptTimeoutError("x", 1.0))


def test_errors_and_results_cross_the_attempt_thread_unchanged() -> None:
    policy = RetryPolicy(attempts=1, attempt_timeout=5.0)
    assert policy.call("add", lambda a, b: a + b, 1, 2) == 3
    error = FileNotFoundError("gone")

    def missing() -> None:
        raise error

    with pytest.raises(FileNotFoundError) as caught:
        policy.call("read", missing)
    assert caught.value is error


def test_a_hung_coroutine_is_cancelled_and_retried() -> None:
    calls = 0
    cancelled = False

    async def hangs_once() -> str:
        nonlocal calls, cancelled
        calls += 1
        if calls == 1:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled = True
                raise
        return "done"

    policy = RetryPolicy(attempts=3, attempt_timeout=0.2)
    with set_testing(True):
        assert asyncio.run(policy.acall("copy", hangs_once)) == "done"
    assert (calls, cancelled) == (2, True)


def test_a_coroutine_raising_timeout_itself_is_not_taken_for_the_limit() -> None:
    async def times_out() -> None:
        raise TimeoutError("socket read timed out")

    policy = RetryPolicy(attempts=1, attempt_timeout=5.0)
    with pytest.raises(TimeoutError) as caught:
        asyncio.run(policy.acall("copy", times_out))
    assert not isinstance(caught.value, AttemptTimeoutError)


# --------------------------------------------------------------------------- TLS cut short


def test_tls_eof_is_transient() -> None:
    assert is_transient(ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)"))
    assert is_transient(ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"))
    wrapped = OSError("read failed")
    wrapped.__cause__ = ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred")
    assert is_transient(wrapped)


def test_certificate_errors_stay_permanent() -> None:
    assert not is_transient(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert not is_transient(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"))


def test_botocore_ssl_error_around_an_eof_is_transient() -> None:
    botocore = pytest.importorskip("botocore.exceptions")
    urllib3 = pytest.importorskip("urllib3.exceptions")
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)")
    # botocore raises SSLError(endpoint_url=..., error=e) inside "except", without "from".
    assert is_transient(botocore.SSLError(endpoint_url="https://s3.example", error=urllib3.SSLError(eof)))
    assert is_transient(botocore.SSLError(endpoint_url="https://s3.example", error=eof))
    certificate = urllib3.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert not is_transient(botocore.SSLError(endpoint_url="https://s3.example", error=certificate))


def test_aiohttp_body_and_disconnect_errors_are_transient() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    assert is_transient(aiohttp.ServerDisconnectedError())
    assert is_transient(aiohttp.ClientPayloadError("Response payload is not completed"))
    reset = aiohttp.ClientPayloadError("body")
    reset.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert is_transient(reset)
    assert is_transient(OSError("stream failed")) is False  # an unexplained OSError stays permanent


def test_connection_reset_during_a_body_is_transient() -> None:
    urllib3 = pytest.importorskip("urllib3.exceptions")
    error = urllib3.ProtocolError("Connection broken", ConnectionResetError(104, "reset"))
    assert is_transient(error)
    assert is_transient(ConnectionResetError(104, "Connection reset by peer"))
