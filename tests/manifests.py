"""Builders of backup manifests (``milvus_backup_lib.manifest.model`` records) for tests.

Small functions that compose::

    backup(
        collection("c1", partition(P1, segment(S1, P1, 100), segment(S2, P1, 7, l0=True))),
        name="nightly",
    )

They fill in what the snapshotter would, consistently: a segment gets one insert binlog per field (none
when it is L0 or empty) and one delta binlog when it has deletes, under the upstream ``files/...`` log
paths, and its size is the sum of its log sizes; a partition's size is the sum of its segments', a
collection's that of its partitions and collection-level L0 segments, a backup's that of its
collections. Every builder takes further record attributes as keywords (``load_state=...``,
``size=...``), which win over what it filled in; a test that depends on a value passes it.

Conventions (so a test can compute what a builder produced): the insert binlog of field ``f`` of segment
``s`` has log id ``s + 1000 + f`` and size ``1000 + 7 * f``; the delta binlog has log id ``s + 5000`` and
size ``8 + 16 * deletes``; a segment's group id is its own id (0 for a collection-level L0 segment,
partition -1); its channel is ``vchannel(collection_id)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from milvus_backup_lib.manifest.model import (
    BackupInfo,
    Binlog,
    CollectionBackupInfo,
    CollectionSchema,
    DataType,
    FieldBinlog,
    FieldSchema,
    IndexInfo,
    KeyValue,
    PartitionBackupInfo,
    SegmentBackupInfo,
)

__all__ = [
    "COLLECTION_ID",
    "backup",
    "collection",
    "field",
    "index",
    "key_values",
    "partition",
    "pk_field",
    "schema",
    "segment",
    "vchannel",
    "vector_field",
]

#: The collection id of records built without one.
COLLECTION_ID = 447_001


def key_values(pairs: Mapping[str, object]) -> tuple[KeyValue, ...]:
    """``{"dim": 8}`` -> ``(KeyValue(key="dim", value="8"),)``, in the mapping's order."""
    return tuple(KeyValue(key=key, value=str(value)) for key, value in pairs.items())


def vchannel(collection_id: int = COLLECTION_ID, shard: int = 0) -> str:
    """The name Milvus gives the virtual channel of a collection's shard: ``by-dev-rootcoord-dml_0_<id>v0``."""
    return f"by-dev-rootcoord-dml_{shard}_{collection_id}v{shard}"


# --------------------------------------------------------------------------- schemas


def field(
    field_id: int, name: str, data_type: int, *, params: Mapping[str, object] | None = None, **changes: Any
) -> FieldSchema:
    """A field; ``params`` are its type params (``{"dim": 8}``), ``changes`` any other attribute."""
    return FieldSchema(
        field_id=field_id, name=name, data_type=data_type, type_params=key_values(params or {}), **changes
    )


def pk_field(field_id: int = 100, name: str = "pk", *, auto_id: bool = True, **changes: Any) -> FieldSchema:
    """An Int64 primary key."""
    return field(field_id, name, DataType.INT64, is_primary_key=True, auto_id=auto_id, **changes)


def vector_field(field_id: int = 101, name: str = "vec", *, dim: int = 8, **changes: Any) -> FieldSchema:
    """A float vector."""
    return field(field_id, name, DataType.FLOAT_VECTOR, params={"dim": dim}, **changes)


def schema(name: str, *fields: FieldSchema, **changes: Any) -> CollectionSchema:
    """A schema of ``fields``; by default ``pk_field()`` and ``vector_field()`` (the ids 100 and 101 whose
    binlogs ``segment`` writes)."""
    return CollectionSchema(name=name, fields=fields or (pk_field(), vector_field()), **changes)


_schema = schema  # for ``collection``, whose parameter of that name hides it


def index(
    field_name: str, index_type: str, params: Mapping[str, str], *, name: str | None = None, **changes: Any
) -> IndexInfo:
    """An index of ``field_name`` as ``DescribeIndex`` reports it (``params`` copied), named ``name`` or
    after the field."""
    return IndexInfo(
        field_name=field_name,
        index_name=field_name if name is None else name,
        index_type=index_type,
        params=dict(params),
        **changes,
    )


# --------------------------------------------------------------------------- segments and up


def _binlog(directory: str, log_id: int, size: int, entries: int) -> Binlog:
    return Binlog(entries_num=entries, log_path=f"{directory}/{log_id}", log_size=size, log_id=log_id)


def segment(
    seg_id: int,
    partition_id: int,
    rows: int,
    *,
    fields: Iterable[int] = (0, 1, 100, 101),
    deletes: int | None = None,
    l0: bool = False,
    group_id: int | None = None,
    storage_version: int = 0,
    collection_id: int = COLLECTION_ID,
    **changes: Any,
) -> SegmentBackupInfo:
    """A flushed segment of ``rows`` rows and the binlogs of ``fields`` (the system fields 0 and 1 too).

    ``deletes`` (default 0; for an L0 segment, whose rows are deletes, ``rows``) makes a delta binlog.
    ``partition_id`` -1 is a collection-level L0 segment.
    """
    if deletes is None:
        deletes = rows if l0 else 0
    where = f"{collection_id}/{partition_id}/{seg_id}"
    binlogs = tuple(
        FieldBinlog(
            field_id=f,
            binlogs=(_binlog(f"files/insert_log/{where}/{f}", seg_id + 1000 + f, 1000 + 7 * f, rows),),
        )
        for f in (() if l0 or not rows else fields)
    )
    deltalogs: tuple[FieldBinlog, ...] = ()
    if deletes:
        deltalogs = (
            FieldBinlog(
                binlogs=(_binlog(f"files/delta_log/{where}", seg_id + 5000, 8 + 16 * deletes, deletes),)
            ),
        )
    info = SegmentBackupInfo(
        segment_id=seg_id,
        collection_id=collection_id,
        partition_id=partition_id,
        num_of_rows=rows,
        binlogs=binlogs,
        deltalogs=deltalogs,
        size=sum(b.log_size for fb in binlogs + deltalogs for b in fb.binlogs),
        group_id=(0 if partition_id == -1 else seg_id) if group_id is None else group_id,
        is_l0=l0,
        v_channel=vchannel(collection_id),
        storage_version=storage_version,
    )
    return attrs.evolve(info, **changes)


def partition(
    partition_id: int,
    *segments: SegmentBackupInfo,
    name: str = "_default",
    collection_id: int = COLLECTION_ID,
    **changes: Any,
) -> PartitionBackupInfo:
    """A partition of ``segments``."""
    info = PartitionBackupInfo(
        partition_id=partition_id,
        partition_name=name,
        collection_id=collection_id,
        segment_backups=segments,
        size=sum(s.size for s in segments),
    )
    return attrs.evolve(info, **changes)


def collection(
    name: str,
    *partitions: PartitionBackupInfo,
    collection_id: int = COLLECTION_ID,
    db_name: str = "default",
    schema: CollectionSchema | None = None,
    l0_segments: Iterable[SegmentBackupInfo] = (),
    **changes: Any,
) -> CollectionBackupInfo:
    """A collection of ``partitions`` (its schema by default ``schema(name)``); ``has_index`` follows
    ``index_infos``."""
    l0 = tuple(l0_segments)
    info = CollectionBackupInfo(
        collection_id=collection_id,
        db_name=db_name,
        collection_name=name,
        schema=_schema(name) if schema is None else schema,
        partition_backups=partitions,
        size=sum(p.size for p in partitions) + sum(s.size for s in l0),
        has_index=bool(changes.get("index_infos")),
        l0_segments=l0,
    )
    return attrs.evolve(info, **changes)


def backup(
    *collections: CollectionBackupInfo, name: str = "bk1", milvus_version: str = "v2.3.5", **changes: Any
) -> BackupInfo:
    """A backup of ``collections``."""
    info = BackupInfo(
        name=name,
        collection_backups=collections,
        size=sum(c.size for c in collections),
        milvus_version=milvus_version,
    )
    return attrs.evolve(info, **changes)
