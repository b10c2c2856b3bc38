"""The one retry wrapper: an explicit transient/permanent classifier in front of :mod:`stamina`.

A call is tried again only when :func:`is_transient` says the error can go away by itself. Everything
else (a missing key, a refused credential, a bad request, a bug) is raised at once: retrying it would
only delay the error the user has to act on. Retries back off exponentially with jitter and a cap
(stamina's ``min(wait_max, wait_initial * 2 ** (n - 1) + random(0, wait_jitter))``), stop after
``attempts`` tries or ``timeout`` seconds, and re-raise the last error unchanged.

A call that moves a file gets a policy sized for it from :meth:`RetryPolicy.budget_for` (or the
module's :func:`budget_for`): each attempt may run for ``attempt_overhead + size / min_throughput``
seconds and is cut (:class:`AttemptTimeoutError`, transient) when it runs longer, and the whole series
may run for ``timeout + 2 x`` that, so that a stream that fails after 90 s of a large file is
tried again instead of being past a budget that counted from its first byte. A synchronous attempt
with a time limit runs in a helper thread; when it is cut, the thread is left to end by itself (its
result is dropped), as a hung socket read cannot be interrupted from outside.

Which errors are transient (throttling, timeouts, connection failures, server errors, and errors
marked ``retryable``) and which are permanent is decided by :func:`is_transient`; the full table is in
:mod:`milvus_backup_lib._transient`, which holds the classifier. ``ConnectionRefusedError`` is
transient on purpose (a restarting pod answers it for a few seconds).

Retries are logged at INFO under ``milvus_backup_lib.retry``, one readable line per retry: what is
retried (the operation, and the endpoint when the policy or the error names one), the attempt out of
how many, the seconds waited, and the error as its type and a code from a fixed vocabulary
(``HTTP 503``, ``S3 SlowDown``, ``gRPC UNAVAILABLE``)::

    retrying CreateIndex at 127.0.0.1:19530 (attempt 2 of 6, after 0.4 s): MilvusConnectionError from
    _InactiveRpcError (gRPC UNAVAILABLE)

Never the error's message or arguments, which may quote a URL with a token or a credential. stamina's
own instrumentation sees only a stand-in exception whose repr is the error's type name, and its
standard-library hook (a WARNING ``stamina.retry_scheduled`` record on the ``stamina`` logger, which
says nothing a reader can use) is filtered out for the retries of this module, which log their own
line; other users of stamina keep theirs.

Tests call :func:`set_testing` so retries happen without sleeping.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

import attrs
import stamina

from milvus_backup_lib._transient import describe, endpoint_of, is_transient

__all__ = [
    "DEFAULT_POLICY",
    "AttemptTimeoutError",
    "RetryPolicy",
    "acall_with_retries",
    "budget_for",
    "call_with_retries",
    "is_transient",
    "retrying",
    "set_testing",
]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")


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
        return f"{_STAND_IN}({type(self.error).__name__})"


_STAND_IN = "TransientFailure"


class _OwnRetriesFilter(logging.Filter):
    """Drops stamina's ``stamina.retry_scheduled`` records about our retries: they log their own line."""

    def filter(self, record: logging.LogRecord) -> bool:
        caused_by = getattr(record, "stamina.caused_by", "")
        return not (isinstance(caused_by, str) and caused_by.startswith(f"{_STAND_IN}("))


def _install_stamina_filter() -> None:
    stamina_log = logging.getLogger("stamina")
    if not any(isinstance(f, _OwnRetriesFilter) for f in stamina_log.filters):
        stamina_log.addFilter(_OwnRetriesFilter())


_install_stamina_filter()


class AttemptTimeoutError(TimeoutError):
    """One attempt ran past its time limit (``RetryPolicy.attempt_timeout``): transient, so retried."""

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(
            f"{operation} took longer than {seconds:.0f} s, the limit of one attempt (60 s plus the "
            "file at 1 MiB/s by default): the connection to the store is stalled or very slow"
        )
        self.operation = operation
        self.seconds = seconds


#: The minimum throughput expected of a transfer (bytes per second): below it an attempt counts as hung.
DEFAULT_MIN_THROUGHPUT = float(2**20)
#: Seconds an attempt may take beyond moving its bytes at the minimum throughput.
DEFAULT_ATTEMPT_OVERHEAD = 60.0


@attrs.frozen
class RetryPolicy:
    """How often and how long to retry transient errors; see the module docstring for the backoff.

    ``timeout`` (seconds, None for no limit) bounds the whole series of attempts, measured from the
    first: no new attempt starts after it. ``attempt_timeout`` (seconds, None for no limit) cuts one
    attempt that runs longer, with :class:`AttemptTimeoutError` (transient). :meth:`budget_for` sizes
    both for a file (``attempt_overhead`` seconds plus the file at ``min_throughput`` bytes per second).
    ``endpoint`` (``host:port``, a URL without credentials) names where the calls go, for the log
    lines; empty when unknown.
    """

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    timeout: float | None = attrs.field(default=60.0)
    wait_initial: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    wait_max: float = attrs.field(default=5.0, validator=attrs.validators.ge(0.0))
    wait_jitter: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    endpoint: str = attrs.field(default="", kw_only=True)
    attempt_timeout: float | None = attrs.field(default=None, kw_only=True)
    attempt_overhead: float = attrs.field(
        default=DEFAULT_ATTEMPT_OVERHEAD, kw_only=True, validator=attrs.validators.gt(0.0)
    )
    min_throughput: float = attrs.field(
        default=DEFAULT_MIN_THROUGHPUT, kw_only=True, validator=attrs.validators.gt(0.0)
    )

    @timeout.validator
    def _check_timeout(self, attribute: attrs.Attribute[float | None], value: float | None) -> None:
        if value is not None and not value > 0:
            raise ValueError(f"timeout must be None or more than 0 seconds, not {value!r}")

    @attempt_timeout.validator
    def _check_attempt_timeout(self, attribute: attrs.Attribute[float | None], value: float | None) -> None:
        if value is not None and not value > 0:
            raise ValueError(f"attempt_timeout must be None or more than 0 seconds, not {value!r}")

    def budget_for(self, size: int) -> RetryPolicy:
        """This policy sized for moving ``size`` bytes: the time limits grow with the file.

        One attempt may take ``attempt_overhead + size / min_throughput`` seconds; the series may
        start attempts for ``timeout`` plus two such attempts (room for one that fails late, or is
        cut, and a whole retry); a ``timeout`` of None stays unlimited. Sizing is from this policy's
        own ``timeout``: call it on a base policy, not on one it returned.
        """
        per_attempt = self.attempt_overhead + max(0, size) / self.min_throughput
        total = None if self.timeout is None else self.timeout + 2 * per_attempt
        return attrs.evolve(self, timeout=total, attempt_timeout=per_attempt)

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
        tracker = _Tracker(operation, self.attempts, self.endpoint)
        try:
            for attempt in self._attempts():
                with attempt:
                    tracker.starting(attempt.num)
                    try:
                        return _run_limited(operation, self.attempt_timeout, fn, *args, **kwargs)
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
        tracker = _Tracker(operation, self.attempts, self.endpoint)
        try:
            async for attempt in self._attempts():
                with attempt:
                    tracker.starting(attempt.num)
                    try:
                        if self.attempt_timeout is None:
                            return await fn(*args, **kwargs)
                        return await _await_limited(operation, self.attempt_timeout, fn(*args, **kwargs))
                    except Exception as exc:
                        tracker.failed(exc)
                        raise
        except _TransientFailure as failure:
            error = failure.error
        else:  # pragma: no cover - stamina either returns a result or raises
            raise AssertionError("stamina ended without a result")
        tracker.giving_up(error)
        raise error


def _run_limited(
    operation: str, limit: float | None, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``fn(*args, **kwargs)``; with a ``limit``, in a helper thread, cut after ``limit`` seconds."""
    if limit is None:
        return fn(*args, **kwargs)
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()
    context = contextvars.copy_context()

    def attempt() -> None:
        try:
            outcome.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=attempt, name="retry-attempt", daemon=True).start()
    if not done.wait(limit):
        raise AttemptTimeoutError(operation, limit)
    ok, value = outcome[0]
    if not ok:
        raise value
    result: _T = value
    return result


async def _await_limited(operation: str, limit: float, awaitable: Awaitable[_T]) -> _T:
    """``await awaitable``, cancelled after ``limit`` seconds (then :class:`AttemptTimeoutError`)."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=limit)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # let it clean up, without waiting for a hung one
        raise AttemptTimeoutError(operation, limit)
    return task.result()


class _Tracker:
    """Logs retries of one call and turns transient errors into :class:`_TransientFailure`."""

    def __init__(self, operation: str, attempts: int, endpoint: str = "") -> None:
        self.operation = operation
        self.attempts = attempts
        self.endpoint = endpoint
        self.tries = 0
        self.last: str = ""
        self.last_endpoint = ""
        self.failed_at = 0.0

    def _what(self) -> str:
        endpoint = self.endpoint or self.last_endpoint
        return f"{self.operation} at {endpoint}" if endpoint else self.operation

    def starting(self, num: int) -> None:
        self.tries = num
        if num > 1:
            log.info(
                "retrying %s (attempt %d of %d, after %.1f s): %s",
                self._what(),
                num,
                self.attempts,
                max(0.0, time.monotonic() - self.failed_at),
                self.last,
            )

    def failed(self, exc: Exception) -> None:
        """Raise :class:`_TransientFailure` for a transient ``exc``; return (to re-raise it) otherwise."""
        if is_transient(exc):
            self.last = describe(exc)
            self.last_endpoint = endpoint_of(exc) or self.last_endpoint
            self.failed_at = time.monotonic()
            raise _TransientFailure(exc) from exc

    def giving_up(self, error: Exception) -> None:
        log.info("giving up on %s after %d attempt(s): %s", self._what(), self.tries, describe(error))


#: Five attempts within 60 s, waits from 0.1 s (plus up to 1 s of jitter) growing to at most 5 s.
DEFAULT_POLICY = RetryPolicy()


def budget_for(size: int) -> RetryPolicy:
    """:data:`DEFAULT_POLICY` sized for a file of ``size`` bytes; see :meth:`RetryPolicy.budget_for`.

    ``budget_for(job.size).call("stream x", fn, ...)`` is the sized form of ``call_with_retries``.
    """
    return DEFAULT_POLICY.budget_for(size)


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
