"""The restore journal's keeper: a background refresh never writes back the entry of a collection that
finished (or was abandoned) while the refresh was under way.

The interleaving is forced with events, never with sleeps: the refresh is held inside its journal write
until the finishing thread has either removed the entry or had to wait for the refresh."""

from __future__ import annotations

import threading
import uuid
from types import TracebackType

from milvus_backup_lib import StorageLocation
from milvus_backup_lib.options import QualifiedName
from milvus_backup_lib.restore.journal import JournalKeeper, RestoreJournal

#: Only a hung thread waits this long: every wait below ends as soon as the other thread gets there.
HANG = 60.0
TARGET = QualifiedName("default", "c")


class HeldRefresh(RestoreJournal):
    """A journal whose writes from the thread named ``refresh`` wait for :attr:`go_on`; ``progressed``
    is set once the thread named ``end`` has written or removed an entry."""

    def __init__(self, progressed: threading.Event) -> None:
        super().__init__(StorageLocation(f"memory://journal-{uuid.uuid4().hex}"))
        self.refreshing = threading.Event()
        self.go_on = threading.Event()
        self.progressed = progressed

    def started(
        self,
        backup: str,
        target: QualifiedName,
        collection_id: int,
        started: float | None = None,
        *,
        alive: bool = True,
    ) -> None:
        if threading.current_thread().name == "refresh":
            self.refreshing.set()
            assert self.go_on.wait(HANG)
        super().started(backup, target, collection_id, started, alive=alive)
        self._done()

    def finished(self, target: QualifiedName) -> None:
        super().finished(target)
        self._done()

    def _done(self) -> None:
        if threading.current_thread().name == "end":
            self.progressed.set()


class SaysWhenContended:
    """A lock that sets ``progressed`` when a thread has to wait for it."""

    def __init__(self, progressed: threading.Event) -> None:
        self._lock = threading.Lock()
        self.progressed = progressed

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self.progressed.set()
            self._lock.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()


def _finish_during_a_refresh(end: str) -> RestoreJournal:
    """Start a refresh of ``TARGET``, hold it inside its write, run ``keeper.<end>(TARGET)`` in another
    thread until that has written the journal or waits for the refresh, then let the refresh write."""
    progressed = threading.Event()
    journal = HeldRefresh(progressed)
    keeper = JournalKeeper(journal, "b")
    keeper._lock = SaysWhenContended(progressed)  # type: ignore[assignment]
    keeper.created(TARGET, 7)
    refresher = threading.Thread(target=keeper.refresh, name="refresh")
    refresher.start()
    assert journal.refreshing.wait(HANG)
    ender = threading.Thread(target=getattr(keeper, end), args=(TARGET,), name="end")
    ender.start()
    assert progressed.wait(HANG)
    journal.go_on.set()
    for thread in (refresher, ender):
        thread.join(HANG)
        assert not thread.is_alive()
    return journal


def test_a_refresh_never_brings_back_the_entry_of_a_collection_that_finished_meanwhile() -> None:
    journal = _finish_during_a_refresh("finished")
    assert journal.entries() == []


def test_a_refresh_never_makes_an_abandoned_entry_look_alive_again() -> None:
    journal = _finish_during_a_refresh("abandoned")
    (entry,) = journal.entries()
    assert entry.target == TARGET and entry.collection_id == 7
    assert entry.refreshed == 0.0  # ended: a rerun may drop it at once


def test_a_refresh_rewrites_the_entries_still_open() -> None:
    journal = RestoreJournal(StorageLocation(f"memory://journal-{uuid.uuid4().hex}"))
    keeper = JournalKeeper(journal, "b")
    keeper.created(TARGET, 7)
    (before,) = journal.entries()
    journal.started("b", TARGET, 7, before.started, alive=False)  # as if its refreshes had stopped
    keeper.refresh()
    (after,) = journal.entries()
    assert after.refreshed > 0.0 and after.started == before.started
