"""The weekly floor job: one top-up per driver-week, for finished weeks only, paid once however often."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry
from backend.fares.pay import local_zone
from dispatch.money.weekly import (
    driver_week_compute,
    iso_week_label,
    week_bounds,
    week_start_of,
    weekly_top_ups_post,
)
from dispatch.tasks import post_weekly_top_ups
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import adopt_policy, assert_ledger_consistent, complete_trip, in_progress_trip

SHORT = (1609, 240)  # about a mile, 4 minutes: the minimum fare, $8.00; the driver's share $6.80
LONG = (16093, 1200)  # 10 miles, 20 minutes: $27.00; share $22.95; floor $19.00 (a $3.95 surplus)


def _trip(policy, driver, rider, distance_duration, at):
    distance_m, duration_s = distance_duration
    trip = in_progress_trip(
        rider=rider,
        driver=driver,
        policy_version=policy,
        estimated_distance_m=distance_m,
        estimated_duration_s=duration_s,
        started_at=at - timedelta(seconds=duration_s),
    )
    return complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=at)


@pytest.fixture
def weekly_policy(seeded_policy):
    # Minnesota-like rates, with a $9.00 minimum a ride so the short ride falls short of its floor.
    return adopt_policy(
        "week", per_distance="1.28", per_minute="0.31", per_trip="9.00", wav_per_distance="1.28"
    )


@pytest.fixture
def finished_week():
    this_monday = week_start_of(timezone.now())
    monday = this_monday - timedelta(days=14)  # finished, whatever the grace period after midnight
    return monday, datetime.combine(monday + timedelta(days=2), time(12), tzinfo=local_zone())


def test_a_short_week_is_topped_up_once(weekly_policy, finished_week):
    monday, wednesday = finished_week
    short_driver, covered_driver = DriverFactory(), DriverFactory()
    short = _trip(weekly_policy, short_driver, RiderFactory(), SHORT, wednesday)
    assert (short.fare_minor, short.driver_pay_minor) == (800, 680)  # week mode: the share alone
    _trip(weekly_policy, covered_driver, RiderFactory(), SHORT, wednesday)
    _trip(weekly_policy, covered_driver, RiderFactory(), LONG, wednesday + timedelta(hours=2))

    week = driver_week_compute(driver_id=short_driver.id, week_start=monday)
    assert (week.floor, week.received, week.top_up, week.trip_count) == (900, 680, 220, 1)
    covered = driver_week_compute(driver_id=covered_driver.id, week_start=monday)
    assert covered.floor == 900 + 1900 and covered.received == 680 + 2295 and covered.top_up == 0

    assert post_weekly_top_ups() == 1
    assert post_weekly_top_ups() == 0
    assert weekly_top_ups_post() == []
    entry = JournalEntry.objects.get(kind="weekly_floor_top_up")
    assert entry.key == f"floor:{short_driver.id}:{iso_week_label(monday)}"
    assert entry.metadata["week_start"] == monday.isoformat()
    assert (
        ledger.balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=short_driver.id, currency="USD") == 900
    )
    assert ledger.balance_minor(kind=AccountKind.FLOOR_TOP_UPS, owner_id=None, currency="USD") == 220
    assert_ledger_consistent()


def test_the_current_week_waits_until_it_ends(weekly_policy):
    driver = DriverFactory()
    now = timezone.now()
    _trip(weekly_policy, driver, RiderFactory(), SHORT, now - timedelta(minutes=1))
    assert weekly_top_ups_post(now=now) == []
    _, week_end = week_bounds(week_start_of(now))
    # Within the grace period after midnight nothing is paid; after it, the week is.
    assert weekly_top_ups_post(now=week_end + timedelta(minutes=5)) == []
    [posted] = weekly_top_ups_post(now=week_end + timedelta(minutes=20))
    assert posted.driver_id == driver.id and posted.top_up == 220


def test_per_trip_policies_are_not_topped_up_weekly(seeded_policy, finished_week):
    _, wednesday = finished_week
    per_trip = adopt_policy("trip", per_trip="9.00")
    trip = _trip(per_trip, DriverFactory(), RiderFactory(), SHORT, wednesday)
    assert trip.driver_pay_minor == 900  # the floor is paid inside the trip's own entry
    assert weekly_top_ups_post() == []
    assert not JournalEntry.objects.filter(kind="weekly_floor_top_up").exists()


def test_weeks_follow_local_time(weekly_policy):
    monday = week_start_of(timezone.now()) - timedelta(days=14)
    start, end = week_bounds(monday)
    assert start.astimezone(local_zone()).hour == 0 and start.astimezone(local_zone()).weekday() == 0
    driver = DriverFactory()
    # A trip at 23:59 local on Sunday belongs to that week, whatever the UTC date.
    _trip(weekly_policy, driver, RiderFactory(), SHORT, end - timedelta(minutes=1))
    _trip(weekly_policy, driver, RiderFactory(), SHORT, end + timedelta(minutes=1))
    posted = weekly_top_ups_post()
    assert sorted((week.week_start, week.trip_count) for week in posted) == [
        (monday, 1),
        (monday + timedelta(days=7), 1),
    ]
