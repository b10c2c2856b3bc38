"""Each milvus-backup (Go) release line's backup, v0.4.0 to HEAD, read and restored (the in-memory cluster as
Milvus 2.3); the integration twin, tests/integration/test_go_layouts.py, runs the same shapes through
the real 2.3.5 server."""

from __future__ import annotations

import json

import attrs
import pytest
from memory_data import DB, client, populate

import manifests as build
from go_layouts import GO_SHAPES, GoShape, go_meta_files, go_path, group_of
from milvus_backup_lib.manifest.model import Binlog, FieldBinlog
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.imports import import_steps
from milvus_backup_lib.storage.layout import binlog_files, log_id_of
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing.memory import InMemoryMilvus

SRC, DST = QualifiedName(DB, "c"), QualifiedName(DB, "d")


def _rewrite(store: StorageLocation, shape: GoShape) -> None:
    """Write backup ``shape.name`` in the Go release line's shape from backup ``base`` of ``store``."""
    full = json.loads(store.read_bytes(store.join("base", "meta", "full_meta.json")))
    groups = group_of(full, shape)
    base = store.join("base")
    for path in store.fs.find(store.join("base", "binlogs")):
        relative = path[len(base.rstrip("/")) + 1 :]
        store.write_bytes(store.join(shape.name, go_path(relative, groups)), store.fs.cat_file(path))
    for name, data in go_meta_files(full, shape).items():
        store.write_bytes(store.join(shape.name, "meta", name), data)


@pytest.mark.parametrize("shape", GO_SHAPES, ids=lambda s: s.name)
def test_each_go_release_layout_restores_row_equal(shape: GoShape) -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("base", "c")
    _rewrite(bk.backup_storage, shape)

    info = bk.get_backup(shape.name)
    assert info.name == shape.name
    assert bk.verify_backup(shape.name, level="checksum").ok
    target = InMemoryMilvus("2.3.5")
    client(target, bk.backup_storage).restore(shape.name)
    assert target.rows(DB, "c") == source.rows(DB, "c")


def test_v0_4_0_shared_groups_are_one_import_each() -> None:
    # v0.4.0-v0.4.3: segments 1 and 2 share group directory 1, segment 3 is alone in group 2
    part = build.partition(
        7,
        build.segment(1, 7, 10, group_id=1),
        build.segment(2, 7, 5, group_id=1, deletes=2),
        build.segment(3, 7, 4, group_id=2),
    )
    coll = build.collection("c", part)
    conflicts: list[str] = []
    steps = import_steps(SRC, DST, coll, conflicts)
    assert not conflicts
    c = build.COLLECTION_ID
    assert [(s.insert_prefix, s.delta_prefix, s.segment_ids, s.rows) for s in steps] == [
        (f"binlogs/insert_log/{c}/7/1/", f"binlogs/delta_log/{c}/7/1/", (1, 2), 15),
        (f"binlogs/insert_log/{c}/7/2/", "", (3,), 4),
    ]


def test_a_group_0_partition_is_one_import_of_the_partition_directory() -> None:
    part = build.partition(7, build.segment(1, 7, 10, group_id=0), build.segment(2, 7, 5, group_id=0))
    [step] = import_steps(SRC, DST, build.collection("c", part), [])
    assert step.insert_prefix == f"binlogs/insert_log/{build.COLLECTION_ID}/7/" and step.segment_ids == (1, 2)


@pytest.mark.parametrize(
    ("binlog", "log_id"),
    [
        (Binlog(log_path="files/insert_log/1/2/3/100/4455", log_size=1, log_id=4455), 4455),
        # milvus-backup < v0.5.4 wrote no log_id: the file name is the log ID
        (Binlog(log_path="files/insert_log/1/2/3/100/4455", log_size=1), 4455),
        (Binlog(log_path="/var/lib/milvus/data/delta_log/1/2/3/77", log_size=1), 77),
        (Binlog(log_path="", log_size=1), 0),
    ],
)
def test_the_log_id_comes_from_the_path_when_not_recorded(binlog: Binlog, log_id: int) -> None:
    assert log_id_of(binlog) == log_id


def _without_log_ids(fbs: tuple[FieldBinlog, ...]) -> tuple[FieldBinlog, ...]:
    return tuple(attrs.evolve(fb, binlogs=tuple(attrs.evolve(b, log_id=0) for b in fb.binlogs)) for fb in fbs)


def test_binlog_keys_of_a_manifest_without_log_ids() -> None:
    seg = build.segment(3, 2, 1, fields=(0,), deletes=1)
    # the same segment as milvus-backup v0.4 recorded it: no log_id
    seg = attrs.evolve(seg, binlogs=_without_log_ids(seg.binlogs), deltalogs=_without_log_ids(seg.deltalogs))
    coll = build.collection("c", build.partition(2, seg))
    c = build.COLLECTION_ID
    assert [f.key for f in binlog_files(coll)] == [
        f"binlogs/insert_log/{c}/2/3/3/0/1003",
        f"binlogs/delta_log/{c}/2/3/3/5003",
    ]


def test_a_backup_moved_under_another_name_restores_from_its_own_directory() -> None:
    source = InMemoryMilvus("2.5.3")
    populate(source)
    bk = client(source)
    bk.create_backup("first", "c")
    store = bk.backup_storage
    store.fs.copy(store.join("first"), store.join("moved"), recursive=True)
    store.fs.rm(store.join("first"), recursive=True)
    assert bk.get_backup("moved").name == "first"  # the manifest keeps the name it was written with

    target = InMemoryMilvus("2.5.3")
    client(target, store).restore("moved")
    assert target.rows(DB, "c") == source.rows(DB, "c")
