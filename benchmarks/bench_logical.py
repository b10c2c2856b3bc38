"""Benchmark: a logical backup against a hand-written ``query_iterator`` -> Parquet loop on the same data.

    python benchmarks/bench_logical.py [--rows N] [--repeat R] [--out docs/benchmarks.md]

(``nox -s bench`` runs it after bench_restore.py.) What runs, in one process:

1. An embedded Milvus 2.3.5 on local storage gets one collection of ``--rows`` rows (INT64 key, a
   VARCHAR, a DOUBLE, a 128-d FLOAT_VECTOR), flushed, indexed (FLAT) and loaded.
2. Rounds alternate, the loop first:
   - **loop**: what a user would write: ``MilvusClient.query_iterator(batch_size=8192,
     output_fields=["*"])``, each page ``pyarrow.Table.from_pylist`` and written with one
     ``pyarrow.parquet.ParquetWriter`` (zstd), reading and writing one after the other;
   - **ours**: ``create_backup(strategy="logical")`` (pages of at most 8192 rows, fewer for wide rows;
     a reader thread and the Parquet writer overlap), checked against the collection's row count.
3. The ratio is loop seconds / ours seconds (at least 1.0: ours is as fast or faster).

Times are only compared within one run: the machine is shared. A table goes to stdout; with ``--out``
the results go between the ``bench-logical:begin``/``bench-logical:end`` markers of that file.
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

from milvus_backup_lib import BackupClient, MilvusConnection
from milvus_backup_lib.testing.embedded import MILVUS_VERSION, EmbeddedMilvus

DIM = 128
PAGE = 8192
NAME = "bench_logical"


def make_collection(uri: str, rows: int) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("key", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(NAME, schema=schema, shards_num=1)
    rng = np.random.default_rng(5)
    for start in range(0, rows, 10_000):
        n = min(10_000, rows - start)
        vectors = rng.random((n, DIM), dtype=np.float32)
        client.insert(
            NAME,
            [
                {
                    "key": start + i,
                    "title": f"title {start + i}",
                    "score": (start + i) / 7,
                    "vector": vectors[i].tolist(),
                }
                for i in range(n)
            ],
        )
    client.flush(NAME)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_index(NAME, index)
    client.load_collection(NAME)
    client.close()


def hand_written_loop(uri: str, out: Path) -> int:
    """The loop a user writes: query pages, each converted and written in turn."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    iterator = client.query_iterator(NAME, batch_size=PAGE, output_fields=["*"])
    writer = None
    rows = 0
    try:
        while page := iterator.next():
            table = pa.Table.from_pylist(page)
            if writer is None:
                writer = pq.ParquetWriter(str(out), table.schema, compression="zstd")
            else:  # pages do not list their keys in one order
                table = table.select(writer.schema.names)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        iterator.close()
        if writer is not None:
            writer.close()
        client.close()
    return rows


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with EmbeddedMilvus(work / "milvus") as server:
        started = time.monotonic()
        make_collection(server.uri, args.rows)
        log(f"  {args.rows} rows loaded in {time.monotonic() - started:.0f} s")
        backups = work / "backups"
        backups.mkdir()
        client = BackupClient(MilvusConnection(uri=server.uri), backup_storage=backups.as_uri())
        times: dict[str, list[float]] = {"loop": [], "ours": []}
        sizes: dict[str, int] = {}
        for round_no in range(args.repeat):
            out = work / f"loop{round_no}.parquet"
            began = time.monotonic()
            got = hand_written_loop(server.uri, out)
            times["loop"].append(time.monotonic() - began)
            sizes["loop"] = out.stat().st_size
            if got != args.rows:
                raise SystemExit(f"the loop read {got} rows, the collection holds {args.rows}")
            began = time.monotonic()
            report = client.create_backup(f"b{round_no}", collections=[NAME], strategy="logical")
            times["ours"].append(time.monotonic() - began)
            sizes["ours"] = report.bytes_copied
            library = client.repository.read_library_meta(f"b{round_no}")
            stored = sum(library.partition_rows(f"default.{NAME}").values()) if library else -1
            if stored != args.rows:
                raise SystemExit(f"the logical backup stored {stored} rows, the collection holds {args.rows}")
            log(f"  round {round_no + 1}: loop {times['loop'][-1]:.1f} s, ours {times['ours'][-1]:.1f} s")
    loop, ours = statistics.median(times["loop"]), statistics.median(times["ours"])
    return {"times": times, "sizes": sizes, "ratio": loop / ours}


def render(args: argparse.Namespace, command: str, result: dict[str, Any], elapsed: float) -> list[str]:
    loop, ours = result["times"]["loop"], result["times"]["ours"]
    mib = {k: v / 2**20 for k, v in result["sizes"].items()}
    return [
        f"Run on {time.strftime('%Y-%m-%d')} with `{command}` against an embedded Milvus {MILVUS_VERSION} on local",
        f"storage: one collection of {args.rows} rows (INT64 key, VARCHAR, DOUBLE, {DIM}-d float vector); the",
        f"loop asks for pages of {PAGE} rows, ours for at most {PAGE} (fewer for wide rows: 32 MiB of Python",
        f"objects a page); {args.repeat} rounds per side, alternating.",
        "",
        "| side | seconds (median) | samples | Parquet (MiB) |",
        "|---|---:|---|---:|",
        f"| hand-written `query_iterator` -> `ParquetWriter` loop | {statistics.median(loop):.1f} | {samples(loop)} | {mib['loop']:.1f} |",
        f'| `create_backup(strategy="logical")` | {statistics.median(ours):.1f} | {samples(ours)} | {mib["ours"]:.1f} |',
        "",
        f"**Ratio loop / ours: {result['ratio']:.2f}** (goal: at least 1.0).",
    ]


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=100_000, help="rows (default 100000)")


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(  # type: ignore[no-any-return]
        "logical", __doc__, argv, options=options, measure=bench, render=render, heading="Logical backup"
    )


if __name__ == "__main__":
    sys.exit(main())
