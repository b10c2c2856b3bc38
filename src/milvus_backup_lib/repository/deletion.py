"""Delete that never breaks another backup: mark and sweep under the repository lock.

An incremental backup's reused binlogs stay under the backup that stored them first
(:attr:`LibraryMeta.references`), so a delete removes only the files no other backup references, as
Elasticsearch deletes only the segment files no other snapshot uses. Under the writer's lock on the
name and the repository lock (:func:`~milvus_backup_lib.repository.references.repository_lock`, which
whoever adds references takes too), a delete

1. *marks*: writes the tombstone ``{root}/{name}/milvus_backup_lib.deleted`` (JSON: when, and which
   backups still reference which of its files), then removes ``meta/backup_meta.json``: the name is
   gone at once (not listed, :meth:`BackupRepository.exists` is false);
2. *sweeps*: removes every file of ``{name}/`` that no other backup references, and the whole directory
   (the tombstone last) when none is referenced.

A directory with a tombstone is a *husk*: never listed as a backup nor as an unfinished one. Every
delete and every prune sweeps every husk too, so the files an interrupted delete left, and those a
later delete or :meth:`BackupClient.materialize` stopped referencing, go the next time.

Which backups count as referencing: every directory of the root that is not a husk and whose library
meta can be read, complete or unfinished (an interrupted incremental backup keeps what it references
until it is resumed or deleted). If any library meta cannot be read, nothing is swept (its references
are unknown): the name is still deleted, and the sweep runs again once that backup is repaired or
deleted. Backups of the Go tool have no library meta and reference nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import attrs

from milvus_backup_lib._html import format_bytes, printable
from milvus_backup_lib._version import __version__
from milvus_backup_lib.errors import BackupLockedError, ManifestError, RepositoryLockedError
from milvus_backup_lib.manifest.codec import BACKUP_META
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.references import repository_lock
from milvus_backup_lib.repository.store import TOMBSTONE_FILE, BackupRepository
from milvus_backup_lib.storage.layout import validate_backup_name

__all__ = [
    "Census",
    "DeleteReport",
    "census",
    "delete_backup",
    "held_repository_lock",
    "remove",
    "stored_files",
    "sweep_husks",
    "would_free",
]

log = logging.getLogger(__name__)

#: How long a delete, prune or materialize waits for the repository lock (held briefly by another
#: delete, prune, materialize or incremental commit) before giving up with :class:`RepositoryLockedError`.
REPOSITORY_LOCK_WAIT = 60.0


@attrs.frozen(kw_only=True)
class DeleteReport:
    """What :meth:`BackupClient.delete_backup` removed."""

    name: str
    #: Files and bytes of the backup's directory really removed.
    files_removed: int = 0
    bytes_freed: int = 0
    #: Files kept because other backups reference them: backup-relative path -> their names.
    kept: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    #: Bytes freed by the same sweep from husks (what earlier deletes had to keep, or left unfinished).
    husk_bytes_freed: int = 0

    @property
    def referenced_by(self) -> list[str]:
        """The backups that still reference files of the deleted one (sorted)."""
        return sorted({n for names in self.kept.values() for n in names})

    def summary(self) -> str:
        text = f"backup {self.name} deleted: {self.files_removed} file(s), {format_bytes(self.bytes_freed)} freed"
        if self.kept:
            text += (
                f"; {len(self.kept)} file(s) kept because backup(s) "
                f"{', '.join(map(printable, self.referenced_by))} reference them"
            )
        if self.husk_bytes_freed:
            text += f"; {format_bytes(self.husk_bytes_freed)} freed from earlier deletes' leftovers"
        return text

    def __str__(self) -> str:
        return self.summary()


@attrs.frozen(kw_only=True)
class Census:
    """Who references what, read from every directory's library meta under the repository lock."""

    #: holder -> backup-relative path -> the backups referencing it.
    index: dict[str, dict[str, list[str]]]
    #: Directories whose library meta cannot be read: their references are unknown.
    unknown: tuple[str, ...]
    husks: tuple[str, ...]

    def references_to(self, holder: str, ignoring: frozenset[str] = frozenset()) -> dict[str, list[str]]:
        found = {k: [n for n in v if n not in ignoring] for k, v in self.index.get(holder, {}).items()}
        return {k: v for k, v in found.items() if v}


def census(repository: BackupRepository, *, excluding: frozenset[str] = frozenset()) -> Census:
    """Read every non-husk directory's library meta (except those ``excluding``) once: one pass over the
    root, the same answer :func:`~milvus_backup_lib.repository.references.referenced_by_others` gives
    per holder."""
    index: dict[str, dict[str, list[str]]] = {}
    unknown: list[str] = []
    husks: list[str] = []
    for name in repository.directory_names():
        if repository.is_husk(name):
            husks.append(name)
            continue
        if name in excluding:
            continue
        try:
            meta = repository.read_library_meta(name)
        except ManifestError:
            unknown.append(name)
            continue
        for key, holder in (meta.references if meta else {}).items():
            index.setdefault(holder, {}).setdefault(key, []).append(name)
    return Census(index=index, unknown=tuple(unknown), husks=tuple(husks))


@contextmanager
def held_repository_lock(
    repository: BackupRepository, stale_after: float, wait: float | None = None
) -> Iterator[BackupLock]:
    """The repository lock, waited for up to ``wait`` seconds (default :data:`REPOSITORY_LOCK_WAIT`;
    its holders keep it briefly)."""
    wait = REPOSITORY_LOCK_WAIT if wait is None else wait
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        lock = repository_lock(repository.location, stale_after=stale_after)
        try:
            lock.acquire()
            break
        except BackupLockedError as exc:
            if time.monotonic() >= deadline:
                raise RepositoryLockedError(repository.location.url, exc.holder, wait) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield lock
    finally:
        lock.release()


def stored_files(repository: BackupRepository, name: str) -> dict[str, int]:
    """Backup-relative path -> size of every file under ``{root}/{name}/`` (one fresh listing)."""
    base = repository.backup_dir(name).rstrip("/")
    found = repository.location.list_files(base, fresh=True)
    return {path[len(base) + 1 :]: size for path, size in found.items() if path.startswith(base + "/")}


def _write_tombstone(repository: BackupRepository, name: str, kept: Mapping[str, list[str]]) -> None:
    record = {
        "deleted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "library_version": __version__,
        "referenced_by": {key: sorted(names) for key, names in sorted(kept.items())},
    }
    data = json.dumps(record, sort_keys=True, indent=1).encode()
    repository.location.write_bytes(repository.path(name, TOMBSTONE_FILE), data)


def _sweep(
    repository: BackupRepository, name: str, kept: Mapping[str, list[str]], files: Mapping[str, int]
) -> tuple[int, int]:
    """Remove the files of ``{name}/`` that ``kept`` does not name; the tombstone and the directory too
    when nothing is kept. Returns (files, bytes) removed, the tombstone not counted."""
    location = repository.location
    doomed = {k: s for k, s in files.items() if k not in kept and k != TOMBSTONE_FILE}
    if kept:
        for key in sorted(doomed):
            location.remove_file(repository.path(name, key))
        return len(doomed), sum(doomed.values())
    # Nothing kept: whole subtrees at once (one bulk delete each on S3), the tombstone last, so that an
    # interruption leaves a husk the next sweep finds.
    for top in sorted({k.split("/", 1)[0] for k in doomed}):
        if any(k.startswith(top + "/") for k in doomed):
            location.remove_tree(repository.path(name, top))
        else:
            location.remove_file(repository.path(name, top))
    location.remove_tree(repository.backup_dir(name))
    return len(doomed), sum(doomed.values())


def sweep_husks(repository: BackupRepository, found: Census) -> int:
    """Sweep every husk of ``found`` (the caller holds the repository lock); returns the bytes freed."""
    if found.unknown:
        log.warning(
            "not sweeping deleted backups' leftovers in %s: the library meta of %s cannot be read, so "
            "what it references is unknown; repair or delete it",
            repository.location.url,
            ", ".join(map(printable, found.unknown)),
        )
        return 0
    freed = 0
    for husk in found.husks:
        kept = found.references_to(husk)
        files = stored_files(repository, husk)
        _, removed = _sweep(repository, husk, kept, files)
        freed += removed
        if kept and removed:
            _write_tombstone(repository, husk, kept)
    return freed


def remove(
    repository: BackupRepository,
    name: str,
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
    sweep_others: bool = True,
) -> DeleteReport:
    """Mark and sweep backup ``name`` (complete or unfinished) under the repository lock; the caller
    holds the writer's lock on the name. ``sweep_others`` also sweeps every husk."""
    with held_repository_lock(repository, stale_after) as lock:
        found = census(repository, excluding=frozenset({name}))
        files = stored_files(repository, name)  # listed before the tombstone: its bytes are never counted
        kept = found.references_to(name)
        if found.unknown:  # references unknown: keep every file, sweep later
            kept = {k: [f"(unknown: {', '.join(found.unknown)})"] for k in files}
        lock.ensure_held()
        _write_tombstone(repository, name, kept)
        repository.location.remove_file(repository.meta_path(name, BACKUP_META))
        removed, freed = _sweep(repository, name, kept, files)
        husk_freed = sweep_husks(repository, found) if sweep_others else 0
    report = DeleteReport(
        name=name,
        files_removed=removed,
        bytes_freed=freed,
        kept={k: tuple(v) for k, v in kept.items()},
        husk_bytes_freed=husk_freed,
    )
    log.info("%s", report.summary())
    return report


def delete_backup(
    repository: BackupRepository, name: str, *, stale_after: float = DEFAULT_STALE_AFTER
) -> DeleteReport:
    """Delete backup ``name`` or an unfinished one under the writer's lock on the name, then sweep.

    Raises :class:`BackupNotFoundError` if nothing but a husk (or nothing at all) is stored under that
    name, :class:`BackupLockedError` while a writer holds the name, :class:`RepositoryLockedError` when
    the repository lock stays held.
    """
    with BackupLock(repository.location, validate_backup_name(name), stale_after=stale_after):
        if not repository.exists(name) and (not repository.has_objects(name) or repository.is_husk(name)):
            repository.not_found(name)
        return remove(repository, name, stale_after=stale_after)


def would_free(repository: BackupRepository, removing: frozenset[str]) -> tuple[dict[str, int], int]:
    """What removing the backups ``removing`` would free (a dry run): bytes per backup, and the bytes
    of husks no backup left would reference."""
    found = census(repository)
    if found.unknown:
        return {name: 0 for name in removing}, 0
    per_backup = {}
    for name in removing:
        kept = found.references_to(name, ignoring=removing)
        per_backup[name] = sum(s for k, s in stored_files(repository, name).items() if k not in kept)
    husks = 0
    for husk in found.husks:
        kept = found.references_to(husk, ignoring=removing)
        husks += sum(
            s for k, s in stored_files(repository, husk).items() if k not in kept and k != TOMBSTONE_FILE
        )
    return per_backup, husks
