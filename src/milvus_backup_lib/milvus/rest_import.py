"""Milvus 2.4+'s import jobs over its REST API: one job carrying many segment groups.

The gRPC ``Import`` of 2.4+ still takes one ``[insert, delta]`` pair per request; a job of several
segment groups (``files: [[insert, delta], ...]``) exists only as ``ImportV2``, which Milvus serves over
REST on its gRPC port: ``POST /v2/vectordb/jobs/import/create`` and ``.../get_progress``
(milvus-io/milvus ``internal/distributed/proxy/httpserver/handler_v2.go``, ``constant.go``:
``ImportJobCategory``, ``CreateAction``, ``GetProgressAction``), authorised by
``Authorization: Bearer <user:password or token>``. milvus-backup's v2 restore sends exactly this
(``--use_v2_restore``: body ``{"dbName", "collectionName", "partitionName", "files", "options"}``,
header ``Request-Timeout: 600``), and polls the job until ``Completed`` or ``Failed``.

Only the in-memory cluster exercises this path here: no Milvus 2.4+ server installs on these machines.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from milvus_backup_lib.errors import MilvusConnectionError, MilvusOperationError
from milvus_backup_lib.milvus.records import ImportState
from milvus_backup_lib.milvus.rest import rest_bearer, rest_url
from milvus_backup_lib.options import MilvusConnection

__all__ = ["RestImports"]

_PREFIX = "/v2/vectordb/jobs/import/"


class RestImports:
    """Import jobs through ``{base_url}/v2/vectordb/jobs/import/*``."""

    def __init__(
        self, base_url: str, bearer: str | None, timeout: float = 60.0, *, cafile: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._bearer = bearer
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=cafile) if cafile else None

    @classmethod
    def for_connection(cls, connection: MilvusConnection) -> RestImports:
        """The import API of the server a :class:`MilvusConnection` names, with its credentials and CA
        (the same endpoint and bearer as :class:`~milvus_backup_lib.milvus.rest.RestSegmentDescriber`)."""
        return cls(
            rest_url(connection),
            rest_bearer(connection),
            timeout=max(connection.timeout, 1.0),
            cafile=connection.ca_cert_path or None,
        )

    def __repr__(self) -> str:
        return f"RestImports({self.base_url!r})"  # never the bearer token

    def create(
        self,
        db: str,
        collection: str,
        partition: str,
        files: Sequence[Sequence[str]],
        options: Mapping[str, str],
    ) -> int:
        """Start one import job; its ID."""
        body = {
            "dbName": db,
            "collectionName": collection,
            "partitionName": partition,
            "files": [list(group) for group in files],
            "options": dict(options),
        }
        data = self._post("create", body)
        try:
            return int(data["jobId"])
        except (KeyError, TypeError, ValueError):
            raise MilvusOperationError("ImportV2", f"no job ID in the answer of {self.base_url}") from None

    def progress(self, db: str, job_id: int) -> ImportState:
        """The state of job ``job_id``."""
        data = self._post("get_progress", {"dbName": db, "jobId": str(job_id)})
        state = str(data.get("state", ""))
        return ImportState(
            task_id=job_id,
            state=state,
            row_count=int(data.get("importedRows", 0) or 0),
            reason=str(data.get("reason", "") or ""),
            segment_ids=(),
        )

    def _post(self, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{_PREFIX}{action}"
        headers = {"Content-Type": "application/json", "Request-Timeout": "600"}
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer}"
        request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
        operation = f"import {action} (REST)"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as resp:
                answer = json.loads(resp.read(1 << 20) or b"{}")
        except urllib.error.HTTPError as exc:
            raise MilvusOperationError(operation, f"HTTP {exc.code} from {url}") from None
        except http.client.HTTPException as exc:  # not HTTP/1.1 (a TLS gRPC listener, say)
            raise MilvusOperationError(
                operation, f"{url} does not answer HTTP/1.1: {type(exc).__name__}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MilvusConnectionError(f"{operation}: cannot reach {url}: {reason}") from None
        except ValueError:
            raise MilvusOperationError(operation, f"{url} did not answer JSON") from None
        if not isinstance(answer, dict):
            raise MilvusOperationError(operation, f"{url} answered {type(answer).__name__}, not an object")
        code = answer.get("code", 0)
        if code not in (0, 200):
            raise MilvusOperationError(operation, f"code {code}: {answer.get('message', '')}")
        data = answer.get("data", {})
        return data if isinstance(data, dict) else {}
