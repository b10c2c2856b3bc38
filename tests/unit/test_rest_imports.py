"""The REST import-job client (Milvus 2.4+ ``ImportV2``) against a local HTTP server answering as Milvus's
proxy does (``internal/distributed/proxy/httpserver/handler_v2.go``: ``createImportJob`` answers
``{"code": 0, "data": {"jobId": "..."}}``, ``getImportJobProcess`` the job's ``state``, ``importedRows``
and ``reason``; errors are ``{"code": <non-zero>, "message": ...}`` with HTTP 200)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from milvus_backup_lib import MilvusConnection
from milvus_backup_lib.errors import MilvusConnectionError, MilvusOperationError
from milvus_backup_lib.milvus.rest_import import RestImports
from milvus_backup_lib.testing._process import free_ports

SECRET = "imp0rt-s3cr3t"


@pytest.fixture
def proxy() -> Iterator[tuple[list[tuple[str, dict[str, str], Any]], dict[str, Any], int]]:
    asked: list[tuple[str, dict[str, str], Any]] = []
    answers: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            asked.append((self.path, dict(self.headers), payload))
            raw = json.dumps(answers.get(self.path, {"code": 0, "data": {}})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield asked, answers, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_multi_segment_job_is_sent_as_milvus_reads_it_and_polled(
    proxy: tuple[list[Any], dict[str, Any], int],
) -> None:
    asked, answers, port = proxy
    answers["/v2/vectordb/jobs/import/create"] = {"code": 0, "data": {"jobId": "448707763884413158"}}
    answers["/v2/vectordb/jobs/import/get_progress"] = {
        "code": 0,
        "data": {"jobId": "448707763884413158", "state": "Completed", "progress": 100, "importedRows": 1500},
    }
    rest = RestImports.for_connection(
        MilvusConnection(uri=f"http://127.0.0.1:{port}", user="root", password=SECRET)
    )
    groups = [["backup/b/insert_log/1/2/3/", "backup/b/delta_log/1/2/3/"], ["backup/b/insert_log/1/2/4/"]]
    job = rest.create("db1", "c1", "_default", groups, {"backup": "true", "storage_version": "2"})
    assert job == 448707763884413158
    state = rest.progress("db1", job)
    assert (state.state, state.row_count, state.task_id) == ("Completed", 1500, job)

    (path, headers, body), (path2, _, body2) = asked
    assert path == "/v2/vectordb/jobs/import/create"
    assert body == {
        "dbName": "db1",
        "collectionName": "c1",
        "partitionName": "_default",
        "files": groups,
        "options": {"backup": "true", "storage_version": "2"},
    }
    assert headers["Authorization"] == f"Bearer root:{SECRET}"
    assert path2 == "/v2/vectordb/jobs/import/get_progress" and body2 == {"dbName": "db1", "jobId": str(job)}
    assert SECRET not in repr(rest)


def test_an_error_code_is_an_operation_error_naming_milvus_s_message(
    proxy: tuple[list[Any], dict[str, Any], int],
) -> None:
    _, answers, port = proxy
    answers["/v2/vectordb/jobs/import/create"] = {"code": 1100, "message": "partition not specified"}
    rest = RestImports(f"http://127.0.0.1:{port}", None)
    with pytest.raises(MilvusOperationError, match="code 1100: partition not specified"):
        rest.create("default", "c", "", [["a/"]], {"backup": "true"})


def test_an_unreachable_server_is_a_connection_error_without_the_bearer() -> None:
    [port] = free_ports(1, "127.0.0.1")
    rest = RestImports(f"http://127.0.0.1:{port}", f"root:{SECRET}", timeout=2)
    with pytest.raises(MilvusConnectionError) as caught:
        rest.create("default", "c", "p", [["a/"]], {})
    assert f"127.0.0.1:{port}" in str(caught.value) and SECRET not in str(caught.value)
