"""What every backend of :mod:`milvus_backup_lib.storage.conditional` shares: the result type and helpers."""

from __future__ import annotations

import email.utils
import hashlib

import attrs

from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["ConditionalBackend", "Versioned", "age_between", "http_date", "is_conflict", "md5_hex"]


@attrs.frozen
class Versioned:
    """An object's bytes with the version they were read at, and its age on the store's clock."""

    data: bytes
    version: str
    #: Seconds since the object was last written, by the store's clock; None when it cannot tell.
    age: float | None


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def is_conflict(exc: BaseException) -> bool:
    """A precondition that failed: HTTP 412 or 409, as each client words it.

    s3fs and gcsfs turn HTTP 412 into ``FileExistsError`` (s3fs also into ``OSError(EINVAL)`` saying
    "pre-conditions ... did not hold"); the raw client errors carry the status.
    """
    if isinstance(exc, FileExistsError):
        return True
    if exc.__cause__ is not None and exc.__cause__ is not exc and is_conflict(exc.__cause__):
        return True
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None) or getattr(exc, "code", None)
    if status in (409, 412):
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        if response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            return True
        if response.get("Error", {}).get("Code") in (
            "PreconditionFailed",
            "ConditionalRequestConflict",
            "412",
            "409",
        ):
            return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        s in text for s in ("precondition", "pre-condition", "conditionalrequestconflict", "conditionnotmet")
    )


def http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def age_between(now: float | None, modified: float | None) -> float | None:
    if now is None or modified is None:
        return None
    return max(0.0, now - modified)


class ConditionalBackend:
    """The conditional primitives on one store (see :mod:`milvus_backup_lib.storage.conditional`)."""

    def __init__(self, location: StorageLocation) -> None:
        self.location = location
        self.fs = location.fs

    def read(self, path: str) -> Versioned | None:
        raise NotImplementedError

    def create(self, path: str, data: bytes) -> str | None:
        raise NotImplementedError

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        raise NotImplementedError

    def remove(self, path: str, version: str) -> bool:
        raise NotImplementedError
