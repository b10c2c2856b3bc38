"""Retention policies with restic's ``forget`` semantics: which backups a policy keeps, and why.

A port of ``ApplyPolicy`` in restic's ``internal/data/snapshot_policy.go`` (formerly
``internal/restic/``; restic 0.16 and later), for dated backups instead of snapshots:

- the backups are taken newest first (ties: the name that sorts last counts as the newer);
- ``keep_last`` keeps the newest N; ``keep_hourly``/``daily``/``weekly``/``monthly``/``yearly`` keep
  the newest backup of each of the N newest hours, days, ISO weeks, months, years that hold one, in
  local time (``tz``); ``-1`` means every such bucket (restic's ``unlimited``). While a rule has
  buckets left over, it also keeps the oldest backup (restic 0.16: the longest history; its reason
  is then ``oldest daily``...);
- ``keep_within`` keeps every backup made after ``newest - within``, ``newest`` being the newest
  backup that is not in the future, not the current time: a repository nobody backs up to any more
  is not emptied by time passing;
- a backup kept by any rule is kept, with every rule that kept it as its reasons.

A policy with no rule is refused: restic's ``forget`` without a policy removes nothing and a prune
that removes everything is never what was meant.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence

import attrs

from milvus_backup_lib.errors import InvalidOptionError, InvalidOptionTypeError

__all__ = [
    "KEEP_OPTIONS",
    "Decision",
    "RetentionPolicy",
    "Within",
    "apply_policy",
    "parse_within",
    "retention_policy",
]

#: The options of a policy, in the order restic evaluates them (``keep_within`` first).
KEEP_OPTIONS = (
    "keep_within",
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
)
_DURATION = re.compile(r"(\d+)([ymdh])")
_WITHIN_CHOICES = (
    'a datetime.timedelta > 0 or a restic duration such as "7d", "12h", "1y6m" (y, m months, d, h)'
)


@attrs.frozen
class Within:
    """restic's ``Duration``: years, months, days and hours, subtracted from a date as Go's ``AddDate``
    does (calendar months and years), or an exact :class:`datetime.timedelta`."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0
    exact: dt.timedelta | None = None

    def __str__(self) -> str:
        if self.exact is not None:
            return str(self.exact)
        parts = zip((self.years, self.months, self.days, self.hours), "ymdh", strict=True)
        return "".join(f"{n}{unit}" for n, unit in parts if n) or "0h"

    def cutoff(self, newest: dt.datetime) -> dt.datetime:
        """``newest`` minus this duration (``AddDate(-y, -m, -d)`` then minus the hours, as restic)."""
        if self.exact is not None:
            return newest - self.exact
        month_index = newest.year * 12 + newest.month - 1 - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        if year < dt.MINYEAR:
            return dt.datetime.min.replace(tzinfo=newest.tzinfo)
        first = newest.replace(year=year, month=month + 1, day=1)
        # Go normalizes day overflow into the next month (31 March - 1 month = 3 March), as this does.
        return first + dt.timedelta(days=newest.day - 1 - self.days, hours=-self.hours)


def parse_within(value: object, option: str = "keep_within") -> Within:
    """A :class:`Within` of a timedelta or a restic duration string (``"7d"``, ``"1y2m"``, ``"36h"``)."""
    if isinstance(value, Within):
        return value
    if isinstance(value, dt.timedelta):
        if value <= dt.timedelta(0):
            raise InvalidOptionError(option, value, _WITHIN_CHOICES)
        return Within(exact=value)
    if not isinstance(value, str):
        raise InvalidOptionTypeError(option, value, _WITHIN_CHOICES)
    text = value.strip().lower()
    if not text or _DURATION.sub("", text) or not any(int(n) for n, _ in _DURATION.findall(text)):
        raise InvalidOptionError(option, value, _WITHIN_CHOICES)
    counts = {"y": 0, "m": 0, "d": 0, "h": 0}
    for number, unit in _DURATION.findall(text):
        counts[unit] += int(number)
    return Within(years=counts["y"], months=counts["m"], days=counts["d"], hours=counts["h"])


def _count(option: str, value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionTypeError(option, value, "a whole number >= 0, or -1 for every bucket")
    if value < -1:
        raise InvalidOptionError(option, value, "a whole number >= 0, or -1 for every bucket")
    return value


@attrs.frozen(kw_only=True)
class RetentionPolicy:
    """What to keep; 0 (or None) leaves a rule out, -1 keeps every bucket of its kind."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Within | None = None

    @property
    def empty(self) -> bool:
        """Whether no rule is set: such a policy would remove every backup, and is refused."""
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        return self.within is None and not any(counts)

    def __str__(self) -> str:
        rules = [
            f"{'all' if n == -1 else n} {what}"
            for n, what in zip(
                (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly),
                ("latest", "hourly", "daily", "weekly", "monthly", "yearly"),
                strict=True,
            )
            if n
        ]
        if self.within is not None:
            rules.append(f"all within {self.within} of the newest")
        return "keep " + ", ".join(rules) if rules else "no rule"


def retention_policy(
    keep_last: int | None = None,
    keep_hourly: int | None = None,
    keep_daily: int | None = None,
    keep_weekly: int | None = None,
    keep_monthly: int | None = None,
    keep_yearly: int | None = None,
    keep_within: dt.timedelta | str | None = None,
) -> RetentionPolicy:
    """The checked policy of ``prune``'s keywords; :class:`InvalidOptionError` for a bad value or when
    no rule is given (that would remove every backup)."""
    policy = RetentionPolicy(
        last=_count("keep_last", keep_last),
        hourly=_count("keep_hourly", keep_hourly),
        daily=_count("keep_daily", keep_daily),
        weekly=_count("keep_weekly", keep_weekly),
        monthly=_count("keep_monthly", keep_monthly),
        yearly=_count("keep_yearly", keep_yearly),
        within=None if keep_within is None else parse_within(keep_within),
    )
    if policy.empty:
        raise InvalidOptionError(
            "keep_*",
            None,
            "at least one of " + ", ".join(KEEP_OPTIONS),
            detail="(no retention rule: prune would remove every backup, so it removes none)",
        )
    return policy


@attrs.frozen
class Decision:
    """One backup's fate under a policy: ``reasons`` is empty for a backup the policy removes."""

    name: str
    time: dt.datetime
    reasons: tuple[str, ...] = ()

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def _hour(t: dt.datetime) -> object:
    return (t.year, t.month, t.day, t.hour)


def _day(t: dt.datetime) -> object:
    return (t.year, t.month, t.day)


def _week(t: dt.datetime) -> object:
    iso = t.isocalendar()
    return (iso[0], iso[1])


def _month(t: dt.datetime) -> object:
    return (t.year, t.month)


def _year(t: dt.datetime) -> object:
    return t.year


def apply_policy(
    backups: Iterable[tuple[str, dt.datetime]],
    policy: RetentionPolicy,
    *,
    tz: dt.tzinfo | None = None,
    now: dt.datetime | None = None,
) -> list[Decision]:
    """Each backup (name, aware time) with the reasons ``policy`` keeps it, newest first.

    Buckets are counted in ``tz`` (default: this machine's local time, as restic); ``now`` (default:
    the current time) only decides which backups are in the future for ``keep_within``'s newest.
    """
    ordered = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    if not ordered:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    local: Sequence[dt.datetime] = [t.astimezone(tz) for _, t in ordered]
    past = [t for t in local if t < now]
    cutoff = policy.within.cutoff(max(past)) if policy.within is not None and past else None
    # Counts left and the bucket last kept, per rule; -1 counts never run out.
    rules: list[tuple[str, Callable[[dt.datetime], object], int]] = [
        ("last", lambda _t: None, policy.last),
        ("hourly", _hour, policy.hourly),
        ("daily", _day, policy.daily),
        ("weekly", _week, policy.weekly),
        ("monthly", _month, policy.monthly),
        ("yearly", _year, policy.yearly),
    ]
    left = [count for _, _, count in rules]
    last_bucket: list[object] = [object() for _ in rules]
    result = []
    for nr, ((name, _), t) in enumerate(zip(ordered, local, strict=True)):
        reasons: list[str] = []
        if policy.within is not None and (cutoff is None or t > cutoff):
            reasons.append(f"within {policy.within}")
        for i, (what, bucket_of, _) in enumerate(rules):
            if left[i] == 0:
                continue
            bucket = nr if what == "last" else bucket_of(t)
            oldest = nr == len(ordered) - 1
            if bucket != last_bucket[i] or oldest:
                reasons.append(f"oldest {what}" if bucket == last_bucket[i] else what)
                last_bucket[i] = bucket
                if left[i] > 0:
                    left[i] -= 1
        result.append(Decision(name, t, tuple(reasons)))
    return result
