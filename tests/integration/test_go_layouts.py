"""Every backup layout the Go tool (milvus-backup v0.4.0 to HEAD) writes restores row-equal through the real
Milvus 2.3.5 server.

One small collection (auto-id key, VARCHAR, JSON, an Int64 with a default value, a float vector, the
dynamic field; two segments in ``_default`` and one in ``p1``; deletes in both partitions) is backed up
once by this library; the backup is then rewritten into each Go release line's meta JSON and directory
layout (:mod:`go_layouts`, from ``core/proto/backup.proto`` and the writer at each tag), restored under
another name and compared with the source row by row: primary keys, scalars, JSON, dynamic keys and
vectors (the float32 values the server returns, so bit for bit), the deleted keys absent.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from dataset import client, fetch_rows, make_client
from pymilvus import DataType, MilvusClient

from go_layouts import GO_SHAPES, GoShape, go_meta_files, go_path, group_of
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.imports import import_steps

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from milvus_backup_lib import BackupClient

pytestmark = pytest.mark.integration

SOURCE = "go_layout_src"


def _build(uri: str) -> tuple[int, ...]:
    """The source collection; returns the deleted primary keys."""
    rng = np.random.default_rng(11)
    c = client(uri)
    s = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("title", DataType.VARCHAR, max_length=32)
    s.add_field("meta", DataType.JSON)
    s.add_field("rank", DataType.INT64, default_value=7)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    c.create_collection(SOURCE, schema=s)
    c.create_partition(SOURCE, "p1")
    ids: list[int] = []
    # two flushed segments in _default (what v0.4.0-v0.4.3 put in one shared group directory), one in p1
    for batch, part in enumerate(("_default", "_default", "p1")):
        rows = [
            {
                "title": f"{part} {batch} {i}",
                "meta": {"i": i, "b": batch},
                "rank": i * (batch + 1),
                "vec": rng.random(8, dtype=np.float32).tolist(),
                "dyn": f"d{i % 3}",
            }
            for i in range(120)
        ]
        ids.extend(int(x) for x in c.insert(SOURCE, rows, partition_name=part)["ids"])
        c.flush(SOURCE)
    deleted = tuple(ids[::17])
    c.delete(SOURCE, ids=list(deleted))
    c.flush(SOURCE)
    c.close()
    return deleted


@pytest.fixture(scope="module")
def source(
    milvus_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BackupClient, Path]]:
    """The source collection, backed up once by this library as ``base``; (client, backup root)."""
    root = tmp_path_factory.mktemp("go-layouts")
    _build(milvus_server.uri)
    bk = make_client(milvus_server, root)
    bk.create_backup("base", [SOURCE])
    yield bk, root
    c = client(milvus_server.uri)
    for name in c.list_collections():
        if name.startswith(SOURCE):
            c.drop_collection(name)
    c.close()


def _write_go_backup(root: Path, shape: GoShape) -> dict[str, Any]:
    """Write backup ``shape.name`` in that release line's shape from ``base``; return its full_meta."""
    base = root / "base"
    full = json.loads((base / "meta" / "full_meta.json").read_text())
    groups = group_of(full, shape)
    target = root / shape.name
    for path in sorted(p for p in (base / "binlogs").rglob("*") if p.is_file()):
        dest = target / go_path(str(path.relative_to(base)), groups)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    (target / "meta").mkdir()
    files = go_meta_files(full, shape)
    for name, data in files.items():
        (target / "meta" / name).write_bytes(data)
    return json.loads(files["full_meta.json"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", GO_SHAPES, ids=lambda s: s.name)
def test_a_go_written_backup_restores_row_equal(
    shape: GoShape, source: tuple[BackupClient, Path], milvus_server: Any
) -> None:
    bk, root = source
    full = _write_go_backup(root, shape)
    seg_dirs = {
        p.parent.parent.name for p in (root / shape.name / "binlogs" / "insert_log").rglob("*") if p.is_file()
    }
    info = bk.get_backup(shape.name)
    coll = info.collection("default", SOURCE)
    segments = [s for p in coll.partition_backups for s in p.segment_backups]
    assert len(segments) == 3 and {str(s.segment_id) for s in segments} == seg_dirs
    if shape.groups == "shared":
        assert {s.group_id for s in segments} == {1}
    elif shape.groups == "none":
        assert {s.group_id for s in segments} == {0} and "group_id" not in json.dumps(full)
    else:
        assert all(s.group_id == s.segment_id for s in segments)
    if shape.replicas:
        assert "replicas" in json.dumps(full)  # an unknown key to the reader, which ignores it
    if shape.absolute_log_path:
        assert all(
            b.log_path.startswith(shape.absolute_log_path + "/")
            for s in segments
            for fb in s.binlogs
            for b in fb.binlogs
        )
    rank = next(f for f in coll.schema.fields if f.name == "rank")
    # schemapb.ValueField{long_data: 7} is the bytes 18 07
    if shape.defaults == "none":
        assert not rank.default_value_base64 and not rank.default_value_proto
    elif shape.defaults == "proto":
        assert rank.default_value_proto == "\x18\x07" and "default_value_base64" not in json.dumps(full)
    else:
        assert rank.default_value_base64 == "GAc="

    # one import per group directory, never the same directory twice
    conflicts: list[str] = []
    dest = f"{SOURCE}_{shape.name}"
    steps = import_steps(QualifiedName("default", SOURCE), QualifiedName("default", dest), coll, conflicts)
    assert not conflicts
    prefixes = [s.insert_prefix for s in steps]
    assert len(prefixes) == len(set(prefixes))
    assert len(steps) == {"shared": 2, "none": 2, "segment": 3}[shape.groups]

    bk.restore(shape.name, rename={SOURCE: dest})

    uri = milvus_server.uri
    expected, restored = fetch_rows(uri, "default", SOURCE), fetch_rows(uri, "default", dest)
    assert len(expected) == 3 * 120 - len(range(0, 360, 17))
    assert restored.keys() == expected.keys()
    for pk, row in expected.items():
        assert restored[pk] == row, pk
    c = client(uri)
    try:
        fields = {f["name"]: f for f in c.describe_collection(dest)["fields"]}
    finally:
        c.close()
    if shape.defaults != "none":
        assert fields["rank"]["default_value"].long_data == 7
