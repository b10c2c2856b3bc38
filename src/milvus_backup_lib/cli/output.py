"""What the command line prints: results (text or ``--json``), error lines, and the exit codes.

Results go to stdout (``--json``: one JSON document); errors are one ``error: <message>`` line on stderr.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import attrs

from milvus_backup_lib.errors import RestorePlanError, UsageError
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from milvus_backup_lib.cli.parser import Settings

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "USAGE_ERRORS",
    "CommandLineError",
    "Output",
    "one_line",
    "to_jsonable",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
#: Errors that mean the command line or the configuration is wrong, not the operation: bad names,
#: filters, configuration keys and option values (the library's UsageError group).
USAGE_ERRORS = (UsageError,)


class CommandLineError(Exception):
    """The command line cannot be used as given (exit code 2)."""


def to_jsonable(value: Any) -> Any:
    """attrs records, mappings and sequences as JSON values: datetimes in ISO 8601, enums by value,
    ``db.collection`` names as text, restore steps with their ``kind``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, QualifiedName):
        return str(value)
    if isinstance(value, StorageLocation):
        return value.url  # never the storage options: they hold credentials
    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        kind = getattr(type(value), "kind", None)
        if isinstance(kind, str):
            out["kind"] = kind
        for field in attrs.fields(type(value)):
            if not field.name.startswith("_"):
                out[field.name] = to_jsonable(getattr(value, field.name))
        return out
    if isinstance(value, Mapping):
        return {_json_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_key(key: Any) -> str:
    if isinstance(key, tuple):
        return ".".join(str(k) for k in key)
    return str(key)


@attrs.define
class Output:
    """Where a command's result and its error line go."""

    settings: Settings
    stdout: IO[str]
    stderr: IO[str]

    def result(self, text: str, data: Any) -> None:
        """Print ``text``, or ``data`` as JSON with ``--json``."""
        if self.settings.json:
            json.dump(to_jsonable(data), self.stdout, indent=2)
            self.stdout.write("\n")
        else:
            self.stdout.write(text.rstrip("\n") + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        """The ``error: <message>`` line on stderr."""
        self.stderr.write(f"error: {message}\n")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a refused restore: the conflicts that refused it)."""
    if isinstance(exc, RestorePlanError):
        return "restore refused, nothing was changed: " + "; ".join(exc.conflicts)
    return " ".join(str(exc).split()) or type(exc).__name__
