"""Backups that never lie: corruption is found and refused, two writers of one name never interleave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from dataset import build_small, client, make_client

from milvus_backup_lib import (
    BackupClient,
    BackupCorruptError,
    MilvusConnection,
    RestoreOptions,
    StorageLocation,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small(milvus_server: Any) -> Any:
    name = f"dur_{os.getpid()}_{int(time.time()) % 100000}"
    rows, deleted = build_small(milvus_server.uri, name)
    yield name, rows, deleted
    c = client(milvus_server.uri)
    c.drop_collection(name)
    c.close()


def _binlogs(root: Path, name: str) -> list[Path]:
    return sorted(p for p in (root / name / "binlogs").rglob("*") if p.is_file())


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "delete_binlog", "delete_full_meta"])
def test_verify_finds_damage_and_restore_refuses(
    milvus_server: Any, small: Any, tmp_path: Path, damage: str
) -> None:
    coll, _, _ = small
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("bk", collections=[coll])
    assert bc.verify_backup("bk", "checksum").ok
    victim = _binlogs(tmp_path, "bk")[3]
    rel = victim.relative_to(tmp_path / "bk").as_posix()
    if damage == "flip_byte":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        needle, level = f"corrupt: {rel}", "checksum"
        assert bc.verify_backup("bk", "size").ok  # same size: only the checksum can tell
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-7])
        needle, level = f"short: {rel}", "size"
    elif damage == "delete_binlog":
        victim.unlink()
        needle, level = f"missing: {rel}", "exists"
    else:
        (tmp_path / "bk" / "meta" / "full_meta.json").unlink()
        needle, level = "missing: meta/full_meta.json", "exists"
    report = bc.verify_backup("bk", level)
    assert not report.ok
    assert [p for p in report.problems() if p.startswith(needle)] == report.problems()  # exactly this one
    assert len(report.problems()) == 1
    before = sorted(client(milvus_server.uri).list_collections())
    with pytest.raises(BackupCorruptError, match=needle.split(": ")[0]) as err:
        bc.restore("bk", RestoreOptions(suffix="_never", check_backup=level))
    assert any(p.startswith(needle) for p in err.value.problems)
    assert sorted(client(milvus_server.uri).list_collections()) == before  # refused before any change


def test_go_tool_backup_without_checksums_verifies_at_size_level(
    milvus_server: Any, small: Any, tmp_path: Path
) -> None:
    coll, _, _ = small
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("gotool", collections=[coll])
    (tmp_path / "gotool" / "meta" / "milvus_backup_lib.json").unlink()  # what the Go tool writes has none
    report = bc.verify_backup("gotool", "checksum")
    assert report.ok and report.level_applied == "size" and "no checksums" in report.note
    victim = _binlogs(tmp_path, "gotool")[0]
    victim.write_bytes(victim.read_bytes()[:-1])
    assert not bc.verify_backup("gotool", "checksum").ok


def test_checksums_recorded_for_every_binlog(milvus_server: Any, small: Any, tmp_path: Path) -> None:
    import hashlib

    coll, _, _ = small
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("sums", collections=[coll])
    own = json.loads((tmp_path / "sums" / "meta" / "milvus_backup_lib.json").read_bytes())
    files = _binlogs(tmp_path, "sums")
    assert len(own["checksums"]) == len(files) > 0
    for path in files:
        rel = path.relative_to(tmp_path / "sums").as_posix()
        assert own["checksums"][rel] == "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


_RACE = textwrap.dedent(
    """
    import json, sys, time
    from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation, MilvusBackupError
    uri, mgmt, storage, root, coll, start = sys.argv[1:7]
    client = BackupClient(MilvusConnection(uri=uri, management_url=mgmt), StorageLocation(storage),
                          StorageLocation(root))
    while time.time() < float(start):
        time.sleep(0.001)
    try:
        report = client.create_backup("race", collections=[coll])
    except MilvusBackupError as exc:
        print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"ok": True, "files": report.files}))
    """
)


def test_two_processes_creating_one_name_exactly_one_succeeds(
    milvus_server: Any, small: Any, tmp_path: Path
) -> None:
    coll, rows, _ = small
    start = time.time() + 3.0  # both processes are up and connected by then
    args = [
        milvus_server.uri,
        milvus_server.management_url,
        milvus_server.storage_url,
        f"file://{tmp_path}",
        coll,
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, *args, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    winners = [r for r in results if r["ok"]]
    losers = [r for r in results if not r["ok"]]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0]["error"] in ("BackupLockedError", "BackupExistsError"), losers
    assert "race" in losers[0]["message"]
    bc = make_client(milvus_server, tmp_path)
    assert [s.name for s in bc.list_backups()] == ["race"]
    assert bc.verify_backup("race", "checksum").ok
    assert bc.get_backup("race").collection_backups[0].num_rows == rows
    assert not (tmp_path / "race.lock").exists()


_CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from milvus_backup_lib import BackupClient, MilvusConnection, Progress, StorageLocation

    uri, mgmt, storage, root, coll, phase = sys.argv[1:7]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class KillAt(Progress):
        done = 0
        def file_done(self, path, nbytes):
            KillAt.done += 1
            if phase == "copy" and KillAt.done == 3:
                die()
        def phase(self, name, detail=""):
            if phase == "between" and name == "meta":  # every binlog written, no meta file yet
                die()

    if phase == "meta":  # die after two meta files were written (local writes: write_local_atomically)
        from milvus_backup_lib.storage import location as location_module
        original = location_module.write_local_atomically
        written = []
        def write_local_atomically(path, data):
            original(path, data)
            if "/meta/" in str(path):
                written.append(path)
                if len(written) == 2:
                    die()
        location_module.write_local_atomically = write_local_atomically

    # A 2 s lease: the killed writer's lock is judged by its age alone (no host/pid shortcut).
    client = BackupClient(MilvusConnection(uri=uri, management_url=mgmt), StorageLocation(storage),
                          StorageLocation(root), copier=None, lock_stale_after=2)
    client.create_backup("crashed", collections=[coll], progress=KillAt())
    print("survived")
    """
)


@pytest.mark.parametrize("phase", ["copy", "between", "meta"])
def test_kill_9_at_each_phase_then_resume(milvus_server: Any, small: Any, tmp_path: Path, phase: str) -> None:
    """A backup killed with SIGKILL is never listed; resume=True finishes it; it verifies and restores."""
    from milvus_backup_lib import BackupExistsError, BackupNotFoundError

    coll, rows, deleted = small
    args = [
        milvus_server.uri,
        milvus_server.management_url,
        milvus_server.storage_url,
        f"file://{tmp_path}",
        coll,
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, *args, phase], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert (tmp_path / "crashed").exists()  # it did write something
    assert (tmp_path / "crashed.lock").exists()  # SIGKILL: no release
    time.sleep(3.5)  # past the dead writer's 2 s lease, on the store's clock (the file's mtime)

    bc = make_client(milvus_server, tmp_path)
    assert bc.list_backups() == []
    with pytest.raises(BackupNotFoundError):
        bc.get_backup("crashed")
    with pytest.raises(BackupExistsError, match="resume=True"):
        bc.create_backup("crashed", collections=[coll])

    report = bc.create_backup("crashed", collections=[coll], resume=True)  # its stale lock is taken over
    stored_before = report.resumed_files
    if phase in ("between", "meta"):
        assert report.resumed_files == len(_binlogs(tmp_path, "crashed")) and report.files == 0
        assert report.resumed_bytes == report.info.size
    else:
        assert stored_before >= 3 and report.resumed_bytes > 0
    assert [s.name for s in bc.list_backups()] == ["crashed"]
    check = bc.verify_backup("crashed", "checksum")
    assert check.ok, check.problems()

    restored = bc.restore("crashed", RestoreOptions(suffix=f"_crash_{phase}"))
    try:
        assert restored.collections[0].imported_rows == rows - len(deleted)
        from dataset import fetch_rows

        src = fetch_rows(milvus_server.uri, "default", coll)
        dst = fetch_rows(milvus_server.uri, "default", f"{coll}_crash_{phase}")
        assert src == dst
    finally:
        c = client(milvus_server.uri)
        c.drop_collection(f"{coll}_crash_{phase}")
        c.close()


def _data_paths(path: str) -> bool:
    return "insert_log" in path or "delta_log" in path or "/meta/" in path


def test_ten_percent_transient_faults_change_nothing(milvus_server: Any, small: Any, tmp_path: Path) -> None:
    """With 10% of storage calls failing transiently, backup and restore equal a clean run."""
    from faulty_fs import FaultRule, faulty_location

    coll, rows, deleted = small
    methods = ["cp_file", "open", "cat_file", "pipe_file", "find", "ls", "info"]
    rules = [
        FaultRule(methods, ConnectionResetError, paths=_data_paths, probability=0.1, seed=s) for s in (1, 2)
    ]
    clean = make_client(milvus_server, tmp_path / "clean")
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    milvus_storage = faulty_location(milvus_server.storage_url, [rules[0]])
    backup_storage = faulty_location(f"file://{tmp_path / 'faulty'}", [rules[1]])
    flaky = BackupClient(
        milvus=MilvusConnection(uri=milvus_server.uri, management_url=milvus_server.management_url),
        milvus_storage=milvus_storage,
        backup_storage=backup_storage,
    )
    a = clean.create_backup("same", collections=[coll], strategy="skip_flush")
    b = flaky.create_backup("same", collections=[coll], strategy="skip_flush")
    restored = flaky.restore("same", RestoreOptions(suffix="_flaky", check_backup="checksum"))
    assert sum(r.injected for r in rules) >= 5, [r.injected for r in rules]  # faults really happened
    try:
        assert attrs_strip_ids(a.info) == attrs_strip_ids(b.info)
        clean_files = {
            p.relative_to(tmp_path / "clean"): p.read_bytes() for p in _binlogs(tmp_path / "clean", "same")
        }
        flaky_files = {
            p.relative_to(tmp_path / "faulty"): p.read_bytes() for p in _binlogs(tmp_path / "faulty", "same")
        }
        assert clean_files == flaky_files
        assert restored.collections[0].imported_rows == rows - len(deleted)
        from dataset import fetch_rows

        assert fetch_rows(milvus_server.uri, "default", coll) == fetch_rows(
            milvus_server.uri, "default", f"{coll}_flaky"
        )
    finally:
        c = client(milvus_server.uri)
        c.drop_collection(f"{coll}_flaky")
        c.close()


def attrs_strip_ids(info: Any) -> Any:
    """A backup description without what differs between two runs by design (uuids, times)."""
    import attrs

    colls = tuple(
        attrs.evolve(c, id="", backup_timestamp=0, backup_physical_timestamp=0)
        for c in info.collection_backups
    )
    return attrs.evolve(info, id="", name="", collection_backups=colls)


def test_permanent_fault_fails_the_backup_naming_the_file(
    milvus_server: Any, small: Any, tmp_path: Path
) -> None:
    from faulty_fs import FaultRule, faulty_location
    from milvus_backup_lib import StorageError

    coll, _, _ = small
    rule = FaultRule(["open", "cp_file"], PermissionError, paths="*/insert_log/*/101/*", times=1)
    flaky = BackupClient(
        milvus=MilvusConnection(uri=milvus_server.uri, management_url=milvus_server.management_url),
        milvus_storage=faulty_location(milvus_server.storage_url, [rule]),
        backup_storage=StorageLocation(f"file://{tmp_path}"),
    )
    with pytest.raises(StorageError, match=r"insert_log/.*/101/") as err:
        flaky.create_backup("broken", collections=[coll], strategy="skip_flush")
    assert rule.injected == 1  # not retried: a permission error is permanent
    assert isinstance(err.value.__cause__, PermissionError)
    assert flaky.list_backups() == []


@pytest.mark.filterwarnings("ignore::pymilvus.decorators.PyMilvusDeprecationWarning")
def test_backup_under_load(milvus_server: Any, unique_name: str, tmp_path: Path) -> None:
    """Inserts and deletes keep running during a backup: the restore holds every row inserted before the
    backup's timestamp and none deleted before it."""
    import threading

    from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections

    alias = f"load_{unique_name}"
    connections.connect(alias=alias, uri=milvus_server.uri)
    schema = CollectionSchema(
        [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]
    )
    coll = Collection(unique_name, schema, using=alias)
    inserted: list[tuple[int, list[int]]] = []  # (insert timestamp, ids)
    deletions: list[tuple[int, list[int]]] = []  # (delete timestamp, ids)
    result = coll.insert([list(range(200)), [[0.1, 0.2, 0.3, 0.4]] * 200])
    inserted.append((result.timestamp, list(range(200))))
    coll.flush()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        next_id, batch = 200, 0
        deadline = time.monotonic() + 60
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                ids = list(range(next_id, next_id + 20))
                res = coll.insert([ids, [[0.5, 0.5, 0.5, 0.5]] * 20])
                inserted.append((res.timestamp, ids))
                next_id += 20
                batch += 1
                if batch % 3 == 0:  # delete a few rows of an earlier batch (flushed or growing)
                    victims = inserted[len(inserted) // 2][1][:3]
                    res = coll.delete(f"id in {victims}")
                    deletions.append((res.timestamp, victims))
                time.sleep(0.05)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(1.5)
        bc = make_client(milvus_server, tmp_path)
        report = bc.create_backup("under_load", collections=[unique_name])
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(timeout=90)
    assert not errors, errors
    backup_ts = report.info.collection_backups[0].backup_timestamp
    before = {i for ts, ids in inserted if ts < backup_ts for i in ids}
    deleted_before = {i for ts, ids in deletions if ts < backup_ts for i in ids}
    assert len(before) > 200 and deleted_before  # the load really overlapped the backup
    assert any(ts > backup_ts for ts, _ in inserted)
    bc.restore("under_load", RestoreOptions(suffix="_r"))
    try:
        from dataset import fetch_rows

        restored = set(fetch_rows(milvus_server.uri, "default", f"{unique_name}_r"))
        assert before - deleted_before <= restored
        assert not (deleted_before & restored)
    finally:
        c = client(milvus_server.uri)
        for name in (unique_name, f"{unique_name}_r"):
            if c.has_collection(name):
                c.drop_collection(name)
        c.close()
        connections.disconnect(alias)
