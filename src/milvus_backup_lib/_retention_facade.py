"""``BackupClient.prune``, ``delete_backup`` and ``materialize``: what changes which files a backup
root keeps, thin calls into :mod:`milvus_backup_lib.repository.prune` (the policy itself is in
:mod:`milvus_backup_lib.repository.retention`), :mod:`milvus_backup_lib.repository.deletion` and
:mod:`milvus_backup_lib.backup.materialize`."""

from __future__ import annotations

import datetime as dt

from milvus_backup_lib._facade import Closable, check_bool, only_library_errors
from milvus_backup_lib.backup.copier import SegmentCopier
from milvus_backup_lib.backup.materialize import MaterializeReport, materialize
from milvus_backup_lib.errors import InvalidOptionError
from milvus_backup_lib.repository.deletion import DeleteReport, delete_backup
from milvus_backup_lib.repository.prune import PruneReport, prune
from milvus_backup_lib.repository.retention import parse_within, retention_policy
from milvus_backup_lib.repository.store import BackupRepository

__all__ = ["RetentionMixin"]


@only_library_errors
class RetentionMixin(Closable):
    """The retention half of :class:`BackupClient`."""

    repository: BackupRepository
    lock_stale_after: float
    copier: SegmentCopier

    def delete_backup(self, name: str) -> DeleteReport:
        """Delete backup ``name`` or an unfinished one; :class:`BackupNotFoundError` if nothing is there.

        The name is gone at once; then only the files no other backup references are removed (mark and
        sweep under the repository lock), with what earlier deletes left. The report says what was
        removed and which backups keep files of it alive.
        """
        self._check_open()
        return delete_backup(self.repository, name, stale_after=self.lock_stale_after)

    def materialize(self, name: str) -> MaterializeReport:
        """Make backup ``name`` self-contained: copy every file it references from the backup holding it
        into its own directory (server-side where the store allows; sizes and MD5s checked), then drop
        its references. Idempotent; an interrupted run is run again. Raises :class:`BackupNotFoundError`,
        and :class:`BackupCorruptError` naming a referenced file missing from its holder."""
        self._check_open()
        return materialize(self.repository, self.copier, name, stale_after=self.lock_stale_after)

    def prune(
        self,
        keep_last: int | None = None,
        keep_hourly: int | None = None,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        keep_monthly: int | None = None,
        keep_yearly: int | None = None,
        keep_within: dt.timedelta | str | None = None,
        unfinished_older_than: dt.timedelta | str | None = None,
        dry_run: bool = True,
    ) -> PruneReport:
        """Remove the backups a retention policy does not keep, with restic's ``forget`` semantics.

        ``keep_last=N`` keeps the newest N backups; ``keep_hourly``/``daily``/``weekly``/``monthly``/
        ``yearly=N`` the newest backup of each of the N newest hours, days, ISO weeks, months, years
        (local time) that hold one (-1: all of them); ``keep_within="7d"`` (or a timedelta) every backup
        made within that time of the newest one. A backup any rule keeps is kept; the report says which
        rules. Damaged backups are never removed (they are listed as skipped, with why), nor is a backup
        whose lock a writer holds. ``unfinished_older_than="2d"`` also removes unfinished backups last
        written longer ago than that. ``dry_run=True`` (the default) only reports.

        Raises :class:`InvalidOptionError` for a bad value, and when no ``keep_*`` rule is given.
        """
        self._check_open()
        policy = retention_policy(
            keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within
        )
        age = None
        if unfinished_older_than is not None:
            age = parse_within(unfinished_older_than, "unfinished_older_than")
            if age.exact is None and (age.years or age.months):
                raise InvalidOptionError(
                    "unfinished_older_than",
                    unfinished_older_than,
                    'days or hours ("2d", "36h") or a timedelta',
                )
        return prune(
            self.repository,
            policy,
            unfinished_older_than=None
            if age is None
            else age.exact or dt.timedelta(days=age.days, hours=age.hours),
            dry_run=check_bool("dry_run", dry_run),
            stale_after=self.lock_stale_after,
        )
