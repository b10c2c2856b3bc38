"""Incremental backups: which binlogs an earlier backup of the same source already stores.

A flushed segment's binlogs never change in Milvus: deletes add delta logs, compaction makes new
segments. So a binlog an earlier backup (the *base*) copied from the same cluster storage, at the same
path, with the same size (and the same MD5 where both are known), need not be copied again: the new
backup's ``meta/milvus_backup_lib.json`` names the backup that stores it (``references``; see
:mod:`milvus_backup_lib.repository.references`).

Files are reused per *import directory*, never one by one: Milvus's backup import reads one insert
directory and one delta directory per segment group (``restore/staging.py`` ``files_of``), so every
file of such a directory must be stored by one backup. A directory is reused when the base holds
exactly the same files in it, each matching; otherwise all of it is copied. A segment whose old
delta logs got a new one is therefore copied whole on the delta side (delta logs are small); its
insert logs are still reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from milvus_backup_lib.errors import BackupLockedError, IncrementalBaseError, ManifestError
from milvus_backup_lib.manifest.model import BackupInfo, CollectionBackupInfo, SegmentBackupInfo
from milvus_backup_lib.options import BackupStrategy
from milvus_backup_lib.repository.checksum import store_checksum
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.repository.references import repository_lock
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.repository.verify import stored_files
from milvus_backup_lib.storage.layout import (
    BinlogFile,
    backup_delta_log_dir,
    backup_insert_log_dir,
    binlog_files,
    segments_of,
    validate_backup_name,
)
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = [
    "LATEST",
    "Base",
    "Reuse",
    "missing_references",
    "plan_reuse",
    "recorded_base",
    "repository_lock_waiting",
    "resolve_base",
    "source_record",
    "unit_keys",
    "units_of",
]

#: ``base="latest"``: the newest complete backup of the same source.
LATEST = "latest"
#: Strategies whose backups hold binlogs (a ``meta_only`` backup holds none to reuse).
_BINLOG_STRATEGIES = frozenset({BackupStrategy.SERIAL_FLUSH.value, BackupStrategy.SKIP_FLUSH.value})
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")
_ACCOUNT = re.compile(r"(?:^|;)\s*AccountName=([^;]+)", re.IGNORECASE)


@attrs.frozen
class Base:
    """The backup an incremental backup is made against: its name, manifest and library record."""

    name: str
    info: BackupInfo
    meta: LibraryMeta


@attrs.frozen
class Reuse:
    """The files of a new backup that are not copied from the cluster."""

    #: backup-relative key -> the backup storing the file (the base's holder of that key).
    references: dict[str, str] = attrs.field(factory=dict)
    #: backup-relative key -> ``md5:<hex>`` the holder recorded.
    checksums: dict[str, str] = attrs.field(factory=dict)
    sizes: dict[str, int] = attrs.field(factory=dict)

    @property
    def files(self) -> int:
        return len(self.references)

    @property
    def bytes(self) -> int:
        return sum(self.sizes.values())

    def without(self, keys: Iterable[str]) -> Reuse:
        """This reuse minus ``keys`` (units found missing at commit)."""
        drop = set(keys)
        return Reuse(
            references={k: v for k, v in self.references.items() if k not in drop},
            checksums={k: v for k, v in self.checksums.items() if k not in drop},
            sizes={k: v for k, v in self.sizes.items() if k not in drop},
        )


def source_record(
    milvus_storage: StorageLocation | None, collections: Sequence[CollectionBackupInfo]
) -> dict[str, Any]:
    """What ``LibraryMeta.source`` records: the cluster's storage (no credentials), root and collection IDs
    (without Milvus's storage, a logical backup's: the collection IDs alone; it is never a base)."""
    return {
        **(_storage_identity(milvus_storage) if milvus_storage is not None else {}),
        "collections": {c.qualified_name: c.collection_id for c in collections},
    }


def _storage_identity(location: StorageLocation) -> dict[str, Any]:
    url = _USERINFO.sub(r"\1", scrub(location.url, location))
    identity: dict[str, Any] = {"storage": url, "root_path": location.root}
    client_kwargs = location.storage_options.get("client_kwargs")
    endpoint = location.storage_options.get("endpoint_url") or (
        client_kwargs.get("endpoint_url") if isinstance(client_kwargs, dict) else None
    )
    if isinstance(endpoint, str) and endpoint:
        identity["endpoint"] = _USERINFO.sub(r"\1", scrub(endpoint, location))
    # Azure container names are unique only within a storage account: the account names the store.
    account = location.storage_options.get("account_name")
    connection = location.storage_options.get("connection_string")
    if not account and isinstance(connection, str):
        found = _ACCOUNT.search(connection)
        account = found.group(1) if found else None
    if isinstance(account, str) and account:
        identity["account"] = account
    return identity


def _same_source(recorded: dict[str, Any], ours: dict[str, Any]) -> bool:
    return all(recorded.get(key) == ours.get(key) for key in ("storage", "root_path", "endpoint", "account"))


def _describe_source(source: dict[str, Any]) -> str:
    where = f"{source.get('storage', '?')} (root {source.get('root_path', '?')!r}"
    for key in ("endpoint", "account"):
        if source.get(key):
            where += f", {key} {source[key]}"
    return where + ")"


def resolve_base(repository: BackupRepository, base: str, milvus_storage: StorageLocation) -> Base:
    """The base backup ``base`` (a name or ``"latest"``) for a backup of ``milvus_storage``.

    Raises :class:`IncrementalBaseError` (nothing is written) when it does not exist, was made by the
    Go tool or holds no binlogs, or was made from another cluster storage or root.
    """
    ours = _storage_identity(milvus_storage)
    root = repository.location.url
    if base == LATEST:
        return _latest(repository, ours)
    validate_backup_name(base)
    if not repository.exists(base):
        raise IncrementalBaseError(
            base, root, "no complete backup of that name; list_backups() shows them (or pass base='latest')"
        )
    try:
        meta = repository.read_library_meta(base)
        info = repository.read(base)
    except ManifestError as exc:
        raise IncrementalBaseError(base, root, f"its meta files cannot be read ({exc})") from None
    if meta is None:
        raise IncrementalBaseError(
            base,
            root,
            "it was made by the Go tool (no meta/milvus_backup_lib.json), whose files this library "
            "never references; make a full backup with this library first",
        )
    if meta.strategy not in _BINLOG_STRATEGIES:
        raise IncrementalBaseError(
            base, root, f"it is a {meta.strategy or 'metadata'} backup and holds no binlogs to reuse"
        )
    if not meta.source:
        raise IncrementalBaseError(
            base,
            root,
            "it does not record which cluster storage it came from (made by an older version); "
            "make a full backup first",
        )
    if not _same_source(meta.source, ours):
        raise IncrementalBaseError(
            base,
            root,
            f"it was made from {_describe_source(meta.source)}, not from {_describe_source(ours)}: "
            "files of another cluster or storage root are never taken for the same data",
        )
    return Base(name=base, info=info, meta=meta)


def _latest(repository: BackupRepository, ours: dict[str, Any]) -> Base:
    """The newest complete backup made from ``ours``: every record read at once (one request each, in
    parallel, so the time does not grow with the number of backups), then the newest that is complete."""

    def record(name: str) -> tuple[dt.datetime, str, LibraryMeta] | None:
        try:
            meta = repository.read_library_meta(name)
        except ManifestError:
            return None
        if meta is None or meta.strategy not in _BINLOG_STRATEGIES or not _same_source(meta.source, ours):
            return None
        try:
            created = dt.datetime.fromisoformat(meta.created_at)
        except ValueError:
            return None
        return (created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)), name, meta

    names = repository.directory_names()
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="latest") as pool:
        found = [r for r in pool.map(record, names) if r is not None]
    # newest first; an unfinished one (its record is written before backup_meta.json) is skipped
    best = next(
        (r for r in sorted(found, key=lambda r: (r[0], r[1]), reverse=True) if repository.exists(r[1])), None
    )
    if best is None:
        raise IncrementalBaseError(
            LATEST,
            repository.location.url,
            f"no complete backup made by this library from {_describe_source(ours)} is stored there; "
            "make a full backup first (without base)",
        )
    try:
        info = repository.read(best[1])
    except ManifestError as exc:
        raise IncrementalBaseError(
            best[1], repository.location.url, f"its manifest cannot be read ({exc})"
        ) from None
    return Base(name=best[1], info=info, meta=best[2])


def _unit_dir(seg: SegmentBackupInfo, delta: bool) -> str:
    """The import directory a segment's insert (or delta) logs are read from at restore."""
    c, p, g = seg.collection_id, seg.partition_id, seg.group_id
    if not delta:
        return backup_insert_log_dir(c, p, g or None)
    if p == -1:  # collection-level L0: the segment directory (restore/imports.py _l0_job)
        return backup_delta_log_dir(c, -1, seg.segment_id)
    return backup_delta_log_dir(c, p, g or None)


def units_of(info: BackupInfo) -> dict[str, list[BinlogFile]]:
    """Every import directory of a manifest with the binlogs in it."""
    segments: dict[tuple[int, int, int], SegmentBackupInfo] = {}
    for coll in info.collection_backups:
        for seg in segments_of(coll):
            segments[(seg.collection_id, seg.partition_id, seg.segment_id)] = seg
    units: dict[str, list[BinlogFile]] = {}
    for f in binlog_files(info):
        parts = f.key.split("/")
        seg = segments[(int(parts[2]), int(parts[3]), f.segment_id)]
        units.setdefault(_unit_dir(seg, f.is_delta), []).append(f)
    return units


def plan_reuse(
    info: BackupInfo, base: Base, milvus_storage: StorageLocation, *, concurrency: int = 16
) -> Reuse:
    """The import directories of ``info`` whose every binlog ``base`` stores (see the module docstring)."""
    theirs = units_of(base.info)
    base_ids = {c.collection_id for c in base.info.collection_backups}
    candidates: list[list[BinlogFile]] = []
    for unit, files in units_of(info).items():
        stored = {f.key: f for f in theirs.get(unit, ())}
        if set(stored) != {f.key for f in files}:
            continue  # new, or the directory's files changed: copied whole
        holders = {base.meta.holder(base.name, key) for key in stored}
        if len(holders) != 1:
            continue
        if all(
            int(f.key.split("/")[2]) in base_ids
            and stored[f.key].source == f.source
            and stored[f.key].size == f.size
            and f.key in base.meta.checksums
            for f in files
        ):
            candidates.append(files)
    known = _source_md5s(milvus_storage, [f for files in candidates for f in files], concurrency)
    reuse = Reuse()
    for files in candidates:
        if any(known.get(f.key) not in (None, base.meta.checksums[f.key]) for f in files):
            continue  # same path and size, other bytes: copied
        for f in files:
            reuse.references[f.key] = base.meta.holder(base.name, f.key)
            reuse.checksums[f.key] = base.meta.checksums[f.key]
            reuse.sizes[f.key] = f.size
    return reuse


def _source_md5s(
    location: StorageLocation, files: Sequence[BinlogFile], concurrency: int
) -> dict[str, str | None]:
    """The MD5 the cluster's store vouches for, by backup key (None where it vouches for none).

    Local and in-memory stores vouch for none (reading every file would cost what copying it does)."""
    if location.is_local or location.protocol == "memory" or not files:
        return {}

    def one(f: BinlogFile) -> tuple[str, str | None]:
        try:
            return f.key, store_checksum(location, location.join(f.source))[0]
        except Exception:  # cannot tell: the size decides
            return f.key, None

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="incremental") as pool:
        return dict(pool.map(one, files))


@contextlib.contextmanager
def repository_lock_waiting(
    location: StorageLocation, *, stale_after: float, poll: float = 0.5
) -> Iterator[BackupLock]:
    """The repository lock, waiting while another holder (a delete sweeping) has it, at most for its
    lease (``stale_after``: a lock not refreshed that long is taken over); then
    :class:`BackupLockedError` propagates."""
    deadline = time.monotonic() + stale_after
    while True:
        lock = repository_lock(location, stale_after=stale_after)
        try:
            lock.acquire()
        except BackupLockedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll)
            continue
        break
    try:
        yield lock
    finally:
        lock.release()


def missing_references(repository: BackupRepository, reuse: Reuse) -> set[str]:
    """The referenced files not stored (with their size) at their holder now: one listing per holder."""
    by_holder: dict[str, list[str]] = {}
    for key, holder in reuse.references.items():
        by_holder.setdefault(holder, []).append(key)
    missing: set[str] = set()
    for holder, keys in by_holder.items():
        stored = stored_files(repository.location, holder)
        missing.update(key for key in keys if stored.get(key) != reuse.sizes[key])
    return missing


def unit_keys(reuse: Reuse, keys: Iterable[str], info: BackupInfo) -> set[str]:
    """Every key of the import directories that hold one of ``keys`` (a unit is copied whole)."""
    wanted = set(keys)
    out: set[str] = set()
    for files in units_of(info).values():
        unit = {f.key for f in files}
        if unit & wanted:
            out |= unit & set(reuse.references)
    return out


def recorded_base(repository: BackupRepository, base: Base, reuse: Reuse) -> str:
    """The base an incremental records at its commit (under the repository lock): only a backup it
    still reuses files of.

    ``""`` when nothing is reused any more (its base was deleted meanwhile and every file copied from
    the cluster again, or nothing matched): then it is a full, self-contained backup like any other.
    Otherwise ``base``, while it stores a reused file or is still a complete backup; a base deleted
    meanwhile whose own files were all copied again gives way to a backup the reused files are stored
    by (the base's own base when it is one of them)."""
    holders = set(reuse.references.values())
    if not holders:
        return ""
    if base.name in holders or repository.exists(base.name):
        return base.name
    return base.meta.base if base.meta.base in holders else min(holders)
