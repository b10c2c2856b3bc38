"""The commands of ``milvus-backup-lib``, one function each, a thin layer over :class:`BackupClient`.

Each takes the :class:`Context` of the run and returns the exit code; errors are raised and turned into
exit codes by :func:`milvus_backup_lib.cli.main`. :data:`COMMANDS` maps a command's name to its function.
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

import attrs

from milvus_backup_lib.backup.copier import FsspecCopier
from milvus_backup_lib.backup_yaml import ToolConfig, from_milvus_backup_config, load_config_file
from milvus_backup_lib.cli import legacy
from milvus_backup_lib.cli.output import (
    EXIT_FAILURE,
    EXIT_OK,
    CommandLineError,
    Output,
    go_json,
    report_data,
    stored_text,
)
from milvus_backup_lib.cli.parser import DEFAULT_CONFIG, Settings, pause_gc_choice
from milvus_backup_lib.cli.progress import close_progress, configure_logging, make_progress
from milvus_backup_lib.cli.prune import run_delete, run_materialize, run_prune, storage_line
from milvus_backup_lib.cli.restore_extras import AutoIndexPlanner, open_cli_milvus
from milvus_backup_lib.client import BackupClient
from milvus_backup_lib.errors import InvalidFilterError, MilvusBackupError, RestorePlanError, StorageError
from milvus_backup_lib.milvus.grpc import GrpcMilvus
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection, QualifiedName
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.planner import RestorePlanner
from milvus_backup_lib.storage.location import StorageLocation, scrub

if TYPE_CHECKING:
    from milvus_backup_lib.manifest.model import BackupInfo
    from milvus_backup_lib.progress import Progress

__all__ = ["COMMANDS", "Context", "load_tool_config", "restore_sources"]

log = logging.getLogger("milvus_backup_lib.cli")


# --- configuration, client ----------------------------------------------------------------------------


def load_tool_config(settings: Settings) -> ToolConfig:
    """The config file (``--config``, else ``./backup.yaml``) with the environment and ``--set`` applied."""
    path = settings.config
    if path is None:
        if not os.path.isfile(DEFAULT_CONFIG):
            raise CommandLineError(
                f"no config file: pass --config FILE or put {DEFAULT_CONFIG} in the current directory"
            )
        path = DEFAULT_CONFIG
    overrides: dict[str, str] = {}
    for entry in settings.set_values:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise CommandLineError(f"--set {entry.split('=', 1)[0]!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    tool = from_milvus_backup_config(load_config_file(path), env=None, set_values=overrides)
    if tool.milvus_local_path:
        log.warning(
            "milvus.storage.localPath (%s) differs from rootPath: restores hand Milvus the paths this"
            " process sees below rootPath",
            tool.milvus_local_path,
        )
    return tool


def _client(
    tool: ToolConfig, *, planner: RestorePlanner | None = None, drop_exist_index: bool = False
) -> BackupClient:
    tuning = tool.tuning
    copier = FsspecCopier(
        **({"concurrency": tuning.copy_concurrency} if tuning.copy_concurrency else {}),
        force_streaming=tuning.force_streaming,
    )

    def milvus_factory(connection: MilvusConnection) -> AbstractContextManager[MilvusCluster]:
        return open_cli_milvus(connection, drop_exist_index=drop_exist_index)

    extra: dict[str, Any] = {}
    if tuning.gc_pause_seconds is not None:
        extra["gc_pause_seconds"] = tuning.gc_pause_seconds
    return BackupClient(
        milvus=tool.milvus,
        milvus_storage=tool.milvus_storage,
        backup_storage=tool.backup_storage,
        pause_gc=tool.pause_gc,
        copier=copier,
        planner=planner,
        milvus_factory=milvus_factory,
        **extra,
    )


# --- commands -----------------------------------------------------------------------------------------


@attrs.define
class Context:
    """One run of the command line: the parsed arguments, the global options, where output goes."""

    args: argparse.Namespace
    settings: Settings
    out: Output
    stderr: IO[str]
    _tool: ToolConfig | None = None

    def config(self) -> ToolConfig:
        """The config (read once), with its ``log.*`` settings applied to the logging set-up."""
        if self._tool is None:
            tool = load_tool_config(self.settings)
            configure_logging(self.settings, self.stderr, tool.log)
            for key, why in tool.unused_keys:
                log.info("config key %s is accepted and not used: %s", key, why)
            self._tool = tool
        return self._tool

    def progress(self) -> Progress:
        return make_progress(self.settings, self.stderr)

    def note(self, message: str) -> None:
        self.out.note(message)


def _create_local_root(location: StorageLocation) -> None:
    """A local backup root that does not exist yet is created by the first write, as the Go tool does."""
    if location.is_local and not os.path.isdir(location.root):
        try:
            os.makedirs(location.root, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the backup directory {location.root}: {exc.strerror or exc}"
            ) from None
        log.info("created the backup directory %s", location.root)


def cmd_create(ctx: Context) -> int:
    args = ctx.args
    if args.format == "snapshot":
        raise CommandLineError(
            "--format snapshot: snapshot-format backups (Milvus 3.0) are not supported; binlog is the"
            " format here (--format binlog or auto)"
        )
    if args.backup_index_extra:
        ctx.note(
            "--backup_index_extra is accepted and does nothing here: index extra info is only for"
            " secondary restore, which this tool does not do"
        )
    if args.strategy == "bulk_flush":
        ctx.note("--strategy bulk_flush runs as serial_flush here: one Flush per collection, the same data")
    selection = legacy.create_selection(args, ctx.note)
    strategy = legacy.create_strategy(args, ctx.note)
    tool = ctx.config()
    client = _client(tool)
    client.pause_gc = pause_gc_choice(args.pause_gc, client.pause_gc)
    if args.dry_run:
        return _create_dry_run(ctx, client, selection, strategy)
    _create_local_root(tool.backup_storage)
    progress = ctx.progress()
    try:
        report = client.create_backup(
            args.name,
            selection,
            strategy=strategy,
            progress=progress,
            rbac=args.rbac,
            resume=args.resume,
            base=getattr(args, "base", None),
            self_contained=getattr(args, "self_contained", False),
        )
    finally:
        close_progress(progress)
    data = report_data(report)
    ctx.out.result(report.table(), data)
    return EXIT_OK


def _create_dry_run(
    ctx: Context, client: BackupClient, selection: str | None, strategy: BackupStrategy
) -> int:
    progress = ctx.progress()
    try:
        plan = client.plan_backup(
            ctx.args.name, selection, strategy=strategy, resume=ctx.args.resume, progress=progress
        )
    finally:
        close_progress(progress)
    data = {
        "name": plan.name,
        "dry_run": True,
        "strategy": plan.strategy,
        "milvus_version": plan.milvus_version,
        "databases": plan.databases,
        "collections": [c.name for c in plan.collections],
        "segments": plan.segments,
        "files": plan.files,
        "bytes": plan.bytes,
        "rows": plan.rows,
        "per_collection": plan.collections,
        "note": plan.note,
    }
    ctx.out.result(plan.table() + "\n\ndry run: nothing was flushed, copied or written", data)
    return EXIT_OK


def cmd_list(ctx: Context) -> int:
    client = _client(ctx.config())
    backups = client.list_backups()
    if ctx.args.collection:
        wanted = str(QualifiedName.parse(ctx.args.collection))
        ctx.note(
            f"-c/--collection is a v0.5 flag (Go 0.6 removed it): listing only the backups that hold {wanted}"
        )
        backups = type(backups)(b for b in backups if wanted in b.collections)
    if ctx.args.all:
        unfinished = client.list_unfinished()
        text = backups.table().rstrip("\n") + "\n\n" + unfinished.table()
        ctx.out.result(text, {"backups": list(backups), "unfinished": list(unfinished)})
        return EXIT_OK
    ctx.out.result(backups.table(), list(backups))
    return EXIT_OK


def cmd_get(ctx: Context) -> int:
    client = _client(ctx.config())
    info = client.get_backup(ctx.args.name)
    library = client.repository.read_library_meta(ctx.args.name)
    if ctx.args.detail:
        ctx.note("-d/--detail is a v0.5 flag (Go 0.6 removed it): the full description in the Go tool's JSON")
        ctx.out.raw(go_json(info))
        return EXIT_OK
    note = "\nlogical backup: rows as Parquet; restore it with milvus-backup-lib (the Go tool cannot)"
    text = info.table().rstrip("\n") + stored_text(client.repository.summary(ctx.args.name))
    text += "\n" + storage_line(client, ctx.args.name)
    ctx.out.result(text + (note if library is not None and library.is_logical else ""), info)
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


def cmd_restore(ctx: Context) -> int:
    args = ctx.args
    legacy.validate_restore(args)
    if args.restore_index:
        ctx.note("--restore_index is the v0.5 spelling of --rebuild_index (on by default here)")
    sources = legacy.restore_sources_filter(args, ctx.note)
    options = RestoreOptions(
        collections=sources,
        suffix=args.suffix,
        rename=args.rename or None,
        drop_existing=args.drop_existing,
        skip_create=args.skip_create,
        meta_only=args.meta_only,
        rebuild_indexes=args.rebuild_indexes or args.restore_index,
        restore_aliases=args.restore_aliases,
        dry_run=args.dry_run,
        keep_staged=ctx.config().tuning.keep_temp_files,
        keep_partial=args.keep_partial,
        method=args.method,
    )
    options = attrs.evolve(options, **ctx.config().tuning.restore_options())
    client = _client(
        ctx.config(),
        planner=AutoIndexPlanner() if args.use_auto_index else None,
        drop_exist_index=args.drop_exist_index,
    )
    info = client.get_backup(args.name) if args.filter or args.rbac else None
    if info is not None and args.filter:
        options = attrs.evolve(options, collections=restore_sources(info, options, args.filter))
    if info is not None and args.rbac and info.rbac_meta is None:
        raise RestorePlanError(
            [f"--rbac: backup {args.name!r} holds no users, roles or grants: made without create --rbac"]
        )
    progress = ctx.progress()
    try:
        report = client.restore(args.name, options, progress=progress)
    finally:
        close_progress(progress)
    rbac = client.restore_rbac(args.name) if args.rbac and not args.dry_run else None
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
        "rbac": rbac,
    }
    text = report.table()
    if rbac is not None:
        text = text.rstrip("\n") + "\n\n" + rbac.table()
    ctx.out.result(text, data)
    return EXIT_OK


def _step_target(step: Any) -> str:
    target = getattr(step, "target", None)
    return str(target) if target is not None else str(getattr(step, "database", ""))


def cmd_check(ctx: Context) -> int:
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
    run("backup storage", lambda: _check_backup_storage(tool.backup_storage))
    width = max(len(r["check"]) for r in results)
    lines = [f"{'OK' if r['ok'] else 'FAIL':4}  {r['check']:{width}}  {r['detail']}" for r in results]
    ok = all(r["ok"] for r in results)
    ctx.out.result("\n".join(lines), {"ok": ok, "checks": results})
    if not ok:
        failed = ", ".join(r["check"] for r in results if not r["ok"])
        ctx.out.error(f"check failed: {failed}")
    return EXIT_OK if ok else EXIT_FAILURE


def _check_milvus(tool: ToolConfig) -> str:
    with GrpcMilvus(tool.milvus) as milvus:
        version = milvus.connect()
    return f"Milvus {version} at {tool.milvus.uri}"


def _check_backup_storage(location: StorageLocation) -> str:
    """A local backup root that does not exist yet passes when the first backup can create it."""
    if location.is_local and not os.path.exists(location.root):
        parent = os.path.dirname(location.root.rstrip("/")) or "/"
        while not os.path.exists(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            return f"{location.url}: does not exist yet; the first backup creates it"
        raise StorageError(
            f"storage root directory {location.root!r} of {location.url!r} does not exist, and cannot be"
            f" created below {parent!r}"
        )
    return _check_storage(location)


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


def cmd_verify(ctx: Context) -> int:
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
        ctx.out.error(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURE


COMMANDS: Mapping[str, Callable[[Context], int]] = {
    "create": cmd_create,
    "list": cmd_list,
    "get": cmd_get,
    "delete": lambda ctx: run_delete(ctx, lambda: _client(ctx.config())),
    "materialize": lambda ctx: run_materialize(ctx, lambda: _client(ctx.config())),
    "restore": cmd_restore,
    "check": cmd_check,
    "verify": cmd_verify,
    "prune": lambda ctx: run_prune(ctx, lambda: _client(ctx.config())),
}
