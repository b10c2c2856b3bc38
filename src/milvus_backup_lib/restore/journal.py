"""The collections a restore created and has not finished, written down in the Milvus storage.

A restore that fails or is interrupted in-process drops what it created (the executor's cleanup). A
restore killed outright (``kill -9``, an evicted pod, a power cut) cannot: it leaves a half-imported
collection that a plain rerun would refuse ("already exists"). So, right after creating a collection,
the executor writes ``{milvus storage}/milvus-backup-lib/restores/{db}.{collection}.json`` with the
backup's name and the new collection's ID, and removes it when the collection is complete. The next
restore of the same backup finds the entry and drops that collection first, but only when the
collection there still has the recorded ID: a collection anybody else made is never touched.

The journal lives beside the staging area (``restore-temp-*``), which every restore that imports
already writes; Milvus's garbage collector only looks at its own prefixes (``insert_log`` ...).
"""

from __future__ import annotations

import json
import logging
import threading
import time

import attrs

from milvus_backup_lib.errors import MilvusBackupError, RestorePlanError, StorageError
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.storage.location import StorageLocation, scrub

__all__ = ["JOURNAL_DIR", "LEASE", "REFRESH_EVERY", "JournalKeeper", "RestoreJournal", "Unfinished"]

log = logging.getLogger(__name__)

#: Below the Milvus storage root.
JOURNAL_DIR = "milvus-backup-lib/restores"
#: A running restore rewrites its entries this often...
REFRESH_EVERY = 10.0
#: ...so an entry refreshed more recently than this belongs to a restore that is still running.
LEASE = 60.0


@attrs.frozen
class Unfinished:
    """A collection a restore created and did not finish."""

    backup: str
    target: QualifiedName
    collection_id: int
    started: float
    refreshed: float


class RestoreJournal:
    """Entries of unfinished restores in ``storage`` (the Milvus storage of the target cluster); without
    one (a client without ``milvus_storage``, restoring by inserts) nothing is noted: a rerun after a
    crash then needs ``drop_existing``."""

    def __init__(self, storage: StorageLocation | None) -> None:
        self.storage = storage

    def _path(self, target: QualifiedName) -> str:
        assert self.storage is not None
        # Database and collection names are Milvus names (letters, digits, "_"): safe as file names.
        return self.storage.join(JOURNAL_DIR, f"{target.database}.{target.collection}.json")

    def started(
        self,
        backup: str,
        target: QualifiedName,
        collection_id: int,
        started: float | None = None,
        *,
        alive: bool = True,
    ) -> None:
        """Record (or refresh) that ``target`` (ID ``collection_id``) was created by a restore of
        ``backup``; ``alive=False``: that restore has ended, the next one may drop it at once."""
        if self.storage is None:
            return
        now = time.time() if alive else 0.0
        entry = {
            "backup": backup,
            "database": target.database,
            "collection": target.collection,
            "collection_id": collection_id,
            "started": started or time.time(),
            "refreshed": now,
        }
        try:
            self.storage.write_bytes(self._path(target), json.dumps(entry, sort_keys=True).encode())
        except StorageError as exc:  # the journal only helps a rerun after a crash: never fail for it
            log.warning(
                "could not note the restore of %s in %s (a rerun after a crash would then need "
                "drop_existing): %s",
                target,
                JOURNAL_DIR,
                scrub(str(exc), self.storage),
            )

    def finished(self, target: QualifiedName) -> None:
        """Forget ``target``: it is complete (or gone)."""
        if self.storage is None:
            return
        path = self._path(target)
        try:
            self.storage.remove_file(path)
        except StorageError as exc:
            # Left behind, the entry would make the next restore of this backup drop a complete
            # collection: say so loudly, naming the file.
            log.error(
                "could not remove the restore journal entry %s (%s): delete it by hand, or the next "
                "restore of the same backup will drop %s",
                path,
                scrub(str(exc), self.storage),
                target,
            )

    def entries(self) -> list[Unfinished]:
        """Every entry that can be read; unreadable ones are skipped with a warning."""
        if self.storage is None:
            return []
        try:
            files = self.storage.list_files(self.storage.join(JOURNAL_DIR))
        except (StorageError, FileNotFoundError):
            return []
        found = []
        for path in sorted(files):
            try:
                raw = json.loads(self.storage.read_bytes(path))
                found.append(
                    Unfinished(
                        backup=str(raw["backup"]),
                        target=QualifiedName(str(raw["database"]), str(raw["collection"])),
                        collection_id=int(raw["collection_id"]),
                        started=float(raw.get("started", 0.0)),
                        refreshed=float(raw.get("refreshed", 0.0)),
                    )
                )
            except (MilvusBackupError, FileNotFoundError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping the unreadable restore journal entry %s: %s", path, type(exc).__name__)
        return found

    def recover(self, cluster: MilvusCluster, backup: str) -> list[QualifiedName]:
        """Drop the collections an earlier, killed restore of ``backup`` created and did not finish
        (only while they still have the recorded ID); the names dropped."""
        dropped = []
        for entry in self.entries():
            if entry.backup != backup:
                continue
            db, name = entry.target.database, entry.target.collection
            age = time.time() - entry.refreshed
            if age < LEASE:
                raise RestorePlanError(
                    [
                        f"{entry.target}: a restore of backup {backup!r} into it is still running "
                        f"(its journal entry was refreshed {max(age, 0):.0f} s ago); wait for it, or if "
                        f"it was killed, restore again after {LEASE - age:.0f} s"
                    ]
                )
            if db in cluster.list_databases() and cluster.has_collection(db, name):
                if cluster.describe_collection(db, name).collection_id != entry.collection_id:
                    self.finished(entry.target)  # replaced since by somebody else: not ours to drop
                    continue
                log.warning(
                    "dropping %s: an earlier restore of backup %r created it at %s and did not finish",
                    entry.target,
                    backup,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.started)),
                )
                for alias in cluster.list_aliases(db, name):
                    cluster.drop_alias(db, alias)
                cluster.drop_collection(db, name)
                dropped.append(entry.target)
            self.finished(entry.target)
        return dropped


class JournalKeeper:
    """Refreshes the entries of the collections a running restore has not finished, every
    :data:`REFRESH_EVERY` seconds, so that another restore can tell it is alive (a background thread).

    Every journal write for a collection happens under one lock together with the change of what is
    open: a refresh that read the open collections just before one finished would otherwise write its
    entry back after :meth:`finished` removed it (a complete collection noted as unfinished: the next
    restore of the backup refuses for a lease, then drops it), or overwrite the ended entry
    :meth:`abandoned` wrote with a live one. A refresh thus delays ``created``/``finished`` of other
    collections by at most one journal write."""

    def __init__(self, journal: RestoreJournal, backup: str) -> None:
        self.journal = journal
        self.backup = backup
        self._open: dict[QualifiedName, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="restore-journal", daemon=True)

    def __enter__(self) -> JournalKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=REFRESH_EVERY)

    def created(self, target: QualifiedName, collection_id: int) -> None:
        started = time.time()
        with self._lock:
            self._open[target] = (collection_id, started)
            self.journal.started(self.backup, target, collection_id, started)

    def finished(self, target: QualifiedName) -> None:
        with self._lock:
            self._open.pop(target, None)
            self.journal.finished(target)

    def abandoned(self, target: QualifiedName) -> None:
        """This restore ended without finishing ``target`` and keeps it: a rerun may drop it at once."""
        with self._lock:
            entry = self._open.pop(target, None)
            if entry is not None:
                self.journal.started(self.backup, target, entry[0], entry[1], alive=False)

    def refresh(self) -> None:
        """Rewrite the entry of every collection still open (what the background thread does)."""
        with self._lock:
            targets = list(self._open)
        for target in targets:
            with self._lock:
                entry = self._open.get(target)
                if entry is None:  # finished or abandoned since: its entry is no longer ours to write
                    continue
                self.journal.started(self.backup, target, entry[0], entry[1])

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_EVERY):
            self.refresh()
