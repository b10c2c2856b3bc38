"""Benchmark: restore scheduling against one-job-per-segment sequential imports of the same backup.

    python benchmarks/bench_restore.py [--rows N] [--segments S] [--collections C] [--out docs/benchmarks.md]

(``nox -s bench`` runs it after bench_backup.py). What runs, in one process:

1. An embedded Milvus 2.3.5 on local storage gets ``--collections`` collections of ``--rows`` rows each
   (INT64 key, 128-d FLOAT_VECTOR), flushed into ``--segments`` segments each (auto-compaction off),
   backed up once.
2. Rounds alternate, sequential first, each into fresh target names (suffix, no index, no load):
   - **sequential**: ``restore(parallel_collections=1, parallel_imports=1, segments_per_import=1)``,
     the library as it was before: one import job per segment group, one at a time;
   - **scheduled**: ``restore()`` with the defaults (2 collections and 8 import jobs at once; on
     Milvus 2.4+ also up to 256 segments per job, which 2.3.5 cannot take).
   Every restore is checked (the library's own row check, and the row counts of the targets).
3. The same two schedules against the in-memory cluster behaving as Milvus 2.5 (no server): how many
   import requests each sends. Its times say nothing about a real server and are not compared.

Times are only compared within one run (a ratio): the machine is shared. A table goes to stdout; with
``--out`` the results go between the ``bench-restore:begin``/``bench-restore:end`` markers of that file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _cli import log, run_benchmark, samples  # type: ignore[import-not-found]  # benchmarks/ is on sys.path

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib.testing.embedded import MILVUS_VERSION, EmbeddedMilvus
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

DIM = 128
NO_COMPACTION = {"dataCoord.enableCompaction": "false", "dataCoord.compaction.enableAutoCompaction": "false"}
SEQUENTIAL = {"parallel_collections": 1, "parallel_imports": 1, "segments_per_import": 1}


def make_collections(uri: str, count: int, rows: int, segments: int) -> list[str]:
    from pymilvus import CollectionSchema, DataType, FieldSchema, MilvusClient

    client = MilvusClient(uri)
    schema = CollectionSchema(
        [
            FieldSchema("key", DataType.INT64, is_primary=True),
            FieldSchema("vector", DataType.FLOAT_VECTOR, dim=DIM),
        ]
    )
    rng = np.random.default_rng(11)
    names = [f"bench_restore_{i}" for i in range(count)]
    per_segment = -(-rows // segments)
    for name in names:
        client.create_collection(name, schema=schema, shards_num=1)
        done = 0
        while done < rows:
            n = min(per_segment, rows - done)
            vectors = rng.random((n, DIM), dtype=np.float32)
            client.insert(name, [{"key": done + i, "vector": vectors[i].tolist()} for i in range(n)])
            client.flush(name)
            done += n
    client.close()
    return names


def target_rows(uri: str, names: list[str]) -> int:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    total = sum(int(client.get_collection_stats(n)["row_count"]) for n in names)
    for name in names:
        client.drop_collection(name)
    client.close()
    return total


def bench_server(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with EmbeddedMilvus(work / "milvus", extra_config=NO_COMPACTION) as server:
        started = time.monotonic()
        names = make_collections(server.uri, args.collections, args.rows, args.segments)
        log(
            f"  {args.collections} x {args.rows} rows in {args.segments} segments each, {time.monotonic() - started:.0f} s"
        )
        backups = work / "backups"
        backups.mkdir()
        client = BackupClient(
            milvus=MilvusConnection(uri=server.uri),
            milvus_storage=StorageLocation(server.storage_url),
            backup_storage=StorageLocation(backups.as_uri()),
            pause_gc=False,
        )
        report = client.create_backup("bench", collections=names)
        total_rows = sum(c.num_rows for c in report.info.collection_backups)
        times: dict[str, list[float]] = {"sequential": [], "scheduled": []}
        jobs: dict[str, int] = {}
        for round_no in range(args.repeat):
            for kind in ("sequential", "scheduled"):
                suffix = f"_{kind[:3]}{round_no}"
                options = SEQUENTIAL if kind == "sequential" else {}
                began = time.monotonic()
                restored = client.restore(
                    "bench",
                    suffix=suffix,
                    rebuild_indexes=False,
                    load=False,
                    restore_aliases=False,
                    **options,
                )
                times[kind].append(time.monotonic() - began)
                jobs[kind] = sum(len(c.imports) for c in restored.collections)
                got = target_rows(server.uri, [n + suffix for n in names])
                if got != total_rows:
                    raise SystemExit(f"{kind} restore gave {got} rows, the backup holds {total_rows}")
                log(f"  round {round_no + 1} {kind}: {times[kind][-1]:.1f} s, {jobs[kind]} import jobs")
    seq, sched = statistics.median(times["sequential"]), statistics.median(times["scheduled"])
    return {"rows": total_rows, "times": times, "jobs": jobs, "ratio": sched / seq}


def bench_memory(args: argparse.Namespace) -> dict[str, int]:
    """Import requests each schedule sends to a cluster behaving as Milvus 2.5 (no timing)."""
    source = InMemoryMilvus("2.5.3")
    from milvus_backup_lib.manifest.model import CollectionSchema, DataType

    schema = CollectionSchema(
        name="m",
        fields=(
            field("key", DataType.INT64, primary=True),
            field("vector", DataType.FLOAT_VECTOR, dim=8),
        ),
    )
    source.create_collection("default", "m", schema, shards_num=1)
    for seg in range(args.segments):
        source.insert("default", "m", [{"key": seg * 10 + i, "vector": [0.5] * 8} for i in range(10)])
        source.flush("default", "m")
    client = BackupClient(
        MilvusConnection(),
        source.storage,
        StorageLocation("memory://bench-restore-backups"),
        milvus_factory=source.factory,
    )
    client.create_backup("m")
    counts = {}
    for kind, options in (("sequential", SEQUENTIAL), ("scheduled", {})):
        target = InMemoryMilvus("2.5.3")
        restore = BackupClient(
            MilvusConnection(), target.storage, client.backup_storage, milvus_factory=target.factory
        )
        restore.restore("m", **options)
        if target.rows("default", "m") != source.rows("default", "m"):
            raise SystemExit(f"in-memory {kind} restore differs from the source")
        counts[kind] = len(target.import_tasks)
    return counts


def bench(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The embedded server's timings (in ``work``), then the in-memory cluster's import requests."""
    return bench_server(args, work), bench_memory(args)


def render(
    args: argparse.Namespace, command: str, results: tuple[dict[str, Any], dict[str, int]], elapsed: float
) -> list[str]:
    server, memory = results
    seq, sched = server["times"]["sequential"], server["times"]["scheduled"]
    return [
        f"Run on {time.strftime('%Y-%m-%d')} with `{command}` against an embedded Milvus {MILVUS_VERSION} on local",
        f"storage: {args.collections} collections of {args.rows} rows in {args.segments} segments each "
        f"({server['rows']} rows), {args.repeat} rounds per side, alternating.",
        "",
        "| schedule | import jobs | seconds (median) | samples |",
        "|---|---:|---:|---|",
        f"| sequential, one job per segment | {server['jobs']['sequential']} | {statistics.median(seq):.1f} | {samples(seq)} |",
        f"| scheduled (defaults) | {server['jobs']['scheduled']} | {statistics.median(sched):.1f} | {samples(sched)} |",
        "",
        f"**Ratio scheduled / sequential: {server['ratio']:.2f}** (below 1 is faster).",
        "",
        "In-memory cluster behaving as Milvus 2.5 (multi-segment jobs; requests counted, not timed): "
        f"{args.segments} segments restored with {memory['sequential']} import jobs one at a time, "
        f"against {memory['scheduled']} with the defaults.",
    ]


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=20_000, help="rows per collection (default 20000)")
    parser.add_argument("--segments", type=int, default=12, help="segments per collection (default 12)")
    parser.add_argument("--collections", type=int, default=2, help="collections (default 2)")


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(  # type: ignore[no-any-return]
        "restore",
        __doc__,
        argv,
        options=options,
        measure=bench,
        render=render,
        heading="Restore scheduling",
        rounds_of="schedule",
    )


if __name__ == "__main__":
    sys.exit(main())
