"""The fault-injecting filesystem wrapper (tests/faulty_fs.py), and the copier and repository over it."""

from __future__ import annotations

import errno
import io
import random
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from faulty_fs import FaultEvent, FaultRule, FaultyFileSystem, faulty_location, s3_error
from manifests import backup, collection, partition, segment
from milvus_backup_lib.backup.copier import CopyJob, FsspecCopier
from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.manifest.codec import BACKUP_META, COLLECTION_META, FULL_META
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.retry import call_with_retries, is_transient, set_testing
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh root in the process-wide memory filesystem, removed afterwards."""
    root = f"memory://faulty-{uuid.uuid4().hex}"
    yield root
    plain = StorageLocation(root)
    if plain.fs.exists(plain.root):
        plain.fs.rm(plain.root, recursive=True)


def make(url: str, *rules: FaultRule) -> tuple[StorageLocation, FaultyFileSystem]:
    location = faulty_location(url, rules)
    fs = location.fs
    assert isinstance(fs, FaultyFileSystem)
    return location, fs


def attempt(call: Callable[[], Any]) -> str:
    """``"ok"`` or the name of the exception ``call`` raised."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


# --------------------------------------------------------------------------- how often


def test_every_call_fails(url: str) -> None:
    location, fs = make(url, FaultRule("cat_file", PermissionError))
    path = location.join("a")
    fs.pipe_file(path, b"x")
    assert [attempt(lambda: fs.cat_file(path)) for _ in range(3)] == ["PermissionError"] * 3
    assert fs.injected == 3
    assert fs.events == [FaultEvent("cat_file", path, PermissionError)] * 3


def test_the_first_n_calls_fail(url: str) -> None:
    rule = FaultRule("cat_file", ConnectionResetError, times=2)
    location, fs = make(url, rule)
    path = location.join("a")
    fs.pipe_file(path, b"x")
    outcomes = [attempt(lambda: fs.cat_file(path)) for _ in range(4)]
    assert outcomes == ["ConnectionResetError", "ConnectionResetError", "ok", "ok"]
    assert (rule.calls, rule.injected, fs.injected) == (4, 2, 2)


def test_calls_after_the_first_k(url: str) -> None:
    location, fs = make(url, FaultRule("cat_file", TimeoutError, after=1, times=1))
    path = location.join("a")
    fs.pipe_file(path, b"x")
    assert [attempt(lambda: fs.cat_file(path)) for _ in range(3)] == ["ok", "TimeoutError", "ok"]


def test_a_seeded_probability_is_reproducible(url: str) -> None:
    rule = FaultRule("cat_file", ConnectionResetError, probability=0.1, seed=1234)
    location, fs = make(url, rule)
    path = location.join("a")
    fs.pipe_file(path, b"x")
    outcomes = [attempt(lambda: fs.cat_file(path)) for _ in range(1000)]

    draws = random.Random(1234)
    expected = ["ConnectionResetError" if draws.random() < 0.1 else "ok" for _ in range(1000)]
    assert outcomes == expected
    assert 60 <= fs.injected <= 140
    assert fs.injected == outcomes.count("ConnectionResetError")


def test_rules_are_checked_in_order_and_one_call_fails_once(url: str) -> None:
    first = FaultRule("cat_file", TimeoutError, times=1)
    second = FaultRule("cat_file", PermissionError, times=1)
    location, fs = make(url, first, second)
    path = location.join("a")
    fs.pipe_file(path, b"x")
    assert [attempt(lambda: fs.cat_file(path)) for _ in range(3)] == ["TimeoutError", "PermissionError", "ok"]


# --------------------------------------------------------------------------- which calls


def test_paths_select_by_glob_and_predicate(url: str) -> None:
    location, fs = make(
        url,
        FaultRule("cat_file", PermissionError, paths="*/meta/*.json"),
        FaultRule("cat_file", TimeoutError, paths=lambda p: p.endswith("/slow")),
    )
    for key in ("meta/full_meta.json", "meta/notes.txt", "binlogs/slow", "binlogs/fast"):
        fs.pipe_file(location.join(key), b"x")
    assert attempt(lambda: fs.cat_file(location.join("meta/full_meta.json"))) == "PermissionError"
    assert attempt(lambda: fs.cat_file(location.join("meta/notes.txt"))) == "ok"
    assert attempt(lambda: fs.cat_file(location.join("binlogs/slow"))) == "TimeoutError"
    assert attempt(lambda: fs.cat_file(location.join("binlogs/fast"))) == "ok"


def test_paths_match_after_normalization(url: str) -> None:
    plain = StorageLocation(url)
    location, fs = make(url, FaultRule("cat_file", PermissionError, paths=f"{plain.root}/*"))
    fs.fs.pipe_file(location.join("a"), b"x")
    # With or without the scheme, the memory filesystem's path is "/faulty-.../a".
    assert attempt(lambda: fs.cat_file(f"{url}/a")) == "PermissionError"
    assert attempt(lambda: fs.cat_file(location.join("a"))) == "PermissionError"
    assert [event.path for event in fs.events] == [location.join("a")] * 2


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("cat_file", lambda fs, root: fs.cat_file(f"{root}/a")),
        ("pipe_file", lambda fs, root: fs.pipe_file(f"{root}/new", b"y")),
        ("ls", lambda fs, root: fs.ls(root)),
        ("find", lambda fs, root: fs.find(root)),
        ("info", lambda fs, root: fs.info(f"{root}/a")),
        ("cp_file", lambda fs, root: fs.cp_file(f"{root}/a", f"{root}/copy")),
        ("rm", lambda fs, root: fs.rm(f"{root}/a")),
        ("makedirs", lambda fs, root: fs.makedirs(f"{root}/dir", exist_ok=True)),
        ("open", lambda fs, root: fs.open(f"{root}/a", "rb")),
        ("open:r", lambda fs, root: fs.open(f"{root}/a", "rb")),
        ("open:w", lambda fs, root: fs.open(f"{root}/new", "wb")),
        ("exists", lambda fs, root: fs.exists(f"{root}/a")),  # generic on memory: intercepted per instance
        ("rm_file", lambda fs, root: fs.rm_file(f"{root}/a")),  # generic too
    ],
)
def test_each_method_fails_alone(url: str, method: str, call: Callable[[Any, str], Any]) -> None:
    location, fs = make(url, FaultRule(method, PermissionError))
    fs.fs.pipe_file(location.join("a"), b"x")  # the wrapped filesystem: no rule applies
    with pytest.raises(PermissionError, match="injected fault"):
        call(fs, location.root)
    assert fs.injected == 1
    # Nothing else fails.
    untouched = [
        lambda: fs.fs.cat_file(location.join("a")),
        lambda: fs.isfile(location.join("a")),
        lambda: fs.size(location.join("a")),
    ]
    if method not in ("cat_file", "open", "open:r", "info", "exists"):
        assert [attempt(c) for c in untouched] == ["ok"] * 3


def test_open_for_reading_and_for_writing_are_separate(url: str) -> None:
    location, fs = make(url, FaultRule("open:r", PermissionError))
    path = location.join("a")
    with fs.open(path, "wb") as f:
        f.write(b"data")
    with pytest.raises(PermissionError):
        fs.open(path, "rb")

    location, fs = make(url, FaultRule("open:w", PermissionError))
    with fs.open(path, "rb") as f:
        assert f.read() == b"data"
    for mode in ("wb", "ab", "w"):
        with pytest.raises(PermissionError):
            fs.open(path, mode)


def test_a_read_fails_midway(url: str) -> None:
    location, fs = make(url, FaultRule("read", ConnectionResetError, after=1))
    path = location.join("a")
    fs.pipe_file(path, b"0123456789")
    with fs.open(path, "rb") as f:
        assert f.read(4) == b"0123"
        with pytest.raises(ConnectionResetError):
            f.read(4)


def test_a_failed_write_or_close_stores_nothing(url: str) -> None:
    location, fs = make(url, FaultRule("close", ConnectionResetError, paths="*/upload"))
    path = location.join("upload")
    with pytest.raises(ConnectionResetError), fs.open(path, "wb") as f:
        f.write(b"all the bytes")
    assert not fs.exists(path)
    assert f.closed

    location, fs = make(url, FaultRule("write", OSError, after=1))
    with fs.open(location.join("w"), "wb") as f:
        f.write(b"first")
        with pytest.raises(OSError, match="injected"):
            f.write(b"second")


def test_star_matches_every_delegated_method(url: str) -> None:
    location, fs = make(url, FaultRule("*", TimeoutError, paths="*/bad*"))
    fs.fs.pipe_file(location.join("bad"), b"x")
    fs.pipe_file(location.join("good"), b"x")
    for call in (
        lambda: fs.cat_file(location.join("bad")),
        lambda: fs.info(location.join("bad")),
        lambda: fs.open(location.join("bad")),
        lambda: fs.pipe_file(location.join("bad2"), b"y"),
    ):
        assert attempt(call) == "TimeoutError"
    assert fs.cat_file(location.join("good")) == b"x"


def test_a_rule_for_a_method_that_does_not_exist_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="no method 'cat_fle'"):
        make(url, FaultRule("cat_fle", PermissionError))


# --------------------------------------------------------------------------- what is raised


def test_error_classes_instances_and_factories(url: str) -> None:
    instance = PermissionError(errno.EACCES, "denied")
    location, fs = make(
        url,
        FaultRule("cat_file", instance, paths="*/a"),
        FaultRule(
            "cat_file", lambda method, path: FileNotFoundError(errno.ENOENT, method, path), paths="*/b"
        ),
    )
    raised = []
    for _ in range(2):
        with pytest.raises(PermissionError) as info:
            fs.cat_file(location.join("a"))
        raised.append(info.value)
    assert raised[0] is not raised[1]  # a copy each time: tracebacks do not pile up
    assert raised[0].errno == errno.EACCES
    with pytest.raises(FileNotFoundError) as missing:
        fs.cat_file(location.join("b"))
    assert (missing.value.strerror, missing.value.filename) == ("cat_file", location.join("b"))


def test_s3_errors_look_like_what_s3fs_raises(url: str) -> None:
    pytest.importorskip("botocore")
    location, fs = make(
        url,
        FaultRule("cat_file", s3_error("SlowDown", 503), paths="*/slow"),
        FaultRule("cat_file", s3_error("NoSuchKey", 404), paths="*/gone"),
        FaultRule("cat_file", s3_error("AccessDenied", 403), paths="*/denied"),
    )
    with pytest.raises(OSError, match="SlowDown") as slow:
        fs.cat_file(location.join("slow"))
    assert type(slow.value.__cause__).__name__ == "ClientError"
    assert is_transient(slow.value)
    with pytest.raises(FileNotFoundError) as gone:
        fs.cat_file(location.join("gone"))
    assert not is_transient(gone.value)
    with pytest.raises(PermissionError) as denied:
        fs.cat_file(location.join("denied"))
    assert not is_transient(denied.value)


# --------------------------------------------------------------------------- otherwise the same


def test_the_wrapper_looks_like_the_wrapped_class(url: str) -> None:
    location, fs = make(url)
    plain = StorageLocation(url)
    assert isinstance(fs, MemoryFileSystem) is False  # a wrapper, not a subclass...
    cls = type(fs)
    # ...with the wrapped class's class-level behaviour.
    assert (cls.protocol, cls.root_marker, cls.sep, cls.async_impl) == ("memory", "/", "/", False)
    assert cls._strip_protocol(f"{url}/x/") == MemoryFileSystem._strip_protocol(f"{url}/x/")
    assert cls._parent(f"{url}/x/y") == MemoryFileSystem._parent(f"{url}/x/y")
    assert location.root == plain.root
    assert location.protocol == "memory"
    assert repr(location) == repr(plain)
    assert location.fs is fs  # created once
    assert fs.storage_options == plain.fs.storage_options
    assert fs.store is plain.fs.store  # attributes of the wrapped filesystem are its own


def test_without_faults_every_operation_behaves_as_the_wrapped_fs(url: str) -> None:
    location, fs = make(url)
    plain_fs = StorageLocation(url).fs
    root = location.root

    def run(f: Any, base: str) -> list[Any]:
        out: list[Any] = []
        f.makedirs(f"{base}/d/e", exist_ok=True)
        f.pipe_file(f"{base}/d/a", b"abc")
        f.pipe(f"{base}/d/e/b", b"defgh")
        with f.open(f"{base}/d/t.txt", "w") as text:
            text.write("héllo\nworld\n")
        with f.open(f"{base}/d/t.txt", "a") as text:
            text.write("more\n")
        with f.open(f"{base}/d/t.txt", "r") as text:
            out.append(text.read())
        with f.open(f"{base}/d/t.txt", "rb") as binary:
            out.append(list(binary))
        with f.open(f"{base}/d/a", "rb") as binary:
            binary.seek(1)
            out.append((binary.read(), binary.tell()))
        f.cp_file(f"{base}/d/a", f"{base}/d/a2")
        f.copy(f"{base}/d/e", f"{base}/d/e2", recursive=True)
        f.mv(f"{base}/d/a2", f"{base}/d/a3")
        out.append(f.cat_file(f"{base}/d/a", start=1, end=2))
        out.append(f.cat(f"{base}/d/a"))
        out.append(f.head(f"{base}/d/e/b", 2))
        out.append(f.tail(f"{base}/d/e/b", 2))
        out.append(f.read_bytes(f"{base}/d/e/b"))
        out.append(f.sizes([f"{base}/d/a", f"{base}/d/e/b"]))
        out.append(f.size(f"{base}/d/a"))
        out.append(f.du(f"{base}/d"))
        out.append(sorted(f.ls(f"{base}/d", detail=False)))
        out.append(sorted((e["name"], e["type"], e["size"]) for e in f.ls(f"{base}/d", detail=True)))
        out.append(f.find(f"{base}/d"))
        out.append(sorted(f.find(f"{base}/d", withdirs=True, detail=True)))
        out.append(f.glob(f"{base}/d/*"))
        out.append([(p, sorted(d), sorted(n)) for p, d, n in f.walk(f"{base}/d")])
        out.append(
            (f.exists(f"{base}/d/a"), f.exists(f"{base}/nope"), f.isdir(f"{base}/d"), f.isfile(f"{base}/d"))
        )
        out.append({k: v for k, v in f.info(f"{base}/d/a").items() if k != "created"})
        f.rm_file(f"{base}/d/a3")
        f.rm(f"{base}/d/e2", recursive=True)
        out.append(f.find(f"{base}/d"))
        out.append(attempt(lambda: f.cat_file(f"{base}/nope")))
        out.append(attempt(lambda: f.open(f"{base}/nope", "rb")))
        return out

    wrapped = run(fs, f"{root}/w")
    direct = run(plain_fs, f"{root}/p")
    assert repr(wrapped).replace(f"{root}/w", "<base>") == repr(direct).replace(f"{root}/p", "<base>")
    assert fs.injected == 0


def test_a_given_filesystem_changes_only_the_fs_of_a_location() -> None:
    given = MemoryFileSystem()
    with_fs = StorageLocation("s3://bucket/root", {"anon": True}, filesystem=given)
    without = StorageLocation("s3://bucket/root", {"anon": True})
    assert with_fs.fs is given
    assert repr(with_fs) == repr(without)
    # Credentials of a given filesystem are unknown: no server-side copy to or from another store.
    assert not with_fs.same_store(without)
    assert not without.same_store(with_fs)
    assert with_fs.same_store(StorageLocation("s3://bucket/other", {"anon": True}, filesystem=given))
    # Local and memory locations are one store whatever filesystem object they use.
    assert StorageLocation("memory://a", filesystem=given).same_store(StorageLocation("memory://b"))


# --------------------------------------------------------------------------- the copier and repository over it


def _unwrapped(location: StorageLocation) -> Any:
    fs = location.fs
    return fs.fs if isinstance(fs, FaultyFileSystem) else fs


def _binlogs(location: StorageLocation, count: int) -> list[tuple[str, bytes]]:
    files = []
    for i in range(count):
        path = location.join(f"files/insert_log/1/2/{i}/100/{i}")
        data = random.Random(i).randbytes(10 + i)
        _unwrapped(location).pipe_file(path, data)
        files.append((path, data))
    return files


def _jobs(files: list[tuple[str, bytes]], destination: StorageLocation) -> list[CopyJob]:
    return [
        CopyJob(path, destination.join(f"backup/binlogs/insert_log/{i}"), len(data))
        for i, (path, data) in enumerate(files)
    ]


@pytest.mark.parametrize("force_streaming", [False, True])
def test_a_permanent_copy_failure_names_the_file(url: str, force_streaming: bool) -> None:
    method = "open:r" if force_streaming else "cp_file"
    source, fs = make(f"{url}/src", FaultRule(method, PermissionError, paths="*/insert_log/1/2/3/100/3"))
    destination = StorageLocation(f"{url}/dst")
    jobs = _jobs(_binlogs(source, 5), destination)

    with pytest.raises(StorageError) as raised:
        FsspecCopier(concurrency=2, force_streaming=force_streaming).copy(source, destination, jobs)

    message = str(raised.value)
    assert f"memory://{source.root}/files/insert_log/1/2/3/100/3" in message
    assert "PermissionError" in message
    assert isinstance(raised.value.__cause__, PermissionError)
    assert not is_transient(raised.value)
    assert fs.injected == 1


def test_a_failed_streaming_write_leaves_no_truncated_file(url: str) -> None:
    source = StorageLocation(f"{url}/src")
    destination, _ = make(
        f"{url}/dst", FaultRule("write", ConnectionResetError, paths="*/insert_log/2", after=1)
    )
    jobs = _jobs(_binlogs(source, 3), destination)

    with pytest.raises(StorageError, match="insert_log/2") as raised:
        FsspecCopier(chunk_size=4, part_size=4, max_buffered=4, concurrency=1, force_streaming=True).copy(
            source, destination, jobs
        )

    assert not destination.fs.exists(jobs[2].destination)  # the half-written file was removed
    assert is_transient(raised.value)  # a StorageError raised from the reset: worth retrying


def test_a_failed_upload_at_close_leaves_no_file(url: str) -> None:
    source = StorageLocation(f"{url}/src")
    destination, _ = make(f"{url}/dst", FaultRule("close", TimeoutError, paths="*/insert_log/1"))
    jobs = _jobs(_binlogs(source, 2), destination)

    with pytest.raises(StorageError, match="insert_log/1"):
        FsspecCopier(concurrency=1, force_streaming=True).copy(source, destination, jobs)

    assert not destination.fs.exists(jobs[1].destination)


def test_retrying_the_copy_gets_through_transient_faults(url: str) -> None:
    # How the lead will wire it: the whole (idempotent) copy under the retry wrapper.
    source, fs = make(f"{url}/src", FaultRule("cp_file", s3_error("SlowDown", 503), times=2))
    destination = StorageLocation(f"{url}/dst")
    files = _binlogs(source, 4)
    jobs = _jobs(files, destination)

    with set_testing(True):
        result = call_with_retries(
            "copy segment binlogs", FsspecCopier(concurrency=1).copy, source, destination, jobs
        )

    assert result.files == 4
    assert fs.injected == 2
    for job, (_, data) in zip(jobs, files, strict=True):
        assert destination.fs.cat_file(job.destination) == data


def _backup(name: str) -> BackupInfo:
    return backup(collection("c<1>&", partition(2, segment(3, 2, 10, backuped=True))), name=name)


def test_the_manifest_round_trips_through_the_wrapper(url: str) -> None:
    location, fs = make(url)
    repository = BackupRepository(location)
    repository.write_manifest(_backup("b1"), LibraryMeta(strategy="skip_flush"))
    assert repository.read("b1") == _backup("b1")
    assert repository.names() == ["b1"]
    assert fs.injected == 0


@pytest.mark.parametrize("failing", [COLLECTION_META, FULL_META, BACKUP_META])
def test_a_failed_manifest_write_is_never_listed(url: str, failing: str) -> None:
    location, fs = make(url, FaultRule("pipe_file", PermissionError, paths=f"*/meta/{failing}"))
    repository = BackupRepository(location)

    with pytest.raises(StorageError, match=f"cannot write .*/b1/meta/{failing} in ") as raised:
        repository.write_manifest(_backup("b1"), LibraryMeta())

    assert failing in str(raised.value)
    assert not repository.exists("b1")
    assert repository.names() == []
    assert fs.injected == 1


def test_a_failed_manifest_read_names_the_file(url: str) -> None:
    # A one-off transient fault is absorbed by the repository's retries...
    location, fs = make(url, FaultRule("cat_file", ConnectionResetError, paths=f"*/{FULL_META}", times=1))
    repository = BackupRepository(location)
    repository.write_manifest(_backup("b1"), LibraryMeta())
    assert repository.read("b1") == _backup("b1")
    assert fs.injected == 1
    # ...a permanent one is reported, naming the file.
    location, fs = make(url, FaultRule("cat_file", PermissionError, paths=f"*/{FULL_META}"))
    repository = BackupRepository(location)
    repository.write_manifest(_backup("b2"), LibraryMeta())
    with pytest.raises(StorageError, match=f"cannot read .*/b2/meta/{FULL_META} in ") as raised:
        repository.read("b2")
    assert not is_transient(raised.value)
    assert fs.injected == 1  # not retried


def test_file_objects_support_iteration_and_io_base_calls(url: str) -> None:
    location, fs = make(url)
    fs.pipe_file(location.join("lines"), b"a\nb\n")
    with fs.open(location.join("lines"), "rb") as f:
        assert list(f) == [b"a\n", b"b\n"]
        assert f.seek(0) == 0
        buffer = bytearray(2)
        assert f.readinto(buffer) == 2
        assert bytes(buffer) == b"a\n"
    with fs.open(location.join("lines"), "r") as text:
        assert isinstance(text._file, io.TextIOBase)
        assert text.readline() == "a\n"
