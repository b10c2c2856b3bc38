"""Why a storage call failed: wrong credentials, a missing bucket, a missing root, an unreachable endpoint.

The fsspec filesystems blur these: s3fs turns ``NoSuchBucket`` and a 404 into ``FileNotFoundError``
and its ``exists`` answers False for a bucket it may not read (so wrong credentials looked like a
missing bucket), and gcsfs and botocore retry a refused connection for 20 to 70 s before failing. So:

- :func:`check_reachable` opens one TCP connection to the endpoint before a location's first call
  (for a few seconds, a restarting pod may refuse it briefly) and raises
  :class:`StorageUnreachableError` naming the endpoint URL when nothing answers;
- :func:`probe_root` asks the store directly (S3 ``ListObjectsV2``, the GCS JSON API, Azure's container
  listing) for one key under the root, and raises the error that names the cause;
- :func:`classify` turns a failed call's exception into that error when its chain says which.

Endpoint URLs are not secrets and are shown; credentials never are (:func:`~.location.scrub`).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from milvus_backup_lib.errors import (
    BucketNotFoundError,
    StorageCredentialsError,
    StorageError,
    StorageRootNotFoundError,
    StorageUnreachableError,
)
from milvus_backup_lib.retry import call_with_retries

if TYPE_CHECKING:
    from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["check_reachable", "classify", "endpoint_url", "probe_root"]

#: How long :func:`check_reachable` keeps trying to connect before it gives up.
REACH_BUDGET = 6.0
#: The longest one connection attempt may take.
CONNECT_TIMEOUT = 3.0

_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "AuthorizationHeaderMalformed",
        "AuthenticationFailed",
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "InvalidAuthenticationInfo",
        "NoAuthenticationInformation",
        "401",
        "403",
    }
)
_BUCKET_CODES = frozenset({"NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"})
_UNREACHABLE_NAMES = frozenset(
    {
        "botocore.exceptions.EndpointConnectionError",
        "botocore.exceptions.ConnectTimeoutError",
        "aiohttp.client_exceptions.ClientConnectorError",
        "azure.core.exceptions.ServiceRequestError",
        "requests.exceptions.ConnectionError",
    }
)
_MAX_CHAIN = 16
_AZURE = frozenset({"az", "abfs", "abfss"})
_GCS = frozenset({"gs", "gcs"})


def endpoint_url(location: StorageLocation) -> str:
    """The URL the location's filesystem talks to (no credentials), or ``""`` for local and memory."""
    options = location.storage_options
    protocol = location.protocol
    if location.is_local or protocol == "memory":
        return ""
    if protocol in _AZURE:
        for part in str(options.get("connection_string") or "").split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "blobendpoint" and value.strip():
                return value.strip()
        if options.get("account_url"):
            return str(options["account_url"])
        account = options.get("account_name")
        return f"https://{account}.blob.core.windows.net" if account else ""
    if protocol in _GCS:
        return str(options.get("endpoint_url") or "https://storage.googleapis.com")
    client_kwargs = options.get("client_kwargs") or {}
    explicit = options.get("endpoint_url") or client_kwargs.get("endpoint_url")
    return str(explicit or "https://s3.amazonaws.com")


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _behind_proxy(url: str) -> bool:
    scheme = urlsplit(url).scheme or "https"
    proxies = urllib.request.getproxies()
    host = urlsplit(url).hostname or ""
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def check_reachable(location: StorageLocation, *, budget: float = REACH_BUDGET) -> None:
    """Raise :class:`StorageUnreachableError` when no TCP connection to the endpoint opens within
    ``budget`` seconds. Done once per location (a success is remembered); skipped for local and
    in-memory stores, filesystems given ready-made, and endpoints reached through a proxy."""
    state = location._state
    if state.get("reachable") or location._filesystem is not None:
        return
    url = endpoint_url(location)
    address = _host_port(url) if url else None
    if address is None or _behind_proxy(url):
        state["reachable"] = True
        return
    deadline = time.monotonic() + budget
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection(address, timeout=max(0.1, min(CONNECT_TIMEOUT, remaining))):
                state["reachable"] = True
                return
        except OSError as exc:
            if time.monotonic() + 1.0 >= deadline:
                raise unreachable(location, url, exc) from None
            time.sleep(1.0)


def unreachable(location: StorageLocation, url: str, exc: BaseException) -> StorageUnreachableError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    if isinstance(exc, socket.gaierror):
        reason = f"the host name does not resolve ({exc.strerror or exc})"
    elif isinstance(exc, TimeoutError):
        reason = "connecting timed out"
    return StorageUnreachableError(
        f"cannot reach the storage endpoint {url} for {location.url}: {reason}; check the endpoint URL "
        "(host, port, http/https), that the storage service runs, and the network between"
    )


# --------------------------------------------------------------------------- classifying errors


def _code(exc: BaseException) -> str:
    """The store's error code of one exception: botocore, gcsfs, Azure, aiohttp."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", "") or "")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code or (str(status) if status else "")
    error_code = getattr(exc, "error_code", None)  # azure-core
    if error_code:
        return str(getattr(error_code, "value", error_code))
    for attribute in ("code", "status", "status_code"):  # gcsfs HttpError, aiohttp, azure-core
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and value in (401, 403, 404):
            return str(value)
    if isinstance(exc, OSError) and str(exc).startswith("Forbidden:"):  # gcsfs's 403
        return "403"
    return ""


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(links) < _MAX_CHAIN and all(link is not seen for seen in links):
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


def _names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


def classify(location: StorageLocation, action: str, path: str, exc: BaseException) -> StorageError | None:
    """The specific error for a failed call when its exception chain says the cause; else None."""
    for link in _chain(exc):
        code = _code(link)
        if code in _CREDENTIAL_CODES:
            return credentials_error(location, f"{code} when trying to {action} {path}")
        if code in _BUCKET_CODES:
            return bucket_error(location, code)
        if _names(link) & _UNREACHABLE_NAMES or isinstance(link, ConnectionRefusedError | socket.gaierror):
            url = endpoint_url(location)
            if url:
                return StorageUnreachableError(
                    f"cannot reach the storage endpoint {url} to {action} {path}: "
                    f"{type(link).__name__}: {location.scrubbed(str(link))}; check the endpoint URL, that "
                    "the storage service runs, and the network between"
                )
    return None


def _what_bucket(location: StorageLocation) -> str:
    return "container" if location.protocol in _AZURE else "bucket"


def credentials_error(location: StorageLocation, detail: str) -> StorageCredentialsError:
    url = endpoint_url(location)
    return StorageCredentialsError(
        f"the store at {url} refused the credentials for {_what_bucket(location)} {location.bucket!r} "
        f"of {location.url} ({detail}); check the access key and secret (or token, account key, "
        "connection string) and that they may read and write that "
        f"{_what_bucket(location)}"
    )


def bucket_error(location: StorageLocation, detail: str = "") -> BucketNotFoundError:
    what = _what_bucket(location)
    return BucketNotFoundError(
        f"storage root {what} {location.bucket!r} of {location.url!r} does not exist at "
        f"{endpoint_url(location)}" + (f" ({detail})" if detail else "") + f"; check the {what} name "
        f"and the endpoint, or create the {what} (the library never creates one)"
    )


def root_error(location: StorageLocation) -> StorageRootNotFoundError:
    if location.is_local:
        return StorageRootNotFoundError(
            f"storage root directory {location.root!r} of {location.url!r} does not exist; check the "
            "path (a backup creates it, listing and reading do not)"
        )
    prefix = location.root.split("/", 1)[1] if "/" in location.root else ""
    return StorageRootNotFoundError(
        f"nothing is stored under the root {prefix!r} of {_what_bucket(location)} "
        f"{location.bucket!r} ({location.url!r} at {endpoint_url(location)}); check the root path "
        "(a new root holds nothing until the first backup is written)"
    )


# --------------------------------------------------------------------------- probing the root


def probe_root(location: StorageLocation, *, root_must_hold: bool) -> None:
    """Ask the store whether the root's bucket exists and the credentials work (and, with
    ``root_must_hold``, whether anything is stored under the root prefix); raise the fitting error.

    Local: the directory must exist (whatever ``root_must_hold``). Memory: always fine.
    """
    if location.protocol == "memory":
        return
    if location.is_local:
        if not location.fs.isdir(location.root):
            raise root_error(location)
        return
    check_reachable(location)
    bucket, _, prefix = location.root.partition("/")
    prefix = prefix.strip("/")
    try:
        found = _probe(location, bucket, prefix + "/" if prefix else "")
    except StorageError:
        raise
    except FileNotFoundError as exc:
        raise bucket_error(location, _code(exc) or "404") from None
    except Exception as exc:
        raise classify(location, "look at", location.root, exc) or StorageError(
            f"cannot look at the root of {location.url} at {endpoint_url(location)}: "
            f"{type(exc).__name__}: {_scrubbed(location, exc)}"
        ) from None
    if root_must_hold and prefix and not found:
        raise root_error(location)


def _scrubbed(location: StorageLocation, exc: BaseException) -> str:
    return location.scrubbed(str(exc))


def _gcs_list_once(fs: Any, bucket: str, prefix: str) -> Any:
    """One GCS listing request for the probe. gcsfs retries a 401 six times (over 30 s: it takes one
    for an expired token), so the probe calls its request without that retry wrapper where it can
    (``_request.__wrapped__``); transient errors are still retried, by the library's own layer."""
    raw = getattr(type(fs)._request, "__wrapped__", None)
    if raw is None:
        return fs.call("GET", "b/{}/o", bucket, prefix=prefix, maxResults=1, json_out=True)
    from fsspec.asyn import sync

    answer = call_with_retries(
        f"list gs://{bucket}/{prefix}",
        sync,
        fs.loop,
        raw,
        fs,
        "GET",
        "b/{}/o",
        bucket,
        prefix=prefix,
        maxResults=1,
    )
    return json.loads(answer[3])


def _probe(location: StorageLocation, bucket: str, prefix: str) -> bool:
    """Whether any key starts with ``prefix`` in ``bucket``; raises what the store answered."""
    fs: Any = location.fs
    protocol = location.protocol
    if protocol in ("s3", "s3a") and hasattr(fs, "call_s3"):
        try:
            out = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except Exception as exc:
            for link in _chain(exc):
                if _code(link) in _BUCKET_CODES or _code(link) == "404":
                    raise bucket_error(location, _code(link)) from None
            raise
        return bool(out.get("KeyCount") or out.get("Contents") or out.get("CommonPrefixes"))
    if protocol in _GCS and hasattr(fs, "call"):
        try:
            out = _gcs_list_once(fs, bucket, prefix)
        except FileNotFoundError:
            raise bucket_error(location, "404") from None
        return bool(out.get("items") or out.get("prefixes"))
    if protocol in _AZURE and hasattr(fs, "service_client"):
        from fsspec.asyn import sync

        async def first_blob() -> bool:
            container = fs.service_client.get_container_client(bucket)
            async for _ in container.list_blobs(name_starts_with=prefix or None, results_per_page=1):
                return True
            return False

        try:
            return bool(sync(fs.loop, first_blob))
        except Exception as exc:
            if any(_code(link) in _BUCKET_CODES for link in _chain(exc)):
                raise bucket_error(location, "ContainerNotFound") from None
            raise
    # another store: its own view of the bucket and the root
    if not fs.exists(bucket):
        raise bucket_error(location)
    return bool(not prefix or fs.exists(location.root))
