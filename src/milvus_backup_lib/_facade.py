"""What :class:`BackupClient` needs beside its wiring: its arguments checked and turned into the records
its parts take, and its lifecycle (:class:`Closable`: ``close()`` and ``with``).

Every value that cannot be used raises an :class:`InvalidOptionError` (or, for a value of the wrong
type, :class:`InvalidOptionTypeError`, also a ``TypeError``) naming the argument and the valid choices,
before anything is connected, read or written. Values that may hold a credential (a URI, a token, a
password, a storage URL) are shown by their type only.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from milvus_backup_lib.backup.logical import need_milvus_storage
from milvus_backup_lib.backup.runner import default_backup_name
from milvus_backup_lib.errors import (
    InvalidOptionError,
    InvalidOptionTypeError,
    MilvusBackupError,
    StorageError,
    UsageError,
)
from milvus_backup_lib.milvus.gc import AUTO, PauseGc
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.storage.layout import validate_backup_name
from milvus_backup_lib.storage.location import StorageLocation, scrub

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Closable",
    "backup_arguments",
    "check_bool",
    "check_seconds",
    "collection_filter",
    "milvus_connection",
    "need_milvus_storage",
    "only_library_errors",
    "progress_of",
    "storage_location",
    "strategy_of",
]

_SHORTCUT = "either milvus=MilvusConnection(...) or the keywords uri=, token=, user=, password=, not both"
_STORAGE = (
    "a storage URL such as 'file:///srv/backups' or 's3://bucket/root', a local path, or a StorageLocation"
)
_SECRET = frozenset({"uri", "token", "password"})


def milvus_connection(
    milvus: object,
    uri: object = None,
    token: object = None,
    user: object = None,
    password: object = None,
    management_url: object = None,
    timeout: object = None,
) -> MilvusConnection:
    """``milvus`` as it is, or a :class:`MilvusConnection` of the pymilvus-style keywords; ``milvus`` may
    also be the URI itself. Neither gives ``MilvusConnection()``'s defaults (``http://127.0.0.1:19530``).

    A connection together with any keyword is refused: which one should win would be a guess.
    """
    keywords = {
        "uri": uri,
        "token": token,
        "user": user,
        "password": password,
        "management_url": management_url,
        "timeout": timeout,
    }
    given = {key: value for key, value in keywords.items() if value is not None}
    if isinstance(milvus, MilvusConnection):
        if given:
            key = next(iter(given))
            raise InvalidOptionError(
                key, given[key], _SHORTCUT, detail="together with a MilvusConnection", hide_value=True
            )
        return milvus
    if isinstance(milvus, str):
        if "uri" in given:
            raise InvalidOptionError(
                "uri", given["uri"], "the URI either first or as uri=, not both", hide_value=True
            )
        given["uri"] = milvus
    elif milvus is not None:
        raise InvalidOptionTypeError(
            "milvus", milvus, "a MilvusConnection, a URI string such as 'http://127.0.0.1:19530', or None"
        )
    for key in ("token", "user", "password", "management_url"):
        if key in given and not isinstance(given[key], str):
            raise InvalidOptionTypeError(key, given[key], "a string", hide_value=key in _SECRET)
    return MilvusConnection(**given)  # type: ignore[arg-type]  # uri and timeout are checked there


@overload
def storage_location(argument: str, value: object) -> StorageLocation: ...
@overload
def storage_location(argument: str, value: object, *, optional: bool) -> StorageLocation | None: ...
def storage_location(argument: str, value: object, *, optional: bool = False) -> StorageLocation | None:
    """``value`` as a :class:`StorageLocation`: as it is, or built from a URL or a local path (None as
    None when ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, StorageLocation):
        return value
    if isinstance(value, str | os.PathLike):
        url = os.fspath(value)
        if isinstance(url, str) and url.strip():
            return StorageLocation(url)
        raise InvalidOptionError(argument, value, _STORAGE, hide_value=True)
    raise InvalidOptionTypeError(argument, value, _STORAGE)


_C = TypeVar("_C", bound=type)


def only_library_errors(cls: _C) -> _C:
    """Class decorator: every public method of ``cls`` raises only errors of the library's tree.

    The library translates storage and server errors where it calls them; this is the net behind
    that: an ``OSError`` that still escapes (a file vanishing between two calls of a third-party
    filesystem, a local disk error) becomes a :class:`StorageError` naming the file, with the
    credentials of the object's ``milvus_storage`` and ``backup_storage`` scrubbed from its message.
    """
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(method):
            continue
        setattr(cls, name, _translating(method))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except MilvusBackupError:
            raise
        except OSError as exc:
            locations = [
                loc
                for loc in (getattr(self, "milvus_storage", None), getattr(self, "backup_storage", None))
                if isinstance(loc, StorageLocation)
            ]
            where = f" {exc.filename}" if exc.filename else ""
            detail = scrub(f"{type(exc).__name__}{where}: {exc.strerror or exc}", *locations)
            raise StorageError(f"{method.__name__} failed on storage: {detail}") from exc

    return call


class Closable:
    """``close()`` ends the object (idempotent); ``with`` closes it on the way out. A method calls
    :meth:`_check_open` first, so that a call on a closed object raises :class:`UsageError`."""

    closed: bool = False

    def close(self) -> None:
        """End it: later calls raise :class:`UsageError`. Calling it again does nothing."""
        self.closed = True

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise UsageError(f"this {type(self).__name__} is closed; make a new one")


def backup_arguments(
    name: object,
    collections: object,
    strategy: object,
    storages: tuple[StorageLocation | None, StorageLocation],
    **flags: object,
) -> tuple[str, CollectionFilter, BackupStrategy]:
    """The checked name (a new default one for None), collection filter and strategy of a backup;
    ``flags`` must be bools, and the roots of the backup's ``storages`` (Milvus's, the backup root)
    must exist (Milvus's only when binlogs are copied: not for ``meta_only`` and ``logical``)."""
    for flag, value in flags.items():
        check_bool(flag, value)
    name = validate_backup_name(name) if name is not None else default_backup_name()
    selection, checked = collection_filter(collections), strategy_of(strategy)
    milvus_storage, backup_storage = storages
    if checked is BackupStrategy.LOGICAL and flags.get("resume"):
        raise InvalidOptionError(
            "resume",
            True,
            (False,),
            detail="with strategy='logical' (a logical backup is written whole: delete_backup() the "
            "unfinished one and back up again)",
        )
    backup_storage.check_root()
    if checked not in (BackupStrategy.META_ONLY, BackupStrategy.LOGICAL):
        need_milvus_storage(milvus_storage, f"strategy={checked.value!r}").check_root()
    return name, selection, checked


def check_bool(argument: str, value: object) -> bool:
    """``value`` if it is a bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise InvalidOptionTypeError(argument, value, (True, False))
    return value


def check_pause_gc(value: object) -> PauseGc:
    """``value`` if it is ``"auto"``, True or False."""
    if value == AUTO or isinstance(value, bool):
        return AUTO if value == AUTO else bool(value)
    choices = (AUTO, True, False)
    if isinstance(value, str):
        raise InvalidOptionError("pause_gc", value, choices)
    raise InvalidOptionTypeError("pause_gc", value, choices)


def check_seconds(argument: str, value: object, *, whole: bool = False) -> float:
    """``value`` if it is a finite number of seconds > 0 (with ``whole``, an int)."""
    choices = "a whole number of seconds > 0" if whole else "a finite number of seconds > 0"
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InvalidOptionTypeError(argument, value, choices)
    number = float(value)
    if not 0 < number < math.inf:  # also refuses NaN
        raise InvalidOptionError(argument, value, choices)
    return number


def strategy_of(value: object) -> BackupStrategy:
    """``value`` as a :class:`BackupStrategy` (a member or its value, ``"serial_flush"``...)."""
    return BackupStrategy(value)  # an unknown value raises InvalidOptionError listing the strategies


def collection_filter(value: object) -> CollectionFilter:
    """``value`` (None, a comma-separated string, or an iterable of strings) as a :class:`CollectionFilter`."""
    choices = "None (every collection), a comma-separated string, or an iterable of strings such as ['db1.c1', 'db2.*']"
    if value is None or isinstance(value, str):
        return CollectionFilter.parse(value)
    if not isinstance(value, Iterable):
        raise InvalidOptionTypeError("collections", value, choices)
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise InvalidOptionTypeError("collections", items, choices)
    return CollectionFilter.parse(items)


def progress_of(value: object) -> Progress:
    """``value`` if it is a :class:`Progress`; None is the one that ignores every event."""
    if value is None:
        return NULL_PROGRESS
    if not isinstance(value, Progress):
        raise InvalidOptionTypeError(
            "progress", value, "a Progress (subclass milvus_backup_lib.Progress) or None"
        )
    return value
