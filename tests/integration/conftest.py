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
