"""One definition of driver pay for a period (backend/fares/pay.py): earnings and patronage agree to the cent.

A member driver's week holds ordinary trips (one under the per-trip floor), tips, a refund, a late rider
cancellation, a corrected (reversed) fare, a trip under a weekly floor that the week's top-up makes whole,
and trips just outside the week. Earnings (dispatch) and patronage (governance) must report the same pay,
the same completed trips and the same engaged time, and both must be what the ledger credited the driver
for that work. Tips are not pay on either side: earnings show them beside `pay` (in `total`), patronage
leaves them out, so `pay` is compared with `net_earnings`.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry, Posting
from backend.fares.pay import driver_pay_for_period, local_zone
from backend.fares.pricing import cancellation_split
from backend.fares.selectors import policy_of
from dispatch.money.earnings import driver_earnings
from dispatch.money.refunds import refund_post
from dispatch.money.weekly import week_start_of, weekly_top_ups_post
from governance import services as governance_services
from governance.selectors import patronage_by_member
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import (
    adopt_policy,
    assert_ledger_consistent,
    cancel_by_rider,
    complete_trip,
    in_progress_trip,
    tip_trip,
)

# (distance_m, duration_s): a minimum-fare hop, an ordinary ride, and a slow crawl where the per-trip floor
# binds.
RIDES = [(1609, 240), (12070, 1800), (3000, 3600)]
ASSIGNED_BEFORE_START_S = 360  # in_progress_trip assigns six minutes before the start


def _at(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=local_zone())


def _ride(rider, driver, version, distance_duration, at):
    distance_m, duration_s = distance_duration
    trip = in_progress_trip(
        rider=rider,
        driver=driver,
        policy_version=version,
        estimated_distance_m=distance_m,
        estimated_duration_s=duration_s,
        started_at=at - timedelta(seconds=duration_s),
    )
    return complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=at)


def _credited_to(driver, entry_keys: list[str]) -> int:
    """What these entries, and every reversal of them, moved on the driver's payable account."""
    entries = JournalEntry.objects.filter(key__in=entry_keys)
    postings = Posting.objects.filter(
        account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver.id
    ).filter(entry__in=entries) | Posting.objects.filter(
        account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver.id, entry__reverses__in=entries
    )
    return sum(posting.credit_minor - posting.debit_minor for posting in postings)


@pytest.fixture
def member_week(seeded_policy):
    """The member driver's finished week (Monday to Sunday, two weeks back) and everything that happened."""
    monday = week_start_of(timezone.now()) - timedelta(days=14)
    sunday = monday + timedelta(days=6)
    per_trip = adopt_policy("trip")
    driver, rider = DriverFactory(), RiderFactory()
    member = governance_services.membership_join(user=driver)

    rides = [
        _ride(rider, driver, per_trip, ride, _at(monday + timedelta(days=index), 10))
        for index, ride in enumerate(RIDES)
    ]
    tip_trip(rides[0], 150)
    tip_trip(rides[1], 425)
    refund_post(trip_id=rides[1].id, amount_minor=300, reason="detour", staff_id=StaffFactory().id)
    corrected = _ride(rider, driver, per_trip, (5000, 900), _at(monday + timedelta(days=3), 18))
    fare_entry = JournalEntry.objects.get(key=f"trip:{corrected.id}:fare")
    ledger.reverse_entry(entry_id=fare_entry.id, key=f"correction:{corrected.id}", memo="fare corrected")
    late = in_progress_trip(
        rider=rider, driver=driver, policy_version=per_trip, status="assigned", started_at=_at(sunday, 9)
    )
    cancelled = cancel_by_rider(late, at=_at(sunday, 9))

    weekly = adopt_policy("week", per_trip="9.00")
    floored_week = _ride(rider, driver, weekly, RIDES[0], _at(monday + timedelta(days=4), 15))
    posted = weekly_top_ups_post()
    assert [(week.driver_id, week.week_start) for week in posted] == [(driver.id, monday)]

    # Just outside the week on both sides: counted by neither.
    _ride(rider, driver, per_trip, (5000, 600), _at(monday, 0) - timedelta(minutes=30))
    _ride(rider, driver, per_trip, (5000, 600), _at(sunday + timedelta(days=1), 0) + timedelta(minutes=5))
    assert_ledger_consistent()
    return {
        "driver": driver,
        "member": member,
        "monday": monday,
        "sunday": sunday,
        "rides": rides,
        "corrected": corrected,
        "cancelled": cancelled,
        "floored_week": floored_week,
        "weekly_top_up": posted[0].top_up,
        "per_trip_policy": per_trip,
    }


def test_earnings_and_patronage_agree_to_the_cent(member_week):
    driver, member = member_week["driver"], member_week["member"]
    monday, sunday = member_week["monday"], member_week["sunday"]
    earnings = driver_earnings(driver_id=driver.id, date_from=monday, date_to=sunday)
    patronage = patronage_by_member([member], start=monday, end=sunday)[str(member.id)]

    assert patronage.net_earnings_minor == earnings.pay
    assert patronage.trips == earnings.trips
    assert patronage.engaged_seconds == earnings.engaged_seconds

    # And both are what the ledger credited the driver for the week's work, nothing else.
    completed = [*member_week["rides"], member_week["corrected"], member_week["floored_week"]]
    keys = [f"trip:{trip.id}:fare" for trip in completed]
    keys += [f"trip:{member_week['cancelled'].id}:cancellation", f"floor:{driver.id}:{monday:%G-W%V}"]
    credited = _credited_to(driver, keys)
    split = cancellation_split(policy_of(member_week["per_trip_policy"]))
    expected = (
        sum(trip.driver_pay_minor for trip in member_week["rides"])
        + member_week["floored_week"].driver_pay_minor
        + split.driver
        + member_week["weekly_top_up"]
    )  # the corrected trip's fare was reversed: it pays nothing, though it was a trip
    assert member_week["weekly_top_up"] > 0 and split.driver > 0
    assert earnings.pay == credited == expected
    assert earnings.trips == len(completed) == 5
    durations = sum(duration for _, duration in RIDES) + 900 + RIDES[0][1]
    assert earnings.engaged_seconds == durations + len(completed) * ASSIGNED_BEFORE_START_S

    # Tips are the driver's, not pay: in earnings' total, in neither `pay` nor patronage.
    assert earnings.tips == 575
    assert earnings.total == earnings.pay + 575
    # Share instalments were withheld from this pay (the driver is a member); pay counts what was earned.
    withheld = JournalEntry.objects.filter(kind="share_instalment", trip_id__in=[t.id for t in completed])
    assert withheld.exists()


def test_pay_for_a_period_counts_every_driver_asked_about(member_week):
    driver = member_week["driver"]
    idle = DriverFactory()
    monday, sunday = member_week["monday"], member_week["sunday"]
    pay = driver_pay_for_period(driver_ids=[driver.id, idle.id], date_from=monday, date_to=sunday)
    assert pay[idle.id].pay_minor == pay[idle.id].trips == pay[idle.id].engaged_s == 0
    earnings = driver_earnings(driver_id=driver.id, date_from=monday, date_to=sunday)
    assert (pay[driver.id].pay_minor, pay[driver.id].trips, pay[driver.id].engaged_s) == (
        earnings.pay,
        earnings.trips,
        earnings.engaged_seconds,
    )
    # A range that stops before the week's Sunday holds neither the cancellation nor the weekly top-up.
    saturday = sunday - timedelta(days=1)
    shorter = driver_pay_for_period(driver_ids=[driver.id], date_from=monday, date_to=saturday)[driver.id]
    split = cancellation_split(policy_of(member_week["per_trip_policy"]))
    assert shorter.pay_minor == pay[driver.id].pay_minor - split.driver - member_week["weekly_top_up"]
