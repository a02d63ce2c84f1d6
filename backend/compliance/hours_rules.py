"""Hours-limit arithmetic: how much counted time falls in a window, and when enough of it rolls out.

A regulator's hours limit (backend/compliance/profile.py `HoursLimit`) caps the counted time in a window:
a rolling one (any `window` of time ending now: the TLC's 10 hours in any 24) or a calendar one (a week
from Monday 00:00). The counted time is the union of the driver's spans (passenger or engaged time of each
trip, from the trip records), so overlapping spans never count twice.

A limit is reached when the counted time is at least its maximum: with no time left, no offer could be
driven within it. `available_at` is the first whole second at which some time is left again if the driver
does no more counted work: for a rolling window, when enough of the oldest counted time has slid out of
it; for a calendar window, when the window ends (nothing rolls out of a calendar week).

Pure: plain datetimes and timedeltas, no Django; dispatch/services/hours.py reads the spans and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

Span = tuple[datetime, datetime]
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Usage:
    """Counted time in one limit's window at one instant. `used_s` is whole seconds (rounded down);
    `reached` compares the exact time with `max_s`; `available_at` is None unless `reached`."""

    used_s: int
    max_s: int
    reached: bool
    available_at: datetime | None

    @property
    def left_s(self) -> int:
        return 0 if self.reached else self.max_s - self.used_s


def max_seconds(max_hours: Decimal) -> int:
    """A limit's maximum (a number of hours, as the profile holds it) in whole seconds."""
    return int(max_hours * 3600)


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of the spans, as sorted disjoint spans (empty and reversed spans dropped)."""
    ordered = sorted((start, end) for start, end in spans if end > start)
    union: list[Span] = []
    for start, end in ordered:
        if union and start <= union[-1][1]:
            if end > union[-1][1]:
                union[-1] = (union[-1][0], end)
        else:
            union.append((start, end))
    return union


def clipped(spans: Iterable[Span], *, start: datetime, end: datetime) -> list[Span]:
    """The union of the spans, cut to [start, end] (nothing when the end is not after the start)."""
    return [(max(s, start), min(e, end)) for s, e in merged(spans) if e > start and s < end and end > start]


def _total(spans: Iterable[Span]) -> timedelta:
    # timedelta sums are exact (whole microseconds), so the comparisons below never round.
    return sum((end - start for start, end in spans), timedelta())


def _usage(exact: timedelta, max_s: int, available_at: datetime | None) -> Usage:
    reached = exact >= timedelta(seconds=max_s)
    return Usage(
        used_s=exact // SECOND, max_s=max_s, reached=reached, available_at=available_at if reached else None
    )


def rolling_usage(spans: Iterable[Span], *, at: datetime, window: timedelta, max_s: int) -> Usage:
    """Counted time in the rolling window [at - window, at]; spans later than `at` do not count.

    Past the limit, the window's trailing edge must slide through the excess of counted time (the oldest
    first) before the total drops below the maximum; `available_at` is the first whole second after that.
    """
    inside = clipped(spans, start=at - window, end=at)
    exact = _total(inside)
    excess = exact - timedelta(seconds=max_s)
    if excess < timedelta():
        return _usage(exact, max_s, None)
    edge = inside[-1][1]  # not reached for a positive maximum: some span holds the excess
    dropped = timedelta()
    for start, end in inside:
        # Strictly past: sliding exactly through a span leaves the total at the maximum until the next.
        if dropped + (end - start) > excess:
            edge = start + (excess - dropped)
            break
        dropped += end - start
    back_under = edge + window  # just after this the total is below the maximum (it is still sliding out)
    return _usage(exact, max_s, back_under.replace(microsecond=0) + SECOND)


def calendar_usage(
    spans: Iterable[Span], *, at: datetime, window_start: datetime, window_end: datetime, max_s: int
) -> Usage:
    """Counted time in the calendar window [window_start, window_end) up to `at`; past the limit the
    driver works again when the window ends."""
    exact = _total(clipped(spans, start=window_start, end=min(at, window_end)))
    return _usage(exact, max_s, window_end)
