"""How a collection's rows reach the target: ``import`` (bulk import of the backed-up binlogs) or ``insert``
(rows read offline from the backup, inserted in batches), and why.

``RestoreOptions.method="auto"`` imports when the target can: the backup holds binlogs (not a logical
backup), the server keeps binlogs (not Milvus Lite), the client knows the server's storage
(``milvus_storage``, where imports are read in place or staged), the server's version can import every
type and format the collection has (:mod:`milvus_backup_lib.milvus.capabilities`), and a new collection
gets the backed-up field IDs. Otherwise it inserts. ``import`` asked for where it cannot work is refused
with the same reasons, before anything is written; ``insert`` works everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from milvus_backup_lib.manifest.model import CollectionSchema
from milvus_backup_lib.milvus.capabilities import Capability, capabilities_of, vector_capability
from milvus_backup_lib.repository.library_meta import LOGICAL
from milvus_backup_lib.restore.plan import ImportData, TargetState

__all__ = ["choose_method"]


def _capability_gaps(
    target: TargetState, schema: CollectionSchema, imports: Sequence[ImportData]
) -> list[str]:
    """What the target's version lacks to import these steps (empty when its version is unknown)."""
    if not target.server_version:
        return []
    caps = capabilities_of(target.server_version)
    needs = [Capability.BINLOG_IMPORT]
    needs.extend(c for f in schema.fields if (c := vector_capability(f.data_type)) is not None)
    if any(step.l0 for step in imports):
        needs.append(Capability.L0_IMPORT)
    if any(step.storage_version >= 2 for step in imports):
        needs.append(Capability.STORAGE_V2)
    return [why for need in dict.fromkeys(needs) if (why := caps.lacks(need)) is not None]


def import_blockers(
    backup_name: str,
    target: TargetState,
    schema: CollectionSchema,
    imports: Sequence[ImportData],
    layout_problems: Sequence[str],
) -> tuple[list[str], list[str]]:
    """``(refusals, capability gaps)``: why the target cannot import this collection. Refusals are
    raised by the planner when ``import`` is asked for; capability gaps by the preflight."""
    refusals = []
    if target.backup_strategy == LOGICAL:
        refusals.append(f"backup {backup_name} is a logical backup (rows in Parquet files, no binlogs)")
    if target.server_version.lower().startswith("milvus_lite"):
        refusals.append(f"Milvus Lite ({target.server_version}) keeps no binlogs and has no bulk import")
    elif not target.milvus_storage:
        refusals.append("no milvus_storage was given, so the server cannot be handed the backup's binlogs")
    if layout_problems:
        refusals.append("a new collection would get other field IDs: " + "; ".join(layout_problems))
    return refusals, _capability_gaps(target, schema, imports)


def choose_method(
    method: str,
    backup_name: str,
    target: TargetState,
    schema: CollectionSchema,
    imports: Sequence[ImportData],
    layout_problems: Sequence[str],
) -> tuple[str, str, list[str]]:
    """``(method, why, conflicts)`` for one collection given ``RestoreOptions.method``."""
    if method == "insert":
        return "insert", "method='insert' was asked for", []
    if method == "import":  # the planner refuses misaligned field IDs itself, the preflight the gaps
        refusals, _ = import_blockers(backup_name, target, schema, imports, ())
        conflicts = [f"cannot import: {why}; restore with method='insert' (or 'auto')" for why in refusals]
        return "import", "method='import' was asked for", conflicts
    refusals, gaps = import_blockers(backup_name, target, schema, imports, layout_problems)
    if refusals or gaps:
        return "insert", "; ".join([*refusals, *gaps]), []
    where = target.server_version or "the server"
    return "import", f"{where} can bulk-import this collection's binlogs from its storage", []
