"""Storage locations: an fsspec URL plus options, with credentials kept out of every repr."""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Mapping
from typing import Any

import attrs
import fsspec
from fsspec.core import split_protocol

from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.retry import call_with_retries
from milvus_backup_lib.storage import diagnose
from milvus_backup_lib.storage._io import (
    bulk_delete_s3,
    single_request_read,
    with_default_timeouts,
    write_local_atomically,
)

__all__ = ["StorageLocation"]

_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_GCS_PROTOCOLS = frozenset({"gs", "gcs"})
_AZURE_PROTOCOLS = frozenset({"az", "abfs", "abfss"})
#: Names fsspec registers for one filesystem class: locations under either are in the same store.
_PROTOCOL_ALIASES = {"local": "file", "gcs": "gs", "abfs": "az", "abfss": "az", "s3a": "s3"}
#: Parts of an Azure Storage connection string that are credentials.
_CONNECTION_STRING_SECRET_PARTS = frozenset({"accountkey", "sharedaccesssignature", "sharedaccesskey"})
_fs_cache_lock = threading.Lock()


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return repr(value)


def _to_dict(options: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(options or {})


@attrs.frozen(repr=False, eq=False)
class StorageLocation:
    """A place in any fsspec filesystem: ``file:///srv/backups``, ``s3://bucket/root``, ``memory://x``.

    ``storage_options`` are passed to the fsspec filesystem (credentials, endpoints); they never appear
    in ``repr`` or in error messages. A plain path without a scheme means the local filesystem.
    ``filesystem`` (keyword only) is a ready filesystem instance for ``url``'s protocol to use instead of
    building one from the options (tests wrap one to inject faults).
    """

    url: str
    storage_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_dict)
    _filesystem: fsspec.AbstractFileSystem | None = attrs.field(default=None, kw_only=True)
    _state: dict[str, Any] = attrs.field(factory=dict, init=False)

    def __repr__(self) -> str:
        hidden = f", storage_options=<{len(self.storage_options)} hidden>" if self.storage_options else ""
        return f"StorageLocation({self.url!r}{hidden})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StorageLocation):
            return NotImplemented
        return self.url == other.url and self.same_store(other)

    def __hash__(self) -> int:
        return hash((self.url, self.protocol))

    @property
    def protocol(self) -> str:
        """The fsspec protocol (``file``, ``s3``, ``gs``, ``az``, ``memory``, ...)."""
        protocol, _ = split_protocol(self.url)
        return (protocol or "file").lower()

    @property
    def is_local(self) -> bool:
        """Whether this is the local filesystem."""
        return self.protocol in _LOCAL_PROTOCOLS

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem (created once per location)."""
        with _fs_cache_lock:
            fs = self._state.get("fs", self._filesystem)
            if fs is None:
                try:
                    options = with_default_timeouts(self.protocol, self.storage_options)
                    fs = _filesystem_class(self.protocol, self.storage_options)(**options)
                except (ImportError, ValueError) as exc:
                    raise StorageError(
                        f"cannot open storage {self.url!r}: {type(exc).__name__}: {_scrub(str(exc), self)}"
                    ) from None
                self._state["fs"] = fs
            return fs

    @property
    def root(self) -> str:
        """The root path inside the filesystem (no trailing slash)."""
        root = self._state.get("root")
        if root is None:
            fs_cls = type(self.fs)
            root = fs_cls._strip_protocol(self.url)
            if isinstance(root, list):  # pragma: no cover - fsspec never returns a list for one URL
                root = root[0]
            root = str(root).rstrip("/") or ("/" if self.is_local else "")
            self._state["root"] = root
        return str(root)

    @property
    def bucket(self) -> str:
        """For object stores, the bucket (first path element); for local storage, ``""``."""
        if self.is_local or self.protocol == "memory":
            return ""
        return self.root.split("/", 1)[0]

    def join(self, *parts: str) -> str:
        """The filesystem path of ``parts`` below the root."""
        cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
        return posixpath.join(self.root, *cleaned) if cleaned else self.root

    def relative(self, path: str) -> str:
        """``path`` relative to the root."""
        root = self.root.rstrip("/") + "/"
        if not path.startswith(root):
            raise ValueError(f"{path!r} is not below {self.root!r}")
        return path[len(root) :]

    def bucket_key(self, path: str) -> str:
        """``path`` as the upstream tool records it: the key inside the bucket; on local disk and in
        memory, the path relative to the root (never absolute, like upstream's bucket keys)."""
        if self.is_local or self.protocol == "memory":
            root = self.root.rstrip("/") + "/"
            return path[len(root) :] if path.startswith(root) else path.lstrip("/")
        return path.split("/", 1)[1] if "/" in path else ""

    def same_store(self, other: StorageLocation) -> bool:
        """Whether both locations are in the same store with the same credentials (server-side copy works).

        True only for the same protocol (``gs``/``gcs``, ``az``/``abfs``/``abfss`` count as one) and equal
        ``storage_options``; the local disk and the in-process memory store need no options.
        """
        protocol = _PROTOCOL_ALIASES.get(self.protocol, self.protocol)
        if protocol != _PROTOCOL_ALIASES.get(other.protocol, other.protocol):
            return False
        if self.protocol in _LOCAL_PROTOCOLS or self.protocol == "memory":
            return True
        if self._filesystem is not other._filesystem:  # given filesystems hold credentials we cannot see
            return False
        return bool(_freeze(self.storage_options) == _freeze(other.storage_options))

    def find_files(self, path: str) -> dict[str, dict[str, Any]]:
        """Every file below ``path`` with its details (``size``...), raising on any listing error.

        Why not plain ``fs.find``: on filesystems with real directories fsspec walks the tree and
        silently leaves out a directory it fails to list (its ``on_error="raise"`` is not passed down
        the recursion in fsspec 2026.9), so a transient error would look like missing files; a
        fault-injection test caught a segment that seemed to lack binlogs. Object stores list a prefix
        flat, in pages, and their errors propagate.
        """
        fs = self.fs
        if fs.async_impl:
            found = fs.find(path, detail=True)
            return {str(k): v for k, v in found.items() if v.get("type", "file") == "file"}
        root = str(fs._strip_protocol(path)).rstrip("/") or "/"
        out: dict[str, dict[str, Any]] = {}
        pending = [root]
        while pending:
            current = pending.pop()
            # one retry per listing: a whole tree of them rarely gets through a flaky network at once
            for entry in call_with_retries(f"list {current}", fs.ls, current, detail=True):
                name = str(entry["name"]).rstrip("/")
                if entry.get("type") == "directory":
                    if name != current:
                        pending.append(name)
                else:
                    out[name] = entry
        return out

    # -- the storage funnel: every read, write, listing, removal and probe of the library -------------
    # Each call is retried while it fails transiently; any other failure is a StorageError naming the
    # path, with credentials scrubbed. A missing file is FileNotFoundError (or an empty answer where
    # the method says so), never a StorageError.

    def scrubbed(self, text: str) -> str:
        """``text`` without any credential of this location."""
        return _scrub(text, self)

    def _failure(self, action: str, path: str, exc: Exception) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        specific = diagnose.classify(self, action, path, exc)
        if specific is not None:
            return specific
        return StorageError(
            f"cannot {action} {path} in {self.url}: {type(exc).__name__}: {_scrub(str(exc), self)}"
        )

    def _reach(self) -> None:
        """Fail within seconds, naming the endpoint, when the store does not answer at all."""
        diagnose.check_reachable(self)

    def read_bytes(self, path: str) -> bytes:
        """The whole content of a (small) file; raises ``FileNotFoundError`` when it does not exist."""
        self._reach()
        try:
            fs = self.fs
            return bytes(call_with_retries(f"read {path}", fs.cat_file, path, **single_request_read(fs)))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self._failure("read", path, exc) from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a (small) file whole, creating its directory on local disk.

        On local disk the write is crash-safe: the data goes to a temporary name in the same directory,
        is fsynced, renamed over ``path``, and the directory is fsynced; a crash leaves the old file or
        the new one, never a torn or empty one.
        """
        self._reach()
        try:
            if self.is_local:
                write_local_atomically(path, data)
            else:
                call_with_retries(f"write {path}", self.fs.pipe_file, path, data)
        except Exception as exc:
            raise self._failure("write", path, exc) from exc

    def exists(self, path: str) -> bool:
        """Whether a file (or directory) exists at ``path``."""
        self._reach()
        try:
            return bool(call_with_retries(f"look for {path}", self.fs.exists, path))
        except Exception as exc:
            raise self._failure("look for", path, exc) from exc

    def list_files(self, path: str, *, fresh: bool = False) -> dict[str, int]:
        """Path -> size of every file below ``path`` (empty when nothing is there).

        ``fresh`` drops the filesystem's listing cache first (s3fs, gcsfs and adlfs keep one).
        """
        self._reach()
        try:
            if fresh:
                self.fs.invalidate_cache(path)
            found = call_with_retries(f"list {path}", self.find_files, path)
        except FileNotFoundError:
            return {}
        except Exception as exc:
            raise self._failure("list", path, exc) from exc
        return {str(k): int(v.get("size") or 0) for k, v in found.items()}

    def has_anything(self, path: str) -> bool:
        """Whether any object at all is stored at or below ``path``."""
        self._reach()
        fs = self.fs
        try:
            if not fs.exists(path):
                return False
            return bool(fs.find(path, maxdepth=None)) or bool(fs.ls(path, detail=False))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._failure("look at", path, exc) from exc

    def remove_file(self, path: str) -> None:
        """Remove one file; a file that is already gone is fine."""
        self._reach()
        try:
            call_with_retries(f"remove {path}", self.fs.rm_file, path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._failure("remove", path, exc) from exc

    def remove_tree(self, path: str) -> None:
        """Remove everything at and below ``path``; nothing there is fine.

        The removal is confirmed: on S3 each key the bulk delete reports as failed is named (s3fs's
        ``rm`` ignores them), and on object stores the prefix is listed again afterwards; anything
        left raises :class:`StorageError` naming it.
        """
        self._reach()
        fs = self.fs
        try:
            if self.protocol in ("s3", "s3a") and hasattr(fs, "call_s3"):
                bulk_delete_s3(self, path)
            elif fs.exists(path):
                call_with_retries(f"remove {path}", fs.rm, path, recursive=True)
            left = [] if self.is_local and not fs.exists(path) else sorted(self.list_files(path, fresh=True))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._failure("remove", path, exc) from exc
        if left:
            shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            raise StorageError(
                f"could not remove everything under {path} in {self.url}: {len(left)} file(s) left "
                f"({shown}); check the credentials' delete permission and any retention or legal hold "
                "on the bucket, then delete again"
            )

    def check_root(self) -> None:
        """Raise :class:`StorageRootNotFoundError` if the root (directory, bucket, container) does not exist.

        On object stores only the bucket (Azure: container) must exist: keys below it need no directory.
        Raises :class:`BucketNotFoundError` (a :class:`StorageRootNotFoundError`) for a missing bucket,
        :class:`StorageCredentialsError` when the store refuses the credentials, and
        :class:`StorageUnreachableError` (within seconds, naming the endpoint) when it does not answer.
        """
        self._check(root_must_hold=False)

    def check_listable(self) -> None:
        """Like :meth:`check_root`, and on object stores the root prefix must hold something: a root
        that is absent or holds nothing raises :class:`StorageRootNotFoundError` (listing it would
        wrongly say "no backups"). A bucket root (``s3://bucket``) may be empty."""
        self._check(root_must_hold=True)

    def _check(self, *, root_must_hold: bool) -> None:
        if not (self.is_local or self.protocol == "memory"):
            self.fs.invalidate_cache(self.bucket)  # s3fs/gcsfs/adlfs cache listings: ask the store now
        try:
            diagnose.probe_root(self, root_must_hold=root_must_hold)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"cannot reach storage {self.url!r}: {type(exc).__name__}: {_scrub(str(exc), self)}"
            ) from None


def _filesystem_class(protocol: str, options: Mapping[str, Any]) -> type[fsspec.AbstractFileSystem]:
    if protocol in _GCS_PROTOCOLS and options.get("endpoint_url"):
        # gcsfs 2026.x registers ExtendedGcsFileSystem for gs:// unless GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT
        # is false when gcsfs is imported. It asks a gRPC control API for each bucket's type, which GCS
        # emulators and other custom endpoints do not serve: against fake-gcs-server every call waited
        # 60 s ("Could not determine bucket type ... falling back to GCSFileSystem"). With a custom
        # endpoint the plain JSON-API filesystem is what runs in the end anyway, so use it directly.
        from gcsfs.core import GCSFileSystem

        gcs_class: type[fsspec.AbstractFileSystem] = GCSFileSystem
        return gcs_class
    fs_class: type[fsspec.AbstractFileSystem] = fsspec.get_filesystem_class(protocol)
    return fs_class


def _scrub(text: str, location: StorageLocation) -> str:
    """Remove any credential value of ``location`` from ``text``."""
    for value in _secret_values(location.storage_options):
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


#: Parts of an option's name that make its value a credential (``key``, ``secret``,
#: ``aws_secret_access_key``, ``token``, ``session_token``, ``sas_token``, ``password``,
#: ``account_key``, ``connection_string``, ``credentials``, ``client_secret``...). Other options
#: (``endpoint_url``, ``region_name``, ``account_name``, ``project``) are not secrets: error messages
#: keep them, since the endpoint is what a user needs to see.
_SECRET_NAME_PARTS = (
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "connection_string",
    "sas",
    "auth",
)


def _is_secret_name(name: object) -> bool:
    lowered = str(name).lower()
    return any(part in lowered for part in _SECRET_NAME_PARTS)


def _all_strings(value: Any) -> list[str]:
    """Every string in ``value`` (a credential given as a mapping or list, such as GCS's ``token``)."""
    if isinstance(value, str):
        return [value, *_connection_string_secrets(value)]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _all_strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _all_strings(v)]
    return []


def _secret_values(options: Mapping[str, Any]) -> list[str]:
    """The credential values among ``options``, found by their names, at any depth (``client_kwargs``)."""
    values: list[str] = []
    for name, value in options.items():
        if _is_secret_name(name):
            values.extend(_all_strings(value))
        elif isinstance(value, Mapping):
            values.extend(_secret_values(value))
        elif isinstance(value, str):
            values.extend(_connection_string_secrets(value))  # an AccountKey=... in any string
    return values


def _connection_string_secrets(value: str) -> list[str]:
    """The key and SAS parts of an Azure connection string: messages may quote them without the rest."""
    secrets = []
    for part in value.split(";"):
        name, equals, secret = part.partition("=")
        if equals and name.strip().lower() in _CONNECTION_STRING_SECRET_PARTS:
            secrets.append(secret.strip())
    return secrets


def scrub(text: str, *locations: StorageLocation) -> str:
    """Remove every storage credential of ``locations`` from ``text`` (for error messages and logs)."""
    for location in locations:
        text = _scrub(text, location)
    return text
