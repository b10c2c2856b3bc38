"""A restore reads the backup's library record (``meta/milvus_backup_lib.json``) once: the check of the
backup, the plan (strategy, logical rows), the staging (an incremental backup's holders) and the insert
reader all take the one read, so they cannot see two versions of it."""

from __future__ import annotations

import pytest
from memory_data import DB, client, populate, rows

from milvus_backup_lib import StorageLocation
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE
from milvus_backup_lib.testing.memory import InMemoryMilvus


def _incremental() -> tuple[InMemoryMilvus, StorageLocation]:
    """A cluster and the backups ``full`` and ``inc`` of it, ``inc`` reusing directories of ``full``."""
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full", "c")
    cluster.insert(DB, "c", rows(range(2000, 2004), seed=11))
    cluster.flush(DB, "c")
    cluster.delete(DB, "c", [5, 2001])
    cluster.flush(DB, "c")
    bk.create_backup("inc", "c", base="full")
    meta = bk.repository.read_library_meta("inc")
    assert meta is not None and set(meta.references.values()) == {"full"}  # the holders matter
    return cluster, bk.backup_storage


@pytest.mark.parametrize("method", ["import", "insert"])
def test_a_restore_of_an_incremental_backup_reads_its_library_record_once(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, backups = _incremental()
    reads: list[str] = []
    real = StorageLocation.read_bytes

    def counting(self: StorageLocation, path: str) -> bytes:
        if path.endswith("/" + LIBRARY_META_FILE):
            reads.append(path.rsplit("/", 3)[-3])  # the backup's name
        return real(self, path)

    monkeypatch.setattr(StorageLocation, "read_bytes", counting)
    target = InMemoryMilvus("2.4.10")
    restorer = client(target, backups)

    plan = restorer.plan_restore("inc", method=method)
    assert [c.method for c in plan.collections] == [method]
    assert reads == ["inc"]

    reads.clear()
    report = restorer.restore("inc", method=method, check_backup="checksum")
    assert [c.method for c in report.plan.collections] == [method]
    assert reads == ["inc"]  # not "full": its files are found through inc's references
    assert target.rows(DB, "c") == cluster.rows(DB, "c")
