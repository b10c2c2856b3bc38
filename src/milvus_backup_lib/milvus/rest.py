"""Milvus's REST API, for the one thing gRPC does not tell: a segment's exact binlog list.

Since Milvus 2.5.8 (milvus-io/milvus PR 40464) the proxy answers ``POST /v2/vectordb/segments/describe``
on its REST port, which is the gRPC port on 2.4+ (one listener serves both). Request and answer, from
``internal/distributed/proxy/httpserver/request_v2.go`` (``GetSegmentsInfoReq``) and ``handler_v2.go``
(``getSegmentsInfo``)::

    {"dbName": "default", "collectionID": 451..., "segmentIDs": [451..., ...]}
    {"code": 0, "data": {"segmentInfos": [{"segmentID": ..., "collectionID": ..., "partitionID": ...,
      "vChannel": "...", "numRows": ..., "state": ..., "level": ..., "isSorted": ...,
      "insertLogs": [{"fieldID": 0, "logIDs": [...]}, ...], "deltaLogs": [...], "statsLogs": [...]}]}}

(Go decodes JSON keys case-insensitively; milvus-backup sends ``collectionId``/``segmentIds``,
``internal/client/milvus/restful.go``.) Authentication is a bearer token ``user:password`` (or the
token itself), as milvus-backup's ``NewRestful`` sends it. Milvus 2.3.5 has no such route and answers
HTTP 404 (test-rig.md); then, and after any other failure, the answer is None and the caller lists the
storage as before. No log line or message here ever holds the credentials.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from milvus_backup_lib.milvus.records import SegmentBinlogList
from milvus_backup_lib.options import MilvusConnection

__all__ = ["DESCRIBE_PATH", "RestSegmentDescriber", "rest_bearer", "rest_url"]

log = logging.getLogger(__name__)

DESCRIBE_PATH = "/v2/vectordb/segments/describe"
#: Segments per request (the API takes a list; one request per segment would be slow on big collections).
BATCH = 64
#: HTTP statuses that mean "this server has no such API": do not ask it again.
_ABSENT = frozenset({404, 405, 501})


def rest_url(connection: MilvusConnection) -> str:
    """The REST endpoint: the scheme, host and port of the gRPC URI (one listener serves both on 2.4+)."""
    parsed = urlparse(connection.uri if "://" in connection.uri else f"http://{connection.uri}")
    scheme = "https" if parsed.scheme == "https" else "http"
    return f"{scheme}://{parsed.hostname or '127.0.0.1'}:{parsed.port or 19530}"


def rest_bearer(connection: MilvusConnection) -> str | None:
    """What Milvus's REST API takes as ``Authorization: Bearer``: the token, or ``user:password``."""
    if connection.token:
        return connection.token
    if connection.user or connection.password:
        return f"{connection.user or ''}:{connection.password or ''}"
    return None


class RestSegmentDescriber:
    """Asks a Milvus server for segments' binlog lists over REST (see the module docstring)."""

    def __init__(
        self, base_url: str, *, bearer: str | None = None, timeout: float = 30.0, cafile: str | None = None
    ) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self._bearer = bearer
        self._context = ssl.create_default_context(cafile=cafile) if cafile else None
        #: Set once the server answered that it has no such API; later calls answer None at once.
        self.absent = False

    def __repr__(self) -> str:
        return f"RestSegmentDescriber({self.base!r})"

    @classmethod
    def for_connection(cls, connection: MilvusConnection) -> RestSegmentDescriber:
        """The describer for the server a :class:`MilvusConnection` names, with its credentials."""
        return cls(
            rest_url(connection),
            bearer=rest_bearer(connection),
            timeout=max(connection.timeout, 1.0),
            cafile=connection.ca_cert_path or None,
        )

    def describe(
        self, db: str, collection_id: int, segment_ids: Sequence[int]
    ) -> dict[int, SegmentBinlogList] | None:
        """The binlog lists of ``segment_ids``; None when the server has no such API or a request failed."""
        result: dict[int, SegmentBinlogList] = {}
        ids = list(segment_ids)
        for start in range(0, len(ids), BATCH):
            if self.absent:
                return None
            body = {"dbName": db, "collectionID": collection_id, "segmentIDs": ids[start : start + BATCH]}
            answer = self._post(body)
            if answer is None:
                return None
            for info in answer:
                parsed = _segment_from_json(info)
                if parsed is None:
                    log.warning(
                        "segment describe at %s: an answer without a segment ID; listing storage", self.base
                    )
                    return None
                result[parsed.segment_id] = parsed
        return result

    def _post(self, body: dict[str, Any]) -> list[Any] | None:
        request = urllib.request.Request(
            self.base + DESCRIBE_PATH,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if self._bearer:
            request.add_header("Authorization", f"Bearer {self._bearer}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code in _ABSENT:
                self.absent = True
                log.info("%s has no segment describe API (HTTP %s): listing the storage", self.base, exc.code)
            else:
                log.warning(
                    "segment describe at %s failed (HTTP %s): listing the storage", self.base, exc.code
                )
            return None
        except http.client.HTTPException as exc:
            # Not HTTP/1.1 at all (a TLS gRPC listener answers in HTTP/2 frames): no REST API here.
            self.absent = True
            log.info("%s does not speak HTTP/1.1 (%s): listing the storage", self.base, type(exc).__name__)
            return None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            log.warning("segment describe at %s failed (%s): listing the storage", self.base, reason)
            return None
        try:
            answer = json.loads(raw)
        except ValueError:
            # Not JSON: not Milvus's REST handler (a server without REST on this port).
            self.absent = True
            log.info("%s did not answer the segment describe API in JSON: listing the storage", self.base)
            return None
        if not isinstance(answer, dict):
            log.warning("segment describe at %s: unexpected answer; listing the storage", self.base)
            return None
        if answer.get("code", 0) != 0:
            message = str(answer.get("message", ""))[:200]
            log.warning(
                "segment describe at %s answered code %s (%s): listing the storage",
                self.base,
                answer.get("code"),
                message,
            )
            return None
        data = answer.get("data")
        infos = data.get("segmentInfos") if isinstance(data, dict) else None
        if not isinstance(infos, list):
            log.warning(
                "segment describe at %s: no segmentInfos in the answer; listing the storage", self.base
            )
            return None
        return infos


def _log_ids(entries: Any) -> list[tuple[int, tuple[int, ...]]] | None:
    if entries is None:
        return []
    if not isinstance(entries, list):
        return None
    out: list[tuple[int, tuple[int, ...]]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        logs = entry.get("logIDs") or []
        if not isinstance(logs, list) or not all(isinstance(i, int) for i in logs):
            return None
        out.append((int(entry.get("fieldID", 0)), tuple(int(i) for i in logs)))
    return out


def _segment_from_json(info: Any) -> SegmentBinlogList | None:
    if not isinstance(info, dict) or not isinstance(info.get("segmentID"), int):
        return None
    inserts = _log_ids(info.get("insertLogs"))
    deltas = _log_ids(info.get("deltaLogs"))
    if inserts is None or deltas is None:
        return None
    return SegmentBinlogList(
        segment_id=int(info["segmentID"]),
        insert_logs=tuple(inserts),
        delta_logs=tuple(log_id for _, logs in deltas for log_id in logs),
        v_channel=str(info.get("vChannel") or ""),
    )
