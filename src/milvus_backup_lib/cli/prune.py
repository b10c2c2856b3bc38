"""The ``prune`` command: :meth:`BackupClient.prune` with the policy of the flags (apart from
:mod:`milvus_backup_lib.cli.commands`, which is at its size limit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milvus_backup_lib.cli.output import EXIT_OK

if TYPE_CHECKING:
    from milvus_backup_lib.cli.commands import Context
    from milvus_backup_lib.client import BackupClient

__all__ = ["run_prune"]


def run_prune(ctx: Context, client: BackupClient) -> int:
    """Prune with the flags' policy; removes unless ``--dry_run``. Exit 0 whatever was removed."""
    args = ctx.args
    report = client.prune(
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
