"""Shared data for the tests that run against :class:`InMemoryMilvus`: a schema with every scalar type,
rows with exact values, and a collection populated the way each version line stores it."""

from __future__ import annotations

import random
import struct
import uuid
from typing import Any

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib.manifest.model import CollectionSchema, DataType, FieldSchema
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

DB = "default"
DIM = 8
#: Deleted in every partition (the delete names none) and in partition p1 only.
DELETED_EVERYWHERE = (3, 4, 1005)
DELETED_IN_P1 = (1007,)


def schema(*, float16: bool = False, dynamic: bool = True) -> CollectionSchema:
    fields: list[FieldSchema] = [
        field("pk", DataType.INT64, primary=True),
        field("vec", DataType.FLOAT_VECTOR, dim=DIM),
        field("flag", DataType.BOOL),
        field("i8", DataType.INT8),
        field("i16", DataType.INT16),
        field("i32", DataType.INT32),
        field("f32", DataType.FLOAT),
        field("f64", DataType.DOUBLE),
        field("name", DataType.VARCHAR, max_length=64),
        field("doc", DataType.JSON),
        field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=16),
        field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
    ]
    if float16:
        fields.append(field("half", DataType.FLOAT16_VECTOR, dim=DIM))
    return CollectionSchema(fields=tuple(fields), enable_dynamic_field=dynamic)


def rows(pks: range, *, seed: int = 7, float16: bool = False) -> list[dict[str, Any]]:
    """Rows whose every value survives storage exactly (floats are float32 values already)."""
    rng = random.Random(seed)
    out = []
    for pk in pks:
        vector = struct.pack(f"<{DIM}f", *(rng.uniform(-1, 1) for _ in range(DIM)))
        row: dict[str, Any] = {
            "pk": pk,
            "vec": vector,
            "flag": pk % 2 == 0,
            "i8": pk % 100 - 50,
            "i16": -pk,
            "i32": pk * 1000,
            "f32": struct.unpack("<f", struct.pack("<f", rng.random()))[0],
            "f64": rng.random() * 1e6,
            "name": f"row-{pk}",
            "doc": {"pk": pk, "nested": {"even": pk % 2 == 0}, "list": [pk, "x"]},
            "tags": [f"t{pk % 3}", "all"],
            "nums": [pk, pk * 2],
        }
        if float16:
            row["half"] = struct.pack(f"<{DIM}e", *(rng.uniform(-2, 2) for _ in range(DIM)))
        if pk % 3 == 0:
            row["color"] = "red"  # dynamic field
            row["score"] = pk / 4
        out.append(row)
    return out


def populate(cluster: InMemoryMilvus, name: str = "c", *, float16: bool = False) -> None:
    """Two partitions, two flushes, deletes of both kinds, and rows still growing (unflushed)."""
    cluster.create_collection(DB, name, schema(float16=float16), shards_num=1, consistency_level=2)
    cluster.create_partition(DB, name, "p1")
    cluster.insert(DB, name, rows(range(0, 10), float16=float16))
    cluster.insert(DB, name, rows(range(1000, 1010), seed=8, float16=float16), partition="p1")
    cluster.flush(DB, name)
    cluster.delete(DB, name, list(DELETED_EVERYWHERE))
    cluster.delete(DB, name, list(DELETED_IN_P1), partition="p1")
    cluster.flush(DB, name)
    cluster.insert(DB, name, rows(range(20, 25), seed=9, float16=float16))  # growing at backup time


def expected_pks() -> list[int]:
    kept = [*range(0, 10), *range(1000, 1010), *range(20, 25)]
    return sorted(pk for pk in kept if pk not in DELETED_EVERYWHERE + DELETED_IN_P1)


def client(
    cluster: InMemoryMilvus, backup_storage: StorageLocation | None = None, **kwargs: Any
) -> BackupClient:
    """A facade over ``cluster`` whose backups go to a fresh memory location (or ``backup_storage``)."""
    backups = backup_storage or StorageLocation(f"memory://bk-{uuid.uuid4().hex}")
    return BackupClient(
        MilvusConnection(), cluster.storage, backups, milvus_factory=cluster.factory, **kwargs
    )
