"""Delete and materialize on backups of the real Milvus 2.3.5 server.

A backup referencing another's binlogs is made by hand (the meta files of a real backup copied to a new
name, every binlog referenced where the original stores it), as an incremental backup of unchanged data
records it. Deleting the original keeps what the copy references; ``materialize`` makes the copy
self-contained; it then verifies at checksum level and restores equal to the source, with no other
backup left; deleting it leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from dataset import Matrix, client, fetch_rows, make_client

from milvus_backup_lib import BackupClient, RestoreOptions
from milvus_backup_lib.manifest.codec import BACKUP_META
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE, META_DIR

pytestmark = pytest.mark.integration


def _refer(bc: BackupClient, holder: str, name: str) -> set[str]:
    """Backup ``name``: ``holder``'s meta files, every binlog referenced where ``holder`` stores it."""
    repository, location = bc.repository, bc.repository.location
    meta = repository.read_library_meta(holder)
    assert meta is not None and meta.files
    for path in sorted(location.list_files(repository.path(holder, META_DIR))):
        file = path.rsplit("/", 1)[-1]
        if file not in (BACKUP_META, LIBRARY_META_FILE):
            location.write_bytes(repository.meta_path(name, file), location.read_bytes(path))
    own = attrs.evolve(meta, references=dict.fromkeys(meta.files, holder), base=holder)
    location.write_bytes(repository.meta_path(name, LIBRARY_META_FILE), own.to_json())
    marker = location.read_bytes(repository.meta_path(holder, BACKUP_META))
    location.write_bytes(repository.meta_path(name, BACKUP_META), marker)
    return set(meta.files)


def _stored(root: Path, name: str) -> set[str]:
    base = root / name
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def test_delete_keeps_what_is_referenced_and_materialize_makes_a_backup_that_outlives_it(
    milvus_server: Any, matrix: Matrix, tmp_path: Path
) -> None:
    source = (matrix.db_b, matrix.other)
    bc = make_client(milvus_server, tmp_path)
    bc.create_backup("full", collections=[f"{matrix.db_b}.{matrix.other}"])
    binlogs = _refer(bc, "full", "inc")
    listed = {b.name: (b.self_contained, b.base) for b in bc.list_backups()}
    assert listed == {"full": (True, ""), "inc": (False, "full")}

    deleted = bc.delete_backup("full")
    assert set(deleted.kept) == binlogs and deleted.referenced_by == ["inc"]
    assert [b.name for b in bc.list_backups()] == ["inc"] and bc.list_unfinished() == []
    assert _stored(tmp_path, "full") == binlogs | {"milvus_backup_lib.deleted"}  # the husk

    report = bc.materialize("inc")
    assert report.files_copied == len(binlogs) and report.server_side  # a kernel copy on local disk
    assert not (tmp_path / "full").exists()  # nothing references the husk any more: swept
    assert [(b.name, b.self_contained) for b in bc.list_backups()] == [("inc", True)]
    assert bc.verify_backup("inc", "checksum").ok

    restored = f"{matrix.other}_mat"
    try:
        bc.restore("inc", RestoreOptions(collections=[f"{matrix.db_b}.{matrix.other}"], suffix="_mat"))
        original, copy = fetch_rows(matrix.uri, *source), fetch_rows(matrix.uri, matrix.db_b, restored)
        assert copy.keys() == original.keys() and len(copy) > 0
        for key, row in original.items():
            assert copy[key] == row, f"row {key!r} differs"
    finally:
        c = client(matrix.uri, matrix.db_b)
        if c.has_collection(restored):
            c.drop_collection(restored)
        c.close()

    gone = bc.delete_backup("inc")
    assert gone.kept == {} and gone.bytes_freed > 0
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # nothing of either backup is left
