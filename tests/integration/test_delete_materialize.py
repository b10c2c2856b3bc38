"""Delete and materialize with real incremental backups of the real Milvus 2.3.5 server.

Full backup; more rows, deletes, a flush; an incremental backup (``base="latest"``):

- deleting the base keeps what the incremental references; the incremental then verifies at checksum
  level and restores equal to the source row by row; deleting it leaves nothing of either behind;
- ``materialize`` makes an incremental self-contained: it verifies and restores equal after every other
  backup is deleted, its directory holding every file its manifest lists;
- a delete of the base that runs while the incremental is between its copy and its commit does not
  break it: the commit, under the repository lock, copies from the cluster what the delete removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset import build_two_partitions, client, fetch_rows, make_client, two_partition_rows

import milvus_backup_lib.backup.runner as runner_module
from milvus_backup_lib import BackupClient
from milvus_backup_lib.backup.incremental import repository_lock_waiting
from milvus_backup_lib.repository.deletion import DeleteReport
from milvus_backup_lib.storage.layout import ROOT_MARKER, binlog_files

pytestmark = pytest.mark.integration

ROWS = 2_000
DIM = 8


def _change(uri: str, coll: str, seed: int, start: int) -> None:
    """5% more rows from pk ``start``, deletes of old and new rows, a flush."""
    rng = np.random.default_rng(seed)
    c = client(uri)
    c.insert(coll, two_partition_rows(rng, range(start, start + ROWS // 20), dim=DIM, dynamic=True))
    c.flush(coll)
    c.delete(coll, ids=[start - ROWS + 10, start - ROWS // 2 + 10, start + 3])
    c.flush(coll)
    c.close()


@pytest.fixture
def source(milvus_server: Any, unique_name: str) -> Iterator[str]:
    coll = f"dm_{unique_name}"[:60]
    build_two_partitions(milvus_server.uri, coll, rows=ROWS, dim=DIM, dynamic=True, seed=21)
    yield coll
    c = client(milvus_server.uri)
    for name in c.list_collections():
        if name.startswith(coll):
            c.drop_collection(name)
    c.close()


def _restores_equal(uri: str, bc: BackupClient, name: str, coll: str) -> None:
    """Restore ``name`` as ``{coll}_{name}``: every row equal to the source (pks, scalars, vectors bit for
    bit, dynamic keys; the deleted rows absent)."""
    bc.restore(name, suffix=f"_{name}")
    source, restored = fetch_rows(uri, "default", coll), fetch_rows(uri, "default", f"{coll}_{name}")
    assert len(source) > ROWS and restored.keys() == source.keys()
    for pk, row in source.items():
        assert restored[pk] == row, f"row {pk!r} differs"
    assert any("tag" in row for row in restored.values())  # the dynamic field came back


def _everything(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _holds_all_it_lists(bc: BackupClient, name: str, root: Path) -> None:
    """Backup ``name`` references nothing and stores, in its own directory, every file its manifest and
    library meta list, at the recorded size."""
    meta = bc.repository.read_library_meta(name)
    assert meta is not None and meta.references == {} and meta.files
    own = {str(p.relative_to(root / name)): p.stat().st_size for p in (root / name).rglob("*") if p.is_file()}
    assert {k: own.get(k) for k in meta.files} == dict(meta.files)
    assert {f.key for f in binlog_files(bc.get_backup(name))} <= own.keys()


def test_deleting_the_base_keeps_the_incremental_whole_and_deleting_it_leaves_nothing(
    milvus_server: Any, source: str, tmp_path: Path
) -> None:
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("full", [source])
    _change(milvus_server.uri, source, seed=11, start=ROWS)
    inc = bc.create_backup("inc", [source], base="latest")
    assert inc.base == "full" and inc.reused_files > 0 and inc.files > 0 and not inc.self_contained
    meta = bc.repository.read_library_meta("inc")
    assert meta is not None
    referenced = set(meta.references)

    deleted = bc.delete_backup("full")
    assert deleted.referenced_by == ["inc"] and set(deleted.kept) == referenced
    assert deleted.files_removed > 0  # what the incremental does not reference goes at once
    assert [b.name for b in bc.list_backups()] == ["inc"] and bc.list_unfinished() == []
    assert bc.verify_backup("inc", level="checksum").ok
    _restores_equal(milvus_server.uri, bc, "inc", source)

    gone = bc.delete_backup("inc")
    assert gone.kept == {} and gone.bytes_freed > 0 and gone.husk_bytes_freed > 0  # the base's husk too
    assert _everything(tmp_path) == [ROOT_MARKER]  # no file of either backup, no lock left behind


def test_a_materialized_incremental_outlives_every_other_backup(
    milvus_server: Any, source: str, tmp_path: Path
) -> None:
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("full", [source])
    _change(milvus_server.uri, source, seed=12, start=ROWS)
    bc.create_backup("inc", [source], base="latest")
    _change(milvus_server.uri, source, seed=13, start=ROWS + ROWS // 20)
    inc2 = bc.create_backup("inc2", [source], base="latest")
    meta = bc.repository.read_library_meta("inc2")
    assert meta is not None and inc2.base == "inc"
    assert set(meta.references.values()) == {"full", "inc"}  # files of both earlier backups

    report = bc.materialize("inc2")
    assert report.files_copied == len(meta.references)
    assert [(b.name, b.self_contained) for b in bc.list_backups()] == [
        ("full", True),
        ("inc", False),
        ("inc2", True),
    ]
    for other in ("inc", "full"):
        assert bc.delete_backup(other).kept == {}  # nothing references them any more
    assert [b.name for b in bc.list_backups()] == ["inc2"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["inc2"]  # no husk either

    _holds_all_it_lists(bc, "inc2", tmp_path)
    assert bc.verify_backup("inc2", level="checksum").ok
    _restores_equal(milvus_server.uri, bc, "inc2", source)


def test_a_delete_of_the_base_between_the_incrementals_copy_and_commit_breaks_nothing(
    milvus_server: Any, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bc = make_client(milvus_server, tmp_path)
    full = bc.create_backup("full", [source])
    _change(milvus_server.uri, source, seed=14, start=ROWS)
    deletes: list[DeleteReport] = []

    def delete_the_base_first(*args: Any, **kwargs: Any) -> Any:
        # the incremental has copied what is new and is about to take the repository lock to commit
        assert not bc.repository.exists("inc")
        deletes.append(bc.delete_backup("full"))
        return repository_lock_waiting(*args, **kwargs)

    monkeypatch.setattr(runner_module, "repository_lock_waiting", delete_the_base_first)
    inc = bc.create_backup("inc", [source], base="latest")
    monkeypatch.undo()

    # the unfinished incremental referenced nothing yet: the base went whole
    assert len(deletes) == 1 and deletes[0].kept == {} and deletes[0].bytes_freed >= full.bytes_copied
    assert not (tmp_path / "full").exists()
    # the commit found the base's files gone and copied them from the cluster
    assert inc.reused_files == 0 and inc.files == len(list(binlog_files(inc.info)))
    # it references nothing: recorded and shown as a full backup, not as an incremental of the deleted base
    assert (inc.base, inc.self_contained) == ("", True)
    assert [(b.name, b.base, b.self_contained) for b in bc.list_backups()] == [("inc", "", True)]
    _holds_all_it_lists(bc, "inc", tmp_path)
    assert bc.verify_backup("inc", level="checksum").ok
    _restores_equal(milvus_server.uri, bc, "inc", source)
