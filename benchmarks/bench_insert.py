"""Benchmark: restore by inserts (``method="insert"``) against a hand-written read-and-insert loop.

    python benchmarks/bench_insert.py [--rows N] [--segments S] [--repeat R] [--out docs/benchmarks.md]

(``nox -s bench`` runs it after bench_restore.py). What runs, in one process:

1. An embedded Milvus 2.3.5 on local storage gets one collection of ``--rows`` rows (INT64 key,
   VARCHAR, JSON, 128-d FLOAT_VECTOR, dynamic field), flushed into ``--segments`` segments, backed up once.
2. Rounds alternate, the loop first, each into a fresh target collection:
   - **loop**: what a user writes without the library's restore: ``open_backup(...)``, then for each
     ``reader.iter_batches(..., batch_rows=10000)`` batch ``MilvusClient.insert(target, batch.to_pylist())``
     (dynamic keys merged into the rows), after creating the collection; then a flush;
   - **ours**: ``restore(method="insert", rebuild_indexes=False, load=False)``: creates the collection,
     inserts through the bounded read/insert pipeline, flushes and checks the row count.
   Both targets are checked for the backup's row count.

Times are only compared within one run (a ratio): the machine is shared. With ``--out`` the results go
between the ``bench-insert:begin``/``bench-insert:end`` markers of that file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _cli import log, run_benchmark, samples  # type: ignore[import-not-found]  # benchmarks/ is on sys.path

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation, open_backup
from milvus_backup_lib.testing.embedded import MILVUS_VERSION, EmbeddedMilvus

DIM = 128
NO_COMPACTION = {"dataCoord.enableCompaction": "false", "dataCoord.compaction.enableAutoCompaction": "false"}
SOURCE = "bench_insert_src"


def _schema() -> Any:
    from pymilvus import CollectionSchema, DataType, FieldSchema

    return CollectionSchema(
        [
            FieldSchema("key", DataType.INT64, is_primary=True),
            FieldSchema("title", DataType.VARCHAR, max_length=64),
            FieldSchema("meta", DataType.JSON),
            FieldSchema("vector", DataType.FLOAT_VECTOR, dim=DIM),
        ],
        enable_dynamic_field=True,
    )


def make_source(uri: str, rows: int, segments: int) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    client.create_collection(SOURCE, schema=_schema(), shards_num=1)
    rng = np.random.default_rng(5)
    per_segment = -(-rows // segments)
    done = 0
    while done < rows:
        n = min(per_segment, rows - done)
        vectors = rng.random((n, DIM), dtype=np.float32)
        batch = [
            {"key": k, "title": f"row {k}", "meta": {"k": k}, "vector": vectors[i].tolist(), "extra": k % 7}
            for i, k in enumerate(range(done, done + n))
        ]
        for start in range(0, n, 10_000):
            client.insert(SOURCE, batch[start : start + 10_000])
        client.flush(SOURCE)
        done += n
    client.close()


def hand_loop(uri: str, backups: Path, target: str) -> None:
    """What a user writes: read the backup with the reader, insert batch by batch with MilvusClient."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    client.create_collection(target, schema=_schema(), shards_num=1)
    reader = open_backup(backups.as_uri(), "bench")
    for batch in reader.iter_batches(f"default.{SOURCE}", batch_rows=10_000):
        rows = batch.to_pylist()
        for row in rows:
            row["meta"] = json.loads(row["meta"])
            row.update(json.loads(row.pop("$meta") or "{}"))
        client.insert(target, rows)
    client.flush(target)
    client.close()


def count(uri: str, name: str) -> int:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    try:
        return int(client.get_collection_stats(name)["row_count"])
    finally:
        client.close()


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with EmbeddedMilvus(work / "milvus", extra_config=NO_COMPACTION) as server:
        started = time.monotonic()
        make_source(server.uri, args.rows, args.segments)
        log(f"  {args.rows} rows in {args.segments} segments, {time.monotonic() - started:.0f} s")
        backups = work / "backups"
        backups.mkdir()
        client = BackupClient(
            milvus=MilvusConnection(uri=server.uri),
            milvus_storage=StorageLocation(server.storage_url),
            backup_storage=StorageLocation(backups.as_uri()),
            pause_gc=False,
        )
        client.create_backup("bench", collections=[SOURCE])
        times: dict[str, list[float]] = {"loop": [], "ours": []}
        for round_no in range(args.repeat):
            for kind in ("loop", "ours"):
                target = f"{SOURCE}_{kind}{round_no}"
                began = time.monotonic()
                if kind == "loop":
                    hand_loop(server.uri, backups, target)
                else:
                    client.restore(
                        "bench",
                        rename={SOURCE: target},
                        method="insert",
                        rebuild_indexes=False,
                        load=False,
                        restore_aliases=False,
                    )
                times[kind].append(time.monotonic() - began)
                got = count(server.uri, target)
                if got != args.rows:
                    raise SystemExit(f"{kind} gave {got} rows, the backup holds {args.rows}")
                log(f"  round {round_no + 1} {kind}: {times[kind][-1]:.1f} s")
    loop, ours = statistics.median(times["loop"]), statistics.median(times["ours"])
    return {"times": times, "ratio": loop / ours}


def render(args: argparse.Namespace, command: str, result: dict[str, Any], elapsed: float) -> list[str]:
    times = result["times"]
    return [
        f"Run on {time.strftime('%Y-%m-%d', time.gmtime())} with `{command}` against an embedded Milvus "
        f"{MILVUS_VERSION} on local storage: one collection of {args.rows} rows (INT64, VARCHAR, JSON, "
        f"{DIM}-d float vector, dynamic field) in {args.segments} segments, {args.repeat} rounds per side, "
        "alternating.",
        "",
        "| restore by inserts | seconds (median) | samples |",
        "|---|---:|---|",
        f"| hand-written loop (`iter_batches` + `MilvusClient.insert`, then flush) | "
        f"{statistics.median(times['loop']):.1f} | {samples(times['loop'])} |",
        f'| `restore(method="insert")` (pipelined, row check included) | '
        f"{statistics.median(times['ours']):.1f} | {samples(times['ours'])} |",
        "",
        f"**Ratio loop / ours: {result['ratio']:.2f}** (goal >= 1.0: ours at least as fast).",
    ]


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=40_000, help="rows (default 40000)")
    parser.add_argument("--segments", type=int, default=4, help="segments (default 4)")


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(  # type: ignore[no-any-return]
        "insert", __doc__, argv, options=options, measure=bench, render=render, heading="Restore by inserts"
    )


if __name__ == "__main__":
    sys.exit(main())
