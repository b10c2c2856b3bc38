"""What a restore did: per import, per collection, and in all (or, on a dry run, what it would do)."""

from __future__ import annotations

import attrs

from milvus_backup_lib._html import html_block, html_heading, html_table
from milvus_backup_lib.restore.plan import RestorePlan

__all__ = ["CollectionRestoreReport", "ImportOutcome", "RestoreReport"]


@attrs.frozen(kw_only=True)
class ImportOutcome:
    """One import job's result."""

    partition: str
    files: tuple[str, ...]
    expected_rows: int
    delete_entries: int
    imported_rows: int
    seconds: float
    staged: bool
    l0: bool = False


@attrs.frozen(kw_only=True)
class CollectionRestoreReport:
    """What was restored for one collection."""

    source: str
    target: str
    backup_rows: int
    imported_rows: int
    #: Rows the target holds after the restore: ``count(*)`` when it is loaded, else the row count of
    #: its persisted segments (``GetCollectionStatistics``).
    target_rows: int
    seconds: float
    imports: tuple[ImportOutcome, ...] = ()
    skipped: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class RestoreReport:
    """What :meth:`BackupClient.restore` did (or, with ``dry_run``, would do)."""

    backup_name: str
    plan: RestorePlan
    dry_run: bool
    collections: tuple[CollectionRestoreReport, ...] = ()
    seconds: float = 0.0

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                c.source,
                c.target,
                str(c.backup_rows),
                str(c.imported_rows),
                str(c.target_rows),
                f"{c.seconds:.1f}",
                "; ".join(c.skipped),
            )
            for c in self.collections
        ]

    def table(self) -> str:
        """A readable table: one line per collection."""
        if self.dry_run:
            return "dry run, nothing changed:\n" + self.plan.table()
        head = _REPORT_HEADERS
        rows = self._rows()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        return "\n".join(
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]
        )

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        if self.dry_run:
            return html_block(html_heading("dry run, nothing changed"), self.plan._repr_html_())
        return html_block(
            html_heading(
                f"restore of backup {self.backup_name}",
                f"{len(self.collections)} collection(s) in {self.seconds:.1f} s",
            ),
            html_table(_REPORT_HEADERS, self._rows(), numeric=_REPORT_NUMERIC),
        )


_REPORT_HEADERS = ("source", "target", "backup rows", "imported", "target rows", "seconds", "skipped")
_REPORT_NUMERIC = frozenset({2, 3, 4, 5})
