"""Builds the collection matrix the backup and restore tests run against, on a real Milvus.

Every collection kind the backup issue names: INT64 auto-id and VARCHAR primary keys; BOOL, DOUBLE,
VARCHAR, JSON and ARRAY fields; the dynamic field; three user partitions; a partition-key collection;
deletes after a flush (so delta logs exist); several segments; an empty collection; two databases;
FLOAT, BINARY and FLOAT16 vectors; an HNSW and a Trie index; a TTL property, a default value, an alias.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from pymilvus import DataType, MilvusClient

from milvus_backup_lib import BackupClient, BackupReader, MilvusConnection, StorageLocation


@attrs.frozen
class Matrix:
    """Names of the collections built, and what the tests need to know about them."""

    uri: str
    db_a: str
    db_b: str
    default_coll: str  # a collection in the default database
    full: str = "full"  # int64 auto-id, all scalar kinds, dynamic field, 3 partitions, deletes, HNSW+Trie
    varchar: str = "vkey"  # varchar primary key, binary vector
    pkey: str = "pkey"  # partition key (4 partitions), loaded
    half: str = "half"  # float16 vector
    empty: str = "empty"
    other: str = "other"  # in db_b
    deleted_full: tuple[int, ...] = ()
    deleted_varchar: tuple[str, ...] = ()
    rows: dict[str, int] = attrs.field(factory=dict)  # "db.coll" -> rows inserted

    def qualified(self) -> list[str]:
        return [
            f"{self.db_a}.{self.full}",
            f"{self.db_a}.{self.varchar}",
            f"{self.db_a}.{self.pkey}",
            f"{self.db_a}.{self.half}",
            f"{self.db_a}.{self.empty}",
            f"{self.db_b}.{self.other}",
            f"default.{self.default_coll}",
        ]


def make_client(server: Any, root: Path) -> BackupClient:
    """A BackupClient for an embedded server, with backups under the local directory ``root``."""
    return BackupClient(
        milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
        milvus_storage=StorageLocation(server.storage_url),
        backup_storage=StorageLocation(f"file://{root}"),
    )


def client(uri: str, db: str = "default") -> MilvusClient:
    return MilvusClient(uri, db_name=db)


def _float_vectors(rng: np.random.Generator, n: int, dim: int) -> list[list[float]]:
    return [list(map(float, row)) for row in rng.random((n, dim), dtype=np.float32)]


def build_matrix(uri: str, prefix: str, seed: int = 7) -> Matrix:
    """Create databases ``{prefix}_a``/``{prefix}_b`` and ``default.{prefix}_d`` with all collection kinds."""
    rng = np.random.default_rng(seed)
    root = client(uri)
    db_a, db_b, default_coll = f"{prefix}_a", f"{prefix}_b", f"{prefix}_d"
    root.create_database(db_a)
    root.create_database(db_b)
    a = client(uri, db_a)
    rows: dict[str, int] = {}

    # full: INT64 auto-id, every scalar kind, dynamic field, 3 user partitions, several segments, deletes.
    s = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=True, description="all kinds")
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("flag", DataType.BOOL)
    s.add_field("score", DataType.DOUBLE, default_value=0.5)
    s.add_field("title", DataType.VARCHAR, max_length=64)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    a.create_collection(
        "full",
        schema=s,
        shards_num=2,
        consistency_level="Strong",
        properties={"collection.ttl.seconds": "86400"},
    )
    for p in ("p1", "p2", "p3"):
        a.create_partition("full", p)
    ids: list[int] = []
    n = 0
    for batch, part in enumerate(("_default", "p1", "p2", "p3", "p1")):
        data = []
        for i in range(300):
            k = batch * 1000 + i
            row: dict[str, Any] = {
                "flag": k % 3 == 0,
                "score": k / 7.0,
                "title": f"title {k} <&>",
                "meta": {"k": k, "nested": {"even": k % 2 == 0}, "s": f"v{k}"},
                "tags": [k, k + 1, k + 2][: k % 4],
                "vec": _float_vectors(rng, 1, 8)[0],
                "extra": f"dyn{k}" if k % 2 else k,
            }
            data.append(row)
        res = a.insert("full", data, partition_name=part)
        ids.extend(int(x) for x in res["ids"])
        n += len(data)
        a.flush("full")  # one segment per batch
    deleted = tuple(ids[::37])
    a.delete("full", ids=list(deleted))
    a.flush("full")  # deletes of flushed rows -> delta logs
    ip = a.prepare_index_params()
    ip.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    ip.add_index("title", index_type="Trie", index_name="title_trie")
    a.create_index("full", ip)
    a.create_alias("full", f"{prefix}_alias")
    rows[f"{db_a}.full"] = n

    # vkey: VARCHAR primary key, binary vector, two segments, deletes.
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
    s.add_field("bits", DataType.BINARY_VECTOR, dim=32)
    s.add_field("n", DataType.INT64)
    a.create_collection("vkey", schema=s)
    for batch in range(2):
        data = [
            {"key": f"k{batch}_{i}", "bits": rng.integers(0, 256, 4, dtype=np.uint8).tobytes(), "n": i}
            for i in range(200)
        ]
        a.insert("vkey", data)
        a.flush("vkey")
    deleted_v = tuple(f"k0_{i}" for i in range(0, 200, 11))
    a.delete("vkey", ids=list(deleted_v))
    a.flush("vkey")
    ip = a.prepare_index_params()
    ip.add_index("bits", index_type="BIN_FLAT", metric_type="HAMMING")
    a.create_index("vkey", ip)
    rows[f"{db_a}.vkey"] = 400

    # pkey: partition key with 4 partitions; loaded at backup time.
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    a.create_collection("pkey", schema=s, num_partitions=4)
    data = [{"id": i, "tenant": f"t{i % 7}", "vec": _float_vectors(rng, 1, 8)[0]} for i in range(500)]
    a.insert("pkey", data)
    a.flush("pkey")
    ip = a.prepare_index_params()
    ip.add_index("vec", index_type="FLAT", metric_type="L2")
    a.create_index("pkey", ip)
    a.load_collection("pkey")
    rows[f"{db_a}.pkey"] = 500

    # half: float16 vectors (Milvus 2.3.5 stores them, but its binlog import cannot read them back).
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("half", DataType.FLOAT16_VECTOR, dim=8)
    a.create_collection("half", schema=s)
    a.insert("half", [{"id": i, "half": rng.random(8).astype(np.float16)} for i in range(100)])
    a.flush("half")
    rows[f"{db_a}.half"] = 100

    # empty: schema only.
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    a.create_collection("empty", schema=s)
    rows[f"{db_a}.empty"] = 0

    # other: in the second database.
    b = client(uri, db_b)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    b.create_collection("other", schema=s)
    b.insert("other", [{"id": i, "vec": _float_vectors(rng, 1, 4)[0]} for i in range(120)])
    b.flush("other")
    rows[f"{db_b}.other"] = 120

    # a collection in the default database.
    d = client(uri)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    d.create_collection(default_coll, schema=s)
    d.insert(default_coll, [{"id": i, "vec": _float_vectors(rng, 1, 4)[0]} for i in range(50)])
    d.flush(default_coll)
    rows[f"default.{default_coll}"] = 50

    for c in (a, b, d, root):
        c.close()
    return Matrix(
        uri=uri,
        db_a=db_a,
        db_b=db_b,
        default_coll=default_coll,
        deleted_full=deleted,
        deleted_varchar=deleted_v,
        rows=rows,
    )


def drop_matrix(m: Matrix) -> None:
    """Remove everything :func:`build_matrix` created."""
    root = client(m.uri)
    for db in (m.db_a, m.db_b):
        c = client(m.uri, db)
        for coll in c.list_collections():
            c.drop_collection(coll)
        c.close()
        root.drop_database(db)
    if root.has_collection(m.default_coll):
        root.drop_collection(m.default_coll)
    root.close()


def iter_rows(uri: str, db: str, coll: str, pk: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    """All rows of a loaded collection (strong consistency), via query_iterator."""
    c = client(uri, db)
    it = c.query_iterator(coll, batch_size=1000, output_fields=fields, consistency_level="Strong")
    try:
        while True:
            batch = it.next()
            if not batch:
                break
            yield from batch
    finally:
        it.close()
        c.close()


def ensure_loaded(uri: str, db: str, coll: str) -> None:
    """Index the vector field (FLAT) if it has no index, then load the collection."""
    c = client(uri, db)
    try:
        if not c.list_indexes(coll):
            desc = c.describe_collection(coll)
            vec = next(f for f in desc["fields"] if int(f["type"]) in (100, 101, 102))
            ip = c.prepare_index_params()
            metric = "HAMMING" if int(vec["type"]) == 100 else "L2"
            ip.add_index(
                vec["name"], index_type="BIN_FLAT" if metric == "HAMMING" else "FLAT", metric_type=metric
            )
            c.create_index(coll, ip)
        c.load_collection(coll)
    finally:
        c.close()


def fetch_rows(uri: str, db: str, coll: str) -> dict[Any, dict[str, Any]]:
    """Every row of a collection keyed by primary key, with every field and dynamic key (loads it)."""
    ensure_loaded(uri, db, coll)
    c = client(uri, db)
    desc = c.describe_collection(coll)
    c.close()
    pk = next(f["name"] for f in desc["fields"] if f.get("is_primary"))
    rows = {}
    for row in iter_rows(uri, db, coll, pk, ["*"]):
        rows[row[pk]] = row
    return rows


def partition_counts(uri: str, db: str, coll: str) -> dict[str, int]:
    """count(*) per partition (the collection must be loaded)."""
    c = client(uri, db)
    try:
        fields = c.describe_collection(coll)["fields"]
        if any(f.get("is_partition_key") for f in fields):
            # Milvus refuses partition names in queries of partition-key collections; their segment
            # statistics count every row (there are no deletes in the matrix's partition-key collection).
            return {p: int(c.get_partition_stats(coll, p)["row_count"]) for p in c.list_partitions(coll)}
        return {
            p: int(
                c.query(
                    coll,
                    filter="",
                    output_fields=["count(*)"],
                    partition_names=[p],
                    consistency_level="Strong",
                )[0]["count(*)"]
            )
            for p in c.list_partitions(coll)
        }
    finally:
        c.close()


def top_ids(
    uri: str, db: str, coll: str, field: str, vectors: list[Any], metric: str = "L2"
) -> list[list[Any]]:
    """Top-10 primary keys for each query vector."""
    c = client(uri, db)
    try:
        res = c.search(
            coll,
            data=vectors,
            anns_field=field,
            limit=10,
            search_params={"metric_type": metric},
            consistency_level="Strong",
        )
        return [[hit["id"] for hit in hits] for hits in res]
    finally:
        c.close()


def build_small(uri: str, coll: str, seed: int = 3) -> tuple[int, tuple[int, ...]]:
    """One collection with the kinds that matter for storage round trips (auto-id key, dynamic field,
    JSON, VARCHAR, two partitions, two segments, deletes after flush); returns (rows, deleted ids)."""
    rng = np.random.default_rng(seed)
    c = client(uri)
    s = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("title", DataType.VARCHAR, max_length=32)
    s.add_field("meta", DataType.JSON)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    c.create_collection(coll, schema=s)
    c.create_partition(coll, "p1")
    ids: list[int] = []
    for part in ("_default", "p1"):
        data = [
            {"title": f"{part} {i}", "meta": {"i": i}, "vec": _float_vectors(rng, 1, 8)[0], "dyn": i % 5}
            for i in range(250)
        ]
        ids.extend(int(x) for x in c.insert(coll, data, partition_name=part)["ids"])
        c.flush(coll)
    deleted = tuple(ids[::25])
    c.delete(coll, ids=list(deleted))
    c.flush(coll)
    c.close()
    return 500, deleted


def two_partition_rows(
    rng: np.random.Generator, pks: range, *, dim: int, dynamic: bool
) -> list[dict[str, Any]]:
    """Rows for ``build_two_partitions``' schema, one a primary key of ``pks``; with ``dynamic`` also the
    dynamic keys "dyn" (every row) and "tag" (every third row only)."""
    vectors = rng.random((len(pks), dim), dtype=np.float32)
    return [
        {"pk": pk, "vec": vectors[i].tolist(), "title": f"row {pk}", "doc": {"pk": pk}}
        | ({"dyn": pk % 7} | ({"tag": f"t{pk}"} if pk % 3 == 0 else {}) if dynamic else {})
        for i, pk in enumerate(pks)
    ]


def build_two_partitions(uri: str, coll: str, *, rows: int, dim: int, dynamic: bool, seed: int) -> None:
    """``rows`` rows (INT64 ``pk`` 0..rows-1, ``dim``-d ``vec``, VARCHAR ``title``, JSON ``doc``, and the
    dynamic field when ``dynamic``): the first half in ``_default``, the rest in ``p1``, one flushed
    segment each; then pks 1, 2 and rows // 2 + 1 deleted and flushed (so delta logs exist)."""
    rng = np.random.default_rng(seed)
    c = client(uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=dynamic)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("title", DataType.VARCHAR, max_length=32)
    schema.add_field("doc", DataType.JSON)
    c.create_collection(coll, schema=schema)
    c.create_partition(coll, "p1")
    half = rows // 2
    c.insert(coll, two_partition_rows(rng, range(0, half), dim=dim, dynamic=dynamic))
    c.insert(coll, two_partition_rows(rng, range(half, rows), dim=dim, dynamic=dynamic), partition_name="p1")
    c.flush(coll)
    c.delete(coll, ids=[1, 2, half + 1])
    c.flush(coll)
    c.close()


def plain_value(value: Any) -> Any:
    """A query result value compared as data, in the offline reader's shape: pymilvus gives a binary
    or float16 vector as a one-element list of bytes, numpy scalars and protobuf repeated fields as
    themselves."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], bytes):
        return value[0]
    if isinstance(value, bytes):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list | tuple) or type(value).__name__ == "RepeatedScalarContainer":
        return [plain_value(v) for v in value]
    return value


def query_rows(uri: str, db: str, coll: str, key: str | None = None) -> dict[Any, dict[str, Any]]:
    """Every row as data (:func:`plain_value`), keyed by primary key, or by the unique field ``key``
    (then without the auto-ID primary key ``id``, which an insert restore gives anew)."""
    out = {}
    for pk, row in fetch_rows(uri, db, coll).items():
        shaped = {k: plain_value(v) for k, v in row.items()}
        if key is not None:
            shaped.pop("id")
        out[shaped[key] if key else pk] = shaped
    return out


def _sparse(data: bytes) -> dict[int, float]:
    """A stored sparse row (``uint32`` index, ``float32`` value pairs) as pymilvus's ``{index: value}``."""
    pairs = [struct.unpack_from("<If", data, offset) for offset in range(0, len(data), 8)]
    return {index: value for index, value in pairs}


def offline_rows(
    reader: BackupReader, qualified: str, partition: str | None = None
) -> dict[Any, dict[str, Any]]:
    """The rows the offline reader reads, keyed by primary key, shaped as a query gives them: the
    dynamic field's keys as columns, JSON parsed, sparse vectors as ``{index: value}``."""
    schema = reader.collections[qualified]
    pk = schema.primary_field.name
    types = {f.name: f.type_name for f in schema.fields}
    out: dict[Any, dict[str, Any]] = {}
    table = reader.read(qualified, partitions=[partition] if partition else None)
    for row in table.to_pylist():
        shaped: dict[str, Any] = {}
        for name, value in row.items():
            if name == "$meta":
                shaped.update(json.loads(value) if value else {})
            elif types.get(name) == "JSON" and value is not None:
                shaped[name] = json.loads(value)
            elif types.get(name) == "SparseFloatVector" and value is not None:
                shaped[name] = _sparse(value)
            else:
                shaped[name] = value
        assert shaped[pk] not in out, f"{qualified}: primary key {shaped[pk]!r} read twice"
        out[shaped[pk]] = shaped
    return out
