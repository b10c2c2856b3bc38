"""Fixtures shared by the whole test suite.

Integration tests run against real Milvus 2.3.5 standalone servers started from the ``milvus`` wheel
(:class:`milvus_backup_lib.embedded.EmbeddedMilvus`): ``milvus_server`` once per test session, and
``second_milvus_server`` (a separate "target cluster") only when a test asks for it. Both run in
pytest's temporary directory, so their logs stay there after a failed run. Tests share the servers:
name collections and databases with ``unique_name``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from milvus_backup_lib.embedded import EmbeddedMilvus

if TYPE_CHECKING:
    from collections.abc import Iterator

_SERVER_FIXTURES = frozenset({"milvus_server", "second_milvus_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a Milvus server ``integration``, so ``-m "not integration"`` skips them."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _SERVER_FIXTURES or "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMilvus]:
    """A Milvus 2.3.5 standalone server for the whole session (local storage under ``.data_dir``)."""
    with EmbeddedMilvus(tmp_path_factory.mktemp("milvus-source")) as server:
        yield server


@pytest.fixture(scope="session")
def second_milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMilvus]:
    """Another, independent Milvus server (a restore target), started by the first test that needs it."""
    with EmbeddedMilvus(tmp_path_factory.mktemp("milvus-target")) as server:
        yield server


@pytest.fixture
def unique_name() -> str:
    """A fresh name valid for a Milvus collection or database: ``t_`` and 8 hex digits."""
    return f"t_{uuid.uuid4().hex[:8]}"
