"""How restores run their imports on the real Milvus 2.3.5 server: several at once, a lost reply
adopted instead of sent twice (the server's own ListImportTasks tells which job is ours), and a rerun
after ``kill -9`` that cleans up what the killed run left and restores row by row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dataset import Matrix, client, fetch_rows, make_client

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib.errors import MilvusConnectionError
from milvus_backup_lib.milvus.grpc import GrpcMilvus
from milvus_backup_lib.restore.journal import JOURNAL_DIR, RestoreJournal

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backed_up(
    milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Matrix, BackupClient, Path]:
    root = tmp_path_factory.mktemp("jobs_backups")
    bc = make_client(milvus_server, root)
    bc.create_backup("jobs", collections=[f"{matrix.db_a}.{matrix.full}"])
    return matrix, bc, root


def same_rows(uri: str, db: str, a: str, b: str) -> int:
    """Every row equal (primary key, each scalar, vectors bit for bit, dynamic keys); the row count."""
    left, right = fetch_rows(uri, db, a), fetch_rows(uri, db, b)
    assert left.keys() == right.keys()
    for key, row in left.items():
        assert right[key] == row, f"row {key!r} differs"
    return len(left)


def drop(uri: str, db: str, name: str) -> None:
    c = client(uri, db)
    if c.has_collection(name):
        c.drop_collection(name)
    c.close()


class LosesTheFirstReply(GrpcMilvus):
    """The real server takes the first Import; its reply is then lost (the connection drops)."""

    lost: list[int] = []

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        tasks = super().start_import(db, name, partition, files, options)
        if not LosesTheFirstReply.lost:
            LosesTheFirstReply.lost.extend(tasks)
            raise MilvusConnectionError(f"Import: UNAVAILABLE: connection reset by peer ({self.target})")
        return tasks


@contextmanager
def open_lossy(connection: MilvusConnection) -> Iterator[GrpcMilvus]:
    milvus = LosesTheFirstReply(connection)
    try:
        yield milvus
    finally:
        milvus.close()


def test_a_lost_import_reply_is_adopted_not_sent_again(
    milvus_server: Any, backed_up: tuple[Matrix, BackupClient, Path]
) -> None:
    m, bc, _ = backed_up
    target = f"{m.full}_lost"
    lossy = BackupClient(
        milvus=MilvusConnection(uri=milvus_server.uri),
        milvus_storage=StorageLocation(milvus_server.storage_url),
        backup_storage=bc.backup_storage,
        milvus_factory=open_lossy,
    )
    try:
        report = lossy.restore("jobs", suffix="_lost", parallel_imports=1, restore_aliases=False)
        assert LosesTheFirstReply.lost
        assert same_rows(milvus_server.uri, m.db_a, m.full, target) > 0
        # the server's own list: one job per import of the restore, each with its own files
        with GrpcMilvus(MilvusConnection(uri=milvus_server.uri)) as milvus:
            jobs = milvus.list_import_tasks(m.db_a, target)
        assert len(jobs) == len(report.collections[0].imports)
        assert LosesTheFirstReply.lost[0] in {j.task_id for j in jobs}
        assert all(j.files for j in jobs) and len({j.files for j in jobs}) == len(jobs)
    finally:
        drop(milvus_server.uri, m.db_a, target)


def test_imports_run_several_at_once_on_2_3_and_restore_row_by_row(
    milvus_server: Any, backed_up: tuple[Matrix, BackupClient, Path]
) -> None:
    m, bc, _ = backed_up
    target = f"{m.full}_par"
    try:
        report = bc.restore("jobs", suffix="_par", parallel_imports=4, restore_aliases=False)
        coll = report.collections[0]
        assert len(coll.imports) > 1 and coll.imported_rows == sum(o.imported_rows for o in coll.imports)
        assert same_rows(milvus_server.uri, m.db_a, m.full, target) == coll.target_rows
    finally:
        drop(milvus_server.uri, m.db_a, target)


_RESTORE = textwrap.dedent(
    """
    import sys
    from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
    uri, milvus_storage, backups = sys.argv[1:4]
    bc = BackupClient(milvus=MilvusConnection(uri=uri), milvus_storage=StorageLocation(milvus_storage),
                      backup_storage=StorageLocation(backups))
    bc.restore("jobs", suffix="_k9", parallel_imports=1, restore_aliases=False)
    """
)


def test_kill_9_during_a_restore_then_a_rerun_restores_row_by_row(
    milvus_server: Any,
    backed_up: tuple[Matrix, BackupClient, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, bc, root = backed_up
    target = f"{m.full}_k9"
    journal = RestoreJournal(StorageLocation(milvus_server.storage_url))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RESTORE, milvus_server.uri, milvus_server.storage_url, f"file://{root}"],
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not journal.entries():  # the collection is created and its first import is starting
            assert proc.poll() is None, "the restore ended before it could be killed"
            assert time.monotonic() < deadline, "the restore never created its collection"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        [entry] = journal.entries()
        assert str(entry.target) == f"{m.db_a}.{target}"
        assert client(milvus_server.uri, m.db_a).has_collection(target)  # half restored, left behind

        monkeypatch.setattr("milvus_backup_lib.restore.journal.LEASE", 0.0)  # the killed run's lease ran out
        bc.restore(
            "jobs", suffix="_k9", restore_aliases=False
        )  # the same command again: no drop_existing needed
        assert same_rows(milvus_server.uri, m.db_a, m.full, target) > 0
        assert journal.entries() == []
        assert not journal.storage.has_anything(journal.storage.join(JOURNAL_DIR))
    finally:
        if proc.poll() is None:
            proc.kill()
        drop(milvus_server.uri, m.db_a, target)
