"""The ``prune`` command: :meth:`BackupClient.prune` with the policy of the flags (apart from
:mod:`milvus_backup_lib.cli.commands`, which is at its size limit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from milvus_backup_lib.cli.output import EXIT_OK, CommandLineError

if TYPE_CHECKING:
    from milvus_backup_lib.cli.commands import Context
    from milvus_backup_lib.client import BackupClient

__all__ = ["check_prune_flags", "run_prune"]

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
    }
    ctx.out.result(report.table(), data)
    return EXIT_OK
