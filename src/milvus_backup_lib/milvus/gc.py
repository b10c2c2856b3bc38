"""Pausing Milvus garbage collection while a backup copies segment files.

Compaction drops old segments and GC then deletes their files; a backup that lists a segment and
copies it a few minutes later could lose the race. Milvus exposes
``GET {management}/management/datacoord/garbage_collection/pause?pause_seconds=N`` and ``.../resume``
on its HTTP management port (9091). What happens when the pause cannot be had depends on ``pause_gc``:

- ``"auto"`` (the default, what the Go tool does): a server without GC control (Milvus 2.3.5 answers
  404) or a management port that does not answer (the common setup that forwards only 19530) is
  logged as a warning and recorded (``GC not paused: ...`` in the report and in
  ``meta/milvus_backup_lib.json``), and the backup goes on;
- ``True``: a server without GC control is recorded as in ``"auto"`` (there is nothing to pause), but
  any other failure raises :class:`GcPauseError` (fail closed);
- ``False``: GC is never touched.

Without the pause a short backup is usually safe (GC runs once an hour by default and keeps dropped
segments' files for ``dataCoord.gc.dropTolerance``, a day); a source file that vanishes anyway fails
the backup, saying that GC was not paused and how to pause it.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from types import TracebackType
from typing import Literal, Protocol
from urllib.parse import urlparse

import attrs

from milvus_backup_lib.errors import GcPauseError
from milvus_backup_lib.milvus.records import GcAnswer

__all__ = ["AUTO", "GcControl", "GcPause", "GcPauseOutcome", "HttpGcControl", "PauseGc"]

log = logging.getLogger(__name__)

#: ``pause_gc``: ``"auto"`` (try, warn and record on failure), True (fail closed) or False (never try).
PauseGc = bool | Literal["auto"]
AUTO: Literal["auto"] = "auto"


@attrs.frozen
class GcPauseOutcome:
    """Whether GC was paused, and why not if it was not."""

    paused: bool
    note: str


class HttpGcControl:
    """GC control over Milvus's HTTP management port (what :class:`GrpcMilvus` uses)."""

    def __init__(self, management_url: str, timeout: float = 10.0) -> None:
        self.base = management_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str) -> tuple[int, str]:
        url = f"{self.base}/management/datacoord/garbage_collection/{path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return int(resp.status), resp.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))

    def pause(self, seconds: int) -> GcAnswer:
        """Pause (or renew the pause of) GC; raises :class:`GcPauseError` unless paused or unsupported."""
        status, body = self._get(f"pause?pause_seconds={seconds}")
        if status == 200:
            return GcAnswer(
                paused=True, supported=True, note=f"paused for {seconds} s, renewed while copying"
            )
        if status == 404:
            host = urlparse(self.base).netloc
            return GcAnswer(
                paused=False, supported=False, note=f"the server at {host} has no GC control (HTTP 404)"
            )
        if status:
            problem = f"the management port at {self.base} answered HTTP {status} to the GC pause"
        else:
            problem = f"the management port at {self.base} did not answer ({body})"
        raise GcPauseError(
            f"cannot pause garbage collection: {problem}; check the management URL (Milvus's HTTP "
            'port, 9091 by default: management_url="http://HOST:9091") or pass pause_gc="auto" to '
            "back up without the pause, with a warning",
            problem=problem,
        )

    def resume(self) -> bool:
        """Resume GC; False when the server did not answer 200."""
        status, _ = self._get("resume")
        return status == 200


class GcPause:
    """Context manager: pause GC on ``cluster`` on enter, renew every ``pause_seconds / 3``, resume on exit.

    ``cluster`` is any :class:`~milvus_backup_lib.milvus.protocol.MilvusCluster` (only its
    ``pause_gc``/``resume_gc`` are used). A server without GC control is recorded, not an error; a
    pause that fails otherwise raises :class:`GcPauseError` with ``mode=True`` and is recorded, with a
    warning, with ``mode="auto"``.
    """

    def __init__(self, cluster: GcControl, pause_seconds: int = 3600, *, mode: PauseGc = True) -> None:
        self.cluster = cluster
        self.pause_seconds = pause_seconds
        self.mode = mode
        self.outcome = GcPauseOutcome(False, "not attempted")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GcPause:
        try:
            answer = self.cluster.pause_gc(self.pause_seconds)
        except GcPauseError as exc:
            if self.mode is not AUTO:
                raise
            answer = GcAnswer(paused=False, supported=True, note=exc.problem)
        self.outcome = GcPauseOutcome(answer.paused, answer.note)
        if answer.paused:
            self._thread = threading.Thread(target=self._renew, name="gc-pause-renew", daemon=True)
            self._thread.start()
        else:
            log.warning(
                "GC not paused: %s; going on (a segment compacted away meanwhile fails the backup)",
                answer.note,
            )
        return self

    def _renew(self) -> None:
        interval = max(1.0, self.pause_seconds / 3)
        while not self._stop.wait(interval):
            try:
                self.cluster.pause_gc(self.pause_seconds)
            except GcPauseError as exc:
                log.warning("renewing the GC pause failed: %s", exc)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.outcome.paused and not self.cluster.resume_gc():
            log.warning("resuming GC failed; it resumes by itself after %s s", self.pause_seconds)


class GcControl(Protocol):
    """The part of :class:`~milvus_backup_lib.milvus.protocol.MilvusCluster` that :class:`GcPause` uses."""

    def pause_gc(self, seconds: int) -> GcAnswer: ...

    def resume_gc(self) -> bool: ...
