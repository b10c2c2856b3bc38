"""Incremental backups against in-memory clusters: the reuse rule (whole import directories, same source
path, size and collection), which bases are refused, ``base="latest"``, resume, a base deleted before
the commit, ``self_contained``, and restore, verify and the offline reader following references."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest
from memory_data import DB, client, populate, rows
from test_backup_runner import HookedCopier
from test_cli_go_spellings import _local_config
from test_reader import _as_query_rows

from milvus_backup_lib import BackupClient, StorageLocation, open_backup
from milvus_backup_lib.backup.copier import CopyJob
from milvus_backup_lib.backup.incremental import plan_reuse, resolve_base, source_record, units_of
from milvus_backup_lib.cli import main
from milvus_backup_lib.errors import BackupLockedError, IncrementalBaseError, StorageError
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.repository.references import repository_lock
from milvus_backup_lib.repository.store import LibraryMeta
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE, BinlogFile, binlog_files
from milvus_backup_lib.testing.memory import InMemoryMilvus

VERSIONS = ["2.3.5", "2.4.10", "2.6.11"]


def _meta(bk: BackupClient, name: str) -> LibraryMeta:
    meta = bk.repository.read_library_meta(name)
    assert meta is not None
    return meta


def _grow(cluster: InMemoryMilvus) -> None:
    """New rows in a new segment, and deletes that hit old segments."""
    cluster.insert(DB, "c", rows(range(2000, 2004), seed=11))
    cluster.flush(DB, "c")
    cluster.delete(DB, "c", [5, 2001])
    cluster.flush(DB, "c")


@pytest.mark.parametrize("version", VERSIONS)
def test_an_incremental_copies_only_the_directories_that_changed_and_restores_equal(version: str) -> None:
    cluster = InMemoryMilvus(version)
    populate(cluster)
    bk = client(cluster)
    full = bk.create_backup("full", "c")
    _grow(cluster)
    inc = bk.create_backup("inc", "c", base="full")

    old_units = units_of(full.info)
    new_units = units_of(inc.info)
    unchanged = {
        u for u, files in new_units.items() if {f.key for f in old_units.get(u, ())} == {f.key for f in files}
    }
    assert unchanged and len(unchanged) < len(new_units)  # some directories reused, some not
    expected_refs = {f.key for u in unchanged for f in new_units[u]}
    meta = _meta(bk, "inc")
    assert set(meta.references) == expected_refs and set(meta.references.values()) == {"full"}
    # every file is listed and checksummed; the reused ones with the base's own checksum
    assert set(meta.files) == {f.key for f in binlog_files(inc.info)} == set(meta.checksums)
    assert all(meta.checksums[k] == _meta(bk, "full").checksums[k] for k in meta.references)
    assert meta.base == "full" and not meta.self_contained
    assert meta.source["collections"] == {"default.c": inc.info.collection_backups[0].collection_id}
    # the report: copied + reused = every file; nothing reused was copied into the backup's directory
    assert inc.files + inc.reused_files == len(meta.files)
    assert inc.reused_bytes == sum(meta.files[k] for k in meta.references)
    assert inc.base == "full" and not inc.self_contained
    stored = bk.backup_storage.list_files(bk.repository.path("inc", "binlogs"))
    assert not any(path.endswith(key) for key in meta.references for path in stored)

    summary = next(s for s in bk.list_backups() if s.name == "inc")
    assert (summary.base, summary.self_contained, summary.reused_files) == ("full", False, len(expected_refs))
    assert "base (reused)" in bk.list_backups().table()

    assert bk.verify_backup("inc", level="checksum").ok
    target = InMemoryMilvus(version)
    client(target, bk.backup_storage).restore("inc")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")
    reader = open_backup(bk.backup_storage, "inc")
    assert _as_query_rows(reader.read("default.c"), reader.collections["default.c"]) == cluster.rows(DB, "c")


def test_a_changed_delta_directory_is_copied_whole_and_its_insert_logs_are_reused() -> None:
    cluster = InMemoryMilvus("2.3.5")  # 2.3: deletes become delta logs of the segments they hit
    populate(cluster)
    bk = client(cluster)
    full = bk.create_backup("full", "c")
    cluster.delete(DB, "c", [6])
    cluster.flush(DB, "c")
    inc = bk.create_backup("inc", "c", base="full")
    refs = _meta(bk, "inc").references
    hit = [
        f
        for f in binlog_files(inc.info)
        if f.is_delta and f.key not in {g.key for g in binlog_files(full.info)}
    ]
    assert hit  # the new delta log
    seg = hit[0].segment_id
    own = [f for f in binlog_files(inc.info) if f.segment_id == seg]
    # the segment's old delta logs are copied again with the new one; its insert logs are reused
    assert all(f.key not in refs for f in own if f.is_delta)
    assert all(f.key in refs for f in own if not f.is_delta)
    assert len([f for f in own if f.is_delta]) > 1
    target = InMemoryMilvus("2.3.5")
    client(target, bk.backup_storage).restore("inc")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")


def test_a_second_incremental_of_unchanged_data_copies_no_binlog_and_references_the_holder() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    _grow(cluster)
    first = bk.create_backup("inc1", base="full")
    second = bk.create_backup("inc2", base="latest")
    assert second.base == "inc1" and second.files == 0 and second.bytes_copied == 0
    assert second.reused_files == len(_meta(bk, "inc2").files)
    # never a chain: files inc1 itself referenced point at "full", the rest at "inc1"
    refs1, refs2 = _meta(bk, "inc1").references, _meta(bk, "inc2").references
    assert {k: v for k, v in refs2.items() if k in refs1} == refs1
    assert {v for k, v in refs2.items() if k not in refs1} == {"inc1"}
    assert first.files > 0
    assert bk.verify_backup("inc2", level="checksum").ok
    target = InMemoryMilvus("2.4.10")
    client(target, bk.backup_storage).restore("inc2")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")


def test_latest_is_the_newest_complete_backup_of_the_same_source() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("b_old")
    bk.create_backup("a_new")  # created later, sorts first by name
    other = InMemoryMilvus("2.4.10")
    populate(other)
    client(other, bk.backup_storage).create_backup("z_other_cluster")
    meta_only = bk.create_backup("zz_meta", strategy="meta_only")
    assert meta_only.info.collection_backups
    # an unfinished backup of the same source (its record is written before backup_meta.json) is skipped
    newest = attrs.evolve(_meta(bk, "a_new"), created_at="2999-01-01T00:00:00+00:00")
    bk.backup_storage.write_bytes(
        bk.repository.meta_path("zzz_unfinished", LIBRARY_META_FILE), newest.to_json()
    )
    assert bk.create_backup("inc", base="latest").base == "a_new"


def test_bases_that_cannot_be_used_are_refused_before_anything_is_written() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    bk.create_backup("meta", strategy="meta_only")
    other = InMemoryMilvus("2.4.10")
    populate(other)
    theirs = client(other, bk.backup_storage)
    theirs.create_backup("other_cluster")
    go = bk.create_backup("go_tool")
    bk.backup_storage.remove_file(bk.repository.path(go.name, f"meta/{LIBRARY_META_FILE}"))
    before = bk.repository.directory_names()
    cases = {
        "nope": "no complete backup of that name",
        "go_tool": "made by the Go tool",
        "meta": "holds no binlogs",
        "other_cluster": "never taken for the same data",
    }
    for base, why in cases.items():
        with pytest.raises(IncrementalBaseError, match=why) as caught:
            bk.create_backup("inc", base=base)
        assert caught.value.base == base
    with pytest.raises(IncrementalBaseError, match="no complete backup made by this library from"):
        client(InMemoryMilvus("2.4.10"), bk.backup_storage).create_backup("inc", base="latest")
    assert bk.repository.directory_names() == before
    assert not bk.backup_storage.exists(bk.backup_storage.join("inc.lock"))  # not even the name's lock


def test_other_source_refusal_names_both_storages_without_credentials() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    backups = StorageLocation("memory://bk-refusal")
    client(cluster, backups).create_backup("full")
    other = InMemoryMilvus("2.4.10")
    populate(other)
    with pytest.raises(IncrementalBaseError) as caught:
        client(other, backups).create_backup("inc", base="full")
    text = str(caught.value)
    assert cluster.storage.root in text and other.storage.root in text


def test_resume_of_an_interrupted_incremental_keeps_its_references() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    _grow(cluster)
    bk.copier = HookedCopier(fail_after=1)
    with pytest.raises(StorageError, match="injected"):
        bk.create_backup("inc", base="full")
    bk.copier = HookedCopier()
    report = bk.create_backup("inc", base="full", resume=True)
    assert report.resumed_files == 1 and report.reused_files > 0
    assert set(_meta(bk, "inc").references.values()) == {"full"}
    assert bk.verify_backup("inc", level="checksum").ok
    target = InMemoryMilvus("2.3.5")
    client(target, bk.backup_storage).restore("inc")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")


def test_files_of_the_base_removed_before_the_commit_are_copied_from_the_cluster() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster)
    full = bk.create_backup("full")
    _grow(cluster)
    swept = next(f.key for f in binlog_files(full.info) if not f.is_delta)

    def sweep(source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]) -> None:
        # a concurrent delete of the base sweeps a file the incremental is about to reference
        if source is cluster.storage or source.url == cluster.storage.url:
            path = bk.repository.path("full", swept)
            if bk.backup_storage.exists(path):
                bk.backup_storage.remove_file(path)

    bk.copier = HookedCopier(sweep)
    report = bk.create_backup("inc", base="full")
    meta = _meta(bk, "inc")
    unit = swept.rsplit("/", 3)[0]
    assert swept not in meta.references and not any(k.startswith(unit + "/") for k in meta.references)
    assert meta.references  # the other directories are still referenced: full stays the base
    assert (meta.base, meta.self_contained) == (report.base, report.self_contained) == ("full", False)
    assert bk.verify_backup("inc", level="checksum").ok
    target = InMemoryMilvus("2.3.5")
    client(target, bk.backup_storage).restore("inc")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")


def test_verify_names_a_referenced_file_missing_at_its_holder() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    bk.create_backup("inc", base="full")
    key = sorted(_meta(bk, "inc").references)[0]
    bk.backup_storage.remove_file(bk.repository.path("full", key))
    report = bk.verify_backup("inc", level="size")
    assert report.missing == (f"{key} (stored by backup full)",)


def test_a_corrupt_referenced_file_fails_checksum_verification() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    bk.create_backup("inc", base="full")
    meta = _meta(bk, "inc")
    key = sorted(meta.references)[0]
    path = bk.repository.path("full", key)
    data = bytearray(bk.backup_storage.read_bytes(path))
    data[-1] ^= 0xFF
    bk.backup_storage.write_bytes(path, bytes(data))
    report = bk.verify_backup("inc", level="checksum")
    assert [c[0] for c in report.corrupt] == [f"{key} (stored by backup full)"]


def test_self_contained_copies_the_reused_files_and_survives_the_base() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    _grow(cluster)
    report = bk.create_backup("inc", base="full", self_contained=True)
    meta = _meta(bk, "inc")
    assert report.self_contained and report.base == "full" and report.reused_files > 0
    assert meta.self_contained and meta.base == "full" and not meta.references
    bk.backup_storage.remove_tree(bk.repository.backup_dir("full"))
    assert bk.verify_backup("inc", level="checksum").ok
    target = InMemoryMilvus("2.4.10")
    client(target, bk.backup_storage).restore("inc")
    assert target.rows(DB, "c") == cluster.rows(DB, "c")


def test_a_bad_base_argument_is_an_option_error() -> None:
    cluster = InMemoryMilvus("2.4.10")
    bk = client(cluster)
    with pytest.raises(IncrementalBaseError):
        bk.create_backup("inc", base="latest")
    with pytest.raises(TypeError, match="base"):
        bk.create_backup("inc", base=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="self_contained"):
        bk.create_backup("inc", self_contained="yes")  # type: ignore[arg-type]


def test_the_cli_makes_lists_and_gets_incremental_backups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    _local_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("milvus_backup_lib.cli.commands._client", lambda *args, **kwargs: bk)
    assert main(["--json", "create", "-n", "full"]) == 0
    assert json.loads(capsys.readouterr().out)["base"] == ""
    assert main(["--json", "create", "-n", "inc", "--base", "latest"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["base"], made["files"], made["self_contained"]) == ("full", 0, False)
    assert made["reused_files"] == len(_meta(bk, "inc").files) > 0
    assert main(["--json", "create", "-n", "weekly", "--base", "inc", "--self-contained"]) == 0
    assert json.loads(capsys.readouterr().out)["self_contained"] is True
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "base (reused)" in listed and "full (" in listed and "inc (self-contained)" in listed
    assert main(["get", "-n", "inc"]) == 0
    shown = capsys.readouterr().out
    assert "base: full" in shown and "self-contained: no" in shown
    assert main(["verify", "-n", "inc", "--level", "checksum"]) == 0
    assert main(["create", "-n", "bad", "--base", "nope"]) != 0
    assert "no complete backup of that name" in capsys.readouterr().err


def test_the_source_record_names_the_store_without_credentials() -> None:
    s3 = StorageLocation(
        "s3://bucket/files",
        {
            "key": "AKIAEXAMPLE",
            "secret": "s3cr3t",
            "client_kwargs": {"endpoint_url": "http://user:pw@minio:9000"},
        },
    )
    record = source_record(s3, [])
    assert record == {
        "storage": "s3://bucket/files",
        "root_path": "bucket/files",
        "endpoint": "http://minio:9000",
        "collections": {},
    }
    azure = StorageLocation(
        "az://container/files",
        {"connection_string": "DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey=c2VjcmV0;"},
    )
    assert source_record(azure, [])["account"] == "acct1"
    assert "c2VjcmV0" not in json.dumps(source_record(azure, []))


def _with_first_insert_binlog(info: BackupInfo, **changes: object) -> BackupInfo:
    """``info`` with its first segment's first insert binlog changed."""
    coll = info.collection_backups[0]
    part = next(p for p in coll.partition_backups if any(s.binlogs for s in p.segment_backups))
    seg = next(s for s in part.segment_backups if s.binlogs)
    field = seg.binlogs[0]
    changed = attrs.evolve(field, binlogs=(attrs.evolve(field.binlogs[0], **changes), *field.binlogs[1:]))
    seg2 = attrs.evolve(seg, binlogs=(changed, *seg.binlogs[1:]))
    part2 = attrs.evolve(part, segment_backups=tuple(seg2 if s is seg else s for s in part.segment_backups))
    coll2 = attrs.evolve(
        coll, partition_backups=tuple(part2 if p is part else p for p in coll.partition_backups)
    )
    return attrs.evolve(info, collection_backups=(coll2, *info.collection_backups[1:]))


def test_the_reuse_rule_copies_a_directory_whole_when_one_file_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    full = bk.create_backup("full")
    base = resolve_base(bk.repository, "full", cluster.storage)
    everything = {f.key for f in binlog_files(full.info)}
    assert set(plan_reuse(full.info, base, cluster.storage).references) == everything

    first = next(f for f in binlog_files(full.info) if not f.is_delta)
    unit = {f.key for files in units_of(full.info).values() if first in files for f in files}
    assert len(unit) > 1
    bigger = _with_first_insert_binlog(full.info, log_size=first.size + 1)
    assert set(plan_reuse(bigger, base, cluster.storage).references) == everything - unit

    # an MD5 the cluster's store vouches for decides where both are known
    def vouched(
        location: StorageLocation, files: Sequence[BinlogFile], concurrency: int
    ) -> dict[str, str | None]:
        return {f.key: ("md5:" + "0" * 32 if f.key == first.key else None) for f in files}

    monkeypatch.setattr("milvus_backup_lib.backup.incremental._source_md5s", vouched)
    assert set(plan_reuse(full.info, base, cluster.storage).references) == everything - unit


def test_the_commit_waits_while_a_delete_holds_the_repository_lock() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    sweeping = repository_lock(bk.backup_storage)
    sweeping.acquire()
    released = threading.Timer(1.0, sweeping.release)
    released.start()
    started = time.monotonic()
    report = bk.create_backup("inc", base="full")
    released.join()
    assert time.monotonic() - started >= 1.0  # it waited for the sweep instead of failing
    assert report.reused_files > 0 and bk.verify_backup("inc", level="checksum").ok
    assert not bk.backup_storage.exists(sweeping.path)  # and released it after its commit


def test_a_repository_lock_held_past_its_lease_fails_the_backup_clearly() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster, lock_stale_after=1.0)
    bk.create_backup("full")
    with (
        repository_lock(bk.backup_storage, stale_after=60),
        pytest.raises(BackupLockedError, match="milvus_backup_lib.repository"),
    ):
        bk.create_backup("inc", base="full")
    assert "inc" not in bk.repository.names()
