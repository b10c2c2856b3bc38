"""End-to-end demo: ``python examples/demo.py`` (or ``./dev demo`` / ``nox -s demo``).

A script, not part of the library: it talks to the terminal with ``print``; the library itself only
logs and reports through the progress callback.

Starts an embedded Milvus 2.3.5, creates a sample collection (a few thousand rows, partitions,
deletes, an index), backs it up into ``./demo-backups``, lists the backups, restores the new one
under a suffix, and compares row counts and searches between the source and the restored copy.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

from milvus_backup_lib import BackupClient, MilvusConnection, RestoreOptions, StorageLocation
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

COLLECTION = "demo_articles"
DIM = 16


def _create_sample(uri: str, rows: int) -> int:
    """Create the sample collection; return how many rows it holds after the deletes."""
    from pymilvus import DataType, MilvusClient

    rng = random.Random(42)
    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=128)
    schema.add_field("year", DataType.INT32)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(COLLECTION, schema=schema)
    partitions = ["_default", "news", "blogs"]
    for p in partitions[1:]:
        client.create_partition(COLLECTION, p)
    per_batch = rows // len(partitions)
    for n, p in enumerate(partitions):
        batch = [
            {
                "id": n * per_batch + i,
                "title": f"article {n * per_batch + i}",
                "year": 2000 + i % 25,
                "embedding": [rng.random() for _ in range(DIM)],
                "source": p,  # a dynamic field
            }
            for i in range(per_batch)
        ]
        client.insert(COLLECTION, batch, partition_name=p)
        client.flush(COLLECTION)
    deleted = list(range(0, per_batch * len(partitions), 50))
    client.delete(COLLECTION, ids=deleted)
    client.flush(COLLECTION)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
    client.create_index(COLLECTION, index)
    client.close()
    return per_batch * len(partitions) - len(deleted)


def _compare(uri: str, source: str, restored: str) -> bool:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    for name in (source, restored):
        client.load_collection(name)
    counts = [
        client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        for name in (source, restored)
    ]
    sample = client.query(
        source, filter="id < 300", output_fields=["embedding"], limit=3, consistency_level="Strong"
    )
    vectors = [row["embedding"] for row in sample]
    params = {"metric_type": "L2", "params": {"ef": 256}}
    hits = [
        [
            [h["id"] for h in hits]
            for hits in client.search(name, data=vectors, limit=10, search_params=params)
        ]
        for name in (source, restored)
    ]
    client.close()
    print(f"\n{'':12}{'source':>16}{'restored':>16}")
    print(f"{'rows':12}{counts[0]:>16}{counts[1]:>16}")
    same: bool = counts[0] == counts[1]
    for i, (a, b) in enumerate(zip(hits[0], hits[1], strict=True)):
        print(f"search {i}: top-10 {'identical' if a == b else 'DIFFERENT'}  {a[:5]}...")
        same = same and bool(a == b)
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--backups", default="demo-backups", help="backup root directory (default ./demo-backups)"
    )
    parser.add_argument("--rows", type=int, default=3000, help="rows in the sample collection")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    root = Path(args.backups).resolve()
    root.mkdir(parents=True, exist_ok=True)
    print("starting an embedded Milvus 2.3.5 ...", flush=True)
    with EmbeddedMilvus() as server:
        print(f"  {server.uri}, binlogs under {server.data_dir}")
        expected = _create_sample(server.uri, args.rows)
        print(f"created {COLLECTION}: {args.rows} rows in 3 partitions, {args.rows - expected} deleted")

        client = BackupClient(
            milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
            milvus_storage=StorageLocation(server.storage_url),
            backup_storage=StorageLocation(root.as_uri()),
        )
        started = time.monotonic()
        report = client.create_backup(collections=[COLLECTION])
        print(
            f"\nbacked up {report.name} in {time.monotonic() - started:.1f} s: {report.files} files, "
            f"{report.bytes_copied} bytes ({'server-side copy' if report.server_side_copy else 'streamed'}); "
            f"GC paused: {report.gc.paused} ({report.gc.note})"
        )
        print(f"\nbackups in {root}:")
        print(f"  {'name':44} {'collections':>11} {'bytes':>10}  milvus       created")
        for s in client.list_backups():
            created = s.created_at.isoformat(timespec="seconds") if s.created_at else "-"
            print(f"  {s.name:44} {s.collection_count:>11} {s.size:>10}  {s.milvus_version:12} {created}")
        info = client.get_backup(report.name)
        coll = info.collection("default", COLLECTION)
        print(f"\n{coll.qualified_name}: {len(coll.schema.fields)} fields, {coll.num_rows} rows in segments")
        for part in coll.partition_backups:
            print(
                f"  partition {part.partition_name:10} {len(part.segment_backups)} segment(s) {part.size:>8} bytes"
            )

        restore = client.restore(report.name, RestoreOptions(suffix="_restored"))
        print("\nrestore:")
        print(restore.table())
        ok = _compare(server.uri, COLLECTION, f"{COLLECTION}_restored")
    print("\ndemo", "succeeded: the restored collection equals the source" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
