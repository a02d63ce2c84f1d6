"""Hours limits: how much of each of the regulator profile's limits a driver has used, from the trip records.

The profile's `hours_limits` (backend/compliance/profile.py `HoursLimit`) cap counted time in a window: a
rolling one (`window_hours`: the TLC's 10 hours in any 24) or the calendar `week` (Monday 00:00 to Monday
00:00 local, dispatch/money/weekly.py's week). Counted time is what the trips in PostgreSQL say, never what
the app reports: passenger time runs from `started_at` (pickup) to `completed_at` (dropoff), engaged time
from `assigned_at` (acceptance) to `completed_at`. A trip still going counts up to `at`; a trip that ended
another way (a cancellation after acceptance, a system close of a trip in progress) counts up to its
`ended_at`. The arithmetic is pure (backend/compliance/hours_rules.py).

One query per driver reads every trip that can overlap the longest window: the driver's trips requested
since the earliest window start less `LONGEST_TRIP` (through the `trip_driver_recent` index on
`(driver, -requested_at)`), plus an active trip whenever it was requested (through the partial unique
index on the driver's active trip). With the profile `none` nothing is read.

`hours_problems` is the hours half of eligibility (dispatch/services/eligibility.py adds the documents'):
one `hours_limit_reached` problem per limit with no time left, with `limit`, `used_s`, `max_s` and
`available_at` (when the driver has time again, if they do no more counted work).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from backend.compliance.eligibility import EligibilityProblem
from backend.compliance.hours_rules import Span, Usage, calendar_usage, max_seconds, rolling_usage
from backend.compliance.profile import HoursLimit
from backend.compliance.selectors import regulator_profile
from backend.timestamps import wire_timestamp
from dispatch.models import Trip
from dispatch.money.weekly import week_bounds, week_start_of
from dispatch.state import DRIVER_ACTIVE_STATUSES

# A finished trip requested this long before a window opened is not looked for (an active one always is):
# the abandoned-trip rule ends a trip whose driver vanished within minutes, so no ride comes near a day.
LONGEST_TRIP = timedelta(hours=24)


@dataclass(frozen=True)
class HoursLeft:
    """One limit at one moment: what it is, the counted time in its window, and what is left."""

    limit: HoursLimit
    usage: Usage

    def as_dict(self) -> dict[str, object]:
        return {
            "limit": self.limit.code,
            "label": self.limit.label,
            "counts": self.limit.counts,
            "used_s": self.usage.used_s,
            "max_s": self.usage.max_s,
            "left_s": self.usage.left_s,
            "available_at": wire_timestamp(self.usage.available_at) if self.usage.available_at else None,
        }


def _window_start(limit: HoursLimit, at: datetime) -> datetime:
    if limit.window == "week":
        return week_bounds(week_start_of(at))[0]
    assert limit.window_hours is not None  # the profile format guarantees exactly one of the two
    return at - timedelta(hours=limit.window_hours)


def trips_counted(*, driver_id: uuid.UUID, at: datetime, since: datetime) -> QuerySet[Trip]:
    """The driver's trips whose time can overlap [since, at]: one query through the driver's indexes."""
    return Trip.objects.filter(
        Q(driver_id=driver_id, requested_at__gte=since - LONGEST_TRIP, requested_at__lte=at)
        | Q(driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES))
    ).filter(assigned_at__isnull=False)


def _trip_spans(*, driver_id: uuid.UUID, at: datetime, since: datetime) -> dict[str, list[Span]]:
    """The driver's passenger and engaged spans that can overlap [since, at]."""
    rows = trips_counted(driver_id=driver_id, at=at, since=since).values_list(
        "assigned_at", "started_at", "completed_at", "ended_at"
    )
    spans: dict[str, list[Span]] = {"passenger": [], "engaged": []}
    for assigned_at, started_at, completed_at, ended_at in rows:
        end = min(completed_at or ended_at or at, at)
        spans["engaged"].append((assigned_at, end))
        if started_at is not None:
            spans["passenger"].append((started_at, end))
    return spans


def hours_left(*, driver_id: uuid.UUID, at: datetime) -> list[HoursLeft]:
    """Every hours limit of the profile in force, in its order, with the driver's counted time at `at`."""
    limits = regulator_profile().hours_limits
    if not limits:
        return []
    starts = {limit.code: _window_start(limit, at) for limit in limits}
    spans = _trip_spans(driver_id=driver_id, at=at, since=min(starts.values()))
    answer = []
    for limit in limits:
        counted, maximum = spans[limit.counts], max_seconds(limit.max_hours)
        if limit.window == "week":
            usage = calendar_usage(
                counted,
                at=at,
                window_start=starts[limit.code],
                window_end=week_bounds(week_start_of(at))[1],
                max_s=maximum,
            )
        else:
            usage = rolling_usage(counted, at=at, window=at - starts[limit.code], max_s=maximum)
        answer.append(HoursLeft(limit=limit, usage=usage))
    return answer


def hours_problems(*, driver_id: uuid.UUID, at: datetime) -> list[EligibilityProblem]:
    """One `hours_limit_reached` problem per limit the driver has no time left under at `at`."""
    return hours_problems_of(hours_left(driver_id=driver_id, at=at))


def hours_problems_of(entries: list[HoursLeft]) -> list[EligibilityProblem]:
    """The problems of limits reached, from `hours_left`'s answer (so a caller reads the trips once)."""
    return [_problem(entry) for entry in entries if entry.usage.reached]


def _problem(entry: HoursLeft) -> EligibilityProblem:
    shown = entry.as_dict()
    return EligibilityProblem(
        code="hours_limit_reached",
        message=gettext("%(limit)s: limit reached; you can take trips again from %(available_at)s.")
        % {"limit": entry.limit.label, "available_at": shown["available_at"]},
        details={key: shown[key] for key in ("limit", "used_s", "max_s", "available_at")},
    )
