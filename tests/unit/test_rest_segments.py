"""The REST segment-describe client against a local HTTP server that answers as Milvus's proxy does
(``internal/distributed/proxy/httpserver/handler_v2.go`` ``getSegmentsInfo``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from milvus_backup_lib import MilvusConnection
from milvus_backup_lib.milvus.grpc import GrpcMilvus
from milvus_backup_lib.milvus.records import SegmentBinlogList
from milvus_backup_lib.milvus.rest import DESCRIBE_PATH, RestSegmentDescriber, rest_url

SECRET = "s3cr3t-pa55"


class FakeProxy:
    """What the fake server answers, and what it was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"code": 0, "data": {"segmentInfos": []}}
        self.requests: list[tuple[str, dict[str, str], Any]] = []


@pytest.fixture
def proxy() -> Iterator[tuple[FakeProxy, int]]:
    state = FakeProxy()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            payload = json.loads(self.rfile.read(length) or b"null")
            state.requests.append((self.path, dict(self.headers), payload))
            raw = state.body if isinstance(state.body, bytes) else json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _info(
    seg: int, *, inserts: Any, deltas: Any, channel: str = "by-dev-rootcoord-dml_0_1v0"
) -> dict[str, Any]:
    return {
        "segmentID": seg,
        "collectionID": 451000000000000001,
        "partitionID": 451000000000000002,
        "vChannel": channel,
        "numRows": 10,
        "state": 3,
        "level": 2,
        "isSorted": True,
        "insertLogs": inserts,
        "deltaLogs": deltas,
        "statsLogs": [],
    }


def test_describe_sends_milvus_s_request_and_reads_its_answer(proxy: tuple[FakeProxy, int]) -> None:
    state, port = proxy
    seg = 451000000000000010
    state.body = {
        "code": 0,
        "data": {
            "segmentInfos": [
                _info(
                    seg,
                    inserts=[
                        {"fieldID": 0, "logIDs": [451000000000000011, 451000000000000014]},
                        {"fieldID": 101, "logIDs": [451000000000000012, 451000000000000015]},
                    ],
                    deltas=[{"fieldID": 0, "logIDs": [451000000000000020]}],
                )
            ]
        },
    }
    milvus = GrpcMilvus(MilvusConnection(uri=f"http://127.0.0.1:{port}", user="backup", password=SECRET))
    try:
        answer = milvus.segment_binlogs("db1", 451000000000000001, [seg])
    finally:
        milvus.close()
    assert answer == {
        seg: SegmentBinlogList(
            segment_id=seg,
            insert_logs=(
                (0, (451000000000000011, 451000000000000014)),
                (101, (451000000000000012, 451000000000000015)),
            ),
            delta_logs=(451000000000000020,),
            v_channel="by-dev-rootcoord-dml_0_1v0",
        )
    }
    [(path, headers, body)] = state.requests
    assert path == DESCRIBE_PATH
    assert body == {"dbName": "db1", "collectionID": 451000000000000001, "segmentIDs": [seg]}
    # the bearer token milvus-backup sends (restful.go restfulAuth): user:password
    assert headers["Authorization"] == f"Bearer backup:{SECRET}"


def test_segments_are_asked_in_batches(proxy: tuple[FakeProxy, int]) -> None:
    state, port = proxy
    describer = RestSegmentDescriber(f"http://127.0.0.1:{port}", bearer="root:Milvus")
    ids = list(range(1, 151))
    assert describer.describe("default", 7, ids) == {}
    assert [len(r[2]["segmentIDs"]) for r in state.requests] == [64, 64, 22]
    assert [i for r in state.requests for i in r[2]["segmentIDs"]] == ids


def test_a_server_without_the_api_is_asked_once(proxy: tuple[FakeProxy, int]) -> None:
    state, port = proxy
    state.status, state.body = 404, b"404 page not found"
    describer = RestSegmentDescriber(f"http://127.0.0.1:{port}")
    assert describer.describe("default", 7, [1]) is None
    assert describer.absent
    assert describer.describe("default", 7, [2]) is None
    assert len(state.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"code": 65535, "message": "segment not found[segment=12]"},
        {"code": 0, "data": {}},
        {"code": 0, "data": {"segmentInfos": [{"insertLogs": []}]}},
        {
            "code": 0,
            "data": {"segmentInfos": [_info(5, inserts=[{"fieldID": 0, "logIDs": ["x"]}], deltas=[])]},
        },
        b"<html>not json</html>",
    ],
    ids=["error-code", "no-infos", "no-segment-id", "bad-log-ids", "not-json"],
)
def test_failed_or_malformed_answers_fall_back_to_listing(
    proxy: tuple[FakeProxy, int], body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    state, port = proxy
    state.body = body
    connection = MilvusConnection(uri=f"http://127.0.0.1:{port}", user="backup", password=SECRET)
    describer = RestSegmentDescriber.for_connection(connection)
    with caplog.at_level(logging.DEBUG, logger="milvus_backup_lib"):
        assert describer.describe("default", 7, [5]) is None
    assert caplog.records and all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in repr(describer)


def test_unreachable_server_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    describer = RestSegmentDescriber("http://127.0.0.1:1", bearer=f"u:{SECRET}", timeout=2)
    with caplog.at_level(logging.WARNING, logger="milvus_backup_lib"):
        assert describer.describe("default", 7, [5]) is None
    assert not describer.absent  # maybe a passing fault: the next collection asks again
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_rest_url_is_the_grpc_endpoint() -> None:
    assert rest_url(MilvusConnection(uri="http://milvus:19530")) == "http://milvus:19530"
    assert rest_url(MilvusConnection(uri="https://u:p@milvus.example:443")) == "https://milvus.example:443"
    assert rest_url(MilvusConnection(uri="localhost")) == "http://localhost:19530"


def test_a_listener_that_does_not_speak_http_1_is_taken_as_no_api() -> None:
    """A TLS gRPC port (what 2.3.5 with tlsMode 1 serves) answers in HTTP/2 frames: BadStatusLine, not an
    OSError. It must mean "no such API", and the backup lists the storage, not fail."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00 not HTTP/1.1\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    describer = RestSegmentDescriber(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=5)
    try:
        assert describer.describe("default", 1, [2]) is None
        assert describer.absent
    finally:
        thread.join(5)
        listener.close()
