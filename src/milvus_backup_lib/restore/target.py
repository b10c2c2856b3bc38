"""The target state a restore plans against: what already exists on the target cluster."""

from __future__ import annotations

from collections.abc import Mapping

from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import DEFAULT_DATABASE, QualifiedName
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import TargetState

__all__ = ["read_target_state"]


def read_target_state(
    milvus: MilvusCluster,
    backup: BackupInfo,
    options: RestoreOptions,
    *,
    milvus_storage: bool = True,
    backup_strategy: str = "",
    logical_rows: Mapping[str, Mapping[str, int]] | None = None,
) -> TargetState:
    """What exists on ``milvus``, as far as restoring ``backup`` with ``options`` is concerned.

    Only the databases the restore targets are read: their collections, the aliases of each, and
    which of the restore's targets already have indexes; and, for choosing between import and insert,
    the server's version, whether the client knows its storage, and the backup's strategy.
    """
    databases = milvus.list_databases()
    targets = {
        options.target_name(QualifiedName(c.db_name or DEFAULT_DATABASE, c.collection_name))
        for c in backup.collection_backups
    }
    collections: set[QualifiedName] = set()
    aliases: dict[tuple[str, str], str] = {}
    indexed: set[QualifiedName] = set()
    for db in sorted({t.database for t in targets} & set(databases)):
        for coll in milvus.list_collections(db):
            qn = QualifiedName(db, coll)
            collections.add(qn)
            for alias in milvus.list_aliases(db, coll):
                aliases[(db, alias)] = coll
            if qn in targets and milvus.describe_indexes(db, coll):
                indexed.add(qn)
    return TargetState(
        databases=frozenset(databases),
        collections=frozenset(collections),
        aliases=aliases,
        indexed=frozenset(indexed),
        server_version=milvus.server_version(),
        milvus_storage=milvus_storage,
        backup_strategy=backup_strategy,
        logical_rows=logical_rows or {},
    )
