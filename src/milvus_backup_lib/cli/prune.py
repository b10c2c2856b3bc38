"""The commands that change which backups and files a root keeps: ``prune`` (:meth:`BackupClient.prune`
with the policy of the flags), ``delete`` and ``materialize``; and the line of ``get`` that says whether
a backup is self-contained (apart from :mod:`milvus_backup_lib.cli.commands`, at its size limit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from milvus_backup_lib.cli.output import EXIT_OK, CommandLineError

if TYPE_CHECKING:
    from milvus_backup_lib.cli.commands import Context
    from milvus_backup_lib.client import BackupClient

__all__ = ["check_prune_flags", "run_delete", "run_materialize", "run_prune", "storage_line"]

_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly", "within")


def check_prune_flags(ctx: Context) -> None:
    """A prune without any ``--keep-*`` flag is refused (exit 2) before the config is read."""
    if all(getattr(ctx.args, f"keep_{rule}") is None for rule in _RULES):
        flags = ", ".join(f"--keep-{rule}" for rule in _RULES)
        raise CommandLineError(
            f"prune: give at least one of {flags} (without a rule prune would remove every backup)"
        )


def run_prune(ctx: Context, make_client: Callable[[], BackupClient]) -> int:
    """Prune with the flags' policy; removes unless ``--dry_run``. Exit 0 whatever was removed."""
    check_prune_flags(ctx)
    args = ctx.args
    report = make_client().prune(
        keep_last=args.keep_last,
        keep_hourly=args.keep_hourly,
        keep_daily=args.keep_daily,
        keep_weekly=args.keep_weekly,
        keep_monthly=args.keep_monthly,
        keep_yearly=args.keep_yearly,
        keep_within=args.keep_within,
        unfinished_older_than=args.unfinished_older_than,
        dry_run=args.dry_run,
    )
    data: dict[str, Any] = {
        "policy": report.policy,
        "dry_run": report.dry_run,
        "kept": [{"name": name, "reasons": list(reasons)} for name, reasons in report.kept],
        "removed": report.removed,
        "skipped": [{"name": name, "why": why} for name, why in report.skipped],
        "bytes_freed": report.bytes_freed,
        "husk_bytes": report.husk_bytes,
    }
    ctx.out.result(report.table(), data)
    return EXIT_OK


def run_delete(ctx: Context, make_client: Callable[[], BackupClient]) -> int:
    """Delete one backup; says what was freed and which backups keep files of it."""
    report = make_client().delete_backup(ctx.args.name)
    data: dict[str, Any] = {
        "name": report.name,
        "deleted": True,
        "files_removed": report.files_removed,
        "bytes_freed": report.bytes_freed,
        "files_kept": len(report.kept),
        "referenced_by": report.referenced_by,
        "husk_bytes_freed": report.husk_bytes_freed,
    }
    ctx.out.result(report.summary(), data)
    return EXIT_OK


def run_materialize(ctx: Context, make_client: Callable[[], BackupClient]) -> int:
    """Make one backup self-contained (readable by the Go tool, independent of every other backup)."""
    name = ctx.args.name or ctx.args.backup
    if not name or (ctx.args.name and ctx.args.backup and ctx.args.name != ctx.args.backup):
        raise CommandLineError("materialize: give the backup name once: materialize NAME, or -n NAME")
    report = make_client().materialize(name)
    data: dict[str, Any] = {
        "name": report.name,
        "self_contained": True,
        "files_copied": report.files_copied,
        "bytes_copied": report.bytes_copied,
        "files_in_place": report.files_in_place,
        "holders": list(report.holders),
        "server_side": report.server_side,
    }
    ctx.out.result(report.summary(), data)
    return EXIT_OK


def storage_line(client: BackupClient, name: str) -> str:
    """``self-contained: yes``, or ``no`` with the base and the backups holding the files it references."""
    meta = client.repository.read_library_meta(name)
    if meta is None or meta.self_contained:
        return "self-contained: yes" + (f" (base {meta.base})" if meta and meta.base else "")
    holders = ", ".join(sorted(set(meta.references.values())))
    return (
        f"self-contained: no (base {meta.base or '?'}; {len(meta.references)} file(s) stored by {holders};"
        " materialize makes it self-contained)"
    )
