"""Progress reporting: an injected object with a no-op default (never ``print``)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NULL_PROGRESS", "NullProgress", "Progress"]


class Progress(Protocol):
    """Receives progress events. Every method is optional in spirit: the no-op default ignores all."""

    def phase(self, name: str, detail: str = "") -> None:
        """A new phase began (``snapshot``, ``flush``, ``copy``, ``meta``, ``import``...)."""

    def files_total(self, count: int, nbytes: int) -> None:
        """The copy phase will move ``count`` files of ``nbytes`` bytes in total."""

    def file_done(self, path: str, nbytes: int) -> None:
        """One file of ``nbytes`` bytes was copied."""

    def collection_done(self, name: str) -> None:
        """A collection finished."""


class NullProgress:
    """Ignores every event."""

    def phase(self, name: str, detail: str = "") -> None:
        pass

    def files_total(self, count: int, nbytes: int) -> None:
        pass

    def file_done(self, path: str, nbytes: int) -> None:
        pass

    def collection_done(self, name: str) -> None:
        pass


NULL_PROGRESS: Progress = NullProgress()
