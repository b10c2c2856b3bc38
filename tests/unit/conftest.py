"""Unit-test fixtures: every test gets an empty in-memory filesystem.

fsspec's ``MemoryFileSystem`` keeps one store for the whole process, and its listings scan all of it:
without this, each test left its backups behind and the suite grew slower as it went (a test taking
0.5 s alone took 8 s late in the suite), which is also what turned a rare race into a failure under load.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fsspec.implementations.memory import MemoryFileSystem


@pytest.fixture(autouse=True)
def fresh_memory_store() -> Iterator[None]:
    # A MonkeyPatch of its own: a test calling ``monkeypatch.undo()`` must not bring the shared store back.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MemoryFileSystem, "store", {})
        patch.setattr(MemoryFileSystem, "pseudo_dirs", [""])
        yield
