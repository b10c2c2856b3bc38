"""The storage contract: what the library needs from a store, checked on every backend it supports.

Every test runs on each backend: ``local`` (a temporary directory), ``memory`` (fsspec's in-process
store), ``s3`` (moto server), ``gcs`` (fake-gcs-server) and ``azure`` (Azurite), the last three real
emulator processes from ``tests/emulators.py`` started once per session by the conftest fixtures. Each
test gets fresh buckets (containers, directories), so tests never see each other's objects.

A new backend joins by adding a :class:`Backend` to :func:`backend`; it is supported when this file
passes on it.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import threading
import time
import traceback
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from manifests import backup, collection, partition, pk_field, schema, segment, vector_field
from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier
from milvus_backup_lib.errors import (
    BackupLockedError,
    BackupNotFoundError,
    BucketNotFoundError,
    LockLostError,
    StorageCredentialsError,
    StorageError,
    StorageRootNotFoundError,
    StorageUnreachableError,
)
from milvus_backup_lib.manifest.model import BackupInfo, DatabaseBackupInfo
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.repository.verify import verify_backup
from milvus_backup_lib.storage.conditional import create_exclusive, read_versioned, remove_if, replace_if
from milvus_backup_lib.storage.layout import ROOT_MARKER
from milvus_backup_lib.storage.location import StorageLocation, scrub
from milvus_backup_lib.testing._process import free_ports

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from emulators import Azurite, FakeGcsServer, MotoServer

pytestmark = pytest.mark.integration

BACKENDS = ("local", "memory", "s3", "gcs", "azure")
MIB = 2**20
#: Bigger than one streaming chunk and than s3fs's/adlfs's default block sizes for reads.
BIG = os.urandom(5 * MIB)
#: A credential no store will ever echo back: it must not appear in any error or repr.
SECRET = "contract-secret-7f3a9c0e-do-not-leak"


class Backend:
    """Makes fresh locations on one backend, and knows what that backend calls a missing root."""

    def __init__(
        self,
        name: str,
        new_root: Callable[[str, dict[str, Any]], StorageLocation],
        missing: Callable[[], tuple[StorageLocation, str] | None],
        secret_options: dict[str, Any],
        secret: str = SECRET,
    ) -> None:
        self.name = name
        self._new_root = new_root
        self._missing = missing
        #: Options that carry :attr:`secret` the way a real deployment would (a key, a token).
        self.secret_options = secret_options
        self.secret = secret

    def fresh(self, root: str = "backups", **options: Any) -> StorageLocation:
        """A location ``root`` in a new bucket (container, directory), with ``options`` added."""
        return self._new_root(root, options)

    def missing(self) -> tuple[StorageLocation, str] | None:
        """A location whose bucket (or directory) does not exist, and the name an error must give;
        None for the memory store, where every root exists."""
        return self._missing()


def _unique(prefix: str = "contract") -> str:
    # Valid as an S3 and GCS bucket and as an Azure container: lowercase letters, digits, hyphens.
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _emulator_backend(name: str, server: MotoServer | FakeGcsServer | Azurite) -> Backend:
    def new_root(root: str, options: dict[str, Any]) -> StorageLocation:
        return server.location(_unique(), root, **options)

    def missing() -> tuple[StorageLocation, str]:
        bucket = _unique("missing")
        location = StorageLocation(f"{server.protocol}://{bucket}/backups", server.storage_options)
        return location, bucket

    secret = SECRET
    if name == "s3":
        secret_options = {"secret": SECRET}  # moto accepts any secret key
    elif name == "gcs":
        secret_options = {"token": SECRET}  # a raw OAuth access token; fake-gcs-server ignores it
    else:
        # Azurite checks the account key, so the secret is the real (public, well-known) dev key.
        secret_options = {}
        secret = server.storage_options["connection_string"].split("AccountKey=", 1)[1].split(";", 1)[0]
    return Backend(name, new_root, missing, secret_options, secret)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """One backend per parameter; emulators start on the first test that needs them."""
    name: str = request.param
    if name == "local":

        def new_local(root: str, options: dict[str, Any]) -> StorageLocation:
            path = tmp_path / _unique() / root
            path.mkdir(parents=True)
            return StorageLocation(str(path), options)

        def missing_local() -> tuple[StorageLocation, str]:
            path = tmp_path / _unique("missing") / "backups"
            return StorageLocation(str(path)), str(path)

        # Local disks take no credentials: an option that would carry one must still stay hidden.
        yield Backend(name, new_local, missing_local, {"secret_token": SECRET})
    elif name == "memory":
        made: list[StorageLocation] = []

        def new_memory(root: str, options: dict[str, Any]) -> StorageLocation:
            location = StorageLocation(f"memory://{_unique()}/{root}", options)
            made.append(location)
            return location

        yield Backend(name, new_memory, lambda: None, {"secret_token": SECRET})
        for location in made:  # the memory store is global to the process
            if location.fs.exists(location.root):
                location.fs.rm(location.root, recursive=True)
    else:
        fixture = {"s3": "s3_server", "gcs": "gcs_server", "azure": "azure_server"}[name]
        # gcsfs checks a raw token's expiry with Google unless told not to (no network in tests).
        monkeypatch.setenv("FETCH_RAW_TOKEN_EXPIRY", "false")
        yield _emulator_backend(name, request.getfixturevalue(fixture))


@pytest.fixture
def store(backend: Backend) -> StorageLocation:
    """A fresh, empty location on the backend under test."""
    return backend.fresh()


@pytest.fixture
def other_store(backend: Backend, tmp_path: Path) -> Iterator[StorageLocation]:
    """A location in a different store than ``store`` (local disk; memory when testing local disk)."""
    if backend.name == "local":
        location = StorageLocation(f"memory://{_unique()}/other")
        yield location
        if location.fs.exists(location.root):  # the memory store is global to the process
            location.fs.rm(location.root, recursive=True)
    else:
        path = tmp_path / _unique("other")
        path.mkdir()
        yield StorageLocation(str(path))


def _write(location: StorageLocation, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        if location.is_local:
            location.fs.makedirs(os.path.dirname(location.join(relative)), exist_ok=True)
        location.fs.pipe_file(location.join(relative), data)


def _listing(location: StorageLocation) -> dict[str, int]:
    """Every file below the root, relative to it, with its size, as ``find`` reports them."""
    location.fs.invalidate_cache(location.root)
    found = location.fs.find(location.root, detail=True)
    return {location.relative(path): int(entry["size"]) for path, entry in found.items()}


# --------------------------------------------------------------------------- bytes in and out


def test_write_and_read_bytes(store: StorageLocation) -> None:
    files = {"empty": b"", "small.bin": b"milvus\x00backup\n", "big.bin": BIG}
    _write(store, files)

    for relative, data in files.items():
        assert store.fs.cat_file(store.join(relative)) == data, relative


def test_read_bytes_reads_a_small_file_in_one_request(
    backend: Backend, store: StorageLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"empty": b"", "small.json": b'{"a": 1}', "big.bin": BIG}
    _write(store, files)
    for relative, data in files.items():
        assert store.read_bytes(store.join(relative)) == data, relative
    if backend.name != "s3":
        return
    # s3fs 2025.x asks HeadObject before every whole-file GetObject (to choose ranged parallel reads):
    # read_bytes, which reads only small meta files, must cost one request.
    calls: list[str] = []
    fs: Any = store.fs
    original = fs._call_s3

    async def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return await original(method, *args, **kwargs)

    monkeypatch.setattr(fs, "_call_s3", counting)
    assert store.read_bytes(store.join("small.json")) == b'{"a": 1}'
    assert store.read_bytes(store.join("empty")) == b""
    assert calls == ["get_object", "get_object"]


def test_overwrite_replaces_content(store: StorageLocation) -> None:
    _write(store, {"meta/backup_meta.json": b"first version, longer"})
    _write(store, {"meta/backup_meta.json": b"second"})

    assert store.fs.cat_file(store.join("meta/backup_meta.json")) == b"second"
    assert _listing(store) == {"meta/backup_meta.json": 6}


def test_find_lists_nested_files_with_sizes(store: StorageLocation) -> None:
    files = {
        "top.json": b"{}",
        "binlogs/insert_log/1/2/3/100/7": b"x" * 1000,
        "binlogs/insert_log/1/2/3/101/8": b"y" * 3,
        "binlogs/delta_log/1/2/3/9": b"",
        "meta/full_meta.json": BIG,
    }
    _write(store, files)

    assert _listing(store) == {relative: len(data) for relative, data in files.items()}
    # A listing below a prefix holds only what is below it.
    found = store.fs.find(store.join("binlogs/insert_log"))
    assert sorted(store.relative(path) for path in found) == [
        "binlogs/insert_log/1/2/3/100/7",
        "binlogs/insert_log/1/2/3/101/8",
    ]


def test_ls_shows_files_and_directories(store: StorageLocation) -> None:
    # BackupRepository.names() lists the root with ls and takes the "directory" entries as backups.
    _write(store, {"one/meta/a.json": b"1", "two/x": b"22", "loose.txt": b"333"})

    store.fs.invalidate_cache(store.root)
    entries = store.fs.ls(store.root, detail=True)

    kinds = {store.relative(str(e["name"]).rstrip("/")): e["type"] for e in entries}
    assert kinds == {"one": "directory", "two": "directory", "loose.txt": "file"}
    sizes = {store.relative(str(e["name"])): e["size"] for e in entries if e["type"] == "file"}
    assert sizes == {"loose.txt": 3}


def test_info_reports_size_and_missing_file(store: StorageLocation) -> None:
    _write(store, {"a/file": b"12345", "a/empty": b""})

    for relative, size in (("a/file", 5), ("a/empty", 0)):
        info = store.fs.info(store.join(relative))
        assert info["size"] == size
        assert info["type"] == "file"
    with pytest.raises(FileNotFoundError):
        store.fs.info(store.join("a/nothing"))


def test_ranged_reads(store: StorageLocation) -> None:
    _write(store, {"big.bin": BIG})
    path = store.join("big.bin")

    assert store.fs.cat_file(path, start=0, end=10) == BIG[:10]
    assert store.fs.cat_file(path, start=MIB - 3, end=MIB + 5) == BIG[MIB - 3 : MIB + 5]
    assert store.fs.cat_file(path, start=len(BIG) - 7) == BIG[-7:]
    # What the copier's streaming path does: open with a block size and read chunk by chunk.
    with store.fs.open(path, "rb", block_size=MIB) as reader:
        reader.seek(2 * MIB + 1)
        assert reader.read(100) == BIG[2 * MIB + 1 : 2 * MIB + 101]
        reader.seek(0)
        chunks = []
        while chunk := reader.read(MIB + 17):
            chunks.append(chunk)
    assert b"".join(chunks) == BIG


def test_exists(store: StorageLocation) -> None:
    _write(store, {"dir/sub/file": b"x", "dir/empty": b""})

    assert store.fs.exists(store.join("dir/sub/file"))
    assert store.fs.exists(store.join("dir/empty"))
    assert store.fs.exists(store.join("dir/sub"))  # a prefix with objects below it counts
    assert not store.fs.exists(store.join("dir/missing"))
    assert not store.fs.exists(store.join("nothing/at/all"))


def test_rm_recursive(store: StorageLocation) -> None:
    _write(store, {"gone/a": b"1", "gone/b/c": b"2", "gone/b/d/e": b"", "kept/f": b"3"})

    store.fs.rm(store.join("gone"), recursive=True)
    store.fs.invalidate_cache(store.root)

    assert _listing(store) == {"kept/f": 1}
    assert not store.fs.exists(store.join("gone"))
    assert not store.fs.exists(store.join("gone/b/c"))


# --------------------------------------------------------------------------- StorageLocation


def test_check_root(backend: Backend, store: StorageLocation) -> None:
    store.check_root()

    missing = backend.missing()
    if missing is None:
        # The memory store creates roots on first write: no root can be missing there.
        StorageLocation(f"memory://{_unique('missing')}/backups").check_root()
        return
    location, name = missing
    with pytest.raises(StorageRootNotFoundError) as info:
        location.check_root()
    assert repr(name) in str(info.value)
    assert isinstance(info.value, StorageError)


def test_paths_join_relative_bucket_key(backend: Backend, store: StorageLocation) -> None:
    root = store.root
    assert root.endswith("/backups")
    assert not root.endswith("/")
    assert "://" not in root

    path = store.join("name", "meta/backup_meta.json")
    assert path == f"{root}/name/meta/backup_meta.json"
    assert store.join() == root
    assert store.join("/a/", "", "b/") == f"{root}/a/b"
    assert store.relative(path) == "name/meta/backup_meta.json"
    with pytest.raises(ValueError, match="is not below"):
        store.relative(root + "-sibling/x")

    if backend.name in ("local", "memory"):
        assert store.bucket == ""
        assert store.bucket_key(path) == "name/meta/backup_meta.json"  # relative, like a bucket key
    else:
        assert store.bucket.startswith("contract-")
        assert root == f"{store.bucket}/backups"
        assert store.bucket_key(path) == "backups/name/meta/backup_meta.json"

    # The paths the library builds are the paths the store lists back.
    _write(store, {"name/meta/backup_meta.json": b"{}"})
    assert list(store.fs.find(store.root)) == [path]


def test_same_store(backend: Backend, store: StorageLocation, other_store: StorageLocation) -> None:
    elsewhere = backend.fresh("elsewhere")

    assert store.same_store(elsewhere)
    assert elsewhere.same_store(store)
    assert not store.same_store(other_store)
    with_other_options = backend.fresh("elsewhere", **backend.secret_options)
    if backend.name in ("local", "memory"):
        # One disk, one in-process store: options cannot point anywhere else.
        assert store.same_store(with_other_options)
    elif backend.secret_options:
        # Other credentials may not read the source bucket: such copies go through the client.
        assert not store.same_store(with_other_options)


# --------------------------------------------------------------------------- the copier


def _copy_jobs(
    source: StorageLocation, destination: StorageLocation, files: dict[str, bytes]
) -> list[CopyJob]:
    return [
        CopyJob(source.join("insert_log", rel), destination.join("binlogs/insert_log", rel), len(data))
        for rel, data in files.items()
    ]


COPY_FILES = {
    "1/2/3/100/1": b"",
    "1/2/3/100/2": b"a",
    "1/2/3/101/3": bytes(range(256)) * 40,
    "1/2/4/100/4": BIG[: MIB + 3],
}


def _assert_copied(destination: StorageLocation, files: dict[str, bytes]) -> None:
    assert _listing(destination) == {f"binlogs/insert_log/{rel}": len(data) for rel, data in files.items()}
    for rel, data in files.items():
        assert destination.fs.cat_file(destination.join("binlogs/insert_log", rel)) == data


def test_copy_within_store_is_server_side(backend: Backend, store: StorageLocation) -> None:
    source = store
    _write(source, {f"insert_log/{rel}": data for rel, data in COPY_FILES.items()})
    destination = backend.fresh("backup")  # another bucket (directory) of the same store
    assert source.same_store(destination)

    result = FsspecCopier(concurrency=3).copy(
        source, destination, _copy_jobs(source, destination, COPY_FILES)
    )

    total = sum(map(len, COPY_FILES.values()))
    assert attrs.evolve(result, checksums={}) == CopyResult(
        files=len(COPY_FILES), bytes_copied=total, server_side=True, bytes_through_client=0
    )
    _assert_copied(destination, COPY_FILES)


@pytest.mark.parametrize("direction", ["out", "in"])
def test_copy_between_stores_streams(
    store: StorageLocation, other_store: StorageLocation, direction: str
) -> None:
    source, destination = (store, other_store) if direction == "out" else (other_store, store)
    assert not source.same_store(destination)
    _write(source, {f"insert_log/{rel}": data for rel, data in COPY_FILES.items()})

    copier = FsspecCopier(concurrency=2, chunk_size=256 * 1024)
    result = copier.copy(source, destination, _copy_jobs(source, destination, COPY_FILES))

    total = sum(map(len, COPY_FILES.values()))
    assert attrs.evolve(result, checksums={}) == CopyResult(
        files=len(COPY_FILES), bytes_copied=total, server_side=False, bytes_through_client=total
    )
    _assert_copied(destination, COPY_FILES)


def test_copy_of_missing_source_names_it(backend: Backend, store: StorageLocation) -> None:
    destination = backend.fresh("backup")
    missing = store.join("insert_log/1/2/404/100/1")

    with pytest.raises(StorageError, match="missing source file") as info:
        FsspecCopier().copy(store, destination, [CopyJob(missing, destination.join("gone"), 5)])

    assert missing in str(info.value)


# --------------------------------------------------------------------------- the backup repository


def _backup_info(name: str) -> BackupInfo:
    products = collection(
        "products",
        partition(447_002, segment(447_003, 447_002, 10, backuped=True), load_state="NotLoad"),
        schema=schema(
            "products",
            pk_field(name="id", auto_id=False),
            vector_field(name="vector", dim=4),
            description="contract test",
        ),
        id="c0ffee00-0000-4000-8000-000000000001",
        shards_num=1,
        consistency_level=2,
        backup_timestamp=449_000_000_000_000_010,
        load_state="NotLoad",
        backup_physical_timestamp=1_710_000_000,
    )
    return backup(
        products,
        id="c0ffee00-0000-4000-8000-000000000000",
        name=name,
        backup_timestamp=1_710_000_000_000,
        database_backups=(DatabaseBackupInfo(db_name="default", db_id=1),),
    )


def test_repository_round_trip_and_delete(store: StorageLocation) -> None:
    repository = BackupRepository(store)
    info = _backup_info("contract_backup")
    library_meta = LibraryMeta(created_at="2024-03-09T16:00:00+00:00", strategy="copy", files={"a": 1})
    # A binlog beside the manifest, as a real backup has, and a half-written backup without a manifest.
    _write(store, {"contract_backup/binlogs/insert_log/1/2/3/100/4": b"data", "half_done/binlogs/x": b"y"})

    assert repository.names() == []
    repository.write_manifest(info, library_meta)

    assert repository.names() == ["contract_backup"]
    assert repository.exists("contract_backup")
    assert not repository.exists("half_done")
    assert repository.read("contract_backup") == info
    assert repository.read_library_meta("contract_backup") == library_meta
    summary = repository.summary("contract_backup")
    assert (summary.name, summary.size, summary.collections) == (
        "contract_backup",
        info.size,
        ("default.products",),
    )
    with pytest.raises(BackupNotFoundError):
        repository.read("half_done")

    repository.delete("contract_backup")
    store.fs.invalidate_cache(store.root)

    assert repository.names() == []
    assert not repository.exists("contract_backup")
    assert not repository.has_objects("contract_backup")
    # the root marker stays: a root whose last backup was deleted still lists as "no backups"
    assert set(_listing(store)) == {"half_done/binlogs/x", ROOT_MARKER}
    store.remove_tree(store.join("half_done"))
    store.fs.invalidate_cache(store.root)
    assert repository.summaries() == []


def test_delete_keeps_referenced_files_and_the_next_delete_sweeps_them(store: StorageLocation) -> None:
    """Mark and sweep on every store: the listing of a husk, its files' keys, removing only some."""
    repository = BackupRepository(store)
    kept, dropped = "binlogs/insert_log/1/2/3/100/4", "binlogs/insert_log/1/2/3/100/5"
    _write(store, {f"holder/{kept}": b"data", f"holder/{dropped}": b"gone"})
    repository.write_manifest(_backup_info("holder"), LibraryMeta(files={kept: 4, dropped: 4}))
    referencing = LibraryMeta(files={kept: 4}, references={kept: "holder"}, base="holder")
    repository.write_manifest(_backup_info("referrer"), referencing)

    report = repository.delete_stored("holder")
    assert dict(report.kept) == {kept: ("referrer",)} and report.bytes_freed > 4
    assert repository.names() == ["referrer"] and repository.is_husk("holder")
    left = {k for k in _listing(store) if k.startswith("holder/")}
    assert left == {f"holder/{kept}", "holder/milvus_backup_lib.deleted"}

    repository.delete_stored("referrer")
    assert set(_listing(store)) == {ROOT_MARKER}  # nothing of either backup, no lock left behind


# --------------------------------------------------------------------------- credentials stay secret


def _full_text(exc: BaseException) -> str:
    """The exception as a traceback would print it, causes and context included."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + repr(exc)


def test_secrets_stay_out_of_errors_and_reprs(backend: Backend, other_store: StorageLocation) -> None:
    secret = backend.secret
    store = backend.fresh(**backend.secret_options)
    assert store.storage_options, "the location must carry the secret for this test to mean anything"
    _write(store, {"insert_log/present": b"12345"})

    texts = [repr(store), str(store), repr(BackupRepository(store))]
    provocations: list[Callable[[], object]] = [
        # server-side copy and streaming copy of a missing source
        lambda: FsspecCopier().copy(store, store, [CopyJob(store.join("nope"), store.join("dst"), 1)]),
        lambda: FsspecCopier().copy(
            store, other_store, [CopyJob(store.join("nope"), other_store.join("d"), 1)]
        ),
        # a size that does not match what was copied
        lambda: FsspecCopier().copy(
            store, other_store, [CopyJob(store.join("insert_log/present"), other_store.join("p"), 4)]
        ),
        lambda: BackupRepository(store).read("not_there"),
    ]
    missing = backend.missing()
    if missing is not None:
        location, _ = missing
        missing_with_secret = StorageLocation(
            location.url, {**location.storage_options, **backend.secret_options}
        )
        texts.append(repr(missing_with_secret))
        provocations.append(missing_with_secret.check_root)
        if missing_with_secret.bucket:  # a local writer creates its directories: only a bucket can be missing
            provocations.append(
                lambda: BackupRepository(missing_with_secret).write_manifest(_backup_info("b"), LibraryMeta())
            )

    for provoke in provocations:
        with pytest.raises(Exception) as info:  # noqa: PT011 - each raises its own kind; the text matters
            provoke()
        texts.append(_full_text(info.value))

    # And a message from a store that does echo the credential is cleaned before the library raises it.
    texts.append(scrub(f"request failed: credential {secret} rejected", store))

    for text in texts:
        assert secret not in text


# --------------------------------------------------------------------------- storage errors name the cause


def test_listing_a_missing_root_or_bucket_fails(backend: Backend, store: StorageLocation) -> None:
    """Never "0 backups" for a root that is not there (issue 10): a monitoring script must notice."""
    missing = backend.missing()
    if missing is None:  # the memory store: every root exists
        assert BackupRepository(store).summaries() == []
        return
    location, name = missing
    repository = BackupRepository(location)
    expected = StorageRootNotFoundError if location.is_local else BucketNotFoundError
    for call in (
        repository.summaries,
        lambda: repository.read("nightly"),
        lambda: verify_backup(repository, "nightly"),
    ):
        with pytest.raises(expected) as info:
            call()
        assert name in str(info.value)

    if store.is_local:  # a directory that exists is a root, empty or not
        assert BackupRepository(store).summaries() == []
        return
    # An object-store prefix that holds nothing is a root that is not there (a typo in the path) ...
    with pytest.raises(StorageRootNotFoundError) as info:
        BackupRepository(store).summaries()
    assert not isinstance(info.value, BucketNotFoundError)
    assert "'backups'" in str(info.value) and "127.0.0.1:" in str(info.value)
    # ... while one that holds anything lists, and so does an empty bucket root.
    _write(store, {"unrelated/file": b"x"})
    assert BackupRepository(store).summaries() == []
    assert BackupRepository(backend.fresh("")).summaries() == []


def test_remove_tree_confirms_the_prefix_is_empty(store: StorageLocation) -> None:
    _write(store, {f"doomed/binlogs/{i}": b"x" for i in range(3)} | {"kept/file": b"y"})
    store.remove_tree(store.join("doomed"))
    assert store.list_files(store.join("doomed"), fresh=True) == {}
    assert list(store.list_files(store.root, fresh=True)) == [store.join("kept/file")]


def test_s3_bulk_delete_failures_are_raised(s3_server: MotoServer) -> None:
    """s3fs's rm sends DeleteObjects with Quiet and ignores its Errors: a key the store refused to
    delete was silently left behind. Moto refuses nothing, so one key's refusal is injected into
    moto's real answer (the key is really kept)."""
    location = s3_server.location(_unique(), "backups")
    _write(location, {"old/binlogs/a": b"1", "old/binlogs/b": b"2"})
    fs: Any = location.fs
    real_call = fs._call_s3

    async def refusing(method: str, *args: Any, **kwargs: Any) -> Any:
        if method != "delete_objects":
            return await real_call(method, *args, **kwargs)
        objects = kwargs["Delete"]["Objects"]
        refused, rest = objects[0], objects[1:]
        out = await real_call(method, *args, **{**kwargs, "Delete": {**kwargs["Delete"], "Objects": rest}})
        out.setdefault("Errors", []).append({"Key": refused["Key"], "Code": "AccessDenied", "Message": "no"})
        return out

    fs._call_s3 = refusing
    try:
        with pytest.raises(StorageError, match=r"backups/old/binlogs/a \(AccessDenied\)"):
            location.remove_tree(location.join("old"))
    finally:
        del fs._call_s3
    assert list(location.list_files(location.join("old"), fresh=True)) == [location.join("old/binlogs/a")]


@pytest.mark.parametrize("protocol", ["s3", "gs", "az"])
def test_unreachable_endpoint_fails_fast_naming_it(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port used to take 20-70 s to fail (botocore's, gcsfs's and our retries) and was even
    reported as a missing bucket; now about 6 s, naming the endpoint."""
    monkeypatch.setenv("FETCH_RAW_TOKEN_EXPIRY", "false")
    [port] = free_ports(1, "127.0.0.1")  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    options: dict[str, Any] = {
        "s3": {"key": "k", "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint}},
        "gs": {"endpoint_url": endpoint, "token": "anon", "project": "p"},
        "az": {
            "connection_string": f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={SECRET};"
            f"BlobEndpoint={endpoint}/acct;"
        },
    }[protocol]
    for call in ("check_root", "list"):
        location = StorageLocation(f"{protocol}://bucket/backups", options)
        started = time.monotonic()
        with pytest.raises(StorageUnreachableError) as info:
            location.check_root() if call == "check_root" else BackupRepository(location).summaries()
        assert time.monotonic() - started < 15
        assert endpoint in str(info.value) and SECRET not in str(info.value)


def _moto_auth(endpoint: str, count: str) -> str:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "application/octet-stream"},  # a form body would be parsed away
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


def test_s3_wrong_credentials_missing_bucket_and_missing_root_are_told_apart(s3_server: MotoServer) -> None:
    """Moto accepts any key unless IAM authentication is on (``/moto-api/reset-auth``): turned on here
    for this test only, with a user made through moto's IAM. Wrong credentials used to be reported as
    a missing bucket (s3fs's exists() answers False for a bucket it may not read)."""
    import botocore.session

    endpoint = s3_server.endpoint
    bucket = _unique()
    s3_server.create_bucket(bucket)
    iam = botocore.session.get_session().create_client(
        "iam",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    user = _unique("user")
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="everything", PolicyDocument=json.dumps(policy))
    access = iam.create_access_key(UserName=user)["AccessKey"]
    good = {
        "key": access["AccessKeyId"],
        "secret": access["SecretAccessKey"],
        "client_kwargs": {"endpoint_url": endpoint},
    }

    def at(url: str, **changed: str) -> StorageLocation:
        return StorageLocation(url, {**good, **changed})

    previous = _moto_auth(endpoint, "0")
    try:
        cases: list[tuple[StorageLocation, type[StorageError], str]] = [
            (
                at(f"s3://{bucket}/backups", key="AKIAUNKNOWNKEY000000"),
                StorageCredentialsError,
                "InvalidAccessKeyId",
            ),
            (at(f"s3://{bucket}/backups", secret=SECRET), StorageCredentialsError, "SignatureDoesNotMatch"),
            (at(f"s3://{_unique('missing')}/backups"), BucketNotFoundError, "NoSuchBucket"),
            (at(f"s3://{bucket}/backups"), StorageRootNotFoundError, "nothing is stored under the root"),
        ]
        for location, expected, detail in cases:
            for call in (location.check_listable, BackupRepository(location).summaries):
                with pytest.raises(expected) as info:
                    call()
                assert type(info.value) is expected, str(info.value)
                text = str(info.value)
                assert detail in text and endpoint in text
                assert SECRET not in text and access["SecretAccessKey"] not in text
        # check_root asks only for the bucket: good credentials pass, wrong ones do not
        at(f"s3://{bucket}/backups").check_root()
        with pytest.raises(StorageCredentialsError):
            at(f"s3://{bucket}/backups", secret=SECRET).check_root()
    finally:
        _moto_auth(endpoint, previous)


def test_azure_wrong_account_key_is_a_credentials_error(azure_server: Azurite) -> None:
    """Azurite checks the shared key; GCS is not tested here: fake-gcs-server accepts any token."""
    location = azure_server.location(_unique(), "backups")
    wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    connection_string = location.storage_options["connection_string"]
    wrong = StorageLocation(
        location.url,
        {
            "connection_string": connection_string.replace(
                connection_string.split("AccountKey=")[1].split(";")[0], wrong_key
            )
        },
    )
    for call in (wrong.check_root, BackupRepository(wrong).summaries):
        with pytest.raises(StorageCredentialsError) as info:
            call()
        assert "127.0.0.1:" in str(info.value) and wrong_key not in str(info.value)
    missing = StorageLocation(f"az://{_unique('missing')}/backups", location.storage_options)
    with pytest.raises(BucketNotFoundError, match="container"):
        BackupRepository(missing).summaries()


# --------------------------------------------------------------------------- the backup lock
#
# The lock needs conditional writes decided by the store (storage/conditional.py). Measured on the
# emulators here: moto 5.2.5 and Azurite honour every precondition the lock uses; fake-gcs-server honours
# ifGenerationMatch on uploads but ignores it on deletes (real GCS honours it there too), so the one
# check of a conditional delete is skipped on gcs, saying why.


def _stale_lock(store: StorageLocation, name: str, lease: float = 1.0) -> None:
    """A lock of a dead writer that promised to refresh within ``lease`` seconds, left to go stale."""
    record = {"owner": "dead", "host": "elsewhere", "pid": 1, "name": name, "lease": lease}
    assert create_exclusive(store, store.join(f"{name}.lock"), json.dumps(record).encode())
    time.sleep(lease + 1.5)  # stores keep Last-Modified and Date to the second


def test_conditional_writes_are_decided_by_the_store(store: StorageLocation) -> None:
    path = store.join("x.lock")
    assert read_versioned(store, path) is None
    first = create_exclusive(store, path, b"one")
    assert first is not None
    assert create_exclusive(store, path, b"two") is None  # exists: refused
    current = read_versioned(store, path)
    assert current is not None and current.data == b"one" and current.version == first
    assert current.age is not None and 0 <= current.age < 60  # on the store's clock
    second = replace_if(store, path, b"three", first)
    assert second is not None and second != first
    assert replace_if(store, path, b"late", first) is None  # a delayed write at an old version
    again = read_versioned(store, path)
    assert again is not None and again.data == b"three" and again.version == second
    assert remove_if(store, path, second)
    assert read_versioned(store, path) is None


def test_conditional_delete_at_an_old_version_is_refused(backend: Backend, store: StorageLocation) -> None:
    if backend.name == "gcs":
        pytest.skip("fake-gcs-server ignores ifGenerationMatch on DELETE (real GCS honours it)")
    path = store.join("x.lock")
    first = create_exclusive(store, path, b"one")
    assert first is not None
    assert replace_if(store, path, b"two", first) is not None
    assert not remove_if(store, path, first)
    current = read_versioned(store, path)
    assert current is not None and current.data == b"two"


def test_lock_second_writer_refused_stale_lock_taken_over(store: StorageLocation) -> None:
    with BackupLock(store, "nightly", stale_after=60) as lock:
        with pytest.raises(BackupLockedError, match="'nightly' is being written by"):
            BackupLock(store, "nightly", stale_after=60).acquire()
        lock.ensure_held()
    assert BackupLock(store, "nightly").read() is None  # released: nothing left behind

    _stale_lock(store, "nightly")
    with BackupLock(store, "nightly", stale_after=60) as lock:
        assert lock.read()["owner"] == lock.owner  # type: ignore[index]


def test_lock_recognises_its_own_token(store: StorageLocation) -> None:
    lock = BackupLock(store, "mine", stale_after=60)
    record = {"owner": lock.owner, "host": "h", "pid": 1, "name": "mine", "lease": 60}
    assert create_exclusive(store, lock.path, json.dumps(record).encode())  # our create that "failed"
    lock.acquire()
    try:
        lock.ensure_held()
    finally:
        lock.release()
    assert lock.read() is None


def test_lock_taken_over_from_a_stalled_writer_fences_it(store: StorageLocation) -> None:
    stalled = BackupLock(store, "nightly", stale_after=1.0)
    stalled.acquire()
    stalled._stop.set()  # it stalls: no more refreshes
    assert stalled._thread is not None
    stalled._thread.join()
    time.sleep(2.5)
    try:
        with BackupLock(store, "nightly", stale_after=60) as survivor:
            with pytest.raises(LockLostError, match=f"lock token {survivor.owner[:8]}"):
                stalled.ensure_held()
            assert not stalled._refresh()  # its delayed refresh cannot overwrite the survivor's lock
            assert survivor.read()["owner"] == survivor.owner  # type: ignore[index]
            survivor.ensure_held()
    finally:
        stalled.release()
    assert BackupLock(store, "nightly").read() is None


def _break_lock(url: str, options: dict[str, Any], barrier: Any, results: Any) -> None:
    """One of several processes breaking the same stale lock at once (top level: spawned)."""
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    os.environ["FETCH_RAW_TOKEN_EXPIRY"] = "false"
    lock = BackupLock(StorageLocation(url, options), "race", stale_after=60)
    barrier.wait()
    try:
        lock.acquire()
        results.put("won")  # exits holding it: the lock stays, fresh, for the others to see
    except BackupLockedError:
        results.put("refused")
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    results.close()
    results.join_thread()
    os._exit(0)


def test_two_processes_breaking_one_stale_lock_exactly_one_wins(
    backend: Backend, store: StorageLocation
) -> None:
    _stale_lock(store, "race")
    if backend.name == "memory":  # one process's store: the racers are threads
        barrier, won = threading.Barrier(3), []

        def attempt() -> None:
            lock = BackupLock(store, "race", stale_after=60)
            barrier.wait()
            with contextlib.suppress(BackupLockedError):
                lock.acquire()
                won.append("won")

        threads = [threading.Thread(target=attempt) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert won == ["won"]
        return
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    options = dict(store.storage_options)
    workers = [ctx.Process(target=_break_lock, args=(store.url, options, barrier, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    outcomes = sorted(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
    assert outcomes == ["refused", "refused", "won"]
    record = BackupLock(store, "race").read()
    assert record is not None and record["owner"] != "dead"
