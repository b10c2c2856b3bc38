"""Incremental backups of a real Milvus 2.3.5: after 5% more rows, deletes, a flush and a compaction,
an incremental backup copies only the new segments and delta directories, restores equal to the source
row by row and verifies at checksum level; a second one of unchanged data copies no binlog."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset import build_two_partitions, client, fetch_rows, make_client, two_partition_rows
from pymilvus import MilvusClient

from milvus_backup_lib import BackupClient, RestoreOptions
from milvus_backup_lib.backup.incremental import units_of
from milvus_backup_lib.storage.layout import binlog_files

pytestmark = pytest.mark.integration

ROWS = 20_000
DIM = 32


def _compact(c: MilvusClient, coll: str) -> int:
    """ManualCompaction of ``coll`` alone; the compaction's ID.

    pymilvus 3's ``compact`` first sends only the collection's name, a field Milvus 2.3.5 does not read:
    the server takes collectionID 0 and compacts every collection it holds (its log: "received manual
    compaction" collectionID=0, then plans for other collections), which merged the segments and
    applied the deletes of the collections the other tests of the session share. The request here
    names the collection by ID, as older clients did.
    """
    from pymilvus.client.prepare import Prepare

    collection_id = int(c.describe_collection(coll)["collection_id"])
    request = Prepare.manual_compaction(coll, False, False, collection_id=collection_id)
    response = c._get_connection()._stub.ManualCompaction(request)
    assert response.status.error_code == 0, response.status.reason
    return int(response.compactionID)


def _change(uri: str, coll: str) -> None:
    """5% more rows, deletes of old rows, a flush and a compaction (waited for)."""
    rng = np.random.default_rng(6)
    c = client(uri)
    c.insert(coll, two_partition_rows(rng, range(ROWS, ROWS + ROWS // 20), dim=DIM, dynamic=False))
    c.flush(coll)
    c.delete(coll, ids=[10, 11, ROWS // 2 + 10, ROWS + 3])
    c.flush(coll)
    job = _compact(c, coll)
    deadline = time.monotonic() + 300
    while str(c.get_compaction_state(job)) != "Completed":
        assert time.monotonic() < deadline, "compaction did not finish in 300 s"
        time.sleep(1)
    c.close()


@pytest.fixture(scope="module")
def backups(
    milvus_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BackupClient, str, Any, Any, Any]:
    coll = "incr_source"
    build_two_partitions(milvus_server.uri, coll, rows=ROWS, dim=DIM, dynamic=False, seed=5)
    bk = make_client(milvus_server, Path(tmp_path_factory.mktemp("incremental")))
    full = bk.create_backup("full", [coll])
    _change(milvus_server.uri, coll)
    inc = bk.create_backup("inc", [coll], base="full")
    again = bk.create_backup("inc2", [coll], base="latest")
    return bk, coll, full, inc, again


def test_the_incremental_copies_only_what_is_new(backups: tuple[BackupClient, str, Any, Any, Any]) -> None:
    bk, _, full, inc, _ = backups
    base_files = {f.key: f for f in binlog_files(full.info)}
    new_files = [f for f in binlog_files(inc.info) if f.key not in base_files]
    new_bytes = sum(f.size for f in new_files)
    assert new_files and inc.files >= len(new_files)
    assert inc.bytes_copied <= 1.10 * new_bytes, (inc.bytes_copied, new_bytes)
    assert inc.reused_files > 0 and inc.base == "full" and not inc.self_contained
    # every import directory the base stores unchanged is referenced, none is copied again
    old_units = units_of(full.info)
    meta = bk.repository.read_library_meta("inc")
    assert meta is not None
    for unit, files in units_of(inc.info).items():
        same = {f.key for f in old_units.get(unit, ())} == {f.key for f in files}
        assert all((f.key in meta.references) == same for f in files), unit
    assert bk.verify_backup("inc", level="checksum").ok


def test_the_incremental_restores_equal_row_by_row(
    milvus_server: Any, backups: tuple[BackupClient, str, Any, Any, Any]
) -> None:
    bk, coll, _, _, _ = backups
    bk.restore("inc", RestoreOptions(suffix="_inc"))
    source = fetch_rows(milvus_server.uri, "default", coll)
    restored = fetch_rows(milvus_server.uri, "default", coll + "_inc")
    assert len(source) == ROWS + ROWS // 20 - 7
    assert restored.keys() == source.keys()
    for pk, row in source.items():
        assert restored[pk] == row, pk


def test_a_second_incremental_of_unchanged_data_copies_no_binlog(
    backups: tuple[BackupClient, str, Any, Any, Any],
) -> None:
    bk, _, _, inc, again = backups
    assert again.base == "inc" and again.files == 0 and again.bytes_copied == 0
    assert again.reused_files == inc.files + inc.reused_files
    assert bk.verify_backup("inc2", level="checksum").ok
