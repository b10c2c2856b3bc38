"""``prune``: remove the backups a retention policy does not keep, and old unfinished ones.

The policy (:mod:`milvus_backup_lib.repository.retention`) sees every complete backup that can be
read, dated by :func:`backup_time`. A backup that cannot be read (damaged, foreign, undated) is never
removed: it is reported as skipped, with why. Each removal runs under the writer's lock on the name
(:class:`BackupLock`), and checks again under it that the backup is still what the listing saw: a
backup locked by a writer (a create, a resume, a delete) is skipped, never waited for or broken while
fresh, so a prune racing a create loses nothing. One backup at a time goes through
:func:`milvus_backup_lib.repository.deletion.remove`, the one place that decides which files a backup
owns: mark and sweep under the repository lock, keeping the files other backups still reference. Then
every husk (what deletes had to keep) is swept once; husks are never listed, kept or removed as backups.
"""

from __future__ import annotations

import datetime as dt
import logging

import attrs

from milvus_backup_lib._html import format_bytes, html_block, html_heading, html_table, printable, text_table
from milvus_backup_lib.errors import BackupLockedError, BackupNotFoundError, ManifestError
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.repository.deletion import (
    census,
    held_repository_lock,
    remove,
    sweep_husks,
    would_free,
)
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.retention import RetentionPolicy, apply_policy
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.repository.unfinished import format_age, list_unfinished

__all__ = ["PruneReport", "PrunedBackup", "backup_time", "prune"]

log = logging.getLogger(__name__)

_HEADERS = ("backup", "time", "action", "size", "why")
_NUMERIC = frozenset({3})
#: A hybrid timestamp (TSO) is ``physical_ms << 18 | logical``; anything this large is one.
_TSO_ABOVE = 10**15
_MS_ABOVE = 10**11


def _from_number(value: int) -> dt.datetime | None:
    """Unix seconds, milliseconds or a TSO, told apart by size; None for 0 or a corrupt value."""
    if value <= 0:
        return None
    seconds = (value >> 18) / 1000 if value > _TSO_ABOVE else value / 1000 if value > _MS_ABOVE else value
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def backup_time(info: BackupInfo, created_at: str = "") -> dt.datetime | None:
    """When a backup was taken: the newest flush seal time of its collections
    (``backup_physical_timestamp``, Unix seconds, written by both tools), else the newest flush TSO
    (collection ``backup_timestamp``), else the backup's own ``backup_timestamp`` (v0.4), else the time
    this library recorded (``created_at``: meta-only backups); None when none is recorded."""
    collections = info.collection_backups
    for value in (
        max((c.backup_physical_timestamp for c in collections), default=0),
        max((c.backup_timestamp for c in collections), default=0),
        info.backup_timestamp,
    ):
        found = _from_number(value)
        if found is not None:
            return found
    try:
        created = dt.datetime.fromisoformat(created_at) if created_at else None
    except ValueError:
        return None
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return created


@attrs.frozen(kw_only=True)
class PrunedBackup:
    """One line of a :class:`PruneReport`."""

    name: str
    #: ``keep``, ``remove`` or ``skip``.
    action: str
    #: The backup time (complete backups) or the last write (unfinished ones); None when unknown.
    time: dt.datetime | None = None
    #: Why it is kept (the rules), skipped, or removed.
    reasons: tuple[str, ...] = ()
    #: Bytes stored under its directory (for removed ones: freed, or to be freed on a dry run).
    size: int = 0


@attrs.frozen(kw_only=True)
class PruneReport:
    """What :meth:`BackupClient.prune` did (or, with ``dry_run``, would do)."""

    policy: str
    dry_run: bool
    entries: tuple[PrunedBackup, ...] = ()
    #: Bytes freed (on a dry run: to be freed) from husks: files deleted backups kept for others that
    #: no backup references any more. Not a backup, so no entry.
    husk_bytes: int = 0

    @property
    def kept(self) -> list[tuple[str, tuple[str, ...]]]:
        """(name, the rules that keep it), newest first."""
        return [(e.name, e.reasons) for e in self.entries if e.action == "keep"]

    @property
    def removed(self) -> list[str]:
        """The backups removed (on a dry run: that would be), complete and unfinished."""
        return [e.name for e in self.entries if e.action == "remove"]

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(name, why) of the backups left alone although no rule keeps them: unreadable, locked."""
        return [(e.name, "; ".join(e.reasons)) for e in self.entries if e.action == "skip"]

    @property
    def bytes_freed(self) -> int:
        """The bytes really removed: the removed backups' files no other backup references, and the
        husks' files no backup references any more (on a dry run: what would be freed)."""
        return sum(e.size for e in self.entries if e.action == "remove") + self.husk_bytes

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{self.policy}: {len(self.kept)} kept, {verb} {len(self.removed)}"
            f" ({format_bytes(self.bytes_freed)}), {len(self.skipped)} skipped"
            + (" (dry run: nothing removed)" if self.dry_run else "")
        )

    def _rows(self) -> list[tuple[str, ...]]:
        verb = "would remove" if self.dry_run else "remove"
        return [
            (
                printable(e.name),
                e.time.isoformat(timespec="seconds") if e.time else "",
                verb if e.action == "remove" else e.action,
                format_bytes(e.size) if e.action == "remove" else "",
                printable(", ".join(e.reasons)),
            )
            for e in self.entries
        ]

    def table(self) -> str:
        """The summary line, then one line per backup: name, time, action, bytes freed, why."""
        return self.summary() + "\n" + text_table(_HEADERS, self._rows(), numeric=_NUMERIC)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return html_block(
            html_heading("prune" + (" (dry run)" if self.dry_run else ""), self.summary()),
            html_table(_HEADERS, self._rows(), numeric=_NUMERIC),
        )


def _remove(
    repository: BackupRepository, entry: PrunedBackup, complete: bool, stale_after: float
) -> PrunedBackup:
    """Delete one backup under its lock, if it is still what the listing saw; else the entry, skipped."""
    try:
        with BackupLock(repository.location, entry.name, stale_after=stale_after):
            if not _unchanged(repository, entry, complete):
                why = "changed while pruning (completed, deleted or written again): left alone"
                return attrs.evolve(entry, action="skip", reasons=(why,), size=0)
            done = remove(repository, entry.name, stale_after=stale_after, sweep_others=False)
    except BackupLockedError as exc:  # the name's lock, or the repository's (RepositoryLockedError)
        return attrs.evolve(entry, action="skip", reasons=(f"locked: {exc}",), size=0)
    reasons = entry.reasons
    if done.kept:
        reasons += (f"{len(done.kept)} file(s) kept: referenced by {', '.join(done.referenced_by)}",)
    return attrs.evolve(entry, size=done.bytes_freed, reasons=reasons)


def _unchanged(repository: BackupRepository, entry: PrunedBackup, complete: bool) -> bool:
    """Whether backup ``entry.name`` is, under its lock, what the listing saw: still complete (and of
    the same backup time) or still unfinished, and still there."""
    if repository.exists(entry.name) != complete or not repository.has_objects(entry.name):
        return False
    if not complete:
        return True
    try:
        library = repository.read_library_meta(entry.name)
        return backup_time(repository.read(entry.name), library.created_at if library else "") == entry.time
    except (BackupNotFoundError, ManifestError):
        return False


def _sweep_all(repository: BackupRepository, stale_after: float) -> int:
    """Sweep every husk once, after the removals; 0 when the repository lock stays held (next time)."""
    try:
        with held_repository_lock(repository, stale_after):
            return sweep_husks(repository, census(repository))
    except BackupLockedError as exc:
        log.warning(
            "prune of %s left deleted backups' leftovers for next time: %s", repository.location.url, exc
        )
        return 0


def _complete_backups(
    repository: BackupRepository,
) -> tuple[list[tuple[str, dt.datetime]], list[PrunedBackup]]:
    """The dated, readable complete backups, and the others as skipped entries."""
    dated: list[tuple[str, dt.datetime]] = []
    skipped: list[PrunedBackup] = []
    for name in repository.names():
        try:
            info = repository.read(name)
            library = repository.read_library_meta(name)
        except BackupNotFoundError:  # deleted while we listed
            continue
        except ManifestError as exc:
            why = f"cannot be read, never removed by a policy: {repository.problem(name) or exc}"
            skipped.append(PrunedBackup(name=name, action="skip", reasons=(why,)))
            continue
        when = backup_time(info, library.created_at if library else "")
        if when is None:
            why = "records no backup time, never removed by a policy"
            skipped.append(PrunedBackup(name=name, action="skip", reasons=(why,)))
            continue
        dated.append((name, when))
    return dated, skipped


def prune(
    repository: BackupRepository,
    policy: RetentionPolicy,
    *,
    unfinished_older_than: dt.timedelta | None = None,
    dry_run: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    tz: dt.tzinfo | None = None,
    now: dt.datetime | None = None,
) -> PruneReport:
    """Apply ``policy`` to the complete backups of ``repository`` and remove (unless ``dry_run``) what
    it does not keep, and the unfinished backups last written more than ``unfinished_older_than`` ago."""
    now = now or dt.datetime.now(dt.timezone.utc)
    dated, skipped = _complete_backups(repository)
    entries: list[PrunedBackup] = []
    for decision in apply_policy(dated, policy, tz=tz, now=now):
        if decision.keep:
            entries.append(
                PrunedBackup(name=decision.name, action="keep", time=decision.time, reasons=decision.reasons)
            )
        else:
            entries.append(
                PrunedBackup(
                    name=decision.name, action="remove", time=decision.time, reasons=("no rule keeps it",)
                )
            )
    entries.extend(skipped)
    if unfinished_older_than is not None:
        for u in list_unfinished(repository, now):
            if u.damaged:
                continue  # a damaged complete backup: already skipped above
            too_old = u.age is not None and u.age > unfinished_older_than
            if not too_old:
                continue
            reasons = [f"unfinished, last written {format_age(u.age)} ago"]
            if u.locked:  # the lock decides: a live writer's is kept, a dead writer's broken
                reasons.append("locked now: removed only if its writer is gone")
            entries.append(
                PrunedBackup(name=u.name, action="remove", time=u.last_modified, reasons=tuple(reasons))
            )
    removing = frozenset(e.name for e in entries if e.action == "remove")
    sizes, husk_bytes = would_free(repository, removing)
    entries = [attrs.evolve(e, size=sizes[e.name]) if e.name in removing else e for e in entries]
    if not dry_run:
        complete = {name for name, _ in dated}  # as listed: the check under the lock compares
        entries = [
            _remove(repository, e, e.name in complete, stale_after) if e.action == "remove" else e
            for e in entries
        ]
        husk_bytes = _sweep_all(repository, stale_after)
    report = PruneReport(policy=str(policy), dry_run=dry_run, entries=tuple(entries), husk_bytes=husk_bytes)
    log.info("prune of %s: %s", repository.location.url, report.summary())
    return report
