"""Databases and collection schemas of :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus`: creating
them, describing databases and adding fields to a collection, as Milvus does.

- ``CreateDatabase`` keeps the properties it is given; ``DescribeDatabase`` (2.4.3+, the version
  milvus-backup's ``internal/client/milvus/grpc.go`` feature table gives it; older lines answer with the
  name only, as :class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus` does for UNIMPLEMENTED) reports the ID
  and properties. An encrypted database (``cipher.ezID`` and ``cipher.key`` set) also reports its
  encryption-zone key, as the management endpoint ``/management/rootcoord/ez/backup`` gives it; the cipher
  plugin that makes the key is not public, so a test sets it with :meth:`SchemaState.set_encryption_zone_key`.
- ``AddCollectionField`` (2.6+): the field must be nullable (milvus proxy: "added field must be nullable,
  please check it, field name = ..."), not a primary or partition key, and its name new; it gets the
  highest field ID in use plus one (``internal/rootcoord/ddl_callbacks_alter_collection_add_field.go``).
  Rows written before have no value for it (null), and segments written before have no binlog of it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.manifest.model import CollectionSchema, DatabaseBackupInfo, FieldSchema, KeyValue
from milvus_backup_lib.milvus.ez import is_encrypted
from milvus_backup_lib.testing._memory_state import (
    Clock,
    Collection,
    Partition,
    VersionLine,
    assign_field_ids,
    max_field_id,
)

__all__ = ["DEFAULT_PARTITION", "SchemaState"]

DEFAULT_PARTITION = "_default"


class SchemaState:
    """Databases, collection creation and added fields of one in-memory cluster."""

    line: VersionLine
    _lock: threading.RLock
    _clock: Clock
    _dbs: dict[str, dict[str, Collection]]
    _db_ids: dict[str, int]
    _aliases: dict[tuple[str, str], str]

    def _init_schema(self) -> None:
        self._db_properties: dict[str, tuple[KeyValue, ...]] = {}
        self._ezks: dict[str, str] = {}

    def _db(self, db: str) -> dict[str, Collection]:
        raise NotImplementedError

    def _coll(self, db: str, name: str) -> Collection:
        raise NotImplementedError

    # -- databases ----------------------------------------------------------------------------------

    def create_database(self, db: str, properties: Sequence[tuple[str, str]] = ()) -> None:
        with self._lock:
            if db in self._dbs:
                raise MilvusOperationError("CreateDatabase", f"database already exist: {db}")
            self._dbs[db] = {}
            self._db_ids[db] = self._clock.next_id()
            self._db_properties[db] = tuple(KeyValue(key=k, value=v) for k, v in properties)

    def describe_database(self, db: str) -> DatabaseBackupInfo:
        with self._lock:
            self._db(db)
            if self.line.version < (2, 4, 3):
                return DatabaseBackupInfo(db_name=db)
            properties = self._db_properties.get(db, ())
            ezk = ""
            if is_encrypted(properties):
                if db not in self._ezks:
                    raise MilvusOperationError("GetEZK", f"no encryption zone key for database {db!r}")
                ezk = self._ezks[db]
            return DatabaseBackupInfo(db_name=db, db_id=self._db_ids[db], properties=properties, ezk=ezk)

    def database_properties(self, db: str) -> dict[str, str]:
        """The properties ``db`` was created with (for tests)."""
        with self._lock:
            self._db(db)
            return {kv.key: kv.value for kv in self._db_properties.get(db, ())}

    def set_encryption_zone_key(self, db: str, ezk: str) -> None:
        """Stand in for the cipher plugin: the key the management endpoint gives for ``db``."""
        with self._lock:
            self._db(db)
            self._ezks[db] = ezk

    # -- collections --------------------------------------------------------------------------------

    def create_collection(
        self,
        db: str,
        name: str,
        schema: CollectionSchema,
        *,
        shards_num: int = 1,
        consistency_level: int = 0,
        properties: Sequence[tuple[str, str]] = (),
        num_partitions: int = 0,
    ) -> None:
        """Create a collection; field IDs are assigned as Milvus does: 100, 101... in schema order, then
        the hidden ``$meta`` field when ``enable_dynamic_field``, then the struct array fields."""
        with self._lock:
            colls = self._db(db)
            if name in colls or (db, name) in self._aliases:
                raise MilvusOperationError("CreateCollection", f"collection name already exists: {name}")
            coll = Collection(
                collection_id=self._clock.next_id(),
                db=db,
                name=name,
                schema=attrs.evolve(assign_field_ids(schema, self.line), name=name),
                shards_num=max(1, shards_num),
                consistency_level=consistency_level,
                properties=tuple(KeyValue(key=k, value=v) for k, v in properties),
                created_ts=self._clock.now(),
            )
            if schema.partition_key_field is not None:
                names = [f"{DEFAULT_PARTITION}_{i}" for i in range(num_partitions or 16)]
            else:
                names = [DEFAULT_PARTITION]
            coll.partitions = [Partition(n, self._clock.next_id()) for n in names]
            colls[name] = coll

    def add_collection_field(self, db: str, name: str, field: FieldSchema) -> None:
        with self._lock:
            coll = self._coll(db, name)
            op = "AddCollectionField"
            if self.line.version < (2, 6):
                raise MilvusOperationError(op, f"Milvus {self.line.text} has no AddCollectionField")
            if not field.nullable:
                raise MilvusOperationError(
                    op, f"added field must be nullable, please check it, field name = {field.name}"
                )
            if field.is_primary_key or field.is_partition_key or field.is_dynamic:
                raise MilvusOperationError(
                    op, f"field {field.name} cannot be added as a key or dynamic field"
                )
            names = {f.name for f in coll.schema.stored_fields} | {
                s.name for s in coll.schema.struct_array_fields
            }
            if field.name in names:
                raise MilvusOperationError(op, f"field already exists, name: {field.name}")
            added = attrs.evolve(field, field_id=max_field_id(coll.schema, coll.properties) + 1)
            coll.schema = attrs.evolve(coll.schema, fields=(*coll.schema.fields, added))
