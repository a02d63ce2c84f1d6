"""Quiet hours as a pure rule: whether a moment falls in a person's quiet hours, and when they end.

Quiet hours are two local wall-clock times in the person's time zone: `22:00`-`07:00` runs overnight,
`13:00`-`15:00` within one day; the start is inside, the end is not. The end is the same wall-clock time
whatever the offset that day, so a daylight-saving change moves it with the clocks. No Django, no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def quiet_hours_end(*, at: datetime, start: time, end: time, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours that `at` (aware) falls in end, in UTC; None when `at` is outside them.

    `start == end` is no quiet hours at all (the preferences refuse it; here it simply never holds)."""
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    if start == end:
        return None
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        if not start <= clock < end:
            return None
        end_day = local.date()
    elif clock >= start:
        end_day = local.date() + timedelta(days=1)
    elif clock < end:
        end_day = local.date()
    else:
        return None
    ending = datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
    # A wall-clock end that the clocks skip (a spring-forward gap) maps to just after the gap; it is never
    # before `at`, but guard against a zone whose rules say otherwise.
    return ending if ending > at else None
