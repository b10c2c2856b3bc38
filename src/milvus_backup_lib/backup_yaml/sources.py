"""Where each raw value of a ``backup.yaml`` comes from, and how it parses.

A setting (:class:`_Field`) names its config keys and environment variables; :class:`_Sources` resolves
it as the Go tool does, ``--set`` > environment > file, and returns the raw value with its origin
(:class:`_Hit`) so every message can name the key, variable or ``--set`` entry. The parsers below turn a
hit into text, a boolean, a port or a host, and show the value only for non-secret settings. The file
itself reaches :class:`_Sources` flattened (:func:`_flatten`): one entry per key, nested or dotted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import attrs

from milvus_backup_lib.errors import InvalidConfigError

# --- sources -------------------------------------------------------------------------------------------


@attrs.frozen
class _Field:
    """One setting: its config keys in precedence order and its environment variables."""

    keys: tuple[str, ...]
    envs: tuple[str, ...] = ()
    #: The spelling used in messages when no source set the value.
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.keys[0]


@attrs.frozen
class _Hit:
    """A raw value and where it came from (a config key, an environment variable, a --set entry)."""

    value: Any
    origin: str
    default: bool = False


class _Sources:
    def __init__(
        self, flat: Mapping[str, tuple[str, Any]], env: Mapping[str, str], overrides: Mapping[str, str]
    ) -> None:
        self._file = flat
        self._env = env
        self._set = {str(key).strip().lower(): (str(key).strip(), value) for key, value in overrides.items()}

    def get(self, field: _Field) -> _Hit | None:
        for name in (*field.keys, *field.envs):
            found = self._set.get(name.lower())
            if found is not None:
                return _Hit(found[1], f"--set {found[0]}")
        for name in field.envs:
            value = self._env.get(name)
            if value:  # v0.5 ignored empty variables; an empty MINIO_PORT= must not mean "port ''"
                return _Hit(value, f"{name} (environment)")
        for key in field.keys:
            found = self._file.get(key.lower())
            if found is not None:
                return _Hit(found[1], found[0])
        return None


#: Deeper nesting than any milvus-backup config has: a sign of a mapping that contains itself.
_MAX_DEPTH = 32


def _flatten(
    prefix: str, value: Mapping[Any, Any], out: dict[str, tuple[str, Any]], _path: tuple[int, ...] = ()
) -> None:
    path = (*_path, id(value))
    for raw_key, child in value.items():
        key = f"{prefix}.{raw_key}" if prefix else str(raw_key)
        if isinstance(child, Mapping):
            # A YAML alias inside its own anchor (``a: &x {b: *x}``) makes a mapping that contains
            # itself: refuse it by name instead of recursing until Python's RecursionError.
            if id(child) in path or len(path) >= _MAX_DEPTH:
                raise InvalidConfigError(
                    f"{key}: the mapping contains itself (a YAML alias inside its own anchor, or nesting "
                    f"deeper than {_MAX_DEPTH} levels); write the keys out instead"
                )
            _flatten(key, child, out, path)
        elif child is not None:  # an empty YAML value (``rootPath:``) leaves the default, as in the Go tool
            lower = key.lower()
            if lower in out:
                raise InvalidConfigError(f"{key}: given twice (nested and dotted, or in another letter case)")
            out[lower] = (key, child)


# --- value parsing (messages show the value only for non-secret settings) -------------------------------

_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})
_PORT_RE = re.compile(r"[0-9]{1,5}")


def _text(hit: _Hit) -> str:
    value = hit.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidConfigError(f"{hit.origin}: expected a text value, got {type(value).__name__}")


def _bool(hit: _Hit) -> bool:
    value = hit.value
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidConfigError(f"{hit.origin}: {value!r} is not a boolean; use true or false")


def _port(hit: _Hit) -> int:
    value = hit.value
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and _PORT_RE.fullmatch(value.strip()):
        port = int(value.strip())
    if port is None or not 1 <= port <= 65535:
        hint = ""
        if isinstance(value, str) and value.startswith("tcp://"):
            hint = (
                "; Kubernetes sets such variables for a service of that name (upstream #197): unset it or"
                " use --set"
            )
        raise InvalidConfigError(f"{hit.origin}: {value!r} is not a port number (1-65535){hint}")
    return port


def _host(hit: _Hit) -> str:
    host = _text(hit).strip()
    if "://" in host or "/" in host:
        raise InvalidConfigError(
            f"{hit.origin}: {host!r} must be a host name or IP address, without scheme or path"
        )
    if ":" in host and not _is_ipv6(host.strip("[]")):
        raise InvalidConfigError(f"{hit.origin}: {host!r} must not include a port; the port has its own key")
    return host.strip("[]")


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


# --- YAML parse errors (messages never quote the file's text: a line may hold a password) --------------


def _yaml_error_message(name: str, exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or "not valid YAML"
    context = getattr(exc, "context", None)
    where = f"{name}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else name
    detail = f"{problem} ({context})" if context else str(problem)
    return f"{where}: {detail}"
