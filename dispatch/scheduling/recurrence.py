"""When a recurring ride happens: the dates and instants of a weekly rule, in the rule's own time zone.

A rule is a set of ISO weekdays (Monday 1 .. Sunday 7), a local pickup time, an IANA time zone, the first
date (`starts_on`) and at most one end: the last date (`until`, inclusive) or the number of occurrences
(`count`); with neither the rule runs until its series is cancelled. Dates listed in `skipped` are not
ridden.

The pickup is the same wall-clock time on every date, whatever the zone's offset that day, so 07:30 stays
07:30 across a change of daylight-saving time. Two local times need a decision:

- a time that does not exist (the hour skipped when the clocks go forward) moves forward by the gap:
  02:30 on a spring-forward day in New York is 03:30 EDT (the instant 02:30 EST would have been). It is
  an occurrence whose `local_time` differs from the rule's (`moved`).
- a time that happens twice (the hour repeated when the clocks go back) is the first of the two (fold=0):
  01:30 on a fall-back day in New York is 01:30 EDT, not the EST one an hour later.

A local date the zone skips altogether (Samoa's 30 December 2011), or a moved time that would land on the
next date, has no pickup that day: no occurrence is made for it (it still counts towards `count`).

`count` counts the rule's dates from `starts_on`, skipped ones included: a series of 10 rides of which one
is skipped is 9 rides, and skipping never extends it (as RFC 5545's EXDATE never extends COUNT). So the
last date of a counted series is fixed when it is made, and `skipped` only removes dates.

Pure: stdlib datetime and zoneinfo only; dispatch/services/recurring.py reads a series and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ISO_WEEKDAYS = frozenset(range(1, 8))
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


class RuleError(ValueError):
    """A rule that cannot be: `field` names what is wrong, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone called `name`; RuleError on a name the zone database does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise RuleError("time_zone", f"{name!r} is not a known time zone") from exc


@dataclass(frozen=True)
class Rule:
    weekdays: frozenset[int]
    pickup_time: time
    time_zone: str
    starts_on: date
    until: date | None = None
    count: int | None = None
    skipped: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        weekdays = frozenset(self.weekdays)
        if not weekdays or not weekdays <= ISO_WEEKDAYS:
            raise RuleError("weekdays", "must be one or more ISO weekdays, 1 (Monday) to 7 (Sunday)")
        if self.pickup_time.tzinfo is not None:
            raise RuleError("pickup_time", "is a local time, without a zone")
        zone_named(self.time_zone)
        if self.until is not None and self.count is not None:
            raise RuleError("until", "a rule ends on a date or after a count, not both")
        if self.until is not None and self.until < self.starts_on:
            raise RuleError("until", "must not be before starts_on")
        if self.count is not None and (isinstance(self.count, bool) or self.count < 1):
            raise RuleError("count", "must be at least 1")
        object.__setattr__(self, "weekdays", weekdays)
        object.__setattr__(self, "skipped", frozenset(self.skipped))

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.time_zone)

    def is_rule_date(self, day: date) -> bool:
        """`day` is one of the rule's dates (skipped or not)."""
        last = self.last_date()
        return day >= self.starts_on and (last is None or day <= last) and day.isoweekday() in self.weekdays

    def last_date(self) -> date | None:
        """The rule's last date (its `until`, or the `count`-th date), None when it has no end."""
        if self.count is not None:
            return nth_date(weekdays=self.weekdays, starts_on=self.starts_on, n=self.count)
        return self.until


def nth_date(*, weekdays: Iterable[int], starts_on: date, n: int) -> date:
    """The n-th (1-based) date from `starts_on` on one of `weekdays`: any 7 days in a row hold each weekday
    once, so whole weeks are skipped at once and at most a week is walked."""
    days = frozenset(weekdays)
    full_weeks, left = divmod(n - 1, len(days))
    day = starts_on + full_weeks * _WEEK
    while True:
        if day.isoweekday() in days:
            if left == 0:
                return day
            left -= 1
        day += _DAY


@dataclass(frozen=True)
class Occurrence:
    """One pickup: its local date, the instant (aware, UTC) and the wall-clock time it is at there."""

    local_date: date
    at: datetime
    local_time: time
    skipped: bool = False
    # The rule's time did not exist that day (clocks went forward) and the pickup moved by the gap.
    moved: bool = False


def pickup_instant(*, local_date: date, pickup_time: time, zone: ZoneInfo) -> tuple[datetime, time] | None:
    """The UTC instant of `pickup_time` on `local_date` in `zone`, and the wall time it lands at: the rule's
    time, or later by the gap when that time does not exist; None when no such time is on that date."""
    wall = datetime.combine(local_date, pickup_time)
    try:
        # fold=0: the first of two repeated times, and for a skipped time the offset from before the
        # change, which puts it the gap later on the new clock.
        at = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        landed = at.astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # the last hours of year 9999 have no UTC instant west of Greenwich
        return None
    if landed.date() != local_date:
        return None
    return at, landed.time()


def occurrences(rule: Rule, *, start: date, end: date, include_skipped: bool = False) -> Iterator[Occurrence]:
    """The rule's occurrences with a local date from `start` to `end` (both inclusive), in order.

    Skipped dates are left out unless `include_skipped` (then they come with `skipped=True`)."""
    first = max(start, rule.starts_on)
    last_date = rule.last_date()
    last = end if last_date is None else min(end, last_date)
    zone = rule.zone
    day = first
    while day <= last:
        if day.isoweekday() in rule.weekdays:
            skipped = day in rule.skipped
            if include_skipped or not skipped:
                instant = pickup_instant(local_date=day, pickup_time=rule.pickup_time, zone=zone)
                if instant is not None:
                    at, local_time = instant
                    yield Occurrence(
                        local_date=day,
                        at=at,
                        local_time=local_time,
                        skipped=skipped,
                        moved=local_time != rule.pickup_time,
                    )
        if day == date.max:
            break
        day += _DAY


def local_date_of(instant: datetime, *, time_zone: str) -> date:
    """The date it is in `time_zone` at `instant` (an aware datetime)."""
    return instant.astimezone(zone_named(time_zone)).date()
