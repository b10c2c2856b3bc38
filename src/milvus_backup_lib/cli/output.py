"""What the command line prints: results (text or ``--json``), error lines, notes, and the exit codes.

Results go to stdout (``--json``: one JSON document); errors are one ``error: <message>`` line on stderr,
notes (a v0.5 spelling, a flag accepted without effect) one ``note: <message>`` line.

The library's messages speak Python: they name arguments (``drop_existing``, ``resume=True``,
``delete_backup()``). On the command line :func:`cli_message` rewrites them into flags and commands
through the small table :data:`CLI_VOCABULARY`; the library's messages themselves stay as they are.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import attrs

from milvus_backup_lib.errors import RestorePlanError, UsageError
from milvus_backup_lib.manifest.codec import to_json_obj
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from milvus_backup_lib.backup.report import BackupReport
    from milvus_backup_lib.cli.parser import Settings
    from milvus_backup_lib.manifest.model import BackupInfo
    from milvus_backup_lib.repository.store import BackupSummary

__all__ = [
    "CLI_VOCABULARY",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "USAGE_ERRORS",
    "CommandLineError",
    "Output",
    "cli_message",
    "go_json",
    "one_line",
    "report_data",
    "stored_text",
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
    """attrs records, mappings and sequences as JSON values: datetimes in ISO 8601, durations in seconds,
    enums by value, ``db.collection`` names as text, restore steps with their ``kind``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return round(value.total_seconds(), 3)
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
            # repr=False marks a secret (an encryption-zone key): never printed
            if not field.name.startswith("_") and field.repr is not False:
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


_GO_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(info: BackupInfo) -> str:
    """``info`` as the Go tool's ``get -d`` prints it: encoding/json's ``MarshalIndent(info, "", "    ")``
    of its BackupInfo (snake_case keys, zero values left out, ``<``, ``>``, ``&`` escaped); the keys and
    values are those of the backup's ``full_meta.json``, except that an encryption-zone key (``ezk``) is
    shown as ``***``: it is a secret."""
    if any(db.ezk for db in info.database_backups):
        hidden = tuple(attrs.evolve(db, ezk="***" if db.ezk else "") for db in info.database_backups)
        info = attrs.evolve(info, database_backups=hidden)
    return json.dumps(to_json_obj(info), indent=4, ensure_ascii=False).translate(_GO_HTML_ESCAPES)


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

    def raw(self, text: str) -> None:
        """Print ``text`` as it is (already in its final form, JSON or not)."""
        self.stdout.write(text.rstrip("\n") + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        """The ``error: <message>`` line on stderr."""
        self.stderr.write(f"error: {message}\n")

    def note(self, message: str) -> None:
        """A ``note: <message>`` line on stderr (none with ``-q``)."""
        if not self.settings.quiet:
            self.stderr.write(f"note: {message}\n")
            self.stderr.flush()


#: ``(pattern, replacement)``: library wording -> command-line wording, applied in order. ``{name}`` is
#: the backup name of the command (``NAME`` when it has none).
CLI_VOCABULARY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bor (?:call )?(?:BackupClient\.)?delete_backup\(\)"), "or run delete -n {name}"),
    (re.compile(r"\b(?:BackupClient\.)?delete_backup\(\)"), "delete -n {name}"),
    (re.compile(r"\bcreate_backup\([^)]*resume=True\)"), "create --resume"),
    (re.compile(r"\bkept for resume=True\b"), "kept for create --resume"),
    (re.compile(r"\bresume=True\b"), "--resume"),
    (re.compile(r"\bdrop_existing(?:=True)?"), "--drop_exist_collection"),
    (re.compile(r"\bskip_create(?:=True)?"), "--skip_create_collection"),
    (re.compile(r"\brebuild_indexes is off\b"), "--no-rebuild-index was given"),
    (re.compile(r"\brebuild_indexes=False\b"), "--no-rebuild-index"),
    (re.compile(r"\brestore_aliases is off\b"), "--no-aliases was given"),
    (re.compile(r"\brestore_aliases=False\b"), "--no-aliases"),
    (re.compile(r"\bmade without rbac=True\b"), "made without create --rbac"),
    (re.compile(r"\brbac=True\b"), "--rbac"),
    (re.compile(r"\bpause_gc=[\"']auto[\"']"), "--pause_gc auto"),
    (re.compile(r"\bpause_gc=True\b"), "--pause_gc true"),
    (re.compile(r"\bpause_gc=False\b"), "--pause_gc false"),
    (re.compile(r"\bmanagement_url=\"([^\"]*)\""), r"--set backup.gcPause.address=\1"),
    (re.compile(r"\bmeta_only=True\b"), "--meta_only"),
    (re.compile(r"\bdry_run=True\b"), "--dry_run"),
    (re.compile(r"\bset (--[\w-]+) or (--[\w-]+)"), r"pass \1 or \2"),
    # A same-cluster restore with aliases (the default) finds them pointing to the originals.
    (
        re.compile(r"^(alias \S+ (?:in database \S+ already points to|in database \S+ is wanted by|of ).*)$"),
        r"\1; pass --no-aliases to restore without the backed-up aliases",
    ),
)


def cli_message(message: str, name: str | None = None) -> str:
    """``message`` in the vocabulary of the command line (flags and commands, not Python arguments)."""
    for pattern, replacement in CLI_VOCABULARY:
        message = pattern.sub(replacement.replace("{name}", name or "NAME"), message)
    return message


def one_line(exc: BaseException, name: str | None = None) -> str:
    """The message of ``exc`` on one line, in the command line's vocabulary (a refused restore: the
    conflicts that refused it). ``name`` is the backup name of the command, for the hints."""
    if isinstance(exc, RestorePlanError):
        conflicts = (cli_message(" ".join(c.split()), name) for c in exc.conflicts)
        return "restore refused, nothing was changed: " + "; ".join(conflicts)
    # Notes (a failed restore says which collections it dropped or left) belong to the message.
    text = " ".join([str(exc), *getattr(exc, "__notes__", ())])
    return cli_message(" ".join(text.split()), name) or type(exc).__name__


def stored_text(summary: BackupSummary) -> str:
    """How backup ``summary`` is stored, for an incremental one: its base and what it reuses (whether
    it is self-contained is :func:`~milvus_backup_lib.cli.prune.storage_line`'s)."""
    if not summary.base and summary.self_contained:
        return ""
    lines = [f"base: {summary.base}"]
    if not summary.self_contained:
        lines.append(
            f"reused: {summary.reused_files} files, {summary.reused_bytes} bytes stored by earlier backups"
        )
    return "\n\n" + "\n".join(lines)


def report_data(report: BackupReport) -> dict[str, Any]:
    """The JSON of ``create``: what :class:`BackupReport` says."""
    return {
        "name": report.name,
        "strategy": report.strategy,
        "collections": report.collections,
        "files": report.files,
        "bytes_copied": report.bytes_copied,
        "size": report.info.size,
        "server_side_copy": report.server_side_copy,
        "gc": report.gc,
        "seconds": round(report.seconds, 3),
        "copy_seconds": round(report.copy_seconds, 3),
        "resumed_files": report.resumed_files,
        "resumed_bytes": report.resumed_bytes,
        "base": report.base,
        "reused_files": report.reused_files,
        "reused_bytes": report.reused_bytes,
        "self_contained": report.self_contained,
    }
