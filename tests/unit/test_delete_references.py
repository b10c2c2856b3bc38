"""Delete and prune never break another backup; materialize makes a backup self-contained.

A referencing backup is made here by hand, so that each test sets exactly the references it needs: the
meta files of a real backup copied to a new name, its library meta's ``references`` pointing every binlog
at the original (what an incremental backup of unchanged data records). The same with real incremental
backups on the real server: tests/integration/test_delete_materialize.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from pathlib import Path

import attrs
import pytest
from memory_data import client, populate

from milvus_backup_lib import (
    BackupClient,
    BackupCorruptError,
    BackupExistsError,
    BackupNotFoundError,
    DeleteReport,
    MaterializeReport,
    RepositoryLockedError,
    StorageError,
    StorageLocation,
)
from milvus_backup_lib.backup.copier import FsspecCopier
from milvus_backup_lib.backup.materialize import materialize
from milvus_backup_lib.cli import main
from milvus_backup_lib.cli.parser import build_parser
from milvus_backup_lib.manifest.codec import BACKUP_META
from milvus_backup_lib.manifest.model import BackupInfo, CollectionBackupInfo
from milvus_backup_lib.repository import deletion
from milvus_backup_lib.repository.checksum import md5_of
from milvus_backup_lib.repository.prune import prune
from milvus_backup_lib.repository.references import repository_lock
from milvus_backup_lib.repository.retention import retention_policy
from milvus_backup_lib.repository.store import TOMBSTONE_FILE, BackupRepository, LibraryMeta
from milvus_backup_lib.repository.unfinished import list_unfinished
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE, META_DIR, ROOT_MARKER
from milvus_backup_lib.testing.memory import InMemoryMilvus

UTC = dt.timezone.utc


def _repository() -> BackupRepository:
    return BackupRepository(StorageLocation(f"memory://refs-{uuid.uuid4().hex}"))


def _store(repository: BackupRepository, name: str, day: int, sizes: tuple[int, ...] = (100, 250)) -> None:
    """A self-contained backup taken on July ``day`` with binlogs of ``sizes`` (their MD5s recorded)."""
    seconds = int(dt.datetime(2026, 7, day, 2, tzinfo=UTC).timestamp())
    coll = CollectionBackupInfo(collection_name="c", db_name="default", backup_physical_timestamp=seconds)
    files, checksums = {}, {}
    for i, size in enumerate(sizes):
        key = f"binlogs/insert_log/1/2/3/100/{i}"
        repository.location.write_bytes(repository.path(name, key), bytes([i + 1]) * size)
        files[key] = size
        checksums[key] = md5_of(repository.location, repository.path(name, key))
    meta = LibraryMeta(files=files, checksums=checksums)
    repository.write_manifest(BackupInfo(name=name, size=sum(sizes), collection_backups=(coll,)), meta)


def _refer(repository: BackupRepository, holder: str, name: str, *, keys: list[str] | None = None) -> None:
    """Backup ``name``: ``holder``'s meta files, its binlogs (``keys``, default all) referenced there."""
    location = repository.location
    meta = repository.read_library_meta(holder)
    assert meta is not None
    for path in sorted(location.list_files(repository.path(holder, META_DIR))):
        file = path.rsplit("/", 1)[-1]
        if file not in (BACKUP_META, LIBRARY_META_FILE):
            location.write_bytes(repository.meta_path(name, file), location.read_bytes(path))
    wanted = list(meta.files) if keys is None else keys
    for key in set(meta.files) - set(wanted):  # the files it stores itself
        location.write_bytes(repository.path(name, key), location.read_bytes(repository.path(holder, key)))
    own = attrs.evolve(meta, references=dict.fromkeys(wanted, holder), base=holder)
    location.write_bytes(repository.meta_path(name, LIBRARY_META_FILE), own.to_json())
    location.write_bytes(
        repository.meta_path(name, BACKUP_META),
        location.read_bytes(repository.meta_path(holder, BACKUP_META)),
    )


def _files(repository: BackupRepository, name: str) -> dict[str, int]:
    return deletion.stored_files(repository, name)


def _binlogs(repository: BackupRepository, name: str) -> set[str]:
    return {k for k in _files(repository, name) if k.startswith("binlogs/")}


# --- delete ------------------------------------------------------------------------------------------------


def test_deleting_a_holder_keeps_exactly_the_referenced_files_and_the_name_is_gone() -> None:
    repository = _repository()
    _store(repository, "base", 1, sizes=(100, 250, 40))
    referenced = ["binlogs/insert_log/1/2/3/100/0", "binlogs/insert_log/1/2/3/100/1"]
    _refer(repository, "base", "inc", keys=referenced)
    before = _files(repository, "base")

    report = deletion.delete_backup(repository, "base")

    assert not repository.exists("base") and repository.names() == ["inc"]
    assert repository.is_husk("base") and list_unfinished(repository) == []
    assert [s.name for s in repository.summaries()] == ["inc"]
    assert _binlogs(repository, "base") == set(referenced)  # the third binlog and every meta file went
    removed = {k: s for k, s in before.items() if k not in referenced}
    assert report.files_removed == len(removed) and report.bytes_freed == sum(removed.values())
    assert dict(report.kept) == {k: ("inc",) for k in referenced} and report.referenced_by == ["inc"]
    tombstone = json.loads(repository.location.read_bytes(repository.path("base", TOMBSTONE_FILE)))
    assert tombstone["referenced_by"] == {k: ["inc"] for k in referenced} and tombstone["deleted_at"]
    assert "kept because backup(s) inc reference them" in str(report)
    with pytest.raises(BackupNotFoundError):  # the husk is not a backup
        deletion.delete_backup(repository, "base")


def test_deleting_the_last_referrer_sweeps_the_husk_away() -> None:
    repository = _repository()
    _store(repository, "base", 1)
    _refer(repository, "base", "inc")
    kept = sum(_files(repository, "base")[k] for k in _binlogs(repository, "base"))
    deletion.delete_backup(repository, "base")

    report = deletion.delete_backup(repository, "inc")

    assert report.husk_bytes_freed == kept and report.kept == {}
    assert repository.directory_names() == [] and not repository.has_objects("base")


def test_a_backup_nobody_references_goes_whole_like_a_go_backup() -> None:
    repository = _repository()
    _store(repository, "alone", 1)
    # A Go-tool backup: no library meta, so it references nothing and nothing keeps its files.
    _store(repository, "go", 2)
    repository.location.remove_file(repository.meta_path("go", LIBRARY_META_FILE))
    size = sum(_files(repository, "alone").values())
    report = deletion.delete_backup(repository, "alone")
    assert (report.bytes_freed, report.kept) == (size, {}) and not repository.has_objects("alone")
    assert deletion.delete_backup(repository, "go").kept == {}
    assert repository.directory_names() == []


def test_an_interrupted_delete_leaves_a_husk_the_next_prune_removes(monkeypatch: pytest.MonkeyPatch) -> None:
    repository = _repository()
    _store(repository, "old", 1)
    _store(repository, "new", 2)
    real = StorageLocation.remove_tree

    def crash(self: StorageLocation, path: str) -> None:
        if path.endswith("old/binlogs"):
            raise StorageError("the network went away")
        real(self, path)

    monkeypatch.setattr(StorageLocation, "remove_tree", crash)
    with pytest.raises(StorageError, match="network"):
        deletion.delete_backup(repository, "old")
    monkeypatch.undo()

    assert repository.names() == ["new"] and repository.is_husk("old")  # the name went at once
    assert list_unfinished(repository) == [] and _binlogs(repository, "old")
    stored = sum(v for k, v in _files(repository, "old").items() if k != TOMBSTONE_FILE)
    report = prune(repository, retention_policy(keep_last=5), dry_run=False)
    assert report.removed == [] and [n for n, _ in report.kept] == ["new"]  # never counted as a backup
    assert report.husk_bytes == stored and report.bytes_freed == stored
    assert repository.directory_names() == ["new"]


def test_a_delete_killed_mid_sweep_on_local_disk_leaves_unreferenced_files_the_next_delete_removes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repository = BackupRepository(StorageLocation(f"file://{tmp_path}"))
    _store(repository, "old", 1, sizes=(100, 250, 40, 60))
    referenced = ["binlogs/insert_log/1/2/3/100/0", "binlogs/insert_log/1/2/3/100/2"]
    _refer(repository, "old", "inc", keys=referenced)
    _store(repository, "other", 2)
    checksums = {k: md5_of(repository.location, repository.path("old", k)) for k in referenced}
    real, swept = StorageLocation.remove_file, []

    def killed(self: StorageLocation, path: str) -> None:  # after the tombstone, the marker and one file
        if "/old/" in path and not path.endswith(BACKUP_META):
            if swept:
                raise StorageError("the process was killed")
            swept.append(path)
        real(self, path)

    monkeypatch.setattr(StorageLocation, "remove_file", killed)
    with pytest.raises(StorageError, match="killed"):
        deletion.delete_backup(repository, "old")
    monkeypatch.undo()

    # the name went at once; left: the tombstone, what inc references, and unreferenced files
    assert repository.names() == ["inc", "other"] and repository.is_husk("old")
    assert not (tmp_path / "old" / META_DIR / BACKUP_META).exists() and list_unfinished(repository) == []
    left = _files(repository, "old")
    leftovers = {k: v for k, v in left.items() if k not in referenced and k != TOMBSTONE_FILE}
    assert leftovers and set(referenced) <= left.keys()

    report = deletion.delete_backup(repository, "other")  # the next delete sweeps the husk

    assert report.husk_bytes_freed == sum(leftovers.values())
    assert set(_files(repository, "old")) == {*referenced, TOMBSTONE_FILE}  # exactly what inc references
    assert {k: md5_of(repository.location, repository.path("old", k)) for k in referenced} == checksums
    deletion.delete_backup(repository, "inc")
    assert repository.directory_names() == []
    assert [p.name for p in tmp_path.rglob("*")] == [ROOT_MARKER]


def test_a_backup_whose_references_cannot_be_read_stops_every_sweep() -> None:
    repository = _repository()
    _store(repository, "base", 1)
    _store(repository, "other", 2)
    repository.location.write_bytes(repository.meta_path("other", LIBRARY_META_FILE), b"{not json")
    report = deletion.delete_backup(repository, "base")
    assert not repository.exists("base") and repository.is_husk("base")
    assert report.files_removed == 0 and _binlogs(repository, "base")  # unknown references: all kept
    repository.location.write_bytes(repository.meta_path("other", LIBRARY_META_FILE), LibraryMeta().to_json())
    deletion.delete_backup(repository, "other")  # repaired: the next sweep takes the leftovers
    assert repository.directory_names() == []


def test_a_husk_name_cannot_be_reused_and_the_error_names_who_references_it() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("nightly", ["default.c"])
    _refer(bk.repository, "nightly", "nightly_inc")
    bk.delete_backup("nightly")
    for resume in (False, True):
        with pytest.raises(BackupExistsError, match="nightly_inc") as caught:
            bk.create_backup("nightly", ["default.c"], resume=resume)
        assert "deleted backup" in str(caught.value) and "materialize" in str(caught.value)
    assert _binlogs(bk.repository, "nightly")  # nothing mixed in, nothing removed
    assert [b.name for b in bk.list_backups()] == ["nightly_inc"]


# --- prune -------------------------------------------------------------------------------------------------


def test_prune_counts_only_what_really_goes_and_the_dry_run_says_the_same() -> None:
    repository = _repository()
    _store(repository, "b1", 1)
    _store(repository, "b2", 2, sizes=(100, 250, 30))
    _refer(repository, "b2", "b3", keys=["binlogs/insert_log/1/2/3/100/0"])
    policy = retention_policy(keep_last=1)
    b2_binlog_0 = _files(repository, "b2")["binlogs/insert_log/1/2/3/100/0"]
    expected = {
        "b1": sum(_files(repository, "b1").values()),
        "b2": sum(_files(repository, "b2").values()) - b2_binlog_0,
    }
    dry = prune(repository, policy)
    assert {e.name: e.size for e in dry.entries if e.action == "remove"} == expected
    real = prune(repository, policy, dry_run=False)
    assert {e.name: e.size for e in real.entries if e.action == "remove"} == expected
    assert real.bytes_freed == dry.bytes_freed == sum(expected.values())
    assert (
        "1 file(s) kept: referenced by b3" in dict((e.name, ", ".join(e.reasons)) for e in real.entries)["b2"]
    )
    assert repository.names() == ["b3"] and _binlogs(repository, "b2") == {"binlogs/insert_log/1/2/3/100/0"}
    assert not repository.has_objects("b1")


def test_prune_removing_a_holder_and_its_referrer_leaves_nothing_of_either() -> None:
    repository = _repository()
    _store(repository, "b1", 1)
    _refer(repository, "b1", "b2")
    _store(repository, "b3", 3)
    total = sum(_files(repository, "b1").values()) + sum(_files(repository, "b2").values())
    dry = prune(repository, retention_policy(keep_last=1))
    real = prune(repository, retention_policy(keep_last=1), dry_run=False)
    assert sorted(real.removed) == ["b1", "b2"] and repository.directory_names() == ["b3"]
    assert real.bytes_freed == dry.bytes_freed == total


# --- races with a committer of references ------------------------------------------------------------------


def _committer(
    repository: BackupRepository, holder: str, name: str, hold: float
) -> tuple[threading.Thread, threading.Event]:
    """An incremental commit: takes the repository lock, writes a backup referencing ``holder``'s files."""
    taken = threading.Event()

    def run() -> None:
        with repository_lock(repository.location):
            taken.set()
            time.sleep(hold)
            _refer(repository, holder, name)

    thread = threading.Thread(target=run)
    thread.start()
    taken.wait(5)
    return thread, taken


def test_a_delete_waits_for_a_commit_holding_the_repository_lock_and_keeps_what_it_references() -> None:
    repository = _repository()
    _store(repository, "base", 1)
    binlogs = _binlogs(repository, "base")
    thread, _ = _committer(repository, "base", "inc", hold=0.5)
    report = deletion.delete_backup(repository, "base")  # waits for the lock, then sees inc's references
    thread.join()
    assert set(report.kept) == binlogs and report.referenced_by == ["inc"]
    assert _binlogs(repository, "base") == binlogs and repository.names() == ["inc"]


def test_a_prune_racing_a_commit_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    repository = _repository()
    _store(repository, "b1", 1)
    _store(repository, "b2", 2)
    binlogs = _binlogs(repository, "b1")
    thread, _ = _committer(repository, "b1", "b3", hold=0.5)
    report = prune(repository, retention_policy(keep_last=1), dry_run=False)
    thread.join()
    # prune listed before b3 was committed: it removes b1 (no rule keeps it) but keeps what b3 references
    assert "b1" in report.removed and _binlogs(repository, "b1") == binlogs
    assert "b3" in repository.names()
    monkeypatch.setattr(deletion, "REPOSITORY_LOCK_WAIT", 0.2)
    thread, _ = _committer(repository, "b2", "b4", hold=3.0)
    try:
        with pytest.raises(RepositoryLockedError, match="repository lock") as caught:
            deletion.delete_backup(repository, "b2")
        late = prune(repository, retention_policy(keep_last=1), dry_run=False)
    finally:
        thread.join()
    assert "try again" in str(caught.value) and repository.exists("b2")
    assert [n for n, _ in late.skipped] == ["b3"] and late.removed == []  # b3: b1's time, older than b2
    assert late.skipped[0][1].startswith("locked: the repository lock")
    assert _binlogs(repository, "b2")


# --- materialize -------------------------------------------------------------------------------------------


def test_materialize_copies_what_is_referenced_and_the_backup_outlives_its_holder() -> None:
    repository = _repository()
    _store(repository, "base", 1)
    _refer(repository, "base", "inc")
    binlogs = _files(repository, "base")
    report = materialize(repository, FsspecCopier(), "inc")
    assert isinstance(report, MaterializeReport)
    assert report.files_copied == 2 and report.bytes_copied == 350 and report.holders == ("base",)
    meta = repository.read_library_meta("inc")
    assert meta is not None and meta.self_contained and meta.references == {} and meta.base == "base"
    for key in _binlogs(repository, "base"):
        assert _files(repository, "inc")[key] == binlogs[key]
        assert md5_of(repository.location, repository.path("inc", key)) == meta.checksums[key]
    deletion.delete_backup(repository, "base")
    assert not repository.has_objects("base")  # nothing references it any more: no husk
    again = materialize(repository, FsspecCopier(), "inc")
    assert (again.files_copied, again.files_in_place) == (0, 0) and "nothing to copy" in str(again)


def test_an_interrupted_materialize_runs_again_without_copying_twice() -> None:
    repository = _repository()
    _store(repository, "base", 1)
    _refer(repository, "base", "inc")
    done = "binlogs/insert_log/1/2/3/100/0"
    location = repository.location
    location.write_bytes(repository.path("inc", done), location.read_bytes(repository.path("base", done)))
    half = "binlogs/insert_log/1/2/3/100/1"
    location.write_bytes(repository.path("inc", half), b"\x02" * 10)  # a torn copy
    report = materialize(repository, FsspecCopier(), "inc")
    assert (report.files_copied, report.files_in_place, report.bytes_copied) == (1, 1, 250)
    assert _files(repository, "inc")[half] == 250


def test_materialize_names_a_referenced_file_missing_or_corrupt_in_its_holder() -> None:
    repository = _repository()
    _store(repository, "base", 1)
    _refer(repository, "base", "inc")
    location = repository.location
    gone, bad = "binlogs/insert_log/1/2/3/100/0", "binlogs/insert_log/1/2/3/100/1"
    location.remove_file(repository.path("base", gone))
    with pytest.raises(BackupCorruptError, match=f"{gone}: stored by backup 'base'") as caught:
        materialize(repository, FsspecCopier(), "inc")
    assert "is missing" in str(caught.value)
    location.write_bytes(repository.path("base", gone), b"\x01" * 100)
    location.write_bytes(repository.path("base", bad), b"\x09" * 250)  # same size, other bytes
    with pytest.raises(BackupCorruptError, match=f"{bad}: the copy from base/{bad} does not have MD5"):
        materialize(repository, FsspecCopier(), "inc")
    meta = repository.read_library_meta("inc")
    assert meta is not None and not meta.self_contained  # references kept until every file is right
    assert bad not in _files(repository, "inc")  # the bad copy was removed


# --- the client and the command line ---------------------------------------------------------------------


def test_client_delete_materialize_and_list_show_self_contained() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full", ["default.c"])
    _refer(bk.repository, "full", "inc")
    listed = {b.name: b for b in bk.list_backups()}
    assert (listed["full"].self_contained, listed["full"].base) == (True, "")
    assert (listed["inc"].self_contained, listed["inc"].base) == (False, "full")
    assert "self-contained" in bk.list_backups().table()
    report = bk.materialize("inc")
    assert report.files_copied == len(_binlogs(bk.repository, "full")) > 0
    assert {b.name: b.self_contained for b in bk.list_backups()} == {"full": True, "inc": True}
    deleted = bk.delete_backup("full")
    assert isinstance(deleted, DeleteReport) and deleted.kept == {} and deleted.bytes_freed > 0
    assert bk.verify_backup("inc", "checksum").ok
    assert bk.repository.directory_names() == ["inc"]
    with pytest.raises(BackupNotFoundError):
        bk.materialize("full")


def test_cli_materialize_takes_the_name_either_way_and_get_says_whether_self_contained(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = build_parser()
    assert parser.parse_args(["materialize", "nightly"]).backup == "nightly"
    assert parser.parse_args(["materialize", "-n", "nightly"]).name == "nightly"
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full", ["default.c"])
    _refer(bk.repository, "full", "inc")

    def make(*_: object) -> BackupClient:
        return bk

    monkeypatch.setattr("milvus_backup_lib.cli.commands._client", make)
    monkeypatch.setattr("milvus_backup_lib.cli.commands.Context.config", lambda self: None)
    assert main(["get", "-n", "inc"]) == 0
    assert "self-contained: no (base full;" in capsys.readouterr().out
    assert main(["materialize", "-n", "inc", "other"]) == 2
    assert "give the backup name once" in capsys.readouterr().err
    assert main(["--json", "materialize", "inc"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["self_contained"] is True and out["files_copied"] > 0
    assert main(["get", "-n", "inc"]) == 0
    assert "self-contained: yes (base full)" in capsys.readouterr().out
    assert main(["--json", "delete", "-n", "full"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deleted"] is True and out["referenced_by"] == [] and out["bytes_freed"] > 0
