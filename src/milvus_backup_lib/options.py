"""What callers choose: connections, strategies, collection filters (frozen attrs records)."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn
from urllib.parse import unquote

import attrs

from milvus_backup_lib.errors import (
    InvalidFilterError,
    InvalidNameError,
    InvalidOptionError,
    InvalidOptionTypeError,
)

__all__ = [
    "DEFAULT_DATABASE",
    "BackupStrategy",
    "CollectionFilter",
    "MilvusConnection",
    "QualifiedName",
    "validate_collection_name",
    "validate_database_name",
]

DEFAULT_DATABASE = "default"
# Milvus's own rules: collection names start with a letter or '_', then letters, digits, '_' (<= 255);
# database names the same (<= 64).
_COLLECTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_collection_name(name: str) -> str:
    """Return ``name`` if Milvus accepts it as a collection name, else raise :class:`InvalidNameError`."""
    if not isinstance(name, str) or not _COLLECTION_RE.fullmatch(name) or len(name) > 255:
        raise InvalidNameError(
            f"invalid collection name {name!r}: use letters, digits and '_', not starting with a digit"
        )
    return name


def validate_database_name(name: str) -> str:
    """Return ``name`` if Milvus accepts it as a database name, else raise :class:`InvalidNameError`."""
    if not isinstance(name, str) or not _COLLECTION_RE.fullmatch(name) or len(name) > 64:
        raise InvalidNameError(
            f"invalid database name {name!r}: use letters, digits and '_', not starting with a digit"
        )
    return name


def _check_uri(instance: MilvusConnection, attribute: attrs.Attribute[Any], value: object) -> None:
    choices = "a non-empty string such as 'http://127.0.0.1:19530'"
    if not isinstance(value, str):  # only the type: a URI may hold a credential
        raise InvalidOptionTypeError("uri", value, choices, hide_value=True)
    if not value.strip():
        raise InvalidOptionError("uri", value, choices)


def _check_timeout(instance: MilvusConnection, attribute: attrs.Attribute[Any], value: object) -> None:
    choices = "a finite number of seconds > 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionTypeError("timeout", value, choices)
    if not 0 < value < math.inf:  # also refuses NaN
        raise InvalidOptionError("timeout", value, choices)


def _split_uri_credentials(uri: str) -> tuple[str, str | None, str | None, str | None]:
    """``uri`` without its ``user:password@`` or ``token@`` part, and the user, password and token in it.

    ``http://root:Milvus@host:19530`` gives ``("http://host:19530", "root", "Milvus", None)``;
    ``http://TOKEN@host:19530`` gives ``("http://host:19530", None, None, "TOKEN")``. Both are
    percent-decoded (``p%40ss`` is ``p@ss``). A URI without credentials is returned as it is.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    if "@" not in netloc:
        return uri, None, None, None
    userinfo, _, host = netloc.rpartition("@")
    clean = f"{scheme}{sep}{host}{tail}"
    if not userinfo:
        return clean, None, None, None
    if ":" in userinfo:
        user, _, password = userinfo.partition(":")
        return clean, unquote(user), unquote(password), None
    return clean, None, None, unquote(userinfo)


@attrs.frozen(repr=False)
class MilvusConnection:
    """How to reach a Milvus server. ``repr`` never shows the password or token.

    ``management_url`` is Milvus's HTTP management/metrics endpoint (port 9091 by default), used to
    pause garbage collection while a backup copies; ``None`` derives it from ``uri``'s host.
    A ``uri`` that is not a non-empty string or a ``timeout`` that is not a finite number of seconds > 0
    raises :class:`InvalidOptionError`.

    Credentials written into the URI are used and kept out of it: ``uri="http://user:pass@host:19530"``
    becomes ``uri="http://host:19530", user="user", password="pass"``, and ``http://TOKEN@host:19530``
    (no colon) sets ``token``. The same credentials given also as ``user=``, ``password=`` or
    ``token=`` are fine; different ones raise :class:`InvalidOptionError` (the message never shows
    them). ``password`` and ``token`` are stored privately (``_password``, ``_token``), so neither
    ``repr`` nor the CLI's JSON output of a record shows them.
    """

    uri: str = attrs.field(default="http://127.0.0.1:19530", validator=_check_uri)
    _token: str | None = attrs.field(default=None, alias="token")
    user: str | None = None
    _password: str | None = attrs.field(default=None, alias="password")
    management_url: str | None = None
    timeout: float = attrs.field(default=30.0, validator=_check_timeout)
    #: TLS: a CA bundle path for ``https://`` URIs (server verification).
    ca_cert_path: str | None = None
    server_name: str | None = None

    def __attrs_post_init__(self) -> None:
        uri, user, password, token = _split_uri_credentials(self.uri)
        if uri == self.uri:
            return
        given = {"user": self.user, "password": self._password, "token": self._token}
        found = {"user": user, "password": password, "token": token}
        in_uri = any(value is not None for value in found.values())
        conflicts = [
            key for key, value in given.items() if in_uri and value is not None and value != found[key]
        ]
        if conflicts:
            raise InvalidOptionError(
                "uri",
                self.uri,
                "credentials in one place: the uri's user:password@ (or token@), or the options",
                detail="with credentials that differ from " + ", ".join(f"{k}=" for k in conflicts),
                hide_value=True,
            )
        object.__setattr__(self, "uri", uri)
        for key, attribute in (("user", "user"), ("password", "_password"), ("token", "_token")):
            if found[key] is not None:
                object.__setattr__(self, attribute, found[key])

    @property
    def token(self) -> str | None:
        """The token (``user:password`` or an API key) sent to the server, or None."""
        return self._token

    @property
    def password(self) -> str | None:
        """The password sent with :attr:`user`, or None."""
        return self._password

    def __repr__(self) -> str:
        auth = ""
        if self.user:
            auth += f", user={self.user!r}, password=<hidden>"
        if self.token:
            auth += ", token=<hidden>"
        return f"MilvusConnection(uri={self.uri!r}{auth})"

    __str__ = __repr__


class BackupStrategy(str, enum.Enum):
    """How a backup gets a consistent view of each collection.

    ``BackupStrategy("bulk_flush")`` (any value that is not one of these) raises
    :class:`InvalidOptionError` listing the valid values.
    """

    #: Flush each collection, wait for the flush, then back up its flushed segments (default).
    SERIAL_FLUSH = "serial_flush"
    #: Back up only segments that are already flushed; rows still in memory are not included.
    SKIP_FLUSH = "skip_flush"
    #: Schema, partitions, indexes and aliases only, no data.
    META_ONLY = "meta_only"
    #: Rows read through the client (``query_iterator``) and stored as Parquet, with the usual meta:
    #: no access to Milvus's storage needed (Milvus Lite, managed clusters). The Go tool cannot restore it.
    LOGICAL = "logical"

    @classmethod
    def _missing_(cls, value: object) -> NoReturn:
        raise InvalidOptionError("strategy", value, [member.value for member in cls])


@attrs.frozen(order=True)
class QualifiedName:
    """``database.collection``."""

    database: str
    collection: str

    def __str__(self) -> str:
        return f"{self.database}.{self.collection}"

    @classmethod
    def parse(cls, text: str, default_database: str = DEFAULT_DATABASE) -> QualifiedName:
        """``db.coll`` or ``coll`` (in the default database)."""
        text = text.strip()
        if "." in text:
            db, _, coll = text.partition(".")
        else:
            db, coll = default_database, text
        try:
            return cls(validate_database_name(db), validate_collection_name(coll))
        except InvalidNameError as exc:
            raise InvalidFilterError(f"cannot parse {text!r} as db.collection: {exc}") from None


@attrs.frozen
class CollectionFilter:
    """Selects collections by ``db.coll``, ``coll`` (default database), ``db.*`` or ``db.`` (whole database).

    An empty filter (``CollectionFilter.all()``) selects every collection of every database.
    """

    collections: frozenset[QualifiedName] = frozenset()
    databases: frozenset[str] = frozenset()
    select_all: bool = False

    @classmethod
    def all(cls) -> CollectionFilter:
        """Every collection of every database."""
        return cls(select_all=True)

    @classmethod
    def parse(cls, patterns: Iterable[str] | str | None) -> CollectionFilter:
        """Parse filter entries; a string is split on commas (as the Go tool's ``--filter``)."""
        if patterns is None:
            return cls.all()
        if isinstance(patterns, str):
            patterns = [p for p in patterns.split(",")]
        colls: set[QualifiedName] = set()
        dbs: set[str] = set()
        items = [p.strip() for p in patterns]
        if not items or any(not p for p in items):
            raise InvalidFilterError(f"empty entry in collection filter {list(items)!r}")
        for item in items:
            if item.endswith(".*") or item.endswith("."):
                db = item[:-2] if item.endswith(".*") else item[:-1]
                try:
                    dbs.add(validate_database_name(db))
                except InvalidNameError as exc:
                    raise InvalidFilterError(f"cannot parse filter entry {item!r}: {exc}") from None
            elif item == "*":
                return cls.all()
            else:
                colls.add(QualifiedName.parse(item))
        return cls(frozenset(colls), frozenset(dbs))

    def matches(self, name: QualifiedName) -> bool:
        """Whether the filter selects ``name``."""
        return self.select_all or name.database in self.databases or name in self.collections

    def explicit_names(self) -> Sequence[QualifiedName]:
        """Collections named one by one (they must exist)."""
        return sorted(self.collections)
