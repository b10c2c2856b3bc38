"""``materialize``: make an incremental backup self-contained, so that the Go tool can read it and it
outlives every other backup.

Every file the backup references (:attr:`LibraryMeta.references`) is copied from the backup that holds
it into the backup's own directory, at the same relative path, server-side where the store allows
(:class:`~milvus_backup_lib.backup.copier.FsspecCopier`), and checked: its size against the library
meta's, and its MD5 against the recorded one where there is one. Then, under the repository lock, the
library meta is rewritten without references; the holders' copies are from then on referenced by one
backup fewer, and the sweep that follows (as after a delete) removes those of deleted backups.

All of it runs under the writer's lock on the name, so no delete of this backup runs meanwhile; a
delete of a holder keeps the files this backup still references until the rewrite. Files already in
place with the right size (and MD5) are not copied again: an interrupted materialize is simply run again.
"""

from __future__ import annotations

import logging

import attrs

from milvus_backup_lib._html import format_bytes
from milvus_backup_lib.backup.copier import CopyJob, SegmentCopier
from milvus_backup_lib.errors import BackupCorruptError
from milvus_backup_lib.repository.checksum import md5_of
from milvus_backup_lib.repository.deletion import census, held_repository_lock, stored_files, sweep_husks
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER, BackupLock
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE, validate_backup_name

__all__ = ["MaterializeReport", "materialize"]

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class MaterializeReport:
    """What :meth:`BackupClient.materialize` did."""

    name: str
    #: Files and bytes copied from the backups that held them.
    files_copied: int = 0
    bytes_copied: int = 0
    #: Referenced files already in place (copied by an interrupted run), checked and not copied again.
    files_in_place: int = 0
    #: The backups the files were copied from.
    holders: tuple[str, ...] = ()
    #: Whether the copies were server-side (the bytes stayed in the store).
    server_side: bool = False

    def summary(self) -> str:
        if not (self.files_copied or self.files_in_place):
            return f"backup {self.name} is self-contained: nothing to copy"
        where = f" from {', '.join(self.holders)}" if self.holders else ""
        how = " (server-side)" if self.server_side and self.files_copied else ""
        return (
            f"backup {self.name} is now self-contained: copied {self.files_copied} file(s), "
            f"{format_bytes(self.bytes_copied)}{where}{how}"
            + (f"; {self.files_in_place} already in place" if self.files_in_place else "")
        )

    def __str__(self) -> str:
        return self.summary()


def materialize(
    repository: BackupRepository,
    copier: SegmentCopier,
    name: str,
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> MaterializeReport:
    """Copy every file backup ``name`` references into its own directory, then drop its references.

    Raises :class:`BackupNotFoundError`, :class:`BackupLockedError` while a writer holds the name, and
    :class:`BackupCorruptError` naming each referenced file that is missing or is not what the library
    meta recorded (size, MD5) in the backup that holds it.
    """
    location = repository.location
    with BackupLock(location, validate_backup_name(name), stale_after=stale_after) as lock:
        if not repository.exists(name):
            repository.not_found(name)
        meta = repository.read_library_meta(name)
        if meta is None or meta.self_contained:
            return MaterializeReport(name=name)
        holders = sorted(set(meta.references.values()))
        stored = {holder: stored_files(repository, holder) for holder in holders}
        own = stored_files(repository, name)
        problems: list[str] = []
        jobs: list[tuple[str, CopyJob]] = []
        in_place: list[str] = []
        for key, holder in sorted(meta.references.items()):
            size = stored[holder].get(key)
            expected = meta.files.get(key, size)
            if size is None:
                problems.append(
                    f"{key}: stored by backup {holder!r}, but {holder}/{key} is missing from {location.url}"
                )
            elif size != expected:
                problems.append(f"{key}: {holder}/{key} holds {size} bytes, the backup recorded {expected}")
            elif own.get(key) == size and _md5_ok(repository, name, key, meta.checksums.get(key), size):
                in_place.append(key)
            else:
                jobs.append((key, CopyJob(repository.path(holder, key), repository.path(name, key), size)))
        if problems:
            raise BackupCorruptError(name, problems)
        result = copier.copy(location, location, [job for _, job in jobs])
        for key, job in jobs:
            recorded = meta.checksums.get(key)
            found = result.checksums.get(job.destination)
            if recorded and (found or md5_of(location, job.destination, size=job.size)) != recorded:
                location.remove_file(job.destination)
                problems.append(
                    f"{key}: the copy from {meta.references[key]}/{key} does not have MD5 {recorded}"
                )
        if problems:
            raise BackupCorruptError(name, problems)
        with held_repository_lock(repository, stale_after) as repo_lock:
            lock.ensure_held()
            repo_lock.ensure_held()
            data = attrs.evolve(meta, references={}).to_json()
            location.write_bytes(repository.meta_path(name, LIBRARY_META_FILE), data)
            sweep_husks(repository, census(repository))
    report = MaterializeReport(
        name=name,
        files_copied=len(jobs),
        bytes_copied=sum(job.size for _, job in jobs),
        files_in_place=len(in_place),
        holders=tuple(holders),
        server_side=result.server_side,
    )
    log.info("%s", report.summary())
    return report


def _md5_ok(repository: BackupRepository, name: str, key: str, recorded: str | None, size: int) -> bool:
    """Whether file ``key`` already in backup ``name`` has the recorded MD5 (True when none is recorded)."""
    if not recorded:
        return True
    return md5_of(repository.location, repository.path(name, key), size=size) == recorded
