"""Running parts of a restore side by side: bounded parallelism, the first failure stops the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from milvus_backup_lib.progress import Progress

__all__ = ["RestoreStopped", "SerializedProgress", "Workers"]

_T = TypeVar("_T")


class RestoreStopped(Exception):
    """Raised in a worker when another part of the restore failed or it was interrupted (internal)."""


class Workers:
    """Runs work items side by side; one failure (or an interruption) stops them all."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def run(self, work: Sequence[Callable[[], _T]], width: int) -> list[_T]:
        """Run ``work`` with at most ``width`` at once; results in order. The first failure (or an
        interruption of the caller) stops what has not started and makes the running ones stop at
        their next step; it is then raised."""
        if width <= 1 or len(work) <= 1:
            results = []
            for item in work:
                self.check()
                results.append(item())
            return results
        pool = ThreadPoolExecutor(max_workers=min(width, len(work)), thread_name_prefix="restore")
        futures: list[Future[_T]] = []
        try:
            futures = [pool.submit(item) for item in work]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                first = next((f for f in failed if not isinstance(f.exception(), RestoreStopped)), failed[0])
                error = first.exception()
                assert error is not None
                raise error
            return [f.result() for f in futures]
        except BaseException:
            self.stop.set()
            for f in futures:
                f.cancel()
            raise
        finally:
            pool.shutdown(wait=True)

    def check(self) -> None:
        if self.stop.is_set():
            raise RestoreStopped("another part of the restore failed or it was interrupted")


class SerializedProgress(Progress):
    """Passes events on to ``inner`` one at a time: restore workers run in several threads."""

    def __init__(self, inner: Progress) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def phase(self, name: str, detail: str = "") -> None:
        with self._lock:
            self._inner.phase(name, detail)

    def collection_started(self, name: str) -> None:
        with self._lock:
            self._inner.collection_started(name)

    def collection_done(self, name: str) -> None:
        with self._lock:
            self._inner.collection_done(name)

    def file_done(self, path: str, nbytes: int) -> None:
        with self._lock:
            self._inner.file_done(path, nbytes)

    def import_started(self, target: str, partition: str, files: tuple[str, ...]) -> None:
        with self._lock:
            self._inner.import_started(target, partition, files)

    def import_done(self, target: str, partition: str, rows: int) -> None:
        with self._lock:
            self._inner.import_done(target, partition, rows)

    def rows_inserted(self, target: str, partition: str, rows: int) -> None:
        with self._lock:
            self._inner.rows_inserted(target, partition, rows)

    def waiting(self, what: str, seconds: float) -> None:
        with self._lock:
            self._inner.waiting(what, seconds)
