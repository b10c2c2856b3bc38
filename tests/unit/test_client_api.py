"""The pymilvus-shaped ``BackupClient``: keyword construction, restore keywords, keyword-only progress,
``close()``/``with``, every invalid value refused when given (listing the valid choices), ``plan_backup``
and ``list_unfinished``. No Milvus server: the cluster is a stub that answers what a dry run asks, or one
that fails the test if anything connects."""

from __future__ import annotations

import datetime as dt
import inspect
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import attrs
import pytest

from manifests import backup, collection, partition, segment
from milvus_backup_lib import (
    BackupClient,
    BackupExistsError,
    BackupPlan,
    BackupStrategy,
    ClusterSnapshot,
    CollectionFilter,
    InvalidNameError,
    InvalidOptionError,
    InvalidOptionTypeError,
    MilvusConnection,
    Progress,
    RestoreOptions,
    RestorePlanError,
    StorageLocation,
    UnfinishedList,
    UsageError,
)
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.repository.store import LibraryMeta
from milvus_backup_lib.repository.unfinished import format_age, modified_at
from milvus_backup_lib.storage.layout import binlog_files

SECRET = "s3cr3t-t0ken-value"


def memory_url(what: str) -> str:
    return f"memory://{what}-{uuid.uuid4().hex[:8]}"


@contextmanager
def no_cluster(connection: MilvusConnection) -> Iterator[MilvusCluster]:
    raise AssertionError("nothing may connect to Milvus here")
    yield  # pragma: no cover


class StubCluster:
    """Answers what reading a restore's target state and its preflight ask: an empty 2.4 server."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def server_version(self) -> str:
        return "v2.4.0"

    def list_databases(self) -> list[str]:
        return ["default"]

    def list_collections(self, db: str) -> list[str]:
        return []

    def list_aliases(self, db: str, name: str) -> list[str]:
        return []

    def describe_indexes(self, db: str, name: str) -> list[Any]:
        return []

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a dry run or a plan must not call {name}")


def stub_factory(cluster: StubCluster) -> Any:
    @contextmanager
    def factory(connection: MilvusConnection) -> Iterator[MilvusCluster]:
        cluster.calls.append("open")
        yield cast(MilvusCluster, cluster)

    return factory


def one_collection(name: str = "bk1") -> BackupInfo:
    return backup(
        collection("coll", partition(11, segment(21, 11, 100), segment(22, 11, 50, deletes=3))),
        name=name,
    )


def client_with_backup(factory: Any = no_cluster, **kwargs: Any) -> BackupClient:
    """A client whose backup root (in memory) holds backup ``bk1`` of ``default.coll``."""
    client = BackupClient(  # the record form, which every version takes
        MilvusConnection(uri="http://127.0.0.1:1"),
        StorageLocation(memory_url("milvus")),
        StorageLocation(memory_url("backups")),
        milvus_factory=factory,
        **kwargs,
    )
    client.repository.write_manifest(one_collection(), LibraryMeta())
    return client


# --------------------------------------------------------------------------- construction


def test_keyword_shortcut_builds_the_connection_and_storage_from_strings() -> None:
    client = BackupClient(
        uri="http://milvus.example.com:19530",
        token=SECRET,
        milvus_storage="memory://cluster/files",
        backup_storage="memory://backups",
    )
    assert client.milvus == MilvusConnection(uri="http://milvus.example.com:19530", token=SECRET)
    assert client.milvus_storage == StorageLocation("memory://cluster/files")
    assert client.backup_storage == StorageLocation("memory://backups")
    assert SECRET not in repr(client)

    with_user = BackupClient(
        uri="https://h:19530",
        user="root",
        password=SECRET,
        management_url="http://h:9091",
        timeout=5.0,
        milvus_storage="memory://a",
        backup_storage="memory://b",
    )
    assert with_user.milvus == MilvusConnection(
        uri="https://h:19530", user="root", password=SECRET, management_url="http://h:9091", timeout=5.0
    )
    # no connection at all: MilvusConnection's defaults, as MilvusClient() connects to localhost
    assert BackupClient(milvus_storage="memory://a", backup_storage="memory://b").milvus == MilvusConnection()


def test_uri_first_and_paths_for_storage(tmp_path: Path) -> None:
    client = BackupClient("http://h:19530", tmp_path / "data", str(tmp_path / "backups"))
    assert client.milvus == MilvusConnection(uri="http://h:19530")
    assert client.milvus_storage.is_local and client.milvus_storage.root == str(tmp_path / "data")
    assert client.backup_storage.root == str(tmp_path / "backups")


def test_the_record_form_and_every_existing_keyword_still_work() -> None:
    conn = MilvusConnection(uri="http://h:19530", user="u", password=SECRET)
    source, target = StorageLocation("memory://s"), StorageLocation("memory://t")
    client = BackupClient(
        conn,
        source,
        target,
        milvus_factory=no_cluster,
        pause_gc=False,
        gc_pause_seconds=60,
        flush_timeout=30.0,
        lock_stale_after=10,
    )
    assert client.milvus is conn and client.milvus_storage is source and client.backup_storage is target
    assert (client.pause_gc, client.gc_pause_seconds, client.lock_stale_after) == (False, 60, 10.0)
    named = BackupClient(milvus=conn, milvus_storage=source, backup_storage=target)
    assert named.milvus is conn and named.repository.location is target


@pytest.mark.parametrize(
    "keywords", [{"uri": "http://other:19530"}, {"token": SECRET}, {"user": "root", "password": SECRET}]
)
def test_a_connection_and_shortcut_keywords_together_are_refused(keywords: dict[str, str]) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        BackupClient(MilvusConnection(), "memory://a", "memory://b", **keywords)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "either milvus=MilvusConnection(...) or the keywords uri=, token=" in message
    assert SECRET not in message and "http://other" not in message
    with pytest.raises(InvalidOptionError, match="either first or as uri="):
        BackupClient("http://h:1", "memory://a", "memory://b", uri="http://h:2")


@pytest.mark.parametrize(
    ("kwargs", "option", "choices"),
    [
        ({"milvus_storage": "  "}, "milvus_storage", "a storage URL such as 'file:///srv/backups'"),
        ({"milvus_storage": 5}, "milvus_storage", "a storage URL such as 'file:///srv/backups'"),
        ({"backup_storage": 5}, "backup_storage", "or a StorageLocation"),
        ({"backup_storage": "  "}, "backup_storage", "a storage URL"),
        ({"milvus": 5}, "milvus", "a MilvusConnection, a URI string"),
        ({"uri": 5}, "uri", "a non-empty string"),
        ({"uri": ""}, "uri", "a non-empty string"),
        ({"token": 5}, "token", "a string"),
        ({"timeout": 0}, "timeout", "seconds > 0"),
        ({"pause_gc": "yes"}, "pause_gc", "True, False"),
        ({"gc_pause_seconds": 0}, "gc_pause_seconds", "a whole number of seconds > 0"),
        ({"gc_pause_seconds": 1.5}, "gc_pause_seconds", "a whole number of seconds > 0"),
        ({"flush_timeout": -1}, "flush_timeout", "a finite number of seconds > 0"),
        ({"lock_stale_after": math.nan}, "lock_stale_after", "a finite number of seconds > 0"),
    ],
)
def test_invalid_values_fail_at_construction_listing_the_choices(
    kwargs: dict[str, Any], option: str, choices: str
) -> None:
    arguments = {"milvus_storage": "memory://a", "backup_storage": "memory://b", **kwargs}
    with pytest.raises(InvalidOptionError) as caught:
        BackupClient(**arguments)
    assert caught.value.option == option
    assert choices in str(caught.value) and "; choose " in str(caught.value)


def test_a_wrong_type_is_also_a_type_error() -> None:
    with pytest.raises(TypeError) as caught:
        BackupClient(milvus_storage=5, backup_storage="memory://b")  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidOptionTypeError)


# --------------------------------------------------------------------------- close and with


def test_with_closes_the_client_and_a_closed_client_refuses_every_call() -> None:
    with client_with_backup() as client:
        assert not client.closed
        assert [s.name for s in client.list_backups()] == ["bk1"]
    assert client.closed and "closed" in repr(client)
    client.close()  # again: nothing happens
    calls = [
        lambda: client.list_backups(),
        lambda: client.list_unfinished(),
        lambda: client.get_backup("bk1"),
        lambda: client.verify_backup("bk1"),
        lambda: client.delete_backup("bk1"),
        lambda: client.create_backup("x"),
        lambda: client.plan_backup("x"),
        lambda: client.restore("bk1", suffix="_r"),
        lambda: client.plan_restore("bk1"),
        lambda: client.restore_rbac("bk1"),
    ]
    for call in calls:
        with pytest.raises(UsageError, match="this BackupClient is closed"):
            call()
    with pytest.raises(UsageError), client:
        pass


def test_close_without_with() -> None:
    client = client_with_backup()
    client.close()
    with pytest.raises(UsageError):
        client.get_backup("bk1")


# --------------------------------------------------------------------------- restore keywords


def test_restore_takes_the_options_as_keywords() -> None:
    cluster = StubCluster()
    client = client_with_backup(stub_factory(cluster))
    report = client.restore("bk1", suffix="_bak", dry_run=True, check_backup="none", load=False)
    assert report.dry_run
    (coll,) = report.plan.collections
    assert coll.target == QualifiedName("default", "coll_bak")
    assert report.plan.options == RestoreOptions(suffix="_bak", dry_run=True, check_backup="none", load=False)
    plan = client.plan_restore("bk1", rename={"coll": "db2.other"})
    assert plan.collections[0].target == QualifiedName("db2", "other")
    assert cluster.calls == ["open", "open"]


def test_restore_still_takes_a_record() -> None:
    client = client_with_backup(stub_factory(StubCluster()))
    report = client.restore("bk1", RestoreOptions(suffix="_x", dry_run=True, check_backup="none"))
    assert report.plan.collections[0].target == QualifiedName("default", "coll_x")
    assert client.restore("bk1", options=RestoreOptions(dry_run=True, check_backup="none")).dry_run


@pytest.mark.parametrize(
    ("call", "option", "choices"),
    [
        (lambda c: c.restore("bk1", RestoreOptions(), suffix="_x"), "options", "not both"),
        (lambda c: c.plan_restore("bk1", RestoreOptions(), suffix="_x"), "options", "not both"),
        (lambda c: c.restore("bk1", sufix="_x"), "sufix", "suffix, rename"),
        (lambda c: c.restore("bk1", drop_existing=True, skip_create=True), "skip_create", "not both"),
        (lambda c: c.restore("bk1", load="yes"), "load", "True, False, None"),
        (lambda c: c.restore("bk1", check_backup="full"), "check_backup", "none, exists, size, checksum"),
        (lambda c: c.restore("bk1", options={"suffix": "_x"}), "options", "a RestoreOptions"),
        (lambda c: c.restore("bk1", progress=object()), "progress", "a Progress"),
        (lambda c: c.create_backup("x", strategy="bulk_flush"), "strategy", "serial_flush, skip_flush"),
        (lambda c: c.create_backup("x", collections=5), "collections", "a comma-separated string"),
        (lambda c: c.create_backup("x", collections=["c1", 2]), "collections", "an iterable of strings"),
        (lambda c: c.create_backup("x", resume="yes"), "resume", "True, False"),
        (lambda c: c.create_backup("x", progress=True), "progress", "a Progress"),
        (lambda c: c.plan_backup("x", strategy="full"), "strategy", "meta_only"),
        (lambda c: c.verify_backup("bk1", level="full"), "level", "exists, size, checksum"),
        (lambda c: c.verify_backup("bk1", level=3), "level", "exists, size, checksum"),
    ],
)
def test_invalid_call_values_are_refused_before_anything_is_read(
    call: Any, option: str, choices: str
) -> None:
    # The factory fails the test if anything connects; nothing needs to be read to refuse these.
    client = client_with_backup()
    with pytest.raises(InvalidOptionError) as caught:
        call(client)
    assert caught.value.option == option
    assert choices in str(caught.value)


def test_progress_is_keyword_only_everywhere() -> None:
    for method in (BackupClient.create_backup, BackupClient.plan_backup, BackupClient.restore):
        parameter = inspect.signature(method).parameters["progress"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, method.__name__
    client = client_with_backup(stub_factory(StubCluster()))
    with pytest.raises(TypeError):
        client.restore("bk1", RestoreOptions(dry_run=True), Progress())  # type: ignore[call-arg]

    class Phases(Progress):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def phase(self, name: str, detail: str = "") -> None:
            self.seen.append(name)

    phases = Phases()
    client.restore("bk1", progress=phases, dry_run=True, check_backup="none")
    assert phases.seen == ["plan"]


# --------------------------------------------------------------------------- verbatim suffix


@pytest.mark.parametrize(
    ("suffix", "target"),
    [("_bak", "coll_bak"), ("bak", "collbak"), ("_2024_01", "coll_2024_01"), ("", "coll")],
)
def test_the_suffix_is_appended_verbatim_as_the_go_tool_does(suffix: str, target: str) -> None:
    options = RestoreOptions(suffix=suffix)
    assert options.target_name(QualifiedName("db1", "coll")) == QualifiedName("db1", target)


def test_suffix_length_and_characters() -> None:
    RestoreOptions(suffix="x" * 254)  # with a one-letter name: 255 characters, the most Milvus allows
    for bad in ("x" * 255, "-bak", "a.b", "_b k"):
        with pytest.raises(InvalidNameError, match="appended as it is"):
            RestoreOptions(suffix=bad)
    # a name that the suffix makes too long is a conflict of the plan, naming the collection
    client = client_with_backup(stub_factory(StubCluster()))
    with pytest.raises(RestorePlanError, match=r"default\.coll"):
        client.plan_restore("bk1", suffix="_" * 252)


# --------------------------------------------------------------------------- plan_backup


class RecordingSnapshotter:
    def __init__(self, info: BackupInfo) -> None:
        self.info = info
        self.strategies: list[BackupStrategy] = []

    def snapshot(
        self,
        milvus: MilvusCluster,
        selection: CollectionFilter,
        strategy: BackupStrategy,
        progress: Any = None,
    ) -> ClusterSnapshot:
        self.strategies.append(strategy)
        collections = self.info.collection_backups
        if strategy is BackupStrategy.META_ONLY:  # as the snapshotter does: no segments
            collections = tuple(
                attrs.evolve(
                    c,
                    partition_backups=tuple(attrs.evolve(p, segment_backups=()) for p in c.partition_backups),
                )
                for c in collections
            )
        return ClusterSnapshot("v2.3.5", ("default",), collections)


def test_plan_backup_counts_what_create_backup_would_copy_and_writes_nothing() -> None:
    info = backup(
        collection("a", partition(1, segment(11, 1, 10), segment(12, 1, 5, deletes=2)), collection_id=1),
        collection("b", partition(2, segment(21, 2, 7)), collection_id=2, db_name="db2"),
    )
    snapshotter = RecordingSnapshotter(info)
    client = client_with_backup(stub_factory(StubCluster()), snapshotter=snapshotter)
    fs, root = client.backup_storage.fs, client.backup_storage.root
    before = sorted(fs.find(root))

    plan = client.plan_backup("next", ["a", "db2.*"])

    assert isinstance(plan, BackupPlan) and plan.name == "next"
    assert snapshotter.strategies == [BackupStrategy.SKIP_FLUSH]  # no flush
    files = list(binlog_files(info))
    assert (plan.files, plan.bytes) == (len(files), sum(f.size for f in files))
    assert [(c.name, c.segments, c.rows) for c in plan.collections] == [("default.a", 2, 15), ("db2.b", 1, 7)]
    assert plan.collections[0].files == len(list(binlog_files(info.collection_backups[0])))
    assert plan.segments == 3 and plan.rows == 22
    assert "flushes each collection first" in plan.note
    assert sorted(fs.find(root)) == before  # nothing written, not even a lock
    table = plan.table()
    assert "default.a" in table and "db2.b" in table and f"{plan.bytes:,}" in table
    assert "<table" in plan._repr_html_() and "nothing was flushed, copied or written" in plan._repr_html_()
    assert str(plan) == table


def test_plan_backup_refuses_what_create_backup_refuses() -> None:
    client = client_with_backup(
        stub_factory(StubCluster()), snapshotter=RecordingSnapshotter(one_collection())
    )
    with pytest.raises(BackupExistsError):
        client.plan_backup("bk1")
    with pytest.raises(InvalidNameError):
        client.plan_backup("not-a-name")
    meta = client.plan_backup(strategy="meta_only")
    assert meta.name.startswith("backup_") and "no binlogs" in meta.note
    assert (meta.files, meta.bytes, meta.segments) == (0, 0, 0) and meta.collections[0].name == "default.coll"
    assert client.snapshotter.strategies[-1] is BackupStrategy.META_ONLY  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- unfinished backups


def write_unfinished(location: StorageLocation, name: str, sizes: dict[str, int]) -> None:
    for key, size in sizes.items():
        location.write_bytes(location.join(name, key), b"x" * size)


@pytest.mark.parametrize("where", ["memory", "local"])
def test_list_unfinished_shows_interrupted_backups_with_size_and_age(where: str, tmp_path: Path) -> None:
    backups = memory_url("backups") if where == "memory" else tmp_path.as_uri()
    client = BackupClient(MilvusConnection(), StorageLocation("memory://m"), StorageLocation(backups))
    client.repository.write_manifest(one_collection("complete"), LibraryMeta())
    location = client.backup_storage
    write_unfinished(
        location, "crashed", {"binlogs/insert_log/1/2/3/3/100/1": 100, "binlogs/delta_log/1/2/3/3/9": 28}
    )
    write_unfinished(location, "writing", {"binlogs/insert_log/1/2/3/3/100/1": 5})
    location.write_bytes(location.join("writing.lock"), b"{}")
    if where == "local":
        (tmp_path / "empty").mkdir()  # a directory with no objects is nothing

    unfinished = client.list_unfinished()

    assert isinstance(unfinished, UnfinishedList)
    assert [(u.name, u.size, u.files, u.locked) for u in unfinished] == [
        ("crashed", 128, 2, False),
        ("writing", 5, 1, True),
    ]
    now = dt.datetime.now(dt.timezone.utc)
    for u in unfinished:
        assert u.last_modified is not None and u.age is not None
        assert now - dt.timedelta(minutes=5) < u.last_modified <= now
        assert dt.timedelta(0) <= u.age < dt.timedelta(minutes=5)
    assert [s.name for s in client.list_backups()] == ["complete"]
    assert "crashed" in unfinished.table() and "2 unfinished backup(s)" in unfinished.table()
    assert "<table" in unfinished._repr_html_()
    client.delete_backup("crashed")
    assert [u.name for u in client.list_unfinished()] == ["writing"]


def test_modification_times_of_each_store() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert modified_at({"mtime": when.timestamp()}) == when  # local disk
    assert modified_at({"LastModified": when}) == when  # S3
    assert modified_at({"last_modified": when.replace(tzinfo=None)}) == when  # Azure (naive: UTC)
    assert modified_at({"updated": "2026-01-02T03:04:05Z"}) == when  # GCS, raw
    assert modified_at({"size": 3}) is None
    assert [format_age(dt.timedelta(seconds=s)) for s in (5, 125, 7300, 200000)] == [
        "5 s",
        "2 min",
        "2 h",
        "2 d",
    ]
    assert format_age(None) == ""
