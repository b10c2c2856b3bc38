"""Retention (``prune``): the policy against restic's own expectations, and prune on a repository.

The policy cases are restic's ``TestApplyPolicy`` (``internal/data/snapshot_policy_test.go``, restic
master): the same 103 snapshot times, and for each policy what its golden file
(``internal/data/testdata/policy_keep_snapshots_N``) keeps, as positions in newest-first order grouped
by restic's reasons (``daily snapshot`` is ``daily`` here). Tag and ``--keep-within-*`` policies are
left out: backups have no tags, and prune has no ``keep_within_daily``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest
from memory_data import DB, client, populate

from milvus_backup_lib import InvalidOptionError, PruneReport, StorageLocation
from milvus_backup_lib.cli import main
from milvus_backup_lib.cli.parser import build_parser
from milvus_backup_lib.errors import InvalidOptionTypeError
from milvus_backup_lib.manifest.codec import FULL_META
from milvus_backup_lib.manifest.model import BackupInfo, CollectionBackupInfo
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.repository.prune import backup_time, prune
from milvus_backup_lib.repository.retention import (
    RetentionPolicy,
    Within,
    apply_policy,
    parse_within,
    retention_policy,
)
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.testing.memory import InMemoryMilvus

UTC = dt.timezone.utc

# restic's testExpireSnapshots, in its order (two are 0.1 s after another one, five share one time).
_RESTIC_TIMES = """
2014-09-01 10:20:30|2014-09-02 10:20:30|2014-09-05 10:20:30|2014-09-06 10:20:30|2014-09-08 10:20:30
2014-09-09 10:20:30|2014-09-10 10:20:30|2014-09-11 10:20:30|2014-09-20 10:20:30|2014-09-22 10:20:30
2014-08-08 10:20:30|2014-08-10 10:20:30|2014-08-12 10:20:30|2014-08-13 10:20:30|2014-08-13 10:20:30.1
2014-08-15 10:20:30|2014-08-18 10:20:30|2014-08-20 10:20:30|2014-08-21 10:20:30|2014-08-22 10:20:30
2014-10-01 10:20:30|2014-10-02 10:20:30|2014-10-05 10:20:30|2014-10-06 10:20:30|2014-10-08 10:20:30
2014-10-09 10:20:30|2014-10-10 10:20:30|2014-10-11 10:20:30|2014-10-20 10:20:30|2014-10-22 10:20:30
2014-11-08 10:20:30|2014-11-10 10:20:30|2014-11-12 10:20:30|2014-11-13 10:20:30|2014-11-13 10:20:30.1
2014-11-15 10:20:30|2014-11-18 10:20:30|2014-11-20 10:20:30|2014-11-21 10:20:30|2014-11-22 10:20:30
2015-09-01 10:20:30|2015-09-02 10:20:30|2015-09-05 10:20:30|2015-09-06 10:20:30|2015-09-08 10:20:30
2015-09-09 10:20:30|2015-09-10 10:20:30|2015-09-11 10:20:30|2015-09-20 10:20:30|2015-09-22 10:20:30
2015-08-08 10:20:30|2015-08-10 10:20:30|2015-08-12 10:20:30|2015-08-13 10:20:30|2015-08-13 10:20:30.1
2015-08-15 10:20:30|2015-08-18 10:20:30|2015-08-20 10:20:30|2015-08-21 10:20:30|2015-08-22 10:20:30
2015-10-01 10:20:30|2015-10-02 10:20:30|2015-10-05 10:20:30|2015-10-06 10:20:30|2015-10-08 10:20:30
2015-10-09 10:20:30|2015-10-10 10:20:30|2015-10-11 10:20:30|2015-10-20 10:20:30|2015-10-22 10:20:30
2015-10-22 10:20:30|2015-10-22 10:20:30|2015-10-22 10:20:30|2015-10-22 10:20:30|2015-11-08 10:20:30
2015-11-10 10:20:30|2015-11-12 10:20:30|2015-11-13 10:20:30|2015-11-13 10:20:30.1|2015-11-15 10:20:30
2015-11-18 10:20:30|2015-11-20 10:20:30|2015-11-21 10:20:30|2015-11-22 10:20:30|2016-01-01 01:02:03
2016-01-01 01:03:03|2016-01-01 07:08:03|2016-01-03 07:02:03|2016-01-04 10:23:03|2016-01-04 11:23:03
2016-01-04 12:23:03|2016-01-04 12:24:03|2016-01-04 12:28:03|2016-01-04 12:30:03|2016-01-04 16:23:03
2016-01-05 09:02:03|2016-01-06 08:02:03|2016-01-07 10:02:03|2016-01-08 20:02:03|2016-01-09 21:02:03
2016-01-12 21:02:03|2016-01-12 21:08:03|2016-01-18 12:02:03
"""

#: (restic's test number, prune's keywords, {reasons: kept positions, newest first}), from the golden files.
RESTIC_CASES: list[tuple[int, dict[str, Any], dict[str, str]]] = [
    (1, {"keep_last": 10}, {"last": "0-9"}),
    (2, {"keep_last": 15}, {"last": "0-14"}),
    (3, {"keep_last": 99}, {"last": "0-98"}),
    (4, {"keep_last": 200}, {"last": "0-102"}),
    (5, {"keep_hourly": 20}, {"hourly": "0-1,3-9,13-17,19-24"}),
    (6, {"keep_daily": 3}, {"daily": "0-1,3"}),
    (7, {"keep_daily": 10}, {"daily": "0-1,3-8,15-16"}),
    (8, {"keep_daily": 30}, {"daily": "0-1,3-8,15-16,19-24,26-29,34-43"}),
    (9, {"keep_last": 5, "keep_daily": 5}, {"last + daily": "0-1,3-4", "last": "2", "daily": "5"}),
    (10, {"keep_last": 2, "keep_daily": 10}, {"last + daily": "0-1", "daily": "3-8,15-16"}),
    (11, {"keep_weekly": 2}, {"weekly": "0-1"}),
    (12, {"keep_weekly": 4}, {"weekly": "0-1,3,15"}),
    (13, {"keep_daily": 3, "keep_weekly": 4}, {"daily + weekly": "0-1,3", "weekly": "15"}),
    (14, {"keep_monthly": 6}, {"monthly": "0,19,29,43,53,63"}),
    (
        15,
        {"keep_daily": 2, "keep_weekly": 2, "keep_monthly": 6},
        {"daily + weekly + monthly": "0", "daily + weekly": "1", "monthly": "19,29,43,53,63"},
    ),
    (16, {"keep_yearly": 10}, {"yearly": "0,19,63", "oldest yearly": "102"}),
    (
        17,
        {"keep_daily": 7, "keep_weekly": 2, "keep_monthly": 3, "keep_yearly": 10},
        {
            "daily + weekly + monthly + yearly": "0",
            "daily + weekly": "1",
            "daily": "3-7",
            "monthly + yearly": "19",
            "monthly": "29",
            "yearly": "63",
            "oldest yearly": "102",
        },
    ),
    (21, {"keep_within": "1d"}, {"within 1d": "0"}),
    (22, {"keep_within": "2d"}, {"within 2d": "0"}),
    (23, {"keep_within": "7d"}, {"within 7d": "0-2"}),
    (24, {"keep_within": "1m"}, {"within 1m": "0-18"}),
    (25, {"keep_within": "1m14d"}, {"within 1m14d": "0-18"}),
    (26, {"keep_within": "1y1d1m"}, {"within 1y1m1d": "0-62"}),
    (27, {"keep_within": "13d23h"}, {"within 13d23h": "0-8"}),
    (28, {"keep_within": "2m2h"}, {"within 2m2h": "0-22"}),
    (29, {"keep_within": "1y2m3d3h"}, {"within 1y2m3d3h": "0-67"}),
    (36, {"keep_last": -1}, {"last": "0-102"}),
    (
        37,
        {"keep_last": -1, "keep_hourly": -1},
        {
            "last + hourly": "0-1,3-9,13-17,19-24,26-29,34-58,60-68,70-98,100-102",
            "last": "2,10-12,18,25,30-33,59,69,99",
        },
    ),
    (38, {"keep_hourly": -1}, {"hourly": "0-1,3-9,13-17,19-24,26-29,34-58,60-68,70-98,100-102"}),
    (
        39,
        {"keep_daily": 3, "keep_weekly": 2, "keep_monthly": -1, "keep_yearly": -1},
        {
            "daily + weekly + monthly + yearly": "0",
            "daily + weekly": "1",
            "daily": "3",
            "monthly + yearly": "19,63",
            "monthly": "29,43,53,73,83,93",
            "oldest monthly + oldest yearly": "102",
        },
    ),
]


def _restic_backups() -> list[tuple[str, dt.datetime]]:
    times = [t for line in _RESTIC_TIMES.split() for t in line.split("|")]
    return [(f"s{i:03d}", _utc(t)) for i, t in enumerate(_pairs(times))]


def _pairs(tokens: list[str]) -> list[str]:
    """The date and time tokens of the list above, joined back into timestamps."""
    return [f"{tokens[i]} {tokens[i + 1]}" for i in range(0, len(tokens), 2)]


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _positions(ranges: str) -> list[int]:
    out: list[int] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def test_the_restic_snapshot_list_is_read_whole() -> None:
    backups = _restic_backups()
    assert len(backups) == 103
    assert backups[0][1] == _utc("2014-09-01 10:20:30") and backups[-1][1] == _utc("2016-01-18 12:02:03")
    assert backups[14][1] - backups[13][1] == dt.timedelta(milliseconds=100)


@pytest.mark.parametrize(
    ("number", "keywords", "expected"), RESTIC_CASES, ids=[str(c[0]) for c in RESTIC_CASES]
)
def test_policies_keep_exactly_what_restic_keeps(
    number: int, keywords: dict[str, Any], expected: dict[str, str]
) -> None:
    decisions = apply_policy(_restic_backups(), retention_policy(**keywords), tz=UTC)
    assert len(decisions) == 103
    times = [d.time for d in decisions]
    assert times == sorted(times, reverse=True)
    got: dict[str, list[int]] = {}
    for position, decision in enumerate(decisions):
        if decision.keep:
            got.setdefault(" + ".join(decision.reasons), []).append(position)
    assert got == {reasons: _positions(ranges) for reasons, ranges in expected.items()}, (
        f"restic case {number}"
    )


# --- the policy on its own ----------------------------------------------------------------------------


def _kept(backups: list[tuple[str, dt.datetime]], tz: dt.tzinfo = UTC, **keywords: Any) -> list[str]:
    return [d.name for d in apply_policy(backups, retention_policy(**keywords), tz=tz) if d.keep]


def _daily_series(days: int, start: str = "2026-03-01 02:00:00") -> list[tuple[str, dt.datetime]]:
    first = _utc(start)
    return [(f"nightly_{i:03d}", first + dt.timedelta(days=i)) for i in range(days)]


def test_each_rule_alone_on_a_nightly_series() -> None:
    series = _daily_series(60)  # 2026-03-01 .. 2026-04-29, one a night
    assert _kept(series, keep_last=3) == ["nightly_059", "nightly_058", "nightly_057"]
    assert _kept(series, keep_daily=2) == ["nightly_059", "nightly_058"]
    # ISO weeks start on Monday: 2026-04-27 is a Monday, 2026-04-26 the Sunday before it
    assert _kept(series, keep_weekly=2) == ["nightly_059", "nightly_056"]
    assert _kept(series, keep_monthly=2) == ["nightly_059", "nightly_030"]  # 04-29 and 03-31
    # more months asked than there are: the newest of each, and the oldest backup too (restic 0.16)
    assert _kept(series, keep_monthly=5) == ["nightly_059", "nightly_030", "nightly_000"]
    assert _kept(series, keep_yearly=1) == ["nightly_059"]
    assert _kept(series, keep_hourly=1) == ["nightly_059"]
    assert _kept(series, keep_within="3d") == ["nightly_059", "nightly_058", "nightly_057"]


def test_rules_combined_keep_the_union_with_every_reason() -> None:
    series = _daily_series(60)
    decisions = apply_policy(series, retention_policy(keep_daily=3, keep_weekly=2, keep_monthly=2), tz=UTC)
    kept = {d.name: d.reasons for d in decisions if d.keep}
    assert kept == {
        "nightly_059": ("daily", "weekly", "monthly"),
        "nightly_058": ("daily",),
        "nightly_057": ("daily",),
        "nightly_056": ("weekly",),
        "nightly_030": ("monthly",),
    }
    assert [d.name for d in decisions if not d.keep] == [
        f"nightly_{i:03d}" for i in range(55, -1, -1) if i != 30
    ]


def test_ties_the_name_that_sorts_last_counts_as_newer() -> None:
    same = _utc("2026-05-01 01:00:00")
    backups = [("b", same), ("c", same), ("a", same)]
    decisions = apply_policy(backups, retention_policy(keep_last=1), tz=UTC)
    assert [(d.name, d.keep) for d in decisions] == [("c", True), ("b", False), ("a", False)]
    # one daily bucket: its newest (c) and, counts left, the oldest (a)
    assert _kept(backups, keep_daily=2) == ["c", "a"]


def test_buckets_are_counted_in_local_time() -> None:
    backups = [
        ("b1", _utc("2026-06-01 22:30:00")),
        ("b2", _utc("2026-06-01 23:30:00")),
        ("b3", _utc("2026-06-02 00:30:00")),
    ]
    assert _kept(backups, keep_daily=2) == ["b3", "b2"]  # UTC: two days
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert _kept(backups, plus_two, keep_daily=2) == ["b3", "b1"]  # all on 2 June: newest, then oldest


def test_keep_within_counts_from_the_newest_backup_not_from_now() -> None:
    old = _daily_series(10, "2020-01-01 03:00:00")  # years ago: a repository no one backs up to any more
    assert _kept(old, keep_within="2d") == ["nightly_009", "nightly_008"]
    assert _kept(old, keep_within=dt.timedelta(hours=36)) == ["nightly_009", "nightly_008"]
    # a backup dated in the future is kept, but the newest one counted from is the newest in the past
    future = [*old, ("clock_skew", dt.datetime.now(UTC) + dt.timedelta(days=400))]
    assert _kept(future, keep_within="1d") == ["clock_skew", "nightly_009"]
    # exactly the cut-off is not within (restic: After, not at)
    assert _kept(old, keep_within="1d") == ["nightly_009"]


def test_within_subtracts_calendar_months_as_go_adddate() -> None:
    newest = dt.datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert parse_within("1m").cutoff(newest) == dt.datetime(2026, 3, 3, 12, tzinfo=UTC)  # "31 Feb"
    assert parse_within("1y2m3d4h").cutoff(newest) == dt.datetime(2025, 1, 28, 8, tzinfo=UTC)
    assert parse_within("36h") == Within(hours=36) and str(parse_within("1y1d1m")) == "1y1m1d"


@pytest.mark.parametrize("value", ["", "7", "7x", "d", "0d", "-1d", "7d 2", dt.timedelta(0)])
def test_bad_durations_are_refused_naming_the_forms(value: object) -> None:
    with pytest.raises(InvalidOptionError, match=r"keep_within=.* is not valid; choose .*\"7d\""):
        retention_policy(keep_within=value)  # type: ignore[arg-type]


def test_a_policy_without_a_rule_is_refused_naming_the_options() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        retention_policy()
    message = str(caught.value)
    for option in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
        assert option in message
    assert "keep_within" in message and "would remove every backup" in message
    assert retention_policy(keep_last=0, keep_daily=None, keep_within="1h") == RetentionPolicy(
        within=Within(hours=1)
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-2, InvalidOptionError),
        (1.5, InvalidOptionTypeError),
        (True, InvalidOptionTypeError),
        ("3", InvalidOptionTypeError),
    ],
)
def test_bad_counts_are_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="keep_daily"):
        retention_policy(keep_daily=value)  # type: ignore[arg-type]


# --- prune on a repository ----------------------------------------------------------------------------


def _repository() -> BackupRepository:
    return BackupRepository(StorageLocation(f"memory://prune-{uuid.uuid4().hex}"))


def _store(repository: BackupRepository, name: str, when: str, *, sizes: tuple[int, ...] = (100, 250)) -> int:
    """A backup taken at ``when`` (UTC) with binlogs of ``sizes``; returns the bytes stored for it."""
    seconds = int(_utc(when).timestamp())
    coll = CollectionBackupInfo(collection_name="c", db_name=DB, backup_physical_timestamp=seconds)
    for i, size in enumerate(sizes):
        repository.location.write_bytes(
            repository.path(name, f"binlogs/insert_log/1/2/3/100/{i}"), b"x" * size
        )
    repository.write_manifest(
        BackupInfo(name=name, size=sum(sizes), collection_backups=(coll,)), LibraryMeta()
    )
    return sum(repository.location.list_files(repository.backup_dir(name)).values())


def _damage(repository: BackupRepository, name: str) -> None:
    repository.location.write_bytes(repository.meta_path(name, FULL_META), b"[1, 2]")  # JSON, not a manifest


def test_prune_dry_run_removes_nothing_and_a_real_run_exactly_the_listed() -> None:
    repository = _repository()
    sizes = {
        f"nightly_{i}": _store(repository, f"nightly_{i}", f"2026-07-0{i} 02:00:00") for i in range(1, 7)
    }
    policy = retention_policy(keep_last=2)

    dry = prune(repository, policy, tz=UTC)
    assert dry.dry_run and dry.removed == ["nightly_4", "nightly_3", "nightly_2", "nightly_1"]
    assert dry.kept == [("nightly_6", ("last",)), ("nightly_5", ("last",))]
    assert repository.names() == sorted(sizes)  # nothing removed
    assert dry.bytes_freed == sum(sizes[n] for n in dry.removed)

    real = prune(repository, policy, dry_run=False, tz=UTC)
    assert real.removed == dry.removed and real.bytes_freed == dry.bytes_freed
    assert repository.names() == ["nightly_5", "nightly_6"]
    for name in real.removed:
        assert not repository.has_objects(name)
    assert "removed 4" in real.table() and "would remove" in dry.table()


def test_a_damaged_backup_is_never_removed_and_says_why() -> None:
    repository = _repository()
    for i in range(1, 4):
        _store(repository, f"b{i}", f"2026-07-0{i} 02:00:00")
    _damage(repository, "b1")
    report = prune(repository, retention_policy(keep_last=1), dry_run=False, tz=UTC)
    assert report.removed == ["b2"] and [n for n, _ in report.kept] == ["b3"]
    [(name, why)] = report.skipped
    assert name == "b1" and "cannot be read" in why and "never removed" in why
    assert repository.exists("b1") and repository.has_objects("b1")


def test_a_locked_backup_is_skipped_and_left_whole() -> None:
    repository = _repository()
    for i in range(1, 4):
        _store(repository, f"b{i}", f"2026-07-0{i} 02:00:00")
    with BackupLock(repository.location, "b1"):
        report = prune(repository, retention_policy(keep_last=1), dry_run=False, tz=UTC)
    assert report.removed == ["b2"]
    [(name, why)] = report.skipped
    assert name == "b1" and why.startswith("locked")
    assert repository.names() == ["b1", "b3"]
    assert report.bytes_freed == sum(e.size for e in report.entries if e.name == "b2")


def _unfinished(repository: BackupRepository, *names: str) -> None:
    for name in names:
        repository.location.write_bytes(repository.path(name, "binlogs/insert_log/1/2/3/100/0"), b"y" * 77)


def test_unfinished_backups_older_than_the_age_are_removed_unless_a_writer_holds_the_lock() -> None:
    repository = _repository()
    _store(repository, "done", "2026-07-01 02:00:00")
    _unfinished(repository, "half", "busy")
    later = dt.datetime.now(UTC) + dt.timedelta(days=3)
    policy = retention_policy(keep_last=1)
    young = prune(repository, policy, unfinished_older_than=dt.timedelta(days=5), dry_run=False, now=later)
    assert young.removed == [] and sorted(repository.directory_names()) == ["busy", "done", "half"]
    old = dt.timedelta(days=2)
    without = prune(repository, policy, dry_run=False, now=later)  # no unfinished_older_than: left alone
    assert without.removed == [] and without.skipped == []
    with BackupLock(repository.location, "busy"):
        dry = prune(repository, policy, unfinished_older_than=old, now=later)
        report = prune(repository, policy, unfinished_older_than=old, dry_run=False, now=later)
    assert sorted(dry.removed) == ["busy", "half"] and dry.bytes_freed == 2 * 77
    assert "locked now" in dict((e.name, ", ".join(e.reasons)) for e in dry.entries)["busy"]
    assert report.removed == ["half"] and report.bytes_freed == 77
    [(name, why)] = report.skipped
    assert name == "busy" and why.startswith("locked: backup 'busy' is being written")
    assert repository.directory_names() == ["busy", "done"]


def test_the_lock_of_a_dead_writer_does_not_keep_its_leftovers_forever() -> None:
    repository = _repository()
    _store(repository, "done", "2026-07-01 02:00:00")
    _unfinished(repository, "crashed")
    # A writer that took its lock with a 0.05 s lease and died: its refresher stops, the lease runs out.
    dead = BackupLock(repository.location, "crashed", stale_after=0.05)
    dead.acquire()
    dead._stop.set()
    assert dead._thread is not None
    dead._thread.join()
    try:
        time.sleep(0.2)
        report = prune(
            repository,
            retention_policy(keep_last=1),
            unfinished_older_than=dt.timedelta(seconds=0.01),
            dry_run=False,
            # prune's own locks (the name's, the repository's) need a lease a loaded machine can keep
            # across a sweep; the dead writer's lock is judged by the 0.05 s lease it recorded.
            stale_after=30,
        )
    finally:
        dead.release()
    assert report.removed == ["crashed"] and repository.directory_names() == ["done"]


def test_a_backup_finished_while_prune_ran_is_not_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unfinished backup whose writer completes it (and lets go of its lock) between prune's listing
    and prune taking the lock is complete by then: prune checks again under the lock, and leaves it."""
    repository = _repository()
    _store(repository, "done", "2026-07-01 02:00:00")
    _unfinished(repository, "racing")

    class WriterFinishesFirst(BackupLock):
        def acquire(self) -> None:
            if self.name == "racing" and not repository.exists("racing"):
                _store(repository, "racing", "2026-07-02 02:00:00")
            super().acquire()

    monkeypatch.setattr("milvus_backup_lib.repository.prune.BackupLock", WriterFinishesFirst)
    later = dt.datetime.now(UTC) + dt.timedelta(days=3)
    report = prune(
        repository,
        retention_policy(keep_last=5),
        unfinished_older_than=dt.timedelta(days=1),
        dry_run=False,
        now=later,
    )
    assert report.removed == [] and report.bytes_freed == 0
    [(name, why)] = report.skipped
    assert name == "racing" and why.startswith("changed while pruning")
    assert repository.names() == ["done", "racing"]


def test_backup_time_is_the_flush_seal_time_then_the_tso_then_the_library_record() -> None:
    seal = CollectionBackupInfo(backup_physical_timestamp=1_767_225_600, backup_timestamp=5 << 18)
    assert backup_time(BackupInfo(collection_backups=(seal,))) == dt.datetime(2026, 1, 1, tzinfo=UTC)
    tso = (1_767_225_600_000 << 18) | 7
    assert backup_time(BackupInfo(collection_backups=(CollectionBackupInfo(backup_timestamp=tso),))) == (
        dt.datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert backup_time(BackupInfo(), "2026-01-02T03:04:05+00:00") == dt.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert backup_time(BackupInfo()) is None


def test_client_prune_on_backups_of_the_memory_cluster() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    for name in ("first", "second", "third"):
        bk.create_backup(name, ["default.c"])
    before = {b.name: b for b in bk.list_backups()}
    dry = bk.prune(keep_last=1)
    assert (
        isinstance(dry, PruneReport)
        and len(dry.removed) == 2
        and set(before) == {b.name for b in bk.list_backups()}
    )
    report = bk.prune(keep_last=1, dry_run=False)
    assert report.removed == dry.removed
    [(kept, reasons)] = report.kept
    assert reasons == ("last",)
    assert [b.name for b in bk.list_backups()] == [kept]
    stored = sum(before[n].size for n in report.removed)
    assert report.bytes_freed >= stored > 0  # the binlogs, and the meta files besides
    assert "<table" in report._repr_html_() and kept in report.table()
    with pytest.raises(InvalidOptionError, match="keep_last"):
        bk.prune()
    with pytest.raises(InvalidOptionError, match="unfinished_older_than"):
        bk.prune(keep_last=1, unfinished_older_than="1m")


# --- the command line -------------------------------------------------------------------------------------


def test_cli_prune_flags_in_both_spellings() -> None:
    args = build_parser().parse_args(
        ["prune", "--keep_daily", "7", "--keep-weekly", "unlimited", "--keep-within", "7d", "--dry-run"]
    )
    assert (args.keep_daily, args.keep_weekly, args.keep_within, args.dry_run) == (7, -1, "7d", True)
    assert (args.keep_last, args.unfinished_older_than) == (None, None)
    assert build_parser().parse_args(["prune", "--keep-last", "1"]).dry_run is False  # the CLI deletes


def test_cli_prune_without_a_rule_or_with_a_bad_count_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--dry_run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: prune: give at least one of --keep-last") and "--keep-within" in err
    assert main(["prune", "--keep-last", "-3"]) == 2
    assert "expected a whole number >= 0 or 'unlimited'" in capsys.readouterr().err
