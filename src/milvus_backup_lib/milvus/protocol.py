"""What the library needs from a Milvus cluster, as one :class:`typing.Protocol`.

Two implementations: :class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus` (a real server, over gRPC and
its HTTP management port) and :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus` (a cluster held
in memory over fsspec's memory filesystem, for fast tests of everything above this boundary). Answers
are typed records (:mod:`milvus_backup_lib.milvus.records`, and the manifest's schema and index
records), never protobuf. Errors are the library's own (:mod:`milvus_backup_lib.errors`):
``CollectionNotFoundError``, ``DatabaseNotFoundError``, ``MilvusOperationError``...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeAlias

from milvus_backup_lib.manifest.model import CollectionSchema, DatabaseBackupInfo, FieldSchema, IndexInfo
from milvus_backup_lib.milvus.records import (
    ChannelCheckpoint,
    CollectionDescription,
    FlushResult,
    GcAnswer,
    GrantInfo,
    ImportState,
    PartitionInfo,
    SegmentBinlogList,
    SegmentInfo,
)
from milvus_backup_lib.options import MilvusConnection

__all__ = ["MilvusCluster", "MilvusFactory"]


class MilvusCluster(Protocol):
    """A connection to one Milvus cluster."""

    # -- server --------------------------------------------------------------------------------
    def server_version(self) -> str:
        """The server's version string (``v2.3.5-lite``, ``v2.6.11``)."""
        ...

    def close(self) -> None: ...

    # -- databases and collections ---------------------------------------------------------------
    def list_databases(self) -> list[str]:
        """Database names (``["default"]`` on servers without databases)."""
        ...

    def create_database(self, db: str, properties: Sequence[tuple[str, str]] = ()) -> None:
        """Create a database with ``properties`` (``database.replica.number``, ...)."""
        ...

    def describe_database(self, db: str) -> DatabaseBackupInfo:
        """The database's ID, properties and, for an encrypted database, its encryption-zone key (``ezk``).
        Servers without ``DescribeDatabase`` (before 2.4.3) give only the name."""
        ...

    def list_collections(self, db: str) -> list[str]: ...

    def describe_collection(self, db: str, name: str) -> CollectionDescription:
        """Raises :class:`CollectionNotFoundError` when there is no such collection."""
        ...

    def has_collection(self, db: str, name: str) -> bool: ...

    def describe_indexes(self, db: str, name: str) -> list[IndexInfo]:
        """The collection's indexes (empty when it has none)."""
        ...

    def show_partitions(self, db: str, name: str) -> list[PartitionInfo]:
        """The collection's partitions, in creation order."""
        ...

    def load_state(self, db: str, name: str, partitions: Sequence[str] = ()) -> str:
        """``NotLoad``, ``Loading`` or ``Loaded``."""
        ...

    def list_aliases(self, db: str, name: str) -> list[str]: ...

    # -- flush and segments ------------------------------------------------------------------------
    def flush(self, db: str, name: str) -> FlushResult:
        """Seal and flush the collection's growing segments."""
        ...

    def wait_flushed(
        self,
        db: str,
        name: str,
        flush: FlushResult,
        timeout: float = 600.0,
        interval: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> list[ChannelCheckpoint]:
        """Wait until ``flush`` is durable; the channel checkpoints. Raises :class:`FlushTimeoutError`."""
        ...

    def persistent_segments(self, db: str, name: str) -> list[SegmentInfo]:
        """The collection's persisted segments, in any state."""
        ...

    def segment_binlogs(
        self, db: str, collection_id: int, segment_ids: Sequence[int]
    ) -> dict[int, SegmentBinlogList] | None:
        """The exact binlog lists of ``segment_ids``, by segment ID, from Milvus's own meta (the REST
        segment-describe API of Milvus 2.5.8+); None when the server cannot tell (no such API, or it
        failed): then the caller lists the segment's files in the storage instead. A segment missing
        from the answer is one the server did not describe."""
        ...

    # -- rows (logical backups) ------------------------------------------------------------------
    def iter_rows(
        self, db: str, name: str, partition: str, batch_rows: int, output_fields: Sequence[str] = ("*",)
    ) -> Iterator[list[dict[str, Any]]]:
        """The live rows of partition ``partition`` (``""``: the whole collection), at most ``batch_rows`` a batch, as pymilvus's
        ``query_iterator`` gives them: fields by name, dynamic keys under their own names (the
        collection must be loaded). Raises :class:`MilvusOperationError` naming the collection."""
        ...

    # -- garbage collection ------------------------------------------------------------------------
    def pause_gc(self, seconds: int) -> GcAnswer:
        """Pause garbage collection for ``seconds`` (again: renew). Raises :class:`GcPauseError` when the
        server has GC control but the pause failed."""
        ...

    def resume_gc(self) -> bool:
        """Resume garbage collection; False when the server did not confirm it."""
        ...

    # -- restore side ----------------------------------------------------------------------------
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
        """Create a collection with the fields of ``schema`` in order (the ``$meta`` field is left out:
        ``enable_dynamic_field`` recreates it)."""
        ...

    def add_collection_field(self, db: str, name: str, field: FieldSchema) -> None:
        """Add a (nullable) field to an existing collection; Milvus gives it the next field ID
        (``AddCollectionField``, Milvus 2.6+)."""
        ...

    def drop_collection(self, db: str, name: str) -> None: ...

    def create_partition(self, db: str, name: str, partition: str) -> None: ...

    def create_index(
        self, db: str, name: str, field: str, index_name: str, params: Sequence[tuple[str, str]]
    ) -> None: ...

    def load_collection(self, db: str, name: str, timeout: float = 600.0) -> None:
        """Load a collection and wait until it is loaded."""
        ...

    def create_alias(self, db: str, name: str, alias: str) -> None: ...

    def drop_alias(self, db: str, alias: str) -> None: ...

    def describe_alias(self, db: str, alias: str) -> str | None:
        """The collection an alias points to, or None if there is no such alias."""
        ...

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        """Start a bulk import of ``files`` (paths the server reads in its own storage); its task IDs."""
        ...

    def start_batch_import(
        self,
        db: str,
        name: str,
        partition: str,
        files: Sequence[Sequence[str]],
        options: Sequence[tuple[str, str]],
    ) -> list[int]:
        """Start one import job of several segment groups (``files``: one ``[insert, delta]`` list each);
        its job IDs, polled with :meth:`import_state`. Only where :meth:`batch_imports` is true."""
        ...

    def batch_imports(self) -> bool:
        """Whether one import job can carry several segment groups (Milvus 2.4+)."""
        ...

    def import_state(self, db: str, task_id: int) -> ImportState: ...

    def list_import_tasks(self, db: str, name: str) -> list[ImportState]:
        """The collection's import jobs the server remembers, with their files where it says."""
        ...

    def statistics_row_count(self, db: str, name: str) -> int:
        """The rows in the collection's persisted segments (deleted rows of imported segments excluded)."""
        ...

    def count_rows(self, db: str, name: str) -> int:
        """``count(*)`` with strong consistency (the collection must be loaded)."""
        ...

    def insert_rows(
        self, db: str, name: str, partition: str | None, batch: Any, schema: CollectionSchema
    ) -> int:
        """Insert the rows of ``batch`` (a ``pyarrow.RecordBatch`` with the columns
        :class:`~milvus_backup_lib.reader.BackupReader` returns, named after ``schema``'s fields) into
        ``partition`` (``None``: the server routes them, as for partition-key collections); the rows taken."""
        ...

    # -- users, roles and grants (RBAC) ------------------------------------------------------------
    def list_users(self) -> list[str]: ...

    def user_roles(self) -> dict[str, tuple[str, ...]]: ...

    def list_roles(self) -> list[str]: ...

    def role_grants(self, role: str, db: str) -> list[GrantInfo]: ...

    def create_role(self, role: str) -> None: ...

    def create_user(self, user: str, password: str) -> None: ...

    def grant_privilege(self, grant: GrantInfo) -> None: ...

    def add_user_to_role(self, user: str, role: str) -> None: ...


#: Opens a connection to the cluster a :class:`MilvusConnection` names (checking reachability and
#: credentials) and closes it at the end: :func:`~milvus_backup_lib.milvus.grpc.open_milvus` by default.
MilvusFactory: TypeAlias = Callable[[MilvusConnection], AbstractContextManager[MilvusCluster]]
