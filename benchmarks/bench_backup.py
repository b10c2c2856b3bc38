"""Benchmark: our backup copy and restore against the raw fsspec copy and the bare bulk import.

    python benchmarks/bench_backup.py [--rows N] [--out docs/benchmarks.md]

(or ``nox -s bench -- --rows N --out docs/benchmarks.md``). What runs, in one process:

1. An embedded Milvus 2.3.5 on local storage gets a collection of ``--rows`` rows (INT64 key, 128-d
   FLOAT_VECTOR), inserted in batches and flushed into ``--segments`` segments (auto-compaction off,
   so the segments stay as made).
2. local -> local: ``BackupClient.create_backup`` (its copy phase, ``BackupReport.copy_seconds``)
   against a raw ``LocalFileSystem(auto_mkdir=True).copy(srcs, dsts)`` of exactly the same files to
   the same relative paths in a fresh directory; ``--repeat`` rounds alternating raw, ours, raw, ours...
   after one untimed warm-up of each. The peak RSS of this process during each copy is read from
   ``VmHWM`` after resetting it (``/proc/self/clear_refs``) at the start of the copy.
3. Restore (local): ``BackupClient.restore`` (suffix, no index, no load) against a bare
   ``utility.do_bulk_insert(coll, files=[insert_prefix, ""], backup="true")`` per segment group into a
   freshly created collection with the same schema, both waiting for each import (polled every 0.5 s,
   the library's interval), ``--restore-repeat`` rounds alternating raw, ours.
4. The same collection on an embedded Milvus whose storage is S3 (a moto server, bucket ``a-bucket``),
   and S3 -> S3 (Milvus bucket -> another bucket): ours against s3fs's batched server-side
   ``fs.copy(srcs, dsts)``.

Times are only compared within one run (ratios): the machine is shared. A table goes to stdout;
with ``--out`` the results are written between the ``bench:begin``/``bench:end`` markers of that
markdown file (the text around them is kept; a missing file is created).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _cli  # type: ignore[import-not-found]  # benchmarks/ is on sys.path as a script
import bench_streaming  # type: ignore[import-not-found]  # benchmarks/ is on sys.path when run as a script
import fsspec
import numpy as np
from _cli import log, samples, status_kib  # type: ignore[import-not-found]

from milvus_backup_lib import BackupClient, MilvusConnection, RestoreOptions, StorageLocation
from milvus_backup_lib.backup import copier as copier_module
from milvus_backup_lib.backup.copier import CopyJob, FsspecCopier
from milvus_backup_lib.backup.segment_files import SegmentFiles
from milvus_backup_lib.progress import NullProgress
from milvus_backup_lib.testing.embedded import MILVUS_VERSION, EmbeddedMilvus

REPO = Path(__file__).resolve().parent.parent
COLLECTION = "bench_vectors"
DIM = 128
# Keep segments as made: 2.3.5 would otherwise merge these "small" segments in the background.
NO_COMPACTION = {"dataCoord.compaction.enableAutoCompaction": "false"}
MILVUS_BUCKET = "a-bucket"
MILVUS_ROOT = "files"
BACKUP_BUCKET = "bench-backups"
POLL_SECONDS = 0.5
MARKER = "bench"  # bench:begin/bench:end, not bench-backup:..., in docs/benchmarks.md

BREAKDOWN_LABELS = {
    "before_copy": "before the copy (checks, flush and its wait, describe, segment listing)",
    "listing": "&nbsp;&nbsp;of which the segment listing (`SegmentFiles._list`)",
    "copy": "copy phase (`copy_seconds`)",
    "mkdirs": "&nbsp;&nbsp;parent directories (`_make_parent_dirs`)",
    "copies": "&nbsp;&nbsp;the copies themselves",
    "verify": "&nbsp;&nbsp;verification (`FsspecCopier._verify`: one listing per destination directory)",
    "after_copy": "after the copy (manifest files)",
    "whole": "whole `create_backup` call",
    "verify_again": "separately: the library's verification again, on the finished backup",
    "verify_find": "separately: one recursive listing (`fs.find`) of the backup's `binlogs/` instead",
}

_INSERT_RE = re.compile(r"insert_log/(\d+)/(-?\d+)/(\d+)/(\d+)/(\d+)$")
_DELTA_RE = re.compile(r"delta_log/(\d+)/(-?\d+)/(\d+)/(\d+)$")


# -- peak RSS -------------------------------------------------------------------------------------


class RssWindow:
    """Peak resident memory of this process over a window of time.

    On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets the high-water mark ``VmHWM`` to the
    current RSS, so ``VmHWM`` read at the end is the peak within the window. Elsewhere (or if that
    write is refused) it falls back to ``ru_maxrss``, the peak of the whole process so far.
    """

    method = "VmHWM from /proc/self/status, reset through /proc/self/clear_refs at the start"

    def __init__(self) -> None:
        self.start_kib = 0
        self.peak_kib = 0
        self._exact = True

    def begin(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
                refs.write("5")
            self.start_kib = status_kib("VmRSS")
        except OSError:
            self._exact = False
            RssWindow.method = "ru_maxrss (peak of the whole process so far: clear_refs not writable)"
            self.start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def end(self) -> None:
        if self._exact:
            self.peak_kib = status_kib("VmHWM")
        else:
            self.peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class CopyProbe(NullProgress):
    """A progress receiver that timestamps the backup's phases and watches RSS in the copy."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.rss = RssWindow()
        self.files = 0

    def phase(self, name: str, detail: str = "") -> None:
        now = time.monotonic()
        self.marks.setdefault(name, now)
        if name == "copy":
            self.rss.begin()
        elif name == "meta":
            self.rss.end()

    def files_total(self, count: int, nbytes: int) -> None:
        self.files = count


class Timers:
    """Wall time spent in a few library functions, by wrapping them for the duration of a run.

    Only adds a function call and two clock reads per call; the wrapped code is unchanged.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def _wrap(self, key: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.monotonic() - started

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[Timers]:
        saved = (
            copier_module._make_parent_dirs,
            FsspecCopier._verify,
            SegmentFiles._list,
        )
        copier_module._make_parent_dirs = self._wrap("mkdirs", saved[0])  # type: ignore[assignment]
        FsspecCopier._verify = self._wrap("verify", saved[1])  # type: ignore[method-assign]
        SegmentFiles._list = self._wrap("snapshot_listing", saved[2])  # type: ignore[method-assign]
        try:
            yield self
        finally:
            copier_module._make_parent_dirs = saved[0]  # type: ignore[assignment]
            FsspecCopier._verify = saved[1]  # type: ignore[method-assign]
            SegmentFiles._list = saved[2]  # type: ignore[method-assign]


# -- moto ---------------------------------------------------------------------------------------


class _OwnMoto:
    """``python -m moto.server`` on a free port (used when tests/emulators.py is not importable)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return {
            "key": "bench-key",
            "secret": "bench-secret",
            "client_kwargs": {"endpoint_url": self.endpoint},
        }

    def __enter__(self) -> _OwnMoto:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "moto.log", "wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start; see {self.workdir / 'moto.log'}") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def moto_server(workdir: Path) -> Any:
    """The project's MotoServer helper (tests/emulators.py) if usable, else a plain moto process."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from emulators import MotoServer  # type: ignore[import-not-found]

        return MotoServer(workdir)
    except Exception as exc:  # not there yet, or broken: start moto ourselves
        log(f"tests/emulators.py MotoServer not usable ({type(exc).__name__}: {exc}); starting moto directly")
        return _OwnMoto(workdir)
    finally:
        sys.path.remove(str(REPO / "tests"))


# -- data -----------------------------------------------------------------------------------------


def schema() -> Any:
    from pymilvus import CollectionSchema, DataType, FieldSchema

    return CollectionSchema(
        [
            FieldSchema("key", DataType.INT64, is_primary=True),
            FieldSchema("vector", DataType.FLOAT_VECTOR, dim=DIM),
        ]
    )


def make_collection(alias: str, rows: int, segments: int, batch: int, start: int = 0) -> dict[str, Any]:
    """Create and fill the collection: ``segments`` flushes of ``rows / segments`` rows each. With
    ``start`` the collection exists with keys below it and grows by ``rows - start`` rows."""
    from pymilvus import Collection, connections

    started = time.monotonic()
    coll = Collection(COLLECTION, schema(), using=alias, shards_num=1)
    rng = np.random.default_rng(7 + start)
    per_segment = -(-(rows - start) // segments)
    done = start
    for _ in range(segments):
        target = min(rows, done + per_segment)
        while done < target:
            n = min(batch, target - done)
            keys = np.arange(done, done + n, dtype=np.int64)
            vectors = rng.random((n, DIM), dtype=np.float32)
            coll.insert([keys.tolist(), vectors])
            done += n
        coll.flush()
    infos = connections._fetch_handler(alias).get_persistent_segment_infos(COLLECTION)
    flushed = [i for i in infos if int(i.state) == 4]
    seconds = time.monotonic() - started
    log(f"  {rows} rows in {len(flushed)} flushed segments, made in {seconds:.0f} s")
    return {
        "collection_id": int(flushed[0].collectionID) if flushed else 0,
        "segments": len(flushed),
        "rows": sum(int(i.num_rows) for i in flushed),
    }


def binlog_files(fs: Any, root: str, collection_id: int) -> dict[str, int]:
    """Every insert and delta binlog of the collection under the storage ``root``: path -> size."""
    found: dict[str, int] = {}
    for kind in ("insert_log", "delta_log"):
        try:
            listing = fs.find(f"{root}/{kind}/{collection_id}", detail=True)
        except FileNotFoundError:
            continue
        found.update({str(p): int(i["size"]) for p, i in listing.items() if i.get("type", "file") == "file"})
    return dict(sorted(found.items()))


def backup_relative(path: str) -> str:
    """Where a Milvus binlog goes inside a backup (group = segment id, as the library writes it)."""
    m = _INSERT_RE.search(path)
    if m:
        c, p, s, f, log_id = m.groups()
        return f"binlogs/insert_log/{c}/{p}/{s}/{s}/{f}/{log_id}"
    m = _DELTA_RE.search(path)
    if m:
        c, p, s, log_id = m.groups()
        return f"binlogs/delta_log/{c}/{p}/{s}/{s}/{log_id}"
    raise ValueError(f"not a binlog path: {path}")


# -- copy benchmark ---------------------------------------------------------------------------------


def bench_copy(
    label: str,
    client: BackupClient,
    source_root: str,
    collection_id: int,
    raw_fs: Any,
    raw_root: str,
    repeat: int,
    keep_last: bool = False,
) -> dict[str, Any]:
    """Alternate raw and ours ``repeat`` times (after one untimed warm-up of each); return the samples."""
    src_fs = client.milvus_storage.fs
    dst_fs = client.backup_storage.fs
    files = binlog_files(src_fs, source_root, collection_id)
    nbytes = sum(files.values())
    log(f"{label}: {len(files)} files, {nbytes / 1e6:.1f} MB")
    result: dict[str, Any] = {
        "label": label,
        "files": len(files),
        "dirs": len({backup_relative(p).rsplit("/", 1)[0] for p in files}),
        "bytes": nbytes,
        "raw": [],
        "ours": [],
        "ours_total": [],
        "raw_rss": [],
        "ours_rss": [],
        "breakdown": [],
    }

    def run_raw(round_no: int, timed: bool) -> None:
        dest = f"{raw_root}/raw_{round_no}"
        srcs = list(binlog_files(src_fs, source_root, collection_id))  # the listing, untimed, as ours
        if srcs != list(files):
            raise RuntimeError(f"{label}: the source files changed between rounds")
        dsts = [f"{dest}/{backup_relative(p)}" for p in srcs]
        rss = RssWindow()
        rss.begin()
        started = time.monotonic()
        raw_fs.copy(srcs, dsts)
        seconds = time.monotonic() - started
        rss.end()
        copied = raw_fs.find(dest, detail=True)
        if len(copied) != len(srcs) or sum(int(i["size"]) for i in copied.values()) != nbytes:
            raise RuntimeError(f"{label}: the raw copy to {dest} is incomplete")
        raw_fs.rm(dest, recursive=True)
        raw_fs.invalidate_cache()
        if timed:
            result["raw"].append(seconds)
            result["raw_rss"].append((rss.start_kib, rss.peak_kib))
            log(f"  raw  round {round_no}: {seconds:.3f} s")

    def run_ours(round_no: int, timed: bool) -> None:
        name = f"bench_{round_no}"
        probe = CopyProbe()
        timers = Timers()
        called = time.monotonic()
        with timers.installed():
            report = client.create_backup(name, collections=[COLLECTION], progress=probe)
        returned = time.monotonic()
        if report.files != len(files) or report.bytes_copied != nbytes:
            raise RuntimeError(
                f"{label}: ours copied {report.files} files / {report.bytes_copied} bytes, "
                f"raw {len(files)} / {nbytes}"
            )
        meta = client.repository.read_library_meta(name)
        assert meta is not None
        if sorted(meta.files) != sorted(backup_relative(p) for p in files):
            raise RuntimeError(f"{label}: ours and raw copy different files")
        mkdirs = timers.seconds.get("mkdirs", 0.0)
        verify = timers.seconds["verify"]
        breakdown = {
            "before_copy": probe.marks["copy"] - called,
            "listing": timers.seconds.get("snapshot_listing", 0.0),
            "copy": report.copy_seconds,
            "mkdirs": mkdirs,
            "copies": report.copy_seconds - mkdirs - verify,
            "verify": verify,
            "after_copy": returned - probe.marks["copy"] - report.copy_seconds,
            "whole": returned - called,
        }
        breakdown.update(verification_alternatives(client, name, files))
        if not keep_last or round_no != repeat:
            client.repository.delete(name)
        else:
            client.repository.location.fs.invalidate_cache()
        dst_fs.invalidate_cache()
        if timed:
            result["ours"].append(report.copy_seconds)
            result["ours_total"].append(report.seconds)
            result["ours_rss"].append((probe.rss.start_kib, probe.rss.peak_kib))
            result["breakdown"].append(breakdown)
            result["server_side"] = report.server_side_copy
            log(
                f"  ours round {round_no}: copy phase {report.copy_seconds:.3f} s "
                f"(verify {verify:.3f} s), whole backup {returned - called:.2f} s"
            )
            if keep_last and round_no == repeat:
                result["kept"] = name

    run_raw(0, timed=False)
    run_ours(0, timed=False)
    for round_no in range(1, repeat + 1):
        run_raw(round_no, timed=True)
        run_ours(round_no, timed=True)
    result["raw_median"] = statistics.median(result["raw"])
    result["ours_median"] = statistics.median(result["ours"])
    result["ratio"] = result["ours_median"] / result["raw_median"]
    without_verify = [b["copy"] - b["verify"] for b in result["breakdown"]]
    result["ratio_without_verify"] = statistics.median(without_verify) / result["raw_median"]
    log(
        f"{label}: median raw {result['raw_median']:.3f} s, ours {result['ours_median']:.3f} s, "
        f"ratio {result['ratio']:.2f}"
    )
    return result


def verification_alternatives(client: BackupClient, name: str, files: dict[str, int]) -> dict[str, float]:
    """Time, on the backup just made, the library's verification again and one recursive listing instead.

    Both only list the destination (cold listing cache each time); the second is what a verification
    that lists the backup's ``binlogs/`` prefix once (1 request per 1,000 keys on S3) would cost.
    """
    dst = client.backup_storage
    jobs = [CopyJob(src, dst.join(name, backup_relative(src)), size) for src, size in files.items()]
    dst.fs.invalidate_cache()
    started = time.monotonic()
    FsspecCopier()._verify(client.milvus_storage, dst, jobs)
    per_directory = time.monotonic() - started
    dst.fs.invalidate_cache()
    started = time.monotonic()
    found = dst.fs.find(dst.join(name, "binlogs"), detail=True)
    sizes = {str(dst.fs._strip_protocol(p)): int(i["size"]) for p, i in found.items()}
    if any(sizes.get(str(dst.fs._strip_protocol(j.destination))) != j.size for j in jobs):
        raise RuntimeError(f"the recursive listing of {name} does not match the copy jobs")
    one_listing = time.monotonic() - started
    dst.fs.invalidate_cache()
    return {"verify_again": per_directory, "verify_find": one_listing}


# -- restore benchmark ------------------------------------------------------------------------------


def bench_restore(
    client: BackupClient, alias: str, backup_root: Path, backup_name: str, rows: int, repeat: int
) -> dict[str, Any]:
    """Alternate a bare bulk import and ``client.restore`` of the kept backup ``repeat`` times."""
    from pymilvus import BulkInsertState, Collection, utility

    info = client.get_backup(backup_name)
    coll_info = info.collection("default", COLLECTION)
    groups = [
        (part.partition_name, seg) for part in coll_info.partition_backups for seg in part.segment_backups
    ]
    result: dict[str, Any] = {"raw": [], "ours": [], "imports": len(groups)}

    def raw(round_no: int) -> None:
        name = f"{COLLECTION}_raw{round_no}"
        started = time.monotonic()
        Collection(name, schema(), using=alias, shards_num=coll_info.shards_num)
        imported = 0
        for partition, seg in groups:
            prefix = (
                f"{backup_root}/{backup_name}/binlogs/insert_log/"
                f"{seg.collection_id}/{seg.partition_id}/{seg.group_id}/"
            )
            delta = ""
            if seg.deltalogs:
                delta = (
                    f"{backup_root}/{backup_name}/binlogs/delta_log/"
                    f"{seg.collection_id}/{seg.partition_id}/{seg.group_id}/"
                )
            task = utility.do_bulk_insert(
                name, files=[prefix, delta], partition_name=partition, backup="true", using=alias
            )
            while True:
                state = utility.get_bulk_insert_state(task, using=alias)
                if state.state == BulkInsertState.ImportCompleted:
                    imported += state.row_count
                    break
                if state.state in (BulkInsertState.ImportFailed, BulkInsertState.ImportFailedAndCleaned):
                    raise RuntimeError(f"bare import of {prefix} failed: {state.infos}")
                time.sleep(POLL_SECONDS)
        seconds = time.monotonic() - started
        if imported != rows:
            raise RuntimeError(f"bare import brought {imported} rows, expected {rows}")
        result["raw"].append(seconds)
        log(f"  bare import round {round_no}: {seconds:.2f} s")
        utility.drop_collection(name, using=alias)

    def ours(round_no: int) -> None:
        started = time.monotonic()
        report = client.restore(
            backup_name,
            RestoreOptions(suffix=f"_r{round_no}", rebuild_indexes=False, load=False, restore_aliases=False),
        )
        seconds = time.monotonic() - started
        coll = report.collections[0]
        if coll.imported_rows != rows:
            raise RuntimeError(f"restore brought {coll.imported_rows} rows, expected {rows}")
        result["ours"].append(seconds)
        result["ours_imports"] = len(coll.imports)
        log(f"  restore     round {round_no}: {seconds:.2f} s ({len(coll.imports)} imports)")
        utility.drop_collection(coll.target.split(".", 1)[-1], using=alias)

    for round_no in range(1, repeat + 1):
        raw(round_no)
        ours(round_no)
    result["raw_median"] = statistics.median(result["raw"])
    result["ours_median"] = statistics.median(result["ours"])
    result["ratio"] = result["ours_median"] / result["raw_median"]
    log(
        f"restore: median bare {result['raw_median']:.2f} s, ours {result['ours_median']:.2f} s, "
        f"ratio {result['ratio']:.2f}"
    )
    return result


# -- the runs ----------------------------------------------------------------------------------------


def run_local(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pymilvus import connections

    log("local storage: starting an embedded Milvus")
    with EmbeddedMilvus(work / "milvus-local", extra_config=NO_COMPACTION) as server:
        alias = "bench-local"
        connections.connect(alias=alias, uri=server.uri)
        try:
            data = make_collection(alias, args.rows, args.segments, args.batch)
            backups = work / "backups"
            backups.mkdir()
            client = BackupClient(
                milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
                milvus_storage=StorageLocation(server.storage_url),
                backup_storage=StorageLocation(backups.as_uri()),
            )
            raw_dir = work / "raw-local"
            raw_dir.mkdir()
            copy = bench_copy(
                "local -> local",
                client,
                str(server.data_dir),
                data["collection_id"],
                fsspec.filesystem("file", auto_mkdir=True),
                str(raw_dir),
                args.repeat,
                keep_last=args.restore_repeat > 0,
            )
            restore = None
            if args.restore_repeat:
                log("restore (local storage)")
                restore = bench_restore(
                    client, alias, backups, copy["kept"], data["rows"], args.restore_repeat
                )
        finally:
            connections.disconnect(alias)
    return {"data": data, "copy": copy, "restore": restore}


def run_s3(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pymilvus import connections

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    log("S3 storage: starting moto")
    with moto_server(work / "moto") as moto:
        options = moto.storage_options
        fs = fsspec.filesystem("s3", **options)
        for bucket in (MILVUS_BUCKET, BACKUP_BUCKET):
            if not fs.exists(bucket):
                fs.mkdir(bucket)
        fs.invalidate_cache()
        config = {
            **NO_COMPACTION,
            "common.storageType": "minio",
            "minio.address": "127.0.0.1",
            "minio.port": str(moto.port),
            "minio.bucketName": MILVUS_BUCKET,
            "minio.rootPath": MILVUS_ROOT,
            "minio.accessKeyID": options["key"],
            "minio.secretAccessKey": options["secret"],
        }
        log("S3 storage: starting an embedded Milvus on moto")
        with EmbeddedMilvus(work / "milvus-s3", extra_config=config) as server:
            alias = "bench-s3"
            connections.connect(alias=alias, uri=server.uri)
            try:
                data = make_collection(alias, args.rows, args.segments, args.batch)
                client = BackupClient(
                    milvus=MilvusConnection(uri=server.uri, management_url=server.management_url),
                    milvus_storage=StorageLocation(f"s3://{MILVUS_BUCKET}/{MILVUS_ROOT}", options),
                    backup_storage=StorageLocation(f"s3://{BACKUP_BUCKET}/backups", options),
                )
                copy = bench_copy(
                    "S3 -> S3 (moto)",
                    client,
                    f"{MILVUS_BUCKET}/{MILVUS_ROOT}",
                    data["collection_id"],
                    fs,
                    f"{BACKUP_BUCKET}/raw",
                    args.repeat,
                )
            finally:
                connections.disconnect(alias)
    return {"data": data, "copy": copy}


# -- report ------------------------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, KeyError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}", f"Milvus {MILVUS_VERSION} embedded (`milvus` wheel)"]
    for package in ("milvus-backup-lib", "pymilvus", "fsspec", "s3fs", "moto"):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{package} {version(package)}")
    return ", ".join(parts)


def render(args: argparse.Namespace, command: str, results: dict[str, Any], elapsed: float) -> list[str]:
    lines = [
        f"## Results of {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command (from the repository root): `{command}`",
        f"- Machine: {machine()}; shared with other work, so only the ratios (measured in one run) mean anything.",
        f"- Software: {versions()}; moto as S3.",
        f"- Whole run: {elapsed / 60:.1f} min.",
        "",
        "### Data",
        "",
        "| storage | rows | flushed segments | binlog files copied | MB copied | destination directories |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("local", "local disk"), ("s3", "S3 (moto)")):
        if key in results:
            r = results[key]
            lines.append(
                f"| {label} | {r['data']['rows']:,} | {r['data']['segments']} | {r['copy']['files']} "
                f"| {r['copy']['bytes'] / 1e6:.1f} | {r['copy']['dirs']} |"
            )
    lines += [
        "",
        f"Schema: `key` INT64 primary key, `vector` FLOAT_VECTOR dim {DIM}; one shard; inserted in batches of "
        f"{args.batch:,} rows and flushed every {-(-args.rows // args.segments):,} rows; auto-compaction off.",
        "",
        "### Backup copy phase: ours against the raw fsspec copy",
        "",
        f"{args.repeat} timed rounds per side, alternating raw, ours, raw, ours... after one untimed warm-up "
        "of each. Ours = `BackupReport.copy_seconds` (the copy phase of `create_backup`: parent directories, "
        "the copies, the verification listing). Raw = one `fs.copy(srcs, dsts)` call on exactly the same "
        "source files to the same relative paths in a fresh destination (local: "
        "`LocalFileSystem(auto_mkdir=True)`, which copies file after file with `shutil.copyfile`; S3: "
        "s3fs's batched `fs.copy`, all server-side `CopyObject` requests gathered at once). Both sides list "
        "the sources first, untimed (ours in its snapshot).",
        "",
        "| copy | raw median (s) | ours median (s) | **ours / raw** | raw rounds (s) | ours rounds (s) | ours server-side |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for key in ("local", "s3"):
        if key in results:
            c = results[key]["copy"]
            lines.append(
                f"| {c['label']} | {c['raw_median']:.3f} | {c['ours_median']:.3f} | **{c['ratio']:.2f}** "
                f"| {samples(c['raw'], 3)} | {samples(c['ours'], 3)} | {c.get('server_side')} |"
            )
    lines += [
        "",
        "### Where the time of `create_backup` goes (median of the timed rounds, s)",
        "",
        "Measured inside the same timed rounds: phase boundaries from the `Progress` events, and the "
        "library's `_make_parent_dirs`, `FsspecCopier._verify` and `SegmentFiles._list` wrapped "
        "with a timer by this script (no library code changed).",
        "",
    ]
    keys = [k for k in ("local", "s3") if k in results]
    lines.append("| part | " + " | ".join(results[k]["copy"]["label"] for k in keys) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for part, text in BREAKDOWN_LABELS.items():
        cells = [f"{statistics.median(b[part] for b in results[k]['copy']['breakdown']):.3f}" for k in keys]
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    cells = [f"{results[k]['copy']['ratio_without_verify']:.2f}" for k in keys]
    lines.append("| copy phase without verify, median / raw median | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Peak RSS of this process during the copy (MiB)",
        "",
        f"Measured as {RssWindow.method} of each copy (ours: at the `copy` phase event, read at the `meta` "
        "event; raw: around the `fs.copy` call). The process also holds pymilvus, grpc, s3fs and numpy.",
        "",
        "| copy | RSS at start | peak, ours (max of rounds) | growth, ours | peak, raw (max of rounds) | growth, raw |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        c = results[key]["copy"]
        ours_peak = max(p for _, p in c["ours_rss"])
        ours_growth = max(p - s for s, p in c["ours_rss"])
        raw_peak = max(p for _, p in c["raw_rss"])
        raw_growth = max(p - s for s, p in c["raw_rss"])
        lines.append(
            f"| {c['label']} | {_mib(c['ours_rss'][0][0])} | {_mib(ours_peak)} | {_mib(ours_growth)} "
            f"| {_mib(raw_peak)} | {_mib(raw_growth)} |"
        )
    restore = results.get("local", {}).get("restore")
    if restore:
        lines += [
            "",
            "### Restore (local storage): `restore()` against a bare bulk import",
            "",
            f"{len(restore['raw'])} rounds per side, alternating bare, ours. Bare = create a collection with the "
            f"same schema, then per segment group (here {restore['imports']}, one per segment) "
            '`utility.do_bulk_insert(coll, files=[insert_prefix, ""], backup="true")` and poll '
            f"`get_bulk_insert_state` every {POLL_SECONDS} s until Completed. Ours = `client.restore(name, "
            "RestoreOptions(suffix=..., rebuild_indexes=False, load=False))` (reads the manifest, plans, "
            "creates the collection, imports in place (no staging on the same machine), checks each row "
            "count, reads the collection statistics).",
            "",
            "| restore | bare median (s) | ours median (s) | **ours / bare** | bare rounds (s) | ours rounds (s) |",
            "|---|---:|---:|---:|---|---|",
            f"| {results['local']['data']['rows']:,} rows, {restore['imports']} imports | {restore['raw_median']:.2f} "
            f"| {restore['ours_median']:.2f} | **{restore['ratio']:.2f}** | {samples(restore['raw'], 2)} "
            f"| {samples(restore['ours'], 2)} |",
        ]
    return lines


def table(results: dict[str, Any]) -> str:
    rows = [("measure", "raw (s)", "ours (s)", "ours/raw")]
    for key in ("local", "s3"):
        if key in results:
            c = results[key]["copy"]
            rows.append(
                (
                    f"backup copy {c['label']}",
                    f"{c['raw_median']:.3f}",
                    f"{c['ours_median']:.3f}",
                    f"{c['ratio']:.2f}",
                )
            )
            peak = max(p for _, p in c["ours_rss"])
            growth = max(p - s for s, p in c["ours_rss"])
            rows.append((f"  peak RSS ours {c['label']} (MiB)", "", f"{_mib(peak)} (+{_mib(growth)})", ""))
    restore = results.get("local", {}).get("restore")
    if restore:
        rows.append(
            (
                "restore vs bare import (local)",
                f"{restore['raw_median']:.2f}",
                f"{restore['ours_median']:.2f}",
                f"{restore['ratio']:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = _cli.new_parser(__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the collection (default 200000)")
    parser.add_argument("--segments", type=int, default=5, help="flushed segments to make (default 5)")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per insert call (default 10000)")
    # Each copy takes well under a second here, so a median of 3 swings widely on a shared machine
    # (seen: S3 ratio 0.82 with 3 rounds, 1.37 with 7, in two runs minutes apart); 9 rounds cost ~10 s.
    parser.add_argument("--repeat", type=int, default=9, help="timed copy rounds per side (default 9)")
    parser.add_argument(
        "--restore-repeat", type=int, default=3, help="timed restore rounds per side (default 3; 0 skips)"
    )
    parser.add_argument("--skip-s3", action="store_true", help="only the local-storage part")
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="also run the streaming-copy benchmark (benchmarks/bench_streaming.py: local disk -> moto, "
        "memory and speed against s3fs put)",
    )
    parser.add_argument(
        "--streaming-only", action="store_true", help="only the streaming-copy benchmark (no Milvus)"
    )
    bench_streaming.add_arguments(parser)
    _cli.add_output(parser)
    args = parser.parse_args(argv)
    _cli.quiet_milvus()
    if args.repeat < 1 or args.segments < 1 or args.rows < args.segments:
        parser.error("--repeat and --segments must be >= 1, and --rows >= --segments")
    command = _cli.command_line("backup", argv)
    if args.streaming_only:
        return bench_streaming.run_and_report(args, command)

    started = time.monotonic()
    results: dict[str, Any] = {}
    with _cli.scratch("backup", args.workdir) as work:
        results["local"] = run_local(args, work)
        if not args.skip_s3:
            results["s3"] = run_s3(args, work)
    elapsed = time.monotonic() - started
    print()
    print(table(results))
    print(f"\nwhole run {elapsed / 60:.1f} min")
    if args.out:
        _cli.write_section(args.out, "backup", render(args, command, results, elapsed), marker=MARKER)
    if args.streaming:
        return bench_streaming.run_and_report(args, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
