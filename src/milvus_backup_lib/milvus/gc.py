"""Pausing Milvus garbage collection while a backup copies segment files.

Compaction drops old segments and GC then deletes their files; a backup that lists a segment and
copies it a few minutes later could lose the race. Milvus exposes
``GET {management}/management/datacoord/garbage_collection/pause?pause_seconds=N`` and ``.../resume``
on its HTTP management port (9091). Milvus 2.3.5 has no such control and answers 404: then we warn,
go on, and record that GC was not paused (its GC interval there is an hour, so short backups are safe).
Any other failure (the endpoint unreachable, an error status) means the server may have GC control
that we could not use: then the backup fails with :class:`GcPauseError` unless the caller opted out.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from types import TracebackType
from urllib.parse import urlparse

import attrs

from milvus_backup_lib.errors import GcPauseError

__all__ = ["GcPause", "GcPauseOutcome"]

log = logging.getLogger(__name__)


@attrs.frozen
class GcPauseOutcome:
    """Whether GC was paused, and why not if it was not."""

    paused: bool
    note: str


class GcPause:
    """Context manager: pause GC on enter, renew every ``pause_seconds / 3``, resume on exit."""

    def __init__(self, management_url: str, pause_seconds: int = 3600, timeout: float = 10.0) -> None:
        self.base = management_url.rstrip("/")
        self.pause_seconds = pause_seconds
        self.timeout = timeout
        self.outcome = GcPauseOutcome(False, "not attempted")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _get(self, path: str) -> tuple[int, str]:
        url = f"{self.base}/management/datacoord/garbage_collection/{path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return int(resp.status), resp.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))

    def __enter__(self) -> GcPause:
        status, body = self._get(f"pause?pause_seconds={self.pause_seconds}")
        host = urlparse(self.base).netloc
        if status == 200:
            self.outcome = GcPauseOutcome(True, f"paused for {self.pause_seconds} s, renewed while copying")
            self._thread = threading.Thread(target=self._renew, name="gc-pause-renew", daemon=True)
            self._thread.start()
        elif status == 404:
            self.outcome = GcPauseOutcome(False, f"the server at {host} has no GC control (HTTP 404)")
            log.warning("GC not paused: %s; going on", self.outcome.note)
        else:
            reason = f"HTTP {status}" if status else body
            raise GcPauseError(
                f"cannot pause garbage collection at {self.base} ({reason}); check the management URL "
                "(Milvus's HTTP port, 9091 by default) or pass pause_gc=False to back up without the pause"
            )
        return self

    def _renew(self) -> None:
        interval = max(1.0, self.pause_seconds / 3)
        while not self._stop.wait(interval):
            status, _ = self._get(f"pause?pause_seconds={self.pause_seconds}")
            if status != 200:
                log.warning("renewing the GC pause failed (HTTP %s)", status)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout)
        if self.outcome.paused:
            status, _ = self._get("resume")
            if status != 200:
                log.warning(
                    "resuming GC failed (HTTP %s); it resumes by itself after %s s",
                    status,
                    self.pause_seconds,
                )
