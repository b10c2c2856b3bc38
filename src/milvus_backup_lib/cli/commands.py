"""The command line: ``milvus-backup-lib`` (or ``python -m milvus_backup_lib``), a thin layer over BackupClient.

Commands and flags are those of the Go tool milvus-backup, reading the same ``backup.yaml`` (v1, or
``configVersion: v2``), so a script written for one runs with the other::

    milvus-backup-lib [--config backup.yaml] [--set KEY=VALUE]... [--json] [-v|-q] COMMAND ...

    create  -n NAME [--filter "db1.c1,c2,db2.*"] [--strategy serial_flush|skip_flush|meta_only]
    list
    get     -n NAME
    delete  -n NAME
    restore -n NAME [-s SUFFIX] [-r "db1.c1:db2.c2,c3:c4,db3.*:db4.*"] [--filter ...]
            [--drop_exist_collection] [--skip_create_collection] [--meta_only]
            [--rebuild_index | --no-rebuild-index] [--no-aliases] [--dry_run]
    check   connect to Milvus, write/read/delete a probe object in both storages
    verify  -n NAME [--level exists|size]   (our own: every binlog of the manifest is in the backup)

As in the Go tool, ``restore --filter`` selects by target name, after ``--suffix``/``--rename``.
Exit codes: 0 success, 1 failure (``error: <message>`` on stderr), 2 bad usage or configuration.
Results go to stdout (``--json``: one JSON document); progress, logs and errors go to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

import attrs

from milvus_backup_lib._version import __version__
from milvus_backup_lib.backup_yaml import ToolConfig, from_milvus_backup_config, load_config_file
from milvus_backup_lib.cli.progress import TqdmLoggingHandler, TqdmProgress
from milvus_backup_lib.client import BackupClient
from milvus_backup_lib.errors import (
    InvalidConfigError,
    InvalidFilterError,
    InvalidNameError,
    MilvusBackupError,
    RestorePlanError,
    StorageError,
)
from milvus_backup_lib.milvus.grpc import GrpcMilvus
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, QualifiedName
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.storage.location import StorageLocation, scrub

if TYPE_CHECKING:
    from milvus_backup_lib.manifest.model import BackupInfo

__all__ = ["main"]

log = logging.getLogger("milvus_backup_lib.cli")

PROG = "milvus-backup-lib"
DEFAULT_CONFIG = "backup.yaml"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: Errors that mean the command line or the configuration is wrong, not the operation.
_USAGE_ERRORS = (InvalidConfigError, InvalidNameError, InvalidFilterError)
_VERIFY_LEVELS = ("exists", "size", "checksum")


class UsageError(Exception):
    """The command line cannot be used as given (exit code 2)."""


# --- argument parsing -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _add_global_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # The global options are accepted before and after the command, as cobra's persistent flags are.
    # After the command they land in separate ``*_sub`` attributes (or stay unset), because argparse
    # copies a subparser's defaults over the main parser's values.
    suffix = "_sub" if sub else ""
    default: Any = argparse.SUPPRESS if sub else None
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help=f"the Go tool's config file, v1 or configVersion v2 (default: ./{DEFAULT_CONFIG})",
    )
    group.add_argument(
        "--set",
        dest=f"set{suffix}",
        metavar="KEY=VALUE",
        action="append",
        default=default if sub else [],
        help="override a config key or a credential variable (repeatable); wins over env and file",
    )
    group.add_argument(
        "--json", action="store_true", default=default if sub else False, help="machine-readable output"
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest=f"verbose{suffix}",
        action="count",
        default=default if sub else 0,
        help="more log output: -v info, -vv debug, -vvv debug of every library used",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if sub else False,
        help="no progress, only errors",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``milvus-backup-lib`` command."""
    parser = _Parser(
        prog=PROG,
        description="Back up and restore Milvus collections (milvus-backup v0.5 layout, any fsspec storage).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, sub=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_global_options(sub, sub=True)
        return sub

    def name_option(sub: argparse.ArgumentParser, *, required: bool = True) -> None:
        sub.add_argument("-n", "--name", required=required, help="the backup name")

    create = command("create", "back up collections")
    name_option(create, required=False)
    create.add_argument(
        "--filter",
        metavar="LIST",
        help='collections to back up: "db1.c1,c2,db2.*" (c2: default database; default: everything)',
    )
    create.add_argument(
        "--strategy",
        choices=[s.value for s in BackupStrategy],
        default=BackupStrategy.SERIAL_FLUSH.value,
        help="serial_flush (default): flush, then back up; skip_flush: flushed data only; meta_only: no data",
    )
    create.add_argument(
        "--rbac", action="store_true", help="also back up users (without passwords), roles and grants"
    )
    create.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted backup of this name (copies only what is missing)",
    )
    create.set_defaults(handler=_cmd_create)

    command("list", "list the complete backups").set_defaults(handler=_cmd_list)

    get = command("get", "describe one backup")
    name_option(get)
    get.set_defaults(handler=_cmd_get)

    delete = command("delete", "delete one backup")
    name_option(delete)
    delete.set_defaults(handler=_cmd_delete)

    restore = command("restore", "restore a backup into the Milvus of the config")
    name_option(restore)
    restore.add_argument("-s", "--suffix", default="", help="restore c1 as c1_SUFFIX")
    restore.add_argument(
        "-r", "--rename", metavar="MAP", help='target names: "db1.c1:db2.c2,c3:c4,db3.*:db4.*"'
    )
    restore.add_argument(
        "--filter",
        metavar="LIST",
        help='collections to restore, by target name (after renaming): "db1.c1,c2,db2.*"',
    )
    restore.add_argument(
        "--drop_exist_collection",
        "--drop-exist-collection",
        dest="drop_existing",
        action="store_true",
        help="drop a target collection that exists, then create it again",
    )
    restore.add_argument(
        "--skip_create_collection",
        "--skip-create-collection",
        dest="skip_create",
        action="store_true",
        help="import into target collections that already exist",
    )
    restore.add_argument(
        "--meta_only",
        "--meta-only",
        dest="meta_only",
        action="store_true",
        help="schema, partitions, indexes and aliases only",
    )
    restore.add_argument(
        "--rebuild_index",
        "--rebuild-index",
        dest="rebuild_indexes",
        action="store_true",
        default=True,
        help="create the backed-up indexes (the default here; the Go tool's default is off)",
    )
    restore.add_argument(
        "--no-rebuild-index",
        "--no_rebuild_index",
        dest="rebuild_indexes",
        action="store_false",
        help="create no index (the collections cannot be loaded then)",
    )
    restore.add_argument(
        "--no-aliases",
        "--no_aliases",
        dest="restore_aliases",
        action="store_false",
        help="do not create the backed-up aliases (needed when they still point to the originals)",
    )
    restore.add_argument(
        "--dry_run", "--dry-run", dest="dry_run", action="store_true", help="print the plan, change nothing"
    )
    restore.set_defaults(handler=_cmd_restore)

    command("check", "check the connection to Milvus and access to both storages").set_defaults(
        handler=_cmd_check
    )

    verify = command("verify", "check that every binlog of a backup is in the backup storage")
    name_option(verify)
    verify.add_argument(
        "--level",
        choices=_VERIFY_LEVELS,
        default="size",
        help="exists: each file is there; size (default): with the size the manifest records",
    )
    verify.set_defaults(handler=_cmd_verify)
    return parser


@attrs.frozen
class Settings:
    """The global options, merged from before and after the command."""

    config: str | None
    set_values: tuple[str, ...]
    json: bool
    verbose: int
    quiet: bool


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        config=args.config,
        set_values=(*args.set, *getattr(args, "set_sub", ())),
        json=args.json,
        verbose=args.verbose + getattr(args, "verbose_sub", 0),
        quiet=args.quiet,
    )


# --- logging, output ----------------------------------------------------------------------------------


def configure_logging(settings: Settings, stream: IO[str]) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv (-vvv: every library's DEBUG too), ERROR with -q.

    The level applies to this library's loggers; other libraries (pymilvus, grpc, fsspec) stay at WARNING
    unless -vvv. Records go to ``stream`` (stderr) through tqdm, so they do not break progress bars.
    """
    if settings.quiet:
        level, root_level = logging.ERROR, logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(settings.verbose, logging.DEBUG)
        root_level = logging.DEBUG if settings.verbose >= 3 else logging.WARNING
    handler = TqdmLoggingHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, TqdmLoggingHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(root_level)
    logging.getLogger("milvus_backup_lib").setLevel(level)


def make_progress(settings: Settings, stream: IO[str]) -> Progress:
    """No progress with -q; tqdm bars when ``stream`` is a terminal; log lines otherwise."""
    if settings.quiet:
        return NULL_PROGRESS
    return TqdmProgress(bars=_isatty(stream), stream=stream)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


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
class _Output:
    settings: Settings
    stdout: IO[str]

    def result(self, text: str, data: Any) -> None:
        """Print ``text``, or ``data`` as JSON with ``--json``."""
        if self.settings.json:
            json.dump(to_jsonable(data), self.stdout, indent=2)
            self.stdout.write("\n")
        else:
            self.stdout.write(text.rstrip("\n") + "\n")
        self.stdout.flush()


# --- configuration ------------------------------------------------------------------------------------


def load_tool_config(settings: Settings) -> ToolConfig:
    """The config file (``--config``, else ``./backup.yaml``) with the environment and ``--set`` applied."""
    path = settings.config
    if path is None:
        if not os.path.isfile(DEFAULT_CONFIG):
            raise UsageError(
                f"no config file: pass --config FILE or put {DEFAULT_CONFIG} in the current directory"
            )
        path = DEFAULT_CONFIG
    overrides: dict[str, str] = {}
    for entry in settings.set_values:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {entry.split('=', 1)[0]!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    tool = from_milvus_backup_config(load_config_file(path), env=None, set_values=overrides)
    if tool.milvus_local_path:
        log.warning(
            "milvus.storage.localPath (%s) differs from rootPath: restores hand Milvus the paths this"
            " process sees below rootPath",
            tool.milvus_local_path,
        )
    return tool


def _client(tool: ToolConfig) -> BackupClient:
    return BackupClient(
        milvus=tool.milvus,
        milvus_storage=tool.milvus_storage,
        backup_storage=tool.backup_storage,
        pause_gc=tool.pause_gc,
    )


# --- commands ------------------------------------------------------------------------------------------


@attrs.define
class _Context:
    args: argparse.Namespace
    settings: Settings
    out: _Output
    stderr: IO[str]

    def config(self) -> ToolConfig:
        return load_tool_config(self.settings)

    def progress(self) -> Progress:
        return make_progress(self.settings, self.stderr)


def _close(progress: Progress) -> None:
    if isinstance(progress, TqdmProgress):
        progress.close()


def _cmd_create(ctx: _Context) -> int:
    client = _client(ctx.config())
    progress = ctx.progress()
    try:
        report = client.create_backup(
            ctx.args.name,
            ctx.args.filter or None,
            strategy=ctx.args.strategy,
            progress=progress,
            rbac=ctx.args.rbac,
            resume=ctx.args.resume,
        )
    finally:
        _close(progress)
    data = {
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
    }
    ctx.out.result(report.table(), data)
    return EXIT_OK


def _cmd_list(ctx: _Context) -> int:
    backups = _client(ctx.config()).list_backups()
    ctx.out.result(backups.table(), list(backups))
    return EXIT_OK


def _cmd_get(ctx: _Context) -> int:
    info = _client(ctx.config()).get_backup(ctx.args.name)
    ctx.out.result(info.table(), info)
    return EXIT_OK


def _cmd_delete(ctx: _Context) -> int:
    _client(ctx.config()).delete_backup(ctx.args.name)
    ctx.out.result(f"backup {ctx.args.name} deleted", {"name": ctx.args.name, "deleted": True})
    return EXIT_OK


def restore_sources(info: BackupInfo, options: RestoreOptions, target_filter: str) -> list[str]:
    """The backed-up collections whose target name (after suffix and renames) ``target_filter`` selects.

    The Go tool's ``restore --filter`` applies to target names; :class:`RestoreOptions` filters
    source names, so the CLI translates. Raises :class:`InvalidFilterError` if an entry of the filter
    selects nothing.
    """
    selected = CollectionFilter.parse(target_filter)
    targets = {
        QualifiedName(c.db_name or "default", c.collection_name): options.target_name(
            QualifiedName(c.db_name or "default", c.collection_name)
        )
        for c in info.collection_backups
    }
    sources = sorted(str(src) for src, dst in targets.items() if selected.matches(dst))
    restored = set(targets.values())
    unmatched = [str(n) for n in selected.collections if n not in restored]
    unmatched += [f"{db}.*" for db in sorted(selected.databases) if all(t.database != db for t in restored)]
    if unmatched:
        raise InvalidFilterError(
            f"--filter {', '.join(sorted(unmatched))}: no collection of backup {info.name!r} is restored"
            " under that name (the filter applies to target names, after --suffix/--rename)"
        )
    return sources


def _cmd_restore(ctx: _Context) -> int:
    args = ctx.args
    options = RestoreOptions(
        suffix=args.suffix,
        rename=args.rename or None,
        drop_existing=args.drop_existing,
        skip_create=args.skip_create,
        meta_only=args.meta_only,
        rebuild_indexes=args.rebuild_indexes,
        restore_aliases=args.restore_aliases,
        dry_run=args.dry_run,
    )
    client = _client(ctx.config())
    if args.filter:
        sources = restore_sources(client.get_backup(args.name), options, args.filter)
        options = attrs.evolve(options, collections=sources)
    progress = ctx.progress()
    try:
        report = client.restore(args.name, options, progress)
    finally:
        _close(progress)
    data = {
        "backup_name": report.backup_name,
        "dry_run": report.dry_run,
        "seconds": round(report.seconds, 3),
        "collections": report.collections,
        "steps": [
            {"kind": step.kind, "target": _step_target(step), "detail": step.describe()}
            for step in report.plan.steps
        ],
        "skipped": [{"what": what, "why": why} for what, why in report.plan.skipped],
    }
    ctx.out.result(report.table(), data)
    return EXIT_OK


def _step_target(step: Any) -> str:
    target = getattr(step, "target", None)
    return str(target) if target is not None else str(getattr(step, "database", ""))


def _cmd_check(ctx: _Context) -> int:
    tool = ctx.config()
    results: list[dict[str, Any]] = []

    def run(what: str, check: Callable[[], str]) -> None:
        try:
            detail, ok = check(), True
        except MilvusBackupError as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a check reports every failure as a FAIL line, never a traceback
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results.append({"check": what, "ok": ok, "detail": detail})

    run("milvus", lambda: _check_milvus(tool))
    run("milvus storage", lambda: _check_storage(tool.milvus_storage))
    run("backup storage", lambda: _check_storage(tool.backup_storage))
    width = max(len(r["check"]) for r in results)
    lines = [f"{'OK' if r['ok'] else 'FAIL':4}  {r['check']:{width}}  {r['detail']}" for r in results]
    ok = all(r["ok"] for r in results)
    ctx.out.result("\n".join(lines), {"ok": ok, "checks": results})
    if not ok:
        failed = ", ".join(r["check"] for r in results if not r["ok"])
        ctx.stderr.write(f"error: check failed: {failed}\n")
    return EXIT_OK if ok else EXIT_FAILURE


def _check_milvus(tool: ToolConfig) -> str:
    with GrpcMilvus(tool.milvus) as milvus:
        version = milvus.connect()
    return f"Milvus {version} at {tool.milvus.uri}"


def _check_storage(location: StorageLocation) -> str:
    location.check_root()
    probe = location.join(f"milvus_backup_lib_check_{uuid.uuid4().hex}")
    payload = b"milvus-backup-lib check\n"
    fs = location.fs
    try:
        fs.pipe_file(probe, payload)
        try:
            if fs.cat_file(probe) != payload:
                raise StorageError(
                    f"the probe object read back from {location.url} differs from what was written"
                )
        finally:
            fs.rm_file(probe)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(
            f"probe object in {location.url}: {type(exc).__name__}: {scrub(str(exc), location)}"
        ) from None
    return f"{location.url}: write, read, delete"


def _cmd_verify(ctx: _Context) -> int:
    name, level = ctx.args.name, ctx.args.level
    client = _client(ctx.config())
    report = client.verify_backup(name, level)
    data = {
        "name": name,
        "level": report.level,
        "level_applied": report.level_applied,
        "ok": report.ok,
        "files": report.files,
        "bytes": report.bytes,
        "missing": list(report.missing),
        "wrong_size": [{"path": p, "expected": e, "found": f} for p, e, f in report.wrong_size],
        "corrupt": [{"path": p, "expected": e, "found": f} for p, e, f in report.corrupt],
        "meta_problems": list(report.meta_problems),
        "note": report.note,
    }
    ctx.out.result(report.table(), data)
    if not report.ok:
        ctx.stderr.write(f"error: {report.summary()}\n")
    return EXIT_OK if report.ok else EXIT_FAILURE


# --- entry point ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 failure, 2 bad usage or config)."""
    stdout, stderr = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed by _Parser.error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    settings = _settings(args)
    configure_logging(settings, stderr)
    ctx = _Context(args=args, settings=settings, out=_Output(settings, stdout), stderr=stderr)
    handler: Callable[[_Context], int] = args.handler
    try:
        return handler(ctx)
    except UsageError as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except _USAGE_ERRORS as exc:
        stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except MilvusBackupError as exc:
        log.debug("command failed", exc_info=True)
        stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        # stdout went to a pipe whose reader quit (``| head``): stop quietly, as other tools do, and
        # keep Python from reporting the same error again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        return EXIT_FAILURE


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, RestorePlanError):
        return "restore refused, nothing was changed: " + "; ".join(exc.conflicts)
    return " ".join(str(exc).split()) or type(exc).__name__
