"""The embedded Milvus servers the integration tests run against, and the process helper under them."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest
from pymilvus import MilvusClient

from milvus_backup_lib.testing import _process
from milvus_backup_lib.testing._process import ManagedProcess, free_ports
from milvus_backup_lib.testing.embedded import EmbeddedMilvus, EmbeddedMilvusError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.fixture
def client(milvus_server: EmbeddedMilvus) -> Iterator[MilvusClient]:
    client = MilvusClient(milvus_server.uri)
    yield client
    client.close()


def test_server_answers_as_milvus_2_3_5(milvus_server: EmbeddedMilvus, client: MilvusClient) -> None:
    assert client.get_server_version().startswith("v2.3.5")
    with urllib.request.urlopen(f"{milvus_server.management_url}/healthz", timeout=10) as response:
        assert response.status == 200
        assert b"OK" in response.read()
    assert milvus_server.running
    assert milvus_server.data_dir == milvus_server.base_dir / "data"
    assert milvus_server.storage_url == milvus_server.data_dir.as_uri()


def test_binlogs_land_in_data_dir(
    milvus_server: EmbeddedMilvus, client: MilvusClient, unique_name: str
) -> None:
    client.create_collection(unique_name, dimension=4)
    try:
        client.insert(unique_name, [{"id": i, "vector": [float(i)] * 4} for i in range(10)])
        client.flush(unique_name)
        collection_id = client.describe_collection(unique_name)["collection_id"]
        assert list((milvus_server.data_dir / "insert_log" / str(collection_id)).rglob("*"))
    finally:
        client.drop_collection(unique_name)


def test_two_servers_are_independent(
    milvus_server: EmbeddedMilvus, second_milvus_server: EmbeddedMilvus, unique_name: str
) -> None:
    assert milvus_server.port != second_milvus_server.port
    assert milvus_server.management_url != second_milvus_server.management_url
    assert milvus_server.base_dir != second_milvus_server.base_dir
    source = MilvusClient(milvus_server.uri)
    target = MilvusClient(second_milvus_server.uri)
    try:
        assert target.get_server_version().startswith("v2.3.5")
        source.create_collection(unique_name, dimension=4)
        assert source.has_collection(unique_name)
        assert not target.has_collection(unique_name)
        source.drop_collection(unique_name)
    finally:
        source.close()
        target.close()


def test_stop_leaves_no_process_and_removes_its_temporary_dir() -> None:
    server = EmbeddedMilvus()
    with server:
        assert server.running
        process = server._process
        base_dir = server.base_dir
        assert process is not None
        assert (base_dir / "configs" / "milvus.yaml").is_file()
    assert not server.running
    assert process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    assert not base_dir.exists()
    with pytest.raises(EmbeddedMilvusError, match="not running"):
        _ = server.uri


def test_restart_on_the_same_dir_is_quick_and_keeps_the_data(tmp_path: Path) -> None:
    server = EmbeddedMilvus(tmp_path / "milvus")
    with server:
        client = MilvusClient(server.uri)
        client.create_collection("kept", dimension=4)
        client.insert("kept", [{"id": i, "vector": [0.5] * 4} for i in range(20)])
        client.flush("kept")
        client.insert("kept", [{"id": 100 + i, "vector": [0.5] * 4} for i in range(5)])  # not flushed
        client.close()
    started = time.monotonic()
    with server:
        # Without the session cleanup in stop() this takes ~55 s (old etcd sessions must expire).
        assert time.monotonic() - started < 30
        client = MilvusClient(server.uri)
        client.load_collection("kept")
        rows = client.query("kept", filter="", output_fields=["count(*)"], consistency_level="Strong")
        assert rows[0]["count(*)"] == 25
        client.close()


def test_unknown_config_key_is_refused_before_starting() -> None:
    server = EmbeddedMilvus(extra_config={"common.storagetype": "minio"})
    with pytest.raises(ValueError, match=r"common\.storagetype"):
        server.start()
    assert not server.running


# The process helper shared with tests/emulators.py, on small shell and Python processes.


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    process = ManagedProcess(
        "sleepers", ["sh", "-c", "sleep 60 & sleep 60"], cwd=tmp_path, stdout_log=tmp_path / "out.log"
    )
    assert process.poll() is None
    process.stop(timeout=5)
    assert process.returncode is not None
    assert _group_gone(process.pid)
    process.stop()  # a second call does nothing


def test_a_process_that_exits_while_starting_names_its_log(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    process = ManagedProcess(
        "failing", ["sh", "-c", "echo boom >&2; exit 3"], cwd=tmp_path, stdout_log=log, error=ValueError
    )
    try:
        with pytest.raises(
            ValueError, match=r"(?s)failing exited with code 3 while starting.*out\.log.*boom"
        ):
            process.wait_until(lambda: False, timeout=30, what="never", interval=0.05)
    finally:
        process.stop()


def test_a_silent_process_times_out_and_appended_logs_keep_each_run(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_text("earlier run\n")
    command = [sys.executable, "-c", "import time; print('waiting', flush=True); time.sleep(60)"]
    process = ManagedProcess(
        "silent", command, cwd=tmp_path, stdout_log=log, append=True, header="-- run 2\n"
    )
    try:
        with pytest.raises(RuntimeError, match=r"silent did not answer port 1 within 0\.3 s"):
            process.wait_until(lambda: False, timeout=0.3, what="port 1", interval=0.05)
    finally:
        process.stop(timeout=5)
    assert log.read_text().startswith("earlier run\n-- run 2\n")


def test_processes_forgotten_at_exit_are_stopped(tmp_path: Path) -> None:
    process = ManagedProcess("forgotten", ["sleep", "60"], cwd=tmp_path, stdout_log=tmp_path / "out.log")
    # Registered for the exit hook; the hook itself would also stop the session's shared servers, so
    # the test stops only its own process the way the hook does.
    assert process in _process._RUNNING
    _process.stop_all([process])
    assert _group_gone(process.pid)


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
