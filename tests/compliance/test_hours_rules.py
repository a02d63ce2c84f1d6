"""The hours-limit arithmetic (backend/compliance/hours_rules.py): window overlap and when time frees up.

Properties against a brute-force count (whole seconds, one by one) and against the rule's own promise:
past the limit, `available_at` is the first whole second at which time is left again.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.compliance.hours_rules import (
    SECOND,
    calendar_usage,
    clipped,
    max_seconds,
    merged,
    rolling_usage,
)

FAST = settings(max_examples=150, deadline=None, database=None)
BASE = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def spans_strategy(*, horizon_s: int, max_len_s: int, max_count: int = 8):
    span = st.tuples(st.integers(0, horizon_s), st.integers(1, max_len_s)).map(
        lambda pair: (BASE + timedelta(seconds=pair[0]), BASE + timedelta(seconds=pair[0] + pair[1]))
    )
    return st.lists(span, max_size=max_count)


def brute_force_seconds(spans, start: datetime, end: datetime) -> int:
    """Whole seconds [t, t+1) inside [start, end) covered by any span (spans on whole seconds)."""
    covered = 0
    moment = start
    while moment < end:
        if any(s <= moment < e for s, e in spans):
            covered += 1
        moment += SECOND
    return covered


def test_ten_hours_in_a_day_then_one_more_trip_is_over_the_limit_until_the_oldest_hour_slides_out():
    at = BASE + 24 * HOUR
    # Ten one-hour trips starting at 08:00, 09:00 ... 17:00 of the window's day (10 hours with passengers).
    day = [(BASE + (2 + i) * HOUR, BASE + (3 + i) * HOUR) for i in range(10)]
    usage = rolling_usage(day, at=at, window=24 * HOUR, max_s=36_000)
    assert (usage.used_s, usage.reached, usage.left_s) == (36_000, True, 0)
    # The first trip's hour starts sliding out 24 h after it began; any moment after that has time left.
    assert usage.available_at == BASE + 26 * HOUR + SECOND
    nine = rolling_usage(day[1:], at=at, window=24 * HOUR, max_s=36_000)
    assert (nine.used_s, nine.reached, nine.left_s, nine.available_at) == (32_400, False, 3_600, None)


def test_a_trip_still_in_progress_counts_up_to_the_moment_asked_about():
    started = BASE
    at = BASE + 90 * timedelta(minutes=1)
    usage = rolling_usage([(started, at)], at=at, window=24 * HOUR, max_s=36_000)
    assert usage.used_s == 5_400 and usage.left_s == 30_600


def test_a_calendar_week_frees_up_only_when_it_ends():
    week_start, week_end = BASE, BASE + timedelta(days=7)
    spans = [(BASE + timedelta(days=day), BASE + timedelta(days=day, hours=12)) for day in range(5)]
    usage = calendar_usage(
        spans, at=BASE + timedelta(days=5), window_start=week_start, window_end=week_end, max_s=60 * 3600
    )
    assert usage.reached and usage.used_s == 216_000 and usage.available_at == week_end
    before = calendar_usage(
        spans[:4], at=BASE + timedelta(days=5), window_start=week_start, window_end=week_end, max_s=216_000
    )
    assert not before.reached and before.left_s == 43_200


def test_the_profile_maximum_in_seconds():
    assert max_seconds(Decimal("10")) == 36_000 and max_seconds(Decimal("9.5")) == 34_200


@FAST
@given(spans_strategy(horizon_s=600, max_len_s=200))
def test_merged_spans_are_disjoint_sorted_and_cover_the_same_seconds(spans):
    union = merged(spans)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(union))
    assert all(start < end for start, end in union)
    end = BASE + timedelta(seconds=900)
    assert brute_force_seconds(union, BASE, end) == brute_force_seconds(spans, BASE, end)
    assert merged(union) == union


@FAST
@given(spans_strategy(horizon_s=600, max_len_s=200), st.integers(0, 900), st.integers(1, 700))
def test_rolling_use_is_the_covered_time_in_the_window(spans, at_s, window_s):
    at = BASE + timedelta(seconds=at_s)
    window = timedelta(seconds=window_s)
    usage = rolling_usage(spans, at=at, window=window, max_s=10**9)
    assert usage.used_s == brute_force_seconds(spans, at - window, at)
    assert usage.used_s <= window_s
    assert sum((e - s for s, e in clipped(spans, start=at - window, end=at)), timedelta()) // SECOND == (
        usage.used_s
    )


@FAST
@given(
    spans_strategy(horizon_s=600, max_len_s=200),
    st.integers(0, 900),
    st.integers(1, 700),
    st.integers(1, 400),
    st.integers(0, 999_999),
)
def test_past_the_limit_time_is_left_again_from_available_at_and_not_a_second_before(
    spans, at_s, window_s, max_s, micros
):
    at = BASE + timedelta(seconds=at_s, microseconds=micros)
    window = timedelta(seconds=window_s)
    # Counted work ends by `at`: nothing later is known (an in-progress trip is counted up to `at`).
    past = clipped(spans, start=at - window, end=at)
    usage = rolling_usage(past, at=at, window=window, max_s=max_s)
    assert usage.reached == (usage.used_s >= max_s)
    if not usage.reached:
        assert usage.available_at is None and usage.left_s == max_s - usage.used_s > 0
        return
    assert usage.left_s == 0 and usage.available_at is not None
    assert usage.available_at > at and usage.available_at.microsecond == 0
    later = rolling_usage(past, at=usage.available_at, window=window, max_s=max_s)
    assert not later.reached
    a_second_before = usage.available_at - SECOND
    if a_second_before >= at:
        assert rolling_usage(past, at=a_second_before, window=window, max_s=max_s).reached


@FAST
@given(
    spans_strategy(horizon_s=600, max_len_s=200),
    st.integers(0, 900),
    st.integers(1, 700),
    st.integers(1, 400),
    st.integers(-10_000, 10_000),
)
def test_moving_every_record_by_whole_seconds_moves_the_answer_with_it(spans, at_s, window_s, max_s, shift_s):
    at = BASE + timedelta(seconds=at_s)
    shift = timedelta(seconds=shift_s)
    window = timedelta(seconds=window_s)
    here = rolling_usage(spans, at=at, window=window, max_s=max_s)
    shifted = [(s + shift, e + shift) for s, e in spans]
    moved = rolling_usage(shifted, at=at + shift, window=window, max_s=max_s)
    assert (moved.used_s, moved.reached) == (here.used_s, here.reached)
    assert moved.available_at == (here.available_at + shift if here.available_at else None)


@FAST
@given(
    spans_strategy(horizon_s=600, max_len_s=200), spans_strategy(horizon_s=600, max_len_s=200, max_count=3)
)
def test_more_work_never_means_less_counted_time(spans, more):
    at = BASE + timedelta(seconds=700)
    window = timedelta(seconds=500)
    fewer = rolling_usage(spans, at=at, window=window, max_s=10**9).used_s
    assert rolling_usage(spans + more, at=at, window=window, max_s=10**9).used_s >= fewer


@FAST
@given(spans_strategy(horizon_s=600, max_len_s=200), st.integers(0, 900), st.integers(100, 800))
def test_a_calendar_window_counts_only_its_own_time_up_to_the_moment(spans, at_s, length_s):
    start = BASE + timedelta(seconds=100)
    end = start + timedelta(seconds=length_s)
    at = BASE + timedelta(seconds=at_s)
    usage = calendar_usage(spans, at=at, window_start=start, window_end=end, max_s=10**9)
    assert usage.used_s == brute_force_seconds(spans, start, min(at, end))
