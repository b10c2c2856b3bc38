"""Fixtures shared by the whole test suite.

Integration tests run against real Milvus 2.3.5 standalone servers started from the ``milvus`` wheel
(:class:`milvus_backup_lib.testing.embedded.EmbeddedMilvus`): ``milvus_server`` once per test session, and
``second_milvus_server`` (a separate "target cluster") only when a test asks for it. Both run in
pytest's temporary directory, so their logs stay there after a failed run. Tests share the servers:
name collections and databases with ``unique_name``.

Object-storage emulators (``tests/emulators.py``) are session fixtures too, each started by the first test
that asks for it: ``s3_server`` (moto), ``gcs_server`` (fake-gcs-server), ``azure_server`` (Azurite).
"""

from __future__ import annotations

import os

# Set before anything imports gcsfs or s3fs. gcsfs 2026.x otherwise probes a gRPC control API that no
# emulator serves and waits 60 s per call. s3fs given region_name="us-east-1" sends it as a bucket's
# LocationConstraint, which moto rejects ("location-constraint is not valid"): the region comes from here.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

import uuid
from typing import TYPE_CHECKING

import pytest

from emulators import Azurite, FakeGcsServer, MotoServer
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

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


# Object-storage emulators (tests/emulators.py), each started by the first test that asks for it and
# stopped at the end of the session. Their logs stay in pytest's temporary directory.


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """An S3 emulator (moto server) on 127.0.0.1; ``s3_server.location(bucket, root)`` makes the bucket."""
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    """A GCS emulator (fake-gcs-server) on 127.0.0.1; ``gcs_server.location(bucket, root)`` makes the bucket."""
    with FakeGcsServer(tmp_path_factory.mktemp("fake-gcs")) as server:
        yield server


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """An Azure Blob emulator (Azurite) on 127.0.0.1; ``azure_server.location(container, root)`` makes it."""
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server
