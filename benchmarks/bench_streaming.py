"""Benchmark: the streaming copy (local disk -> S3 on moto) against s3fs's own ``put``: memory and speed.

    python benchmarks/bench_streaming.py [--files 16] [--file-mib 128] [--rounds 1] [--out docs/benchmarks.md]

(also run by ``benchmarks/bench_backup.py --streaming-only`` and by ``nox -s bench -- --streaming-only``).
Writes ``--files`` files of ``--file-mib`` MiB of random bytes to a scratch directory, starts a moto
server (its own process), and copies them all to a fresh prefix of a bucket, alternating, each copy
in a fresh Python process started for it (so the peak is its own):

- ``put``: ``S3FileSystem.put(local_files, remote_paths)`` (s3fs's defaults: 50 MiB parts, 10
  concurrent parts per file, all files gathered at once);
- ``ours``: ``FsspecCopier().copy(local, s3, jobs)`` at its defaults (16 files in flight, 16 MiB parts,
  at most 128 MiB of parts at once), which streams since the stores differ.

Each child reads its RSS (``VmRSS``) once everything is imported and the S3 client is made, then its
peak (``VmHWM``) after the copy: the growth is peak minus start. The objects are removed between
copies. Results go between the ``bench-streaming:begin``/``end`` markers of ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _cli  # type: ignore[import-not-found]  # benchmarks/ is on sys.path as a script
from _cli import log, samples, status_kib  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench-streaming"
MIB = 2**20


# -- child: one copy, in its own process ---------------------------------------------------------


def child(side: str, spec: dict[str, Any]) -> dict[str, Any]:
    import fsspec

    from milvus_backup_lib import StorageLocation
    from milvus_backup_lib.backup.copier import CopyJob, FsspecCopier

    options = spec["options"]
    fs = fsspec.filesystem("s3", **options)
    fs.ls(BUCKET)  # the client and its session exist before the start is read
    sources, targets, sizes = spec["sources"], spec["targets"], spec["sizes"]
    start_kib = status_kib("VmRSS")
    began = time.monotonic()
    if side == "put":
        fs.put(sources, targets)
    else:
        source = StorageLocation(str(Path(sources[0]).parent))
        destination = StorageLocation(f"s3://{BUCKET}", storage_options=options)
        jobs = [CopyJob(s, t, n) for s, t, n in zip(sources, targets, sizes, strict=True)]
        FsspecCopier().copy(source, destination, jobs)
    seconds = time.monotonic() - began
    peak_kib = status_kib("VmHWM")
    fs.invalidate_cache()
    copied = sum(int(fs.info(t)["size"]) for t in targets)
    if copied != sum(sizes):
        raise RuntimeError(f"{side}: {copied} bytes at the destination, expected {sum(sizes)}")
    return {"side": side, "seconds": seconds, "start_kib": start_kib, "peak_kib": peak_kib}


# -- parent ------------------------------------------------------------------------------------


def _run_child(side: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--spec", str(spec_path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _make_files(directory: Path, files: int, file_mib: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = directory / f"binlog_{i:03d}"
        with path.open("wb") as out:
            for _ in range(file_mib):
                out.write(os.urandom(MIB))
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests"))
    from emulators import MotoServer  # type: ignore[import-not-found]

    with _cli.scratch("streaming", args.workdir) as work:
        log(f"writing {args.files} files of {args.file_mib} MiB to {work / 'src'}")
        paths = _make_files(work / "src", args.files, args.file_mib)
        with MotoServer(work / "moto") as moto:
            moto.create_bucket(BUCKET)
            import fsspec

            fs = fsspec.filesystem("s3", **moto.storage_options)
            rounds: dict[str, list[dict[str, Any]]] = {"put": [], "ours": []}
            for round_no in range(args.rounds):
                for side in ("put", "ours"):
                    prefix = f"{BUCKET}/{side}-{round_no}"
                    spec = {
                        "options": moto.storage_options,
                        "sources": [str(p) for p in paths],
                        "targets": [f"{prefix}/{p.name}" for p in paths],
                        "sizes": [p.stat().st_size for p in paths],
                    }
                    log(f"round {round_no + 1}/{args.rounds}: {side}")
                    result = _run_child(side, spec, work)
                    rounds[side].append(result)
                    log(
                        f"  {result['seconds']:.1f} s, RSS {result['start_kib'] / 1024:.0f} MiB at start, "
                        f"+{(result['peak_kib'] - result['start_kib']) / 1024:.0f} MiB at peak"
                    )
                    fs.rm(prefix, recursive=True)
    total = args.files * args.file_mib * MIB
    summary: dict[str, Any] = {
        "rounds": rounds,
        "bytes": total,
        "files": args.files,
        "file_mib": args.file_mib,
    }
    for side in ("put", "ours"):
        seconds = statistics.median(r["seconds"] for r in rounds[side])
        summary[side] = {
            "seconds": seconds,
            "mib_per_s": total / MIB / seconds,
            "growth_mib": max(r["peak_kib"] - r["start_kib"] for r in rounds[side]) / 1024,
            "start_mib": rounds[side][0]["start_kib"] / 1024,
        }
    summary["throughput_ratio"] = summary["ours"]["mib_per_s"] / summary["put"]["mib_per_s"]
    return summary


def render(args: argparse.Namespace, command: str, summary: dict[str, Any]) -> list[str]:
    import platform
    from importlib.metadata import version

    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    put, ours = summary["put"], summary["ours"]
    return [
        f"### Results of {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC (local disk -> S3 on moto)",
        "",
        f"- Command (from the repository root): `{command}`",
        f"- Machine: {os.cpu_count()} cores ({cpu}), shared with other work running at the same time "
        "(other engineers' test suites): only the ratio, measured in one run, means anything.",
        f"- Software: Python {platform.python_version()}, s3fs {version('s3fs')}, fsspec {version('fsspec')}, "
        f"moto {version('moto')} (its own process).",
        f"- Data: {summary['files']} files of {summary['file_mib']} MiB of random bytes "
        f"({summary['bytes'] / 2**30:.2f} GiB), {args.rounds} round(s) per side, alternating put, ours; "
        "each copy in a fresh process.",
        "",
        "| copy | median time (s) | MiB/s | RSS at start (MiB) | **peak RSS growth (MiB)** |",
        "|---|---:|---:|---:|---:|",
        f"| s3fs `fs.put(files, paths)` (50 MiB parts, all files at once) | {put['seconds']:.1f} "
        f"| {put['mib_per_s']:.1f} | {put['start_mib']:.0f} | **{put['growth_mib']:.0f}** |",
        f"| `FsspecCopier().copy(...)` (defaults: 16 files in flight, 16 MiB parts, 128 MiB of parts at once) "
        f"| {ours['seconds']:.1f} | {ours['mib_per_s']:.1f} | {ours['start_mib']:.0f} "
        f"| **{ours['growth_mib']:.0f}** |",
        "",
        "Rounds (s): put "
        + samples([r["seconds"] for r in summary["rounds"]["put"]])
        + "; ours "
        + samples([r["seconds"] for r in summary["rounds"]["ours"]])
        + ". Peak growth (MiB): put "
        + ", ".join(f"{(r['peak_kib'] - r['start_kib']) / 1024:.0f}" for r in summary["rounds"]["put"])
        + "; ours "
        + ", ".join(f"{(r['peak_kib'] - r['start_kib']) / 1024:.0f}" for r in summary["rounds"]["ours"])
        + ".",
        "",
        f"Throughput, ours / s3fs `put`: **{summary['throughput_ratio']:.2f}** (goal: at least 0.9). "
        f"Peak growth, ours: **{ours['growth_mib']:.0f} MiB** (goal: under 256 MiB at the defaults).",
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, default=16, help="files to copy (default 16)")
    parser.add_argument("--file-mib", type=int, default=128, help="size of each file in MiB (default 128)")
    parser.add_argument(
        "--stream-rounds", dest="rounds", type=int, default=1, help="rounds per side (default 1)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = _cli.new_parser(__doc__)
    add_arguments(parser)
    _cli.add_output(parser)
    parser.add_argument("--child", choices=["put", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.spec.read_text(encoding="utf-8")))))
        return 0
    return run_and_report(args, _cli.command_line("streaming", argv))


def run_and_report(args: argparse.Namespace, command: str) -> int:
    if args.files < 1 or args.file_mib < 1 or args.rounds < 1:
        raise SystemExit("--files, --file-mib and --stream-rounds must be >= 1")
    summary = run(args)
    put, ours = summary["put"], summary["ours"]
    print()
    print(
        f"s3fs put: {put['seconds']:.1f} s, {put['mib_per_s']:.1f} MiB/s, peak RSS +{put['growth_mib']:.0f} MiB"
    )
    print(
        f"ours    : {ours['seconds']:.1f} s, {ours['mib_per_s']:.1f} MiB/s, peak RSS +{ours['growth_mib']:.0f} MiB"
    )
    print(f"throughput ours / put: {summary['throughput_ratio']:.2f}")
    if args.out:
        _cli.write_section(args.out, "streaming", render(args, command.strip(), summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
