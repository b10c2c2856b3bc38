"""Servers run as child processes: free ports, a process group of their own, logs, readiness, cleanup.

Shared by :mod:`milvus_backup_lib.testing.embedded` and the storage emulators of the repository's tests
(``tests/emulators.py``). Private: these names may change with their two users.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import weakref
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "LogWatch",
    "ManagedProcess",
    "StartStopContext",
    "accepts_connections",
    "free_ports",
    "log_tail",
    "url_answers",
]

_LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 64 * 1024
_KILL_WAIT = 10.0


class Stoppable(Protocol):
    """What is stopped at interpreter exit: a server that owns a :class:`ManagedProcess`."""

    def stop(self) -> object: ...


class StartStopContext:
    """A server used as a context manager: ``with`` calls :meth:`start`, and :meth:`stop` at the end."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ManagedProcess:
    """A child process in a session (so a process group) of its own, its output going to log files.

    The constructor starts it. stdout goes to ``stdout_log``, stderr to ``stderr_log`` or, without one,
    to ``stdout_log`` too; the logs are truncated first unless ``append`` (then ``header`` is written
    before the output, to tell runs apart). ``name`` starts every error message, and errors are raised
    as ``error``. ``owner`` (this process by default) is stopped at interpreter exit if :meth:`stop` has
    not been called by then: a process in a session of its own would otherwise outlive the tests.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        cwd: Path,
        stdout_log: Path,
        stderr_log: Path | None = None,
        env: Mapping[str, str] | None = None,
        append: bool = False,
        header: str = "",
        owner: Stoppable | None = None,
        error: type[Exception] = RuntimeError,
    ) -> None:
        self.name = name
        self.log_paths = [stdout_log] if stderr_log is None else [stdout_log, stderr_log]
        self._error = error
        self._stopped = False
        mode = "ab" if append else "wb"
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(open(stdout_log, mode))
            if header:
                stdout.write(header.encode())
                stdout.flush()
            stderr = subprocess.STDOUT if stderr_log is None else files.enter_context(open(stderr_log, mode))
            self.popen = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its own group: stop() ends whatever it spawned too
            )
        self._owner: Stoppable = self if owner is None else owner
        _RUNNING.add(self._owner)

    @property
    def pid(self) -> int:
        """The process id, which is also the id of its process group."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, or ``None`` while it runs (or before :meth:`poll` saw it end)."""
        return self.popen.returncode

    def poll(self) -> int | None:
        """The exit code if the process has ended, else ``None``."""
        return self.popen.poll()

    def log_tail(self) -> str:
        """The last lines of each log, for error messages (see :func:`log_tail`)."""
        return log_tail(self.log_paths)

    def wait_until(
        self,
        ready: Callable[[], bool],
        *,
        timeout: float,
        what: str,
        interval: float = 0.25,
        check: Callable[[], None] | None = None,
    ) -> None:
        """Poll ``ready()`` every ``interval`` seconds until it is true.

        ``check``, called first in every round, may raise to give up early. Raises ``error`` with the
        tail of the logs if the process exits first, or does not answer (``what``: "did not answer
        {what}") within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if check is not None:
                check()
            code = self.popen.poll()
            if code is not None:
                raise self._error(f"{self.name} exited with code {code} while starting\n{self.log_tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise self._error(
                    f"{self.name} did not answer {what} within {timeout:g} s\n{self.log_tail()}"
                )
            time.sleep(interval)

    def stop(self, timeout: float = _KILL_WAIT, *, graceful: bool = True) -> None:
        """End the process group: SIGTERM (SIGKILL unless ``graceful``), SIGKILL after ``timeout`` s.

        Then anything left in the group (forked children) is killed too; raises ``error`` if some of it
        survives SIGKILL for 10 s. Safe to call twice: the second call does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        _RUNNING.discard(self._owner)
        pgid = self.popen.pid  # start_new_session=True made it the leader of its own group
        _signal_group(pgid, signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.popen.wait(timeout=_KILL_WAIT)
        deadline = time.monotonic() + _KILL_WAIT
        while _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise self._error(f"processes of the group {pgid} of {self.name} survived SIGKILL")
            time.sleep(0.1)


class LogWatch:
    """Looks for one byte string in log files as they grow, reading each new byte once."""

    def __init__(self, paths: Sequence[Path], needle: bytes) -> None:
        self._needle = needle
        self._offsets = dict.fromkeys(paths, 0)
        self._carry = dict.fromkeys(paths, b"")

    def seen(self) -> bool:
        found = False
        for path, offset in self._offsets.items():
            try:
                with open(path, "rb") as file:
                    file.seek(offset)
                    chunk = file.read()
            except OSError:
                continue
            self._offsets[path] = offset + len(chunk)
            # Keep the end of what was read, in case the needle is split across two reads.
            window = self._carry[path] + chunk
            self._carry[path] = window[-len(self._needle) :]
            found = found or self._needle in window
        return found


# Owners of processes still running at interpreter exit (a caller that forgot stop(), a test run cut
# short by an exception) are stopped then: their processes run in sessions of their own, so nothing
# else would end them.
_RUNNING: weakref.WeakSet[Stoppable] = weakref.WeakSet()


def stop_all(owners: Iterable[Stoppable]) -> None:
    """Stop each owner, going on past failures (what interpreter exit runs for the forgotten ones)."""
    for owner in list(owners):
        with contextlib.suppress(Exception):
            owner.stop()


@atexit.register
def _stop_forgotten_processes() -> None:
    stop_all(_RUNNING)


def free_ports(count: int, host: str = "") -> list[int]:
    """``count`` distinct ports free on ``host`` (all interfaces by default), picked by the kernel.

    They are released on return: another process can take one before the caller's server binds it.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def accepts_connections(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds within a second."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def url_answers(url: str, *, body_contains: bytes | None = None) -> bool:
    """Whether ``url`` answers an HTTP GET within 2 s.

    Without ``body_contains`` any answer counts, an error status too (the server is listening); with
    it, only a success whose body contains those bytes.
    """
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read() if body_contains is not None else b""
    except urllib.error.HTTPError as exc:
        exc.close()
        return body_contains is None
    except OSError:
        return False
    return body_contains is None or body_contains in body


def log_tail(paths: Sequence[Path], lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of each log (of its last 64 KiB), each under a line naming the file."""
    parts = []
    for path in paths:
        tail = _tail(path, lines)
        if tail:
            parts.append(f"--- last lines of {path} ---\n" + "\n".join(tail))
    return "\n".join(parts) or f"(no output in {', '.join(str(path) for path in paths)})"


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _LOG_TAIL_BYTES))
            data = file.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
