"""Progress reporting: an injected object with a no-op default (never ``print``).

Subclass :class:`Progress` and override what you need; every method does nothing by default. Copy
events (:meth:`Progress.file_done`) may arrive from worker threads: keep them quick and thread-safe.
"""

from __future__ import annotations

__all__ = ["NULL_PROGRESS", "NullProgress", "Progress"]


class Progress:
    """Receives progress events of backups and restores. The base class ignores all of them."""

    def phase(self, name: str, detail: str = "") -> None:
        """A new phase began: ``snapshot``, ``flush``, ``copy``, ``meta``, ``plan``, or a restore step kind."""

    def collection_started(self, name: str) -> None:
        """Work on collection ``db.coll`` began."""

    def collection_done(self, name: str) -> None:
        """Work on collection ``db.coll`` finished."""

    def segments_found(self, collection: str, count: int) -> None:
        """The snapshot found ``count`` flushed segments in ``collection``."""

    def files_total(self, count: int, nbytes: int) -> None:
        """The copy phase will move ``count`` files of ``nbytes`` bytes in total."""

    def file_done(self, path: str, nbytes: int) -> None:
        """One file of ``nbytes`` bytes was copied (may be called from a worker thread)."""

    def import_started(self, target: str, partition: str, files: tuple[str, ...]) -> None:
        """A bulk import into ``target`` (partition ``partition``) started."""

    def import_done(self, target: str, partition: str, rows: int) -> None:
        """A bulk import finished with ``rows`` rows."""

    def rows_inserted(self, target: str, partition: str, rows: int) -> None:
        """A restore by inserts (``method="insert"``) inserted ``rows`` more rows into ``target``
        (read from backed-up partition ``partition``); called once per insert request."""

    def waiting(self, what: str, seconds: float) -> None:
        """Still waiting for ``what`` (a flush, an import, a load) after ``seconds``; called about once a second."""


class NullProgress(Progress):
    """Ignores every event (the default)."""


NULL_PROGRESS: Progress = NullProgress()
