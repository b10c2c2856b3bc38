"""Manifests the Go tool writes that the codec must read: absolute ``log_path`` values (a Milvus on local
disk), which neither tool reads on restore; and Milvus 3.0 snapshot-format backups, refused by name."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from memory_data import DB, client, populate

import manifests as build
from milvus_backup_lib.errors import ManifestError
from milvus_backup_lib.manifest.codec import (
    BACKUP_META,
    FULL_META,
    SEGMENT_META,
    decode_backup,
    encode_backup,
)
from milvus_backup_lib.testing.memory import InMemoryMilvus

LOCAL = "/var/lib/milvus/data"


def _logs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every binlog record of a full_meta.json or segment_meta.json object."""
    segments = [
        s
        for c in obj.get("collection_backups", [])
        for p in c["partition_backups"]
        for s in p["segment_backups"]
    ]
    segments += [s for c in obj.get("collection_backups", []) for s in c.get("l0_segments", [])]
    segments += obj.get("infos", [])
    return [
        b
        for s in segments
        for kind in ("binlogs", "deltalogs")
        for fb in s.get(kind, [])
        for b in fb["binlogs"]
    ]


def _absolute(obj: dict[str, Any], prefix: str = LOCAL) -> dict[str, Any]:
    """``obj`` with every log_path made absolute, as the Go tool records them for a local-disk Milvus."""
    for log in _logs(obj):
        log["log_path"] = f"{prefix}/{log.get('log_path', '').split('files/', 1)[-1] or 'x'}"
    return obj


def _files() -> dict[str, bytes]:
    info = build.backup(build.collection("c1", build.partition(2, build.segment(3, 2, 1))), name="b")
    return encode_backup(info)


def test_absolute_log_paths_decode_from_full_meta() -> None:
    files = _files()
    full = _absolute(json.loads(files[FULL_META]))
    info = decode_backup({FULL_META: json.dumps(full).encode(), BACKUP_META: files[BACKUP_META]})
    paths = [
        b.log_path
        for c in info.collection_backups
        for p in c.partition_backups
        for s in p.segment_backups
        for fb in s.binlogs
        for b in fb.binlogs
    ]
    assert paths and all(p.startswith(LOCAL + "/") for p in paths)


def test_absolute_log_paths_decode_from_the_level_files() -> None:
    files = _files()
    del files[FULL_META]
    files[SEGMENT_META] = json.dumps(_absolute(json.loads(files[SEGMENT_META]))).encode()
    info = decode_backup(files)
    seg = info.collection_backups[0].partition_backups[0].segment_backups[0]
    assert seg.binlogs[0].binlogs[0].log_path.startswith(LOCAL + "/")


@pytest.mark.parametrize("path", [f"{LOCAL}/../../etc/passwd", "files/../secret", "files/a\x00b"])
def test_log_paths_climbing_or_with_nul_are_still_refused(path: str) -> None:
    files = _files()
    full = json.loads(files[FULL_META])
    _logs(full)[0]["log_path"] = path
    with pytest.raises(ManifestError, match=re.escape("log_path")) as err:
        decode_backup({FULL_META: json.dumps(full).encode()})
    assert err.value.file == FULL_META


@pytest.mark.parametrize("version", ["2.3.5", "2.5.3"])
def test_restore_and_verify_never_read_log_path(version: str) -> None:
    """Every log_path rewritten to an absolute path that exists nowhere: verify and restore still work."""
    source = InMemoryMilvus(version)
    populate(source)
    bk = client(source)
    bk.create_backup("local", "c")
    store = bk.backup_storage
    for name in (FULL_META, SEGMENT_META):
        path = store.join("local", "meta", name)
        store.write_bytes(
            path, json.dumps(_absolute(json.loads(store.read_bytes(path)), "/nowhere")).encode()
        )
    info = bk.get_backup("local")
    coll = info.collection(DB, "c")
    paths = [b.log_path for s in coll.l0_segments for fb in s.deltalogs for b in fb.binlogs]
    paths += [
        b.log_path
        for p in coll.partition_backups
        for s in p.segment_backups
        for fb in s.binlogs
        for b in fb.binlogs
    ]
    assert paths and all(p.startswith("/nowhere/") for p in paths)
    assert bk.verify_backup("local", level="checksum").ok

    target = InMemoryMilvus(version)
    client(target, store).restore("local")
    assert target.rows(DB, "c") == source.rows(DB, "c")


def test_snapshot_format_is_refused_naming_it() -> None:
    files = _files()
    for name in (FULL_META, BACKUP_META):
        obj = json.loads(files[name])
        obj["format"] = "snapshot"
        files[name] = json.dumps(obj).encode()
    with pytest.raises(
        ManifestError, match="snapshot format not supported: a Milvus 3.0 snapshot-format"
    ) as err:
        decode_backup(files)
    assert err.value.field == "format" and err.value.file == FULL_META


def test_unknown_formats_are_refused_and_binlog_ones_read() -> None:
    files = _files()
    for fmt, refused in (("parquet", True), ("binlog", False), ("", False)):
        full = json.loads(files[FULL_META])
        full["format"] = fmt
        if refused:
            with pytest.raises(ManifestError, match=f"{fmt} format not supported"):
                decode_backup({FULL_META: json.dumps(full).encode()})
        else:
            assert decode_backup({FULL_META: json.dumps(full).encode()}).format == fmt


def test_a_snapshot_format_backup_is_refused_by_the_client() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("snap", "c")
    store = bk.backup_storage
    for name in (FULL_META, BACKUP_META):
        path = store.join("snap", "meta", name)
        obj = json.loads(store.read_bytes(path))
        obj["format"] = "snapshot"
        store.write_bytes(path, json.dumps(obj).encode())
    with pytest.raises(ManifestError, match="Milvus 3.0 snapshot-format backup"):
        bk.get_backup("snap")
    with pytest.raises(ManifestError, match="Milvus 3.0 snapshot-format backup"):
        client(InMemoryMilvus("2.5.3"), store).restore("snap")
