"""Conditional writes on the object stores: S3 (ETags), GCS (generations), Azure Blob (ETags).

Each goes below fsspec, to the client the fsspec filesystem already holds (s3fs's aiobotocore client,
gcsfs's HTTP session, adlfs's async ``BlobServiceClient``), since fsspec has no call for a
conditional replace. Checked against the emulators in tests/integration/test_storage_contract.py:
moto 5.2.5 and Azurite honour every precondition used here; fake-gcs-server honours
``ifGenerationMatch`` on multipart uploads but ignores it on deletes (real GCS honours both).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import fsspec.asyn

from milvus_backup_lib.storage._conditional_base import (
    ConditionalBackend,
    Versioned,
    age_between,
    http_date,
    is_conflict,
)

__all__ = ["AzureConditional", "GcsConditional", "S3Conditional"]


class S3Conditional(ConditionalBackend):
    """S3 through s3fs's client: ``If-None-Match``/``If-Match`` on PutObject, ETags as versions."""

    def _split(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(path)
        return bucket, key

    def read(self, path: str) -> Versioned | None:
        bucket, key = self._split(path)
        try:
            out = self.fs.call_s3("get_object", Bucket=bucket, Key=key)
        except FileNotFoundError:
            return None
        body = out["Body"]

        async def _all() -> bytes:
            async with body as stream:
                return bytes(await stream.read())

        data = fsspec.asyn.sync(self.fs.loop, _all)
        headers = out.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        modified = out.get("LastModified")
        return Versioned(
            data,
            str(out["ETag"]),
            age_between(http_date(headers.get("date")), modified.timestamp() if modified else None),
        )

    def _put(self, path: str, data: bytes, **condition: str) -> str | None:
        bucket, key = self._split(path)
        try:
            out = self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
        except Exception as exc:
            if is_conflict(exc) or (isinstance(exc, FileNotFoundError) and "IfMatch" in condition):
                return None
            raise
        finally:
            self.fs.invalidate_cache(path)
        return str(out["ETag"])

    def create(self, path: str, data: bytes) -> str | None:
        return self._put(path, data, IfNoneMatch="*")

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        return self._put(path, data, IfMatch=version)

    def remove(self, path: str, version: str) -> bool:
        bucket, key = self._split(path)
        try:
            self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=version)
        except FileNotFoundError:
            return False
        except Exception as exc:
            if is_conflict(exc):
                return False
            raise
        finally:
            self.fs.invalidate_cache(path)
        return True


class GcsConditional(ConditionalBackend):
    """GCS through gcsfs's HTTP session: generations as versions, ``ifGenerationMatch`` preconditions."""

    def _split(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(path)
        return bucket, key

    def read(self, path: str) -> Versioned | None:
        bucket, key = self._split(path)
        try:
            headers, raw = self.fs.call("GET", "b/{}/o/{}", bucket, key)
        except FileNotFoundError:
            return None
        meta = _json(raw)
        generation = str(meta["generation"])
        try:
            _, data = self.fs.call("GET", "b/{}/o/{}", bucket, key, alt="media", generation=generation)
        except FileNotFoundError:  # replaced meanwhile: that generation is gone
            data = b""
        updated = meta.get("updated")
        modified = dt.datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp() if updated else None
        return Versioned(bytes(data), generation, age_between(http_date(headers.get("Date")), modified))

    def _upload(self, path: str, data: bytes, generation: str) -> str | None:
        # A multipart upload, as gcsfs's own ``simple_upload`` sends it: fake-gcs-server checks
        # ``ifGenerationMatch`` there but ignores it on ``uploadType=media``; real GCS checks both.
        bucket, key = self._split(path)
        head = (
            "--==0==\nContent-Type: application/json; charset=UTF-8\n\n"
            + json.dumps({"name": key})
            + "\n--==0==\nContent-Type: application/octet-stream\n\n"
        )
        try:
            _, raw = self.fs.call(
                "POST",
                f"{self.fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
                uploadType="multipart",
                ifGenerationMatch=generation,
                headers={"Content-Type": 'multipart/related; boundary="==0=="'},
                data=head.encode() + data + b"\n--==0==--",
            )
        except Exception as exc:
            if is_conflict(exc):
                return None
            raise
        finally:
            self.fs.invalidate_cache(path)
        return str(_json(raw)["generation"])

    def create(self, path: str, data: bytes) -> str | None:
        return self._upload(path, data, "0")

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        return self._upload(path, data, version)

    def remove(self, path: str, version: str) -> bool:
        bucket, key = self._split(path)
        try:
            self.fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=version)
        except FileNotFoundError:
            return False
        except Exception as exc:
            if is_conflict(exc):
                return False
            raise
        finally:
            self.fs.invalidate_cache(path)
        return True


def _json(raw: Any) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


class AzureConditional(ConditionalBackend):
    """Azure Blob through adlfs's async client: ETags as versions, ``MatchConditions.IfNotModified``."""

    def _client(self, path: str) -> Any:
        container, blob, _ = self.fs.split_path(path)
        return self.fs.service_client.get_blob_client(container, blob)

    def _run(self, make: Any) -> Any:
        return fsspec.asyn.sync(self.fs.loop, make)

    def read(self, path: str) -> Versioned | None:
        from azure.core.exceptions import ResourceNotFoundError

        seen: dict[str, str] = {}

        def hook(response: Any) -> None:
            seen["date"] = response.http_response.headers.get("Date", "")

        async def go() -> Versioned | None:
            try:
                async with self._client(path) as blob:
                    stream = await blob.download_blob(raw_response_hook=hook)
                    data = await stream.readall()
            except ResourceNotFoundError:
                return None
            props = stream.properties
            modified = props.last_modified.timestamp() if props.last_modified else None
            return Versioned(bytes(data), str(props.etag), age_between(http_date(seen.get("date")), modified))

        result: Versioned | None = self._run(go)
        return result

    def _upload(self, path: str, data: bytes, version: str | None) -> str | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        async def go() -> str | None:
            condition: dict[str, Any] = (
                {"overwrite": False}
                if version is None
                else {"overwrite": True, "etag": version, "match_condition": MatchConditions.IfNotModified}
            )
            try:
                async with self._client(path) as blob:
                    out = await blob.upload_blob(data, **condition)
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                return None
            return str(out["etag"])

        try:
            result: str | None = self._run(go)
        finally:
            self.fs.invalidate_cache(path)
        return result

    def create(self, path: str, data: bytes) -> str | None:
        return self._upload(path, data, None)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        return self._upload(path, data, version)

    def remove(self, path: str, version: str) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        async def go() -> bool:
            try:
                async with self._client(path) as blob:
                    await blob.delete_blob(etag=version, match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                return False
            return True

        try:
            result: bool = self._run(go)
        finally:
            self.fs.invalidate_cache(path)
        return result
