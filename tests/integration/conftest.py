"""Fixtures of the integration tests that more than one module needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dataset import Matrix, build_matrix, drop_matrix


@pytest.fixture(scope="session")
def matrix(milvus_server: Any) -> Iterator[Matrix]:
    """Every collection kind of :mod:`dataset`, built once per session on the shared server (about 45 s).

    The backup and restore tests read it and never change it: they back it up, and restore under
    other names.
    """
    m = build_matrix(milvus_server.uri, f"mx{uuid.uuid4().hex[:6]}")
    yield m
    drop_matrix(m)


@pytest.fixture(scope="module")
def lite_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a Milvus Lite 3.2.2 gRPC server on a free local port, one per test module.

    Its gRPC server runs in this process (``milvus_lite.adapter.grpc.server.start_server_in_thread``,
    what ``MilvusClient("./x.db")`` does underneath); skipped where milvus-lite is not installed.
    """
    server_module = pytest.importorskip("milvus_lite.adapter.grpc.server")
    server, db, port = server_module.start_server_in_thread(str(tmp_path_factory.mktemp("lite") / "lite.db"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=2).wait()
        db.close()
