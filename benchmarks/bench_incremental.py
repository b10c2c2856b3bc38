"""Benchmark: a second incremental backup of unchanged data against a full backup of the same data.

    python benchmarks/bench_incremental.py [--rows N,M,...] [--segments S] [--repeat R] [--out docs/benchmarks.md]

(``nox -s bench`` runs it after bench_backup.py). What runs, in one process:

1. An embedded Milvus 2.3.5 on local storage gets a collection of the first ``--rows`` rows (INT64 key,
   128-d FLOAT_VECTOR) flushed into ``--segments`` segments (auto-compaction off), as bench_backup.py
   makes it; after step 2 it grows to the next size (``--segments`` more segments), and so on. The
   sizes show the shape of the ratio: the default strategy's flush waits one Milvus time tick whatever
   the data size, a fixed cost the full backup's copy outgrows.
2. For each size and each backup root (local disk: server-side kernel copies; S3 on a moto server: every byte streamed
   through this process, the case of a nightly backup to object storage), ``--repeat`` rounds of:
   a full backup ``full_k``; an incremental ``inc_k_1`` (``base=full_k``); a second incremental
   ``inc_k_2`` (``base="latest"``, i.e. ``inc_k_1``). Nothing changes in the collection meanwhile.
   The whole ``create_backup`` calls are timed, with the default strategy (``serial_flush``: the flush
   and its wait are in both) and again with ``skip_flush`` (the flush wait, the same for any data size,
   left out). The round's three backups are deleted after it.
3. Every second incremental must have copied no binlog (checked; the run fails otherwise).

Only the ratio (median second incremental / median full, within one run) is quoted: the machine is
shared. With ``--out`` the results go between the ``bench-incremental:begin``/``end`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import fsspec
from _cli import log, run_benchmark, samples  # type: ignore[import-not-found]  # benchmarks/ is on sys.path
from bench_backup import (  # type: ignore[import-not-found]  # benchmarks/ is on sys.path as a script
    NO_COMPACTION,
    machine,
    make_collection,
    moto_server,
    versions,
)

from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

BACKUP_BUCKET = "bench-incremental"
GOAL = 0.10


def sizes(text: str) -> tuple[int, ...]:
    """``--rows``: comma-separated row counts."""
    return tuple(int(part) for part in text.split(","))


def rounds(client: BackupClient, strategy: str, repeat: int, tag: str) -> dict[str, Any]:
    """``repeat`` rounds of full, incremental, second incremental; their times and what they copied."""
    full_s: list[float] = []
    second_s: list[float] = []
    copied = reused = 0
    for k in range(repeat):
        started = time.monotonic()
        full = client.create_backup(f"{tag}_full_{k}", strategy=strategy)
        full_s.append(time.monotonic() - started)
        client.create_backup(f"{tag}_inc_{k}_1", strategy=strategy, base=full.name)
        started = time.monotonic()
        second = client.create_backup(f"{tag}_inc_{k}_2", strategy=strategy, base="latest")
        second_s.append(time.monotonic() - started)
        if second.files or second.bytes_copied or second.base != f"{tag}_inc_{k}_1":
            raise SystemExit(f"the second incremental copied {second.files} files: {second.table()}")
        copied, reused = full.bytes_copied, second.reused_bytes
        for name in (second.name, f"{tag}_inc_{k}_1", full.name):
            client.delete_backup(name)
        log(
            f"  {tag} {strategy} round {k + 1}: full {full_s[-1]:.2f} s, second incremental {second_s[-1]:.2f} s"
        )
    return {
        "full": full_s,
        "second": second_s,
        "ratio": statistics.median(second_s) / statistics.median(full_s),
        "full_bytes": copied,
        "reused_bytes": reused,
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pymilvus import connections

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    results: dict[str, Any] = {}
    with (
        moto_server(work / "moto") as moto,
        EmbeddedMilvus(work / "milvus", extra_config=NO_COMPACTION) as server,
    ):
        options = moto.storage_options
        fs = fsspec.filesystem("s3", **options)
        if not fs.exists(BACKUP_BUCKET):
            fs.mkdir(BACKUP_BUCKET)
        alias = "bench-incremental"
        connections.connect(alias=alias, uri=server.uri)
        (work / "backups").mkdir()
        roots = {
            "local disk -> local disk": StorageLocation((work / "backups").as_uri()),
            "local disk -> S3 (moto)": StorageLocation(f"s3://{BACKUP_BUCKET}/backups", options),
        }
        made = 0
        try:
            for rows in args.rows:
                data = make_collection(alias, rows, args.segments, args.batch, start=made)
                made = rows
                results.setdefault("data", []).append(data)
                for label, root in roots.items():
                    client = BackupClient(
                        milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
                        milvus_storage=StorageLocation(server.storage_url),
                        backup_storage=root,
                    )
                    tag = f"{'s3' if 'S3' in label else 'local'}_{rows}"
                    for strategy in ("serial_flush", "skip_flush"):
                        log(f"{rows:,} rows, {label}, {strategy}")
                        found = rounds(client, strategy, args.repeat, f"{tag}_{strategy}")
                        results[(data["rows"], label, strategy)] = found
        finally:
            connections.disconnect(alias)
    return results


def render(args: argparse.Namespace, command: str, results: dict[str, Any], elapsed: float) -> list[str]:
    sizes = ", ".join(f"{d['rows']:,} rows in {d['segments']} flushed segments" for d in results["data"])
    lines = [
        "## Incremental backups: a second incremental against the full backup",
        "",
        f"Results of {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- Command (from the repository root): `{command}`",
        f"- Machine: {machine()}; shared with other work, so only the ratios (measured in one run) mean anything.",
        f"- Software: {versions()}.",
        f"- Data: one collection (INT64 key, 128-d FLOAT_VECTOR) of {sizes} (grown between the sizes), "
        f"unchanged between the backups of one size. Whole run: {elapsed / 60:.1f} min.",
        "",
        f"{args.repeat} rounds per line: a full backup, an incremental against it, then a second incremental "
        '(`base="latest"`), each a whole `create_backup` call. Every second incremental copied no binlog '
        f"(checked). Goal: second incremental / full <= {GOAL:.2f}.",
        "",
        "| rows | backup root | strategy | MB in the full backup | full median (s) "
        "| second incremental median (s) | **ratio** | full rounds (s) | second incremental rounds (s) |",
        "|---:|---|---|---:|---:|---:|---:|---|---|",
    ]
    for key, r in results.items():
        if key == "data":
            continue
        rows, label, strategy = key
        lines.append(
            f"| {rows:,} | {label} | {strategy} | {r['full_bytes'] / 2**20:.1f} | {statistics.median(r['full']):.3f} "
            f"| {statistics.median(r['second']):.3f} | **{r['ratio']:.2f}** "
            f"| {samples(r['full'], 2)} | {samples(r['second'], 2)} |"
        )
    return lines


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows",
        type=sizes,
        default=(1_000_000, 4_000_000),
        help="the collection's sizes, growing, comma-separated (default 1000000,4000000: about 0.5 and 2 GB)",
    )
    parser.add_argument("--segments", type=int, default=5, help="flushed segments per size (default 5)")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per insert call (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per line (default 3)")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    steps = [b - a for a, b in zip((0, *args.rows), args.rows, strict=False)]
    if args.repeat < 1 or args.segments < 1 or min(steps) < args.segments:
        parser.error("--repeat and --segments must be >= 1, --rows growing by at least --segments each")


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(  # type: ignore[no-any-return]
        "incremental",
        __doc__,
        argv,
        options=options,
        measure=run,
        render=render,
        heading="",
        repeat=False,
        workdir=True,
        check=check,
    )


if __name__ == "__main__":
    sys.exit(main())
