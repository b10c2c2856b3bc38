"""The restore flags of Go HEAD that the library has no option for: ``--use_auto_index``, ``--drop_exist_index``.

Both are built from the library's replaceable parts, so :class:`RestoreOptions` stays as it is:

- ``--use_auto_index``: :class:`AutoIndexPlanner` wraps the planner and rewrites each planned vector
  index to ``{index_type: AUTOINDEX, metric_type: <the backed-up metric>}``, as the Go tool's
  ``restoreVectorFieldIdx`` does (``core/restore/coll_ddl_task.go``); scalar indexes keep their params.
- ``--drop_exist_index``: :class:`CliMilvus` (the gRPC cluster with a ``DropIndex`` call) drops every
  index of a target collection before the restore first changes it (a partition, an import, an index,
  a load or an alias), as the Go tool's ``dropExistedIndex`` does before it creates indexes. A
  collection this restore created has none to drop. The restore plan is checked first, so a refused
  restore drops nothing.

:class:`CliMilvus` also names its server in the retry log lines (``retrying CreateIndex at host:port``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
from pymilvus.grpc_gen import milvus_pb2

from milvus_backup_lib.manifest.model import BackupInfo, CollectionSchema, DataType
from milvus_backup_lib.milvus.grpc import GrpcMilvus
from milvus_backup_lib.options import DEFAULT_DATABASE, MilvusConnection, QualifiedName
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import CreateIndex, RestorePlan, Step, TargetState
from milvus_backup_lib.restore.planner import DefaultRestorePlanner, RestorePlanner

__all__ = ["AUTOINDEX", "AutoIndexPlanner", "CliMilvus", "auto_index_params", "open_cli_milvus"]

log = logging.getLogger("milvus_backup_lib.cli")

AUTOINDEX = "AUTOINDEX"


def auto_index_params(params: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``index_type=AUTOINDEX`` with the metric type of ``params`` (flattened, or in the nested JSON)."""
    found = dict(params)
    metric = found.get("metric_type", "")
    if not metric and "params" in found:
        try:
            nested = json.loads(found["params"])
        except ValueError:
            nested = None
        if isinstance(nested, dict) and isinstance(nested.get("metric_type"), str):
            metric = nested["metric_type"]
    out = [("index_type", AUTOINDEX)]
    if metric:
        out.append(("metric_type", metric))
    return tuple(out)


def _vector_fields(schema: CollectionSchema) -> frozenset[str]:
    return frozenset(f.name for f in schema.fields if f.data_type in DataType.VECTORS)


@attrs.define
class AutoIndexPlanner:
    """A :class:`RestorePlanner` whose vector indexes are ``AUTOINDEX`` with the backed-up metric type."""

    inner: RestorePlanner = attrs.field(factory=DefaultRestorePlanner)

    def plan(self, backup: BackupInfo, options: RestoreOptions, target: TargetState) -> RestorePlan:
        """The inner planner's plan, each vector index rewritten."""
        plan = self.inner.plan(backup, options, target)
        vectors = {
            QualifiedName(c.db_name or DEFAULT_DATABASE, c.collection_name): _vector_fields(c.schema)
            for c in backup.collection_backups
        }

        def rewrite(step: Step, fields: frozenset[str]) -> Step:
            if isinstance(step, CreateIndex) and step.field_name in fields:
                return attrs.evolve(step, params=auto_index_params(step.params))
            return step

        collections = tuple(
            attrs.evolve(
                coll,
                steps=tuple(rewrite(s, vectors.get(coll.source, frozenset())) for s in coll.steps),
            )
            for coll in plan.collections
        )
        return attrs.evolve(plan, collections=collections)


class CliMilvus(GrpcMilvus):
    """:class:`GrpcMilvus` that names its server in retry log lines and can drop existing indexes."""

    def __init__(self, connection: MilvusConnection, *, drop_exist_index: bool = False) -> None:
        super().__init__(connection)
        self._retry = attrs.evolve(self._retry, endpoint=self.target)
        self.drop_exist_index = drop_exist_index
        #: Collections whose indexes were dropped already, or that this restore created (none to drop).
        self._fresh: set[tuple[str, str]] = set()

    def drop_index(self, db: str, name: str, field: str, index_name: str) -> None:
        """Drop one index of a collection."""
        req = milvus_pb2.DropIndexRequest(
            db_name=db, collection_name=name, field_name=field, index_name=index_name
        )
        resp = self._call("DropIndex", self._stub.DropIndex, req, db, idempotent=False)
        self._ok("DropIndex", resp, db=db, coll=name)

    def _before_change(self, db: str, name: str) -> None:
        if not self.drop_exist_index or (db, name) in self._fresh:
            return
        self._fresh.add((db, name))
        for index in self.describe_indexes(db, name):
            log.info("dropping index %s on %s of %s.%s", index.index_name, index.field_name, db, name)
            self.drop_index(db, name, index.field_name, index.index_name)

    def create_collection(
        self,
        db: str,
        name: str,
        schema: CollectionSchema,
        *,
        shards_num: int,
        consistency_level: int,
        properties: Sequence[tuple[str, str]] = (),
        num_partitions: int = 0,
    ) -> None:
        super().create_collection(
            db,
            name,
            schema,
            shards_num=shards_num,
            consistency_level=consistency_level,
            properties=properties,
            num_partitions=num_partitions,
        )
        self._fresh.add((db, name))

    def create_partition(self, db: str, name: str, partition: str) -> None:
        self._before_change(db, name)
        super().create_partition(db, name, partition)

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        self._before_change(db, name)
        return super().start_import(db, name, partition, files, options)

    def create_index(
        self, db: str, name: str, field: str, index_name: str, params: Sequence[tuple[str, str]]
    ) -> None:
        self._before_change(db, name)
        super().create_index(db, name, field, index_name, params)

    def load_collection(self, db: str, name: str, timeout: float = 600.0) -> None:
        self._before_change(db, name)
        super().load_collection(db, name, timeout)

    def create_alias(self, db: str, name: str, alias: str) -> None:
        self._before_change(db, name)
        super().create_alias(db, name, alias)


@contextmanager
def open_cli_milvus(connection: MilvusConnection, *, drop_exist_index: bool = False) -> Iterator[CliMilvus]:
    """Connect (checking reachability and credentials), as :func:`open_milvus`, and close at the end."""
    milvus = CliMilvus(connection, drop_exist_index=drop_exist_index)
    try:
        milvus.connect()
        yield milvus
    finally:
        milvus.close()
