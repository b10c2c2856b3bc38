"""``pause_gc="auto"`` (the default): the GC pause is tried after the selection is resolved; a server
without GC control or a management port that does not answer is a warning, recorded in the backup's
meta, and the backup goes on. ``True`` fails closed, ``False`` never tries. A source file that vanishes
mid-copy says whether GC was paused and how to pause it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from memory_data import client, populate
from test_backup_runner import HookedCopier, _compact_and_collect

from milvus_backup_lib.backup.copier import CopyJob
from milvus_backup_lib.cli.output import cli_message
from milvus_backup_lib.cli.parser import build_parser, pause_gc_choice
from milvus_backup_lib.errors import (
    CollectionNotFoundError,
    GcPauseError,
    InvalidOptionError,
    InvalidOptionTypeError,
    StorageError,
)
from milvus_backup_lib.milvus.gc import HttpGcControl
from milvus_backup_lib.milvus.grpc import management_url
from milvus_backup_lib.milvus.records import GcAnswer
from milvus_backup_lib.options import MilvusConnection
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing.memory import InMemoryMilvus

#: Nothing listens on port 1: the connection is refused at once, as for a management port not forwarded.
UNREACHABLE = "http://127.0.0.1:1"


class UnreachableManagementPort(InMemoryMilvus):
    """A 2.4 cluster whose GC control goes through the real HTTP client to a port that does not answer."""

    def __init__(self) -> None:
        super().__init__("2.4.10")
        self.http = HttpGcControl(UNREACHABLE, timeout=5.0)

    def pause_gc(self, seconds: int) -> GcAnswer:
        self.gc_pause_requests.append(seconds)
        return self.http.pause(seconds)

    def resume_gc(self) -> bool:
        return self.http.resume()


def test_auto_is_the_default() -> None:
    bk = client(InMemoryMilvus("2.4.10"))
    assert bk.pause_gc == "auto"
    assert bk._backup_runner(InMemoryMilvus("2.4.10")).pause_gc == "auto"


def test_pause_gc_values_are_checked() -> None:
    cluster = InMemoryMilvus("2.4.10")
    for value in ("auto", True, False):
        assert client(cluster, pause_gc=value).pause_gc == value
    with pytest.raises(InvalidOptionError, match=r"pause_gc='yes'.*auto, True, False"):
        client(cluster, pause_gc="yes")
    with pytest.raises(InvalidOptionTypeError, match=r"pause_gc"):
        client(cluster, pause_gc=1)


def test_auto_on_a_server_without_gc_control_warns_records_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster)
    with caplog.at_level(logging.WARNING, logger="milvus_backup_lib.milvus.gc"):
        report = bk.create_backup("no_control")
    assert not report.gc.paused and "HTTP 404" in report.gc.note
    assert any("GC not paused" in r.getMessage() and "HTTP 404" in r.getMessage() for r in caplog.records)
    meta = bk.repository.read_library_meta("no_control")
    assert meta is not None and meta.gc_paused is False and "HTTP 404" in meta.gc_note
    assert "not paused: " in report.table()


def test_auto_with_an_unreachable_management_port_warns_records_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = UnreachableManagementPort()
    populate(cluster)
    bk = client(cluster)
    with caplog.at_level(logging.WARNING, logger="milvus_backup_lib.milvus.gc"):
        report = bk.create_backup("unreachable")
    assert cluster.gc_pause_requests == [3600]
    assert not report.gc.paused and "127.0.0.1:1 did not answer" in report.gc.note
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("GC not paused" in w and "127.0.0.1:1" in w for w in warnings), warnings
    meta = bk.repository.read_library_meta("unreachable")
    assert meta is not None and meta.gc_paused is False and "did not answer" in meta.gc_note
    assert bk.verify_backup("unreachable", level="checksum").ok
    assert [b.name for b in bk.list_backups()] == ["unreachable"]


def test_true_fails_closed_on_an_unreachable_management_port() -> None:
    cluster = UnreachableManagementPort()
    populate(cluster)
    bk = client(cluster, pause_gc=True)
    with pytest.raises(
        GcPauseError, match=r"127\.0\.0\.1:1 did not answer.*management_url.*pause_gc=\"auto\""
    ):
        bk.create_backup("closed")
    assert bk.list_backups() == []
    assert not bk.backup_storage.exists(bk.repository.path("closed", "binlogs"))


def test_true_still_records_a_server_without_gc_control() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    report = client(cluster, pause_gc=True).create_backup("no_control")
    assert not report.gc.paused and "HTTP 404" in report.gc.note


def test_false_never_touches_gc() -> None:
    cluster = UnreachableManagementPort()
    populate(cluster)
    report = client(cluster, pause_gc=False).create_backup("off")
    assert cluster.gc_pause_requests == []
    assert not report.gc.paused and "pause_gc=False" in report.gc.note


@pytest.mark.parametrize("pause_gc", ["auto", True])
def test_an_unknown_collection_is_refused_before_any_gc_call(pause_gc: object) -> None:
    for cluster in (InMemoryMilvus("2.4.10"), UnreachableManagementPort()):
        populate(cluster)
        bk = client(cluster, pause_gc=pause_gc)
        with pytest.raises(CollectionNotFoundError, match="nope"):
            bk.create_backup("missing", collections=["c", "nope"])
        assert cluster.gc_pause_requests == []
        assert bk.list_backups() == []


def test_a_vanished_file_without_the_pause_says_so_and_how_to_pause() -> None:
    cluster = UnreachableManagementPort()
    populate(cluster)
    bk = client(cluster, copier=HookedCopier(_compact_and_collect(cluster)))
    with pytest.raises(StorageError) as caught:
        bk.create_backup("lost")
    message = str(caught.value)
    assert "missing source file" in message
    assert "garbage collection was not paused" in message and "127.0.0.1:1 did not answer" in message
    assert 'management_url="http://HOST:9091"' in message and "pause_gc=True" in message
    assert isinstance(caught.value.__cause__, StorageError)  # the copier's own error, kept as the cause
    shown = cli_message(message)
    assert "--set backup.gcPause.address=http://HOST:9091" in shown and "--pause_gc true" in shown
    assert bk.list_backups() == []


def test_a_vanished_file_with_gc_paused_blames_something_else() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)

    def drop_and_collect(
        source: StorageLocation, destination: StorageLocation, jobs: Sequence[CopyJob]
    ) -> None:
        for job in jobs[:1]:
            source.remove_file(job.source)  # removed behind GC's back (a person, a lifecycle rule)

    bk = client(cluster, copier=HookedCopier(drop_and_collect))
    with pytest.raises(
        StorageError, match=r"garbage collection was paused, so the file was removed by something"
    ):
        bk.create_backup("gone")


def test_other_copy_failures_are_left_as_they_are() -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster, copier=HookedCopier(fail_after=2))
    with pytest.raises(StorageError) as caught:
        bk.create_backup("broken")
    assert "garbage collection" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://milvus.example:19530", "http://milvus.example:9091"),
        ("http://milvus.example:19530", "http://milvus.example:9091"),
        ("milvus.example:19530", "http://milvus.example:9091"),
        ("https://[::1]:19530", "http://[::1]:9091"),
    ],
)
def test_the_management_url_is_plain_http_whatever_the_uri_scheme(uri: str, expected: str) -> None:
    # Milvus serves 9091 with http.Server.ListenAndServe (internal/http/server.go): no TLS there.
    assert management_url(MilvusConnection(uri=uri)) == expected
    given = MilvusConnection(uri=uri, management_url="https://proxy.example/milvus-mgmt")
    assert management_url(given) == "https://proxy.example/milvus-mgmt"


def test_the_cli_flag() -> None:
    parser = build_parser()
    assert parser.parse_args(["create", "-n", "x"]).pause_gc is None
    assert parser.parse_args(["create", "-n", "x", "--pause_gc", "true"]).pause_gc == "true"
    assert parser.parse_args(["create", "-n", "x", "--pause-gc", "false"]).pause_gc == "false"
    assert pause_gc_choice(None, "auto") == "auto" and pause_gc_choice(None, False) is False
    assert pause_gc_choice("true", "auto") is True and pause_gc_choice("false", "auto") is False
    assert pause_gc_choice("auto", False) == "auto"


def test_the_go_config_enable_true_is_auto() -> None:
    from milvus_backup_lib.backup_yaml import from_milvus_backup_config

    v1 = {"minio": {"storageType": "local", "rootPath": "/srv/milvus"}}
    enabled = {**v1, "backup": {"gcPause": {"enable": True}}}
    assert from_milvus_backup_config(enabled, env={}).pause_gc == "auto"
