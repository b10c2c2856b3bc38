"""Backups between object stores: Milvus on local disk and on S3 (moto), backups on S3, GCS and Azure.

Every combination is restored back into a Milvus and compared row by row with its source.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dataset import build_small, client, fetch_rows

from milvus_backup_lib import (
    BackupClient,
    MilvusBackupError,
    MilvusConnection,
    RestoreOptions,
    StorageLocation,
)
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

pytestmark = pytest.mark.integration

MILVUS_BUCKET = "milvus-bucket"


@pytest.fixture(scope="module")
def milvus_on_s3(
    s3_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EmbeddedMilvus, StorageLocation]]:
    """An embedded Milvus whose storage is ``s3://milvus-bucket/files`` on the moto server."""
    s3_server.create_bucket(MILVUS_BUCKET)
    opts = s3_server.storage_options
    config = {
        "common.storageType": "minio",
        "minio.address": "127.0.0.1",
        "minio.port": str(s3_server.port),
        "minio.bucketName": MILVUS_BUCKET,
        "minio.rootPath": "files",
        "minio.accessKeyID": opts["key"],
        "minio.secretAccessKey": opts["secret"],
    }
    with EmbeddedMilvus(tmp_path_factory.mktemp("milvus-s3"), extra_config=config) as server:
        yield server, s3_server.location(MILVUS_BUCKET, "files")


@pytest.fixture(scope="module")
def s3_collection(milvus_on_s3: tuple[EmbeddedMilvus, StorageLocation]) -> tuple[str, int, tuple[int, ...]]:
    server, _ = milvus_on_s3
    name = f"s3c_{uuid.uuid4().hex[:6]}"
    rows, deleted = build_small(server.uri, name)
    return name, rows, deleted


def _client(server: EmbeddedMilvus, milvus_storage: StorageLocation, backup: StorageLocation) -> BackupClient:
    return BackupClient(
        milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
        milvus_storage=milvus_storage,
        backup_storage=backup,
    )


def _round_trip(
    server: EmbeddedMilvus, bc: BackupClient, coll: str, rows: int, deleted: tuple[int, ...], tag: str
) -> Any:
    """Back up ``coll``, restore it as ``{coll}_{tag}`` into the same server, compare every row."""
    report = bc.create_backup(f"bk_{tag}", collections=[coll])
    assert report.info.collection_backups[0].num_rows == rows
    restored = bc.restore(f"bk_{tag}", RestoreOptions(suffix=f"_{tag}"))
    target = f"{coll}_{tag}"
    try:
        assert restored.collections[0].imported_rows == rows - len(deleted)
        src, dst = fetch_rows(server.uri, "default", coll), fetch_rows(server.uri, "default", target)
        assert src.keys() == dst.keys() and len(src) == rows - len(deleted)
        assert all(dst[k] == v for k, v in src.items())
        assert not set(deleted) & set(dst)
    finally:
        c = client(server.uri)
        c.drop_collection(target)
        c.close()
    return report, restored


def test_local_milvus_to_s3(milvus_server: EmbeddedMilvus, s3_server: Any, unique_name: str) -> None:
    rows, deleted = build_small(milvus_server.uri, unique_name)
    backup = s3_server.location(f"bk-{uuid.uuid4().hex[:8]}", "backups")
    bc = _client(milvus_server, StorageLocation(milvus_server.storage_url), backup)
    try:
        report, restored = _round_trip(milvus_server, bc, unique_name, rows, deleted, "s3")
        # different stores: the bytes streamed through this process, then were staged back for the import
        assert not report.server_side_copy
        assert all(o.staged for o in restored.collections[0].imports)
        assert not list(Path(milvus_server.data_dir).glob("restore-temp-*"))
        assert backup.fs.exists(backup.join("bk_s3", "meta", "backup_meta.json"))
    finally:
        c = client(milvus_server.uri)
        c.drop_collection(unique_name)
        c.close()


def test_s3_milvus_to_its_own_bucket_imports_in_place(
    milvus_on_s3: tuple[EmbeddedMilvus, StorageLocation],
    s3_collection: tuple[str, int, tuple[int, ...]],
    s3_server: Any,
) -> None:
    server, milvus_storage = milvus_on_s3
    coll, rows, deleted = s3_collection
    backup = s3_server.location(MILVUS_BUCKET, "backup")
    report, restored = _round_trip(
        server, _client(server, milvus_storage, backup), coll, rows, deleted, "same"
    )
    assert report.server_side_copy
    imports = restored.collections[0].imports
    assert imports and not any(o.staged for o in imports)
    assert all(
        f.startswith("backup/bk_same/binlogs/") for o in imports for f in o.files
    )  # bucket-relative keys


def test_s3_milvus_to_another_bucket_stages_and_cleans_up(
    milvus_on_s3: tuple[EmbeddedMilvus, StorageLocation],
    s3_collection: tuple[str, int, tuple[int, ...]],
    s3_server: Any,
) -> None:
    server, milvus_storage = milvus_on_s3
    coll, rows, deleted = s3_collection
    backup = s3_server.location(f"other-{uuid.uuid4().hex[:8]}", "backup")
    report, restored = _round_trip(
        server, _client(server, milvus_storage, backup), coll, rows, deleted, "other"
    )
    assert report.server_side_copy  # same S3 endpoint and credentials: CopyObject, no bytes through us
    imports = restored.collections[0].imports
    assert imports and all(o.staged for o in imports)
    assert all(f.startswith("files/restore-temp-") for o in imports for f in o.files)
    fs = milvus_storage.fs
    fs.invalidate_cache()
    assert not fs.glob(f"{MILVUS_BUCKET}/files/restore-temp-*")


@pytest.mark.parametrize("store", ["gcs", "azure"])
def test_s3_milvus_to_another_cloud(
    request: pytest.FixtureRequest,
    store: str,
    milvus_on_s3: tuple[EmbeddedMilvus, StorageLocation],
    s3_collection: tuple[str, int, tuple[int, ...]],
) -> None:
    server, milvus_storage = milvus_on_s3
    coll, rows, deleted = s3_collection
    emulator = request.getfixturevalue(f"{store}_server")
    backup = emulator.location(f"bk-{uuid.uuid4().hex[:8]}", "milvus/backups")
    report, restored = _round_trip(
        server, _client(server, milvus_storage, backup), coll, rows, deleted, store
    )
    assert not report.server_side_copy  # another store: streamed in bounded chunks
    assert all(o.staged for o in restored.collections[0].imports)
    # the backup really is in the other store, in the upstream layout
    full = json.loads(backup.fs.cat_file(backup.join(f"bk_{store}", "meta", "full_meta.json")))
    assert full["name"] == f"bk_{store}" and full["collection_backups"][0]["collection_name"] == coll


def test_credentials_never_leak(
    milvus_on_s3: tuple[EmbeddedMilvus, StorageLocation],
    s3_collection: tuple[str, int, tuple[int, ...]],
    s3_server: Any,
    azure_server: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Secrets given through storage_options never appear in our logs, errors, reprs or manifests."""
    server, milvus_storage = milvus_on_s3
    coll, _, _ = s3_collection
    secrets = [s3_server.storage_options["secret"], azure_server.storage_options.get("account_key", "")]
    secrets += [v for v in (azure_server.storage_options.get("connection_string", ""),) if v]
    secrets = [s for s in secrets if s]
    assert secrets
    backup = azure_server.location(f"leak-{uuid.uuid4().hex[:8]}", "b")
    bc = _client(server, milvus_storage, backup)
    caplog.set_level(logging.DEBUG, logger="milvus_backup_lib")
    texts = [repr(bc), repr(backup), repr(milvus_storage), str(bc.milvus)]
    report = bc.create_backup("leak", collections=[coll])
    texts += [repr(report)]
    bc.restore("leak", RestoreOptions(suffix="_leak"))
    c = client(server.uri)
    c.drop_collection(f"{coll}_leak")
    c.close()
    meta = backup.join("leak", "meta")
    texts += [backup.fs.cat_file(p).decode() for p in backup.fs.find(meta)]
    # errors carrying the same storage options: a missing backup container, a missing Milvus bucket
    missing_backup = StorageLocation(
        "az://x-missing-container/b", storage_options=azure_server.storage_options
    )
    missing_milvus = StorageLocation(
        "s3://x-missing-bucket/files", storage_options=milvus_storage.storage_options
    )
    for milvus_loc, backup_loc in ((milvus_storage, missing_backup), (missing_milvus, backup)):
        with pytest.raises(MilvusBackupError) as err:
            _client(server, milvus_loc, backup_loc).create_backup("never", collections=[coll])
        assert "x-missing-" in str(err.value)
        texts += [str(err.value), repr(err.value)]
    texts += [r.getMessage() for r in caplog.records if r.name.startswith("milvus_backup_lib")]
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_s3_milvus_to_local_disk(
    milvus_on_s3: tuple[EmbeddedMilvus, StorageLocation],
    s3_collection: tuple[str, int, tuple[int, ...]],
    tmp_path: Path,
) -> None:
    """Milvus on S3 backed up to a local directory: streamed out, staged back into the bucket to restore."""
    server, milvus_storage = milvus_on_s3
    coll, rows, deleted = s3_collection
    backup = StorageLocation(f"file://{tmp_path}")
    report, restored = _round_trip(
        server, _client(server, milvus_storage, backup), coll, rows, deleted, "local"
    )
    assert not report.server_side_copy
    assert (tmp_path / "bk_local" / "meta" / "backup_meta.json").exists()
    imports = restored.collections[0].imports
    assert imports and all(o.staged for o in imports)
    assert all(f.startswith("files/restore-temp-") for o in imports for f in o.files)
