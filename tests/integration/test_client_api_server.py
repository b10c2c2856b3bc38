"""The pymilvus-shaped client against a real Milvus 2.3.5: built from keywords and strings, used in a
``with`` block; ``restore(name, suffix="_bak")`` makes ``coll_bak`` as the Go tool does; ``plan_backup``
counts exactly what ``create_backup`` then copies; an interrupted backup is listed as unfinished."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dataset import build_small, client, fetch_rows

from milvus_backup_lib import BackupClient, Progress

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def coll(milvus_server: Any) -> Iterator[str]:
    """A flushed collection of 500 rows (two partitions, two segments, deletes) in the default database."""
    name = f"api_{uuid.uuid4().hex[:8]}"
    build_small(milvus_server.uri, name)
    yield name
    c = client(milvus_server.uri)
    for existing in c.list_collections():
        if existing == name or existing.startswith(f"{name}_"):
            c.drop_collection(existing)
    c.close()


def keyword_client(server: Any, root: Path) -> BackupClient:
    """The pymilvus-style construction: keywords and plain strings, no records."""
    return BackupClient(
        uri=server.uri,
        management_url=server.management_url,
        milvus_storage=server.storage_url,
        backup_storage=str(root),
    )


def test_restore_with_a_suffix_appends_it_verbatim(milvus_server: Any, coll: str, tmp_path: Path) -> None:
    target = f"{coll}_bak"
    with keyword_client(milvus_server, tmp_path) as bc:
        bc.create_backup("suffixed", [coll])
        plan = bc.plan_restore("suffixed", suffix="_bak")
        assert [str(c.target) for c in plan.collections] == [f"default.{target}"]

        report = bc.restore("suffixed", suffix="_bak")

    assert bc.closed
    (restored,) = report.collections
    assert str(restored.target) == f"default.{target}"
    c = client(milvus_server.uri)
    try:
        assert c.has_collection(target) and not c.has_collection(f"{coll}__bak")
    finally:
        c.close()
    assert fetch_rows(milvus_server.uri, "default", target) == fetch_rows(milvus_server.uri, "default", coll)


def test_plan_backup_counts_what_create_backup_copies(milvus_server: Any, coll: str, tmp_path: Path) -> None:
    with keyword_client(milvus_server, tmp_path) as bc:
        plan = bc.plan_backup("planned", [coll])
        assert list(tmp_path.iterdir()) == []  # nothing written, not even a lock
        report = bc.create_backup("planned", [coll])

    assert plan.files > 0 and plan.bytes > 0
    assert (plan.files, plan.bytes) == (report.files, report.bytes_copied)
    (planned,) = plan.collections
    (backed_up,) = report.info.collection_backups
    assert planned.name == backed_up.qualified_name == f"default.{coll}"
    segments = [s for p in backed_up.partition_backups for s in p.segment_backups]
    assert planned.segments == len(segments) + len(backed_up.l0_segments)
    assert planned.rows == backed_up.num_rows == 500
    stored = [p for p in (tmp_path / "planned" / "binlogs").rglob("*") if p.is_file()]
    assert (len(stored), sum(p.stat().st_size for p in stored)) == (plan.files, plan.bytes)
    assert plan.milvus_version == report.info.milvus_version


class StopAfter(Progress):
    """Interrupts a backup's copy after ``files`` files."""

    def __init__(self, files: int) -> None:
        self.files = files
        self.done = 0

    def file_done(self, path: str, nbytes: int) -> None:
        self.done += 1
        if self.done >= self.files:
            raise KeyboardInterrupt("interrupted by the test")


def test_an_interrupted_backup_is_listed_as_unfinished(milvus_server: Any, coll: str, tmp_path: Path) -> None:
    with keyword_client(milvus_server, tmp_path) as bc:
        bc.create_backup("complete", [coll], strategy="skip_flush")
        with pytest.raises(KeyboardInterrupt):
            bc.create_backup("interrupted", [coll], strategy="skip_flush", progress=StopAfter(3))

        unfinished = bc.list_unfinished()
        assert [u.name for u in unfinished] == ["interrupted"]
        assert [s.name for s in bc.list_backups()] == ["complete"]
        (u,) = unfinished
        written = [p for p in (tmp_path / "interrupted").rglob("*") if p.is_file()]
        assert u.files == len(written) >= 3
        assert u.size == sum(p.stat().st_size for p in written) > 0
        assert u.last_modified is not None and u.age is not None and u.age.total_seconds() < 600
        assert not u.locked  # the lock went with the failed run
        assert "interrupted" in unfinished.table()

        bc.create_backup("interrupted", [coll], strategy="skip_flush", resume=True)
        assert bc.list_unfinished() == []
        assert [s.name for s in bc.list_backups()] == ["complete", "interrupted"]
