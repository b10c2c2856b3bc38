"""From a provider-neutral storage side to a :class:`~milvus_backup_lib.storage.location.StorageLocation`.

The provider names the Go tool accepts, and for each kind of storage the URL and the fsspec
``storage_options`` (s3fs, gcsfs, adlfs): endpoints, credentials, emulator hosts. The table in the
:mod:`milvus_backup_lib.backup_yaml` docstring sums it up.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from milvus_backup_lib.backup_yaml.sources import _Hit, _host_port, _text
from milvus_backup_lib.errors import InvalidConfigError
from milvus_backup_lib.storage.location import StorageLocation

_PROVIDERS = ("local", "minio", "s3", "aws", "gcp", "gcpnative", "azure", "aliyun", "tencent", "hwc")
_PROVIDER_ALIASES = {"ali": "aliyun", "alibaba": "aliyun", "alicloud": "aliyun", "tc": "tencent"}
_S3_FAMILY = frozenset({"minio", "s3", "aws"})
_VIRTUAL_HOSTED = frozenset({"aliyun", "tencent", "hwc"})  # the Go tool uses minio.BucketLookupDNS for them
_NEEDS_ADDRESS = frozenset({"minio", "aliyun", "tencent", "hwc"})


def _provider(hit: _Hit) -> str:
    name = _text(hit).strip().lower()
    name = _PROVIDER_ALIASES.get(name, name)
    if name not in _PROVIDERS:
        raise InvalidConfigError(
            f"{hit.origin}: unknown value {hit.value!r}; use one of {', '.join(_PROVIDERS)}"
        )
    return name


def _family(provider: str) -> str:
    return "s3" if provider in _S3_FAMILY else provider


@attrs.define
class _Storage:
    """One storage side in provider-neutral terms, with the key of each setting for messages."""

    provider: str
    labels: Mapping[str, str]
    address: str = ""
    port: int | None = None
    use_ssl: bool = False
    region: str = ""
    bucket: str = ""
    root_path: str = ""
    local_path: str = ""
    auth: str = "static"
    access_key: str = ""
    secret_key: str = ""
    token: str = ""
    account_name: str = ""
    account_key: str = ""
    credentials: str = ""


def _location(side: _Storage) -> StorageLocation:
    if side.provider == "local":
        if not side.root_path:
            raise InvalidConfigError(
                f"{side.labels['root_path']}: a directory is required for the local provider"
            )
        return StorageLocation(_file_url(side.root_path))
    if not side.bucket:
        raise InvalidConfigError(f"{side.labels['bucket']} is required for provider {side.provider!r}")
    if "/" in side.bucket:
        raise InvalidConfigError(
            f"{side.labels['bucket']}: {side.bucket!r} must be a bucket name; put the path in the root path key"
        )
    root = side.root_path.strip("/")
    path = f"{side.bucket}/{root}" if root else side.bucket
    if side.provider == "azure":
        return StorageLocation(f"az://{path}", _azure_options(side))
    if side.provider == "gcpnative" or (side.provider == "gcp" and side.auth != "static"):
        return StorageLocation(f"gs://{path}", _gcs_options(side))
    return StorageLocation(f"s3://{path}", _s3_options(side))


def _file_url(path: str) -> str:
    absolute = os.path.abspath(path).replace(os.sep, "/")
    return "file://" + (absolute if absolute.startswith("/") else "/" + absolute)


def _s3_options(side: _Storage) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if side.auth == "static" and (side.access_key or side.secret_key):
        options["key"] = side.access_key
        options["secret"] = side.secret_key
        if side.token:
            options["token"] = side.token
    else:
        options["anon"] = False  # botocore's default chain: env, profile, IRSA, instance role
    client_kwargs: dict[str, Any] = {}
    address, port, use_ssl = side.address, side.port, side.use_ssl
    if not address and side.provider == "gcp":
        address, port, use_ssl = "storage.googleapis.com", None, True
    if address:
        client_kwargs["endpoint_url"] = f"{'https' if use_ssl else 'http'}://{_host_port(address, port)}"
    elif side.provider in _NEEDS_ADDRESS:
        raise InvalidConfigError(f"{side.labels['address']} is required for provider {side.provider!r}")
    region = side.region or ("auto" if side.provider == "gcp" else "")
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    if side.provider in _VIRTUAL_HOSTED:
        options["config_kwargs"] = {"s3": {"addressing_style": "virtual"}}
    return options


def _is_standard_gcs_host(host: str) -> bool:
    return host in ("", "storage.googleapis.com", "www.googleapis.com", "googleapis.com") or host.endswith(
        ".storage.googleapis.com"
    )


def _gcs_options(side: _Storage) -> dict[str, Any]:
    token: Any = "google_default"
    if side.auth == "serviceAccount" and side.credentials:
        token = side.credentials
        if side.credentials.lstrip().startswith("{"):
            try:
                token = json.loads(side.credentials)
            except ValueError:
                raise InvalidConfigError(
                    f"{side.labels['credentials']}: the inline service account JSON does not parse"
                ) from None
    options: dict[str, Any] = {"token": token}
    if not _is_standard_gcs_host(side.address):  # an emulator such as fake-gcs-server
        scheme = "https" if side.use_ssl else "http"
        options["endpoint_url"] = f"{scheme}://{_host_port(side.address, side.port)}"
    return options


def _is_emulator_host(host: str) -> bool:
    if host == "localhost" or "." not in host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _azure_options(side: _Storage) -> dict[str, Any]:
    labels = side.labels
    if not side.account_name:
        raise InvalidConfigError(f"{labels['account_name']}: the Azure storage account name is required")
    options: dict[str, Any] = {"account_name": side.account_name}
    if side.auth == "sharedKey":
        if not side.account_key:
            raise InvalidConfigError(f"{labels['account_key']}: the Azure storage account key is required")
        options["account_key"] = side.account_key
    else:
        options["anon"] = False  # adlfs then uses DefaultAzureCredential (managed / workload identity)
    address, port = side.address, side.port
    if not address or (address == "core.windows.net" and port in (None, 443)):
        return options
    if _is_emulator_host(address):
        scheme = "https" if side.use_ssl else "http"
        endpoint = f"{scheme}://{_host_port(address, port)}/{side.account_name}"
        if side.auth == "sharedKey":
            options["connection_string"] = (
                f"DefaultEndpointsProtocol={scheme};AccountName={side.account_name};"
                f"AccountKey={side.account_key};BlobEndpoint={endpoint};"
            )
        else:
            options["account_host"] = f"{_host_port(address, port)}/{side.account_name}"
        return options
    # The Go tool (and Milvus) build https://{account}.blob.{address}: the address is the endpoint suffix.
    suffix = "" if port in (None, 443) else f":{port}"
    options["account_host"] = f"{side.account_name}.blob.{address}{suffix}"
    return options
