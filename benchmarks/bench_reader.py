"""Benchmark: the offline reader against pyarrow reading the same Parquet payloads, and its memory.

    python benchmarks/bench_reader.py [--rows 200000] [--big-gib 1.0] [--out docs/benchmarks.md]

(``nox -s bench`` runs it after the restore benchmark). Every backup is on local disk. The 1 GiB one is
written by the in-memory cluster behaving as Milvus 2.3.5 (``InMemoryMilvus(root=...)``), whose
segment files are storage v1 binlogs as Milvus writes them (``testing/_memory_binlog.py``: the
``0xfffabc`` envelope around one zstd Parquet payload per event, ``NativePayloadWriter``'s layout),
then backed up with ``create_backup`` to another local directory. What runs:

1. **Throughput**: a collection of ``--rows`` rows (INT64 key, 128-d FLOAT_VECTOR of random floats) in
   ``--segments`` segments, written by an embedded Milvus 2.3.5 (auto-compaction off) and backed up
   (``--no-server``: by the in-memory cluster, no server). The Parquet payload of every insert binlog of the backup (row ID, timestamp,
   key, vector) is cut out of its envelope once, into a plain ``.parquet`` file (the envelope is parsed
   here, independently of the reader, per ``internal/storage/binlog_reader.go``). Then ``--repeat``
   rounds time pyarrow ``pq.read_table`` of each payload file and the reader's
   ``read(name, system_fields=True)`` (which reads exactly those payloads) back to back, in turns first,
   both from a warm page cache; the ratio is the median of the rounds' ratios.
   Also timed: ``read(name)`` (the user columns) and ``iter_batches`` over them.
2. **Memory**: a collection of at least ``--big-gib`` GiB of binlogs (same schema, segments of 200,000
   rows, 50,000 rows a binlog), iterated with ``iter_batches`` (default 65,536 rows a batch) in a fresh
   process that reports its RSS growth: peak ``VmHWM`` (reset through ``/proc/self/clear_refs`` once
   the backup is open) minus ``VmRSS`` at that point.

Times are only compared within one run (a ratio): the machine is shared. A table goes to stdout; with
``--out`` the results go between the ``bench-reader:begin``/``bench-reader:end`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _cli  # type: ignore[import-not-found]  # benchmarks/ is on sys.path as a script
import numpy as np
from _cli import log, samples  # type: ignore[import-not-found]

DIM = 128
COLLECTION = "default.bench"
MIB = 2**20
MAGIC = 0xFFFABC
_HEADER = struct.Struct("<qbii")  # event header: timestamp, type_code, event_length, next_position
_DATA_FIX = 16  # an insert event's start and end timestamps, before its payload


# -- data ---------------------------------------------------------------------------------------------


def make_backup(work: Path, rows: int, segment_rows: int, rows_per_file: int | None) -> Path:
    """A backup named ``bench`` of ``rows`` rows under ``work/backups``; returns its root."""
    from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
    from milvus_backup_lib.manifest.model import CollectionSchema, DataType
    from milvus_backup_lib.testing.memory import InMemoryMilvus, field

    cluster = InMemoryMilvus("2.3.5", root=str(work / "milvus"), rows_per_file=rows_per_file)
    schema = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True), field("vec", DataType.FLOAT_VECTOR, dim=DIM))
    )
    db, name = COLLECTION.split(".")
    cluster.create_collection(db, name, schema)
    rng = np.random.default_rng(7)
    step = 20_000
    for start in range(0, rows, step):
        count = min(step, rows - start)
        blob = rng.random((count, DIM), dtype=np.float32).tobytes()
        width = DIM * 4
        cluster.insert(
            db, name, [{"pk": start + i, "vec": blob[i * width : (i + 1) * width]} for i in range(count)]
        )
        if (start + count) % segment_rows == 0 or start + count == rows:
            cluster.flush(db, name)
    root = work / "backups"
    root.mkdir()
    client = BackupClient(
        MilvusConnection(), cluster.storage, StorageLocation(str(root)), milvus_factory=cluster.factory
    )
    client.create_backup("bench", collections=[COLLECTION])
    shutil.rmtree(work / "milvus")  # the backup holds its own copy
    return root


def make_server_backup(work: Path, rows: int, segments: int) -> Path:
    """The same collection in an embedded Milvus 2.3.5 (auto-compaction off, one flush a segment),
    backed up as ``bench`` under ``work/backups``; the server is stopped when this returns."""
    from pymilvus import CollectionSchema, DataType, FieldSchema, MilvusClient

    from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
    from milvus_backup_lib.testing.embedded import EmbeddedMilvus

    no_compaction = {"dataCoord.compaction.enableAutoCompaction": "false"}
    with EmbeddedMilvus(work / "milvus", extra_config=no_compaction) as server:
        milvus = MilvusClient(server.uri)
        schema = CollectionSchema(
            [
                FieldSchema("pk", DataType.INT64, is_primary=True),
                FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
            ]
        )
        name = COLLECTION.split(".")[1]
        milvus.create_collection(name, schema=schema, shards_num=1)
        rng = np.random.default_rng(7)
        per_segment = -(-rows // segments)
        for first in range(0, rows, per_segment):
            for start in range(first, min(rows, first + per_segment), 10_000):
                count = min(10_000, rows - start, first + per_segment - start)
                vectors = rng.random((count, DIM), dtype=np.float32)
                milvus.insert(name, [{"pk": start + i, "vec": vectors[i]} for i in range(count)])
            milvus.flush(name)
        milvus.close()
        root = work / "backups"
        root.mkdir()
        client = BackupClient(
            milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
            milvus_storage=StorageLocation(server.storage_url),
            backup_storage=StorageLocation(str(root)),
        )
        client.create_backup("bench", collections=[COLLECTION])
    shutil.rmtree(work / "milvus", ignore_errors=True)
    return root


def insert_binlogs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "bench" / "binlogs" / "insert_log").rglob("*") if p.is_file())


def extract_payloads(binlogs: list[Path], out: Path) -> list[Path]:
    """Each insert event's Parquet payload as a file of its own (``binlog_reader.go``: the magic, a
    descriptor event, then data events; each event is ``event_length`` bytes from its header)."""
    out.mkdir(parents=True)
    written = []
    for n, path in enumerate(binlogs):
        data = path.read_bytes()
        assert struct.unpack_from("<I", data, 0)[0] == MAGIC, path
        pos = 4 + _HEADER.unpack_from(data, 4)[2]  # past the descriptor event
        while pos < len(data):
            _, code, length, _ = _HEADER.unpack_from(data, pos)
            assert code == 1, (path, code)  # insert event
            target = out / f"{n}-{pos}.parquet"
            target.write_bytes(data[pos + _HEADER.size + _DATA_FIX : pos + length])
            written.append(target)
            pos += length
    return written


# -- timing -------------------------------------------------------------------------------------------


def _timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def throughput(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from milvus_backup_lib import open_backup

    writer = "the in-memory cluster" if args.no_server else "an embedded Milvus 2.3.5"
    log(f"throughput: {writer} writes {args.rows:,} rows in {args.segments} segments, backed up")
    if args.no_server:
        root = make_backup(work / "small", args.rows, -(-args.rows // args.segments), None)
    else:
        (work / "small").mkdir()
        root = make_server_backup(work / "small", args.rows, args.segments)
    binlogs = insert_binlogs(root)
    payloads = extract_payloads(binlogs, work / "small" / "payloads")
    payload_bytes = sum(p.stat().st_size for p in payloads)
    reader = open_backup(str(root), "bench")

    def raw() -> int:
        return sum(pq.read_table(p).num_rows for p in payloads)

    def ours_all() -> Any:
        return reader.read(COLLECTION, system_fields=True)

    def ours_user() -> Any:
        return reader.read(COLLECTION)

    def ours_batches() -> int:
        return sum(b.num_rows for b in reader.iter_batches(COLLECTION))

    check = ours_all()
    assert check.num_rows == args.rows and check.column_names == ["RowID", "Timestamp", "pk", "vec"]
    assert raw() == args.rows * 4  # four payloads a row: row ID, timestamp, key, vector
    arrow_bytes = check.nbytes
    del check
    sides: dict[str, list[float]] = {"raw": [], "ours": [], "ours_user": [], "ours_batches": []}
    calls = {"raw": raw, "ours": ours_all, "ours_user": ours_user, "ours_batches": ours_batches}
    for call in calls.values():  # one untimed warm-up each
        call()
    for n in range(args.repeat):
        # raw and ours back to back, in turns first: each round's ratio is measured under the same load.
        order = ["raw", "ours"] if n % 2 == 0 else ["ours", "raw"]
        for side in [*order, "ours_user", "ours_batches"]:
            seconds, _ = _timed(calls[side])
            sides[side].append(seconds)
        log(f"round {n + 1}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in sides.items()))
    medians = {side: statistics.median(values) for side, values in sides.items()}
    return {
        "rows": args.rows,
        "segments": len({p.parent.parent for p in binlogs}),
        "writer": "the in-memory cluster as Milvus 2.3.5" if args.no_server else "an embedded Milvus 2.3.5",
        "binlogs": len(binlogs),
        "binlog_bytes": sum(p.stat().st_size for p in binlogs),
        "payloads": len(payloads),
        "payload_bytes": payload_bytes,
        "arrow_bytes": arrow_bytes,
        "rounds": sides,
        "medians": medians,
        "ratio": statistics.median(raw / ours for raw, ours in zip(sides["raw"], sides["ours"], strict=True)),
        "median_ratio": medians["raw"] / medians["ours"],
        "best_ratio": min(sides["raw"]) / min(sides["ours"]),
        "pyarrow": pa.__version__,
    }


_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from _cli import status_kib
from bench_reader import COLLECTION
from milvus_backup_lib import open_backup
reader = open_backup(sys.argv[1], "bench")
reader.schema(COLLECTION)
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # resets VmHWM to the current RSS
start = status_kib("VmRSS")
started = time.perf_counter()
rows = batches = 0
for batch in reader.iter_batches(COLLECTION):
    rows += batch.num_rows
    batches += 1
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "batches": batches, "seconds": seconds, "start_kib": start,
                  "peak_kib": status_kib("VmHWM")}))
"""


def memory(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    # zstd saves about an eighth of random float32 vectors (their exponent bytes repeat): aim above.
    rows = int(args.big_gib * 2**30 / (DIM * 4 * 0.85)) + 1
    rows = -(-rows // 200_000) * 200_000
    log(f"memory: writing a backup of {rows:,} rows (segments of 200,000 rows, binlogs of 50,000)")
    root = make_backup(work / "big", rows, 200_000, 50_000)
    binlogs = insert_binlogs(root)
    size = sum(p.stat().st_size for p in binlogs)
    log(f"memory: {size / 2**30:.2f} GiB of insert binlogs in {len(binlogs)} files; iterating in a child")
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path])}
    runs = []
    for n in range(args.memory_rounds):  # the peak varies between runs (allocators, threads): the worst
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(root), here],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        runs.append(json.loads(done.stdout))
        assert runs[-1]["rows"] == rows, runs[-1]
        log(f"memory round {n + 1}: +{(runs[-1]['peak_kib'] - runs[-1]['start_kib']) / 1024:.0f} MiB")
    measured: dict[str, Any] = max(runs, key=lambda r: r["peak_kib"] - r["start_kib"])
    assert size >= args.big_gib * 2**30, f"only {size / 2**30:.2f} GiB of binlogs: raise the row count"
    measured.update(
        total_rows=rows,
        binlogs=len(binlogs),
        binlog_bytes=size,
        growth_mib=(measured["peak_kib"] - measured["start_kib"]) / 1024,
        growths=[(r["peak_kib"] - r["start_kib"]) / 1024 for r in runs],
    )
    return measured


# -- report -------------------------------------------------------------------------------------------


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def render(args: argparse.Namespace, command: str, fast: dict[str, Any], mem: dict[str, Any]) -> list[str]:
    from importlib.metadata import version

    med, rows = fast["medians"], fast["rows"]

    def line(label: str, side: str) -> str:
        seconds = med[side]
        return (
            f"| {label} | {seconds:.3f} | {rows / seconds:,.0f} | {fast['payload_bytes'] / MIB / seconds:.0f} "
            f"| {samples(fast['rounds'][side], 3)} |"
        )

    mem_mib_s = mem["binlog_bytes"] / MIB / mem["seconds"]
    return [
        f"### Results of {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command (from the repository root): `{command}`",
        f"- Machine: {os.cpu_count()} cores ({_cpu()}), shared with other work running at the same time: "
        "only the ratio, measured in one run, means anything.",
        f"- Software: Python {platform.python_version()}, pyarrow {fast['pyarrow']}, "
        f"milvus-backup-lib {version('milvus-backup-lib')}; backups on local disk.",
        "",
        f"**Throughput.** {rows:,} rows (INT64 key, {DIM}-d FLOAT_VECTOR of random floats) written by "
        f"{fast['writer']} in {fast['segments']} segments: {fast['binlogs']} insert binlogs, "
        f"{fast['binlog_bytes'] / MIB:.1f} MiB; their {fast['payloads']} Parquet payloads, "
        f"{fast['payload_bytes'] / MIB:.1f} MiB, cut out once into plain files; "
        f"{fast['arrow_bytes'] / MIB:.1f} MiB as Arrow. {args.repeat} rounds per side, alternating, "
        "after one warm-up each; MiB/s counts the payload bytes.",
        "",
        "| read | median (s) | rows/s | MiB/s | rounds (s) |",
        "|---|---:|---:|---:|---|",
        line("pyarrow `pq.read_table` of each payload file", "raw"),
        line("`reader.read(name, system_fields=True)` (the same payloads)", "ours"),
        line("`reader.read(name)` (key and vector; reads the timestamps too)", "ours_user"),
        line("`for batch in reader.iter_batches(name)` (65,536 rows a batch)", "ours_batches"),
        "",
        f"Throughput, reader / pyarrow, the median of the {args.repeat} rounds' ratios (pyarrow's time over "
        f"the reader's, measured back to back): **{fast['ratio']:.2f}** (goal: at least 0.8). "
        f"Median time against median time: {fast['median_ratio']:.2f}; fastest round against fastest "
        f"round: {fast['best_ratio']:.2f}.",
        "",
        f"**Memory.** {mem['total_rows']:,} rows of the same schema written by the in-memory cluster as "
        f"Milvus 2.3.5 (storage v1 binlogs), {mem['binlog_bytes'] / 2**30:.2f} GiB "
        f"of insert binlogs ({mem['binlogs']} files; segments of 200,000 rows, 50,000 rows a binlog), "
        f"iterated with `iter_batches` in a fresh process: {mem['batches']:,} batches in "
        f"{mem['seconds']:.1f} s ({mem['total_rows'] / mem['seconds']:,.0f} rows/s, {mem_mib_s:.0f} MiB/s). "
        f"RSS once the backup is open: {mem['start_kib'] / 1024:.0f} MiB; peak RSS growth while "
        f"iterating, the largest of {len(mem['growths'])} runs: **{mem['growth_mib']:.0f} MiB** "
        f"(goal: under 256 MiB; runs: {samples(mem['growths'], 0)} MiB).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = _cli.new_parser(__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the throughput backup (200,000)")
    parser.add_argument("--segments", type=int, default=5, help="segments of the throughput backup (5)")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds per side (15)")
    parser.add_argument("--memory-rounds", type=int, default=3, help="iterations of the 1 GiB backup (3)")
    parser.add_argument("--big-gib", type=float, default=1.0, help="GiB of the memory backup (1.0; 0 skips)")
    parser.add_argument(
        "--no-server",
        action="store_true",
        help="throughput backup written by the in-memory cluster instead of an embedded Milvus 2.3.5",
    )
    _cli.add_output(parser)
    args = parser.parse_args(argv)
    if min(args.rows, args.segments, args.repeat, args.memory_rounds) < 1 or args.big_gib < 0:
        raise SystemExit("--rows, --segments, --repeat and --memory-rounds must be >= 1, --big-gib >= 0")
    command = _cli.command_line("reader", argv)
    with _cli.scratch("reader", args.workdir) as work:
        fast = throughput(args, work)
        print(
            f"pyarrow {fast['medians']['raw']:.3f} s, reader {fast['medians']['ours']:.3f} s: "
            f"reader / pyarrow throughput {fast['ratio']:.2f}"
        )
        shutil.rmtree(work / "small")
        if args.big_gib == 0:
            return 0
        mem = memory(args, work)
        print(f"iterating {mem['binlog_bytes'] / 2**30:.2f} GiB: peak RSS growth {mem['growth_mib']:.0f} MiB")
    if args.out:
        _cli.write_section(args.out, "reader", render(args, command, fast, mem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
