"""Booking a recurring ride's occurrences (dispatch/services/recurring.py) on real PostGIS and Redis: the
dates across a DST change become the right reservations, two runs at once book each occurrence once, one
refused occurrence does not hold back the others and says why, and a counted series ends."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest

from dispatch.models import RecurringRide, RecurringRideStatus, Trip
from dispatch.services.recurring import (
    recurring_ride_materialise,
    recurring_ride_occurrences,
    recurring_rides_materialise,
)
from dispatch.state import TripStatus
from dispatch.tasks import materialise_recurring_rides
from tests.db_threads import WAIT_S, run_in_thread
from tests.factories import RiderFactory
from tests.mobile_api.builders import ensure_service_area
from tests.recurring.builders import guest_of, member_of, organisation, series_row

# Friday 12 March 2027, 10:00 in New York (EST): the Sunday after is the spring-forward day.
BEFORE_SPRING = datetime(2027, 3, 12, 15, 0, tzinfo=UTC)


def _trips(series: RecurringRide) -> list[tuple[date, datetime, str]]:
    return list(
        Trip.objects.filter(series=series)
        .order_by("occurrence_date")
        .values_list("occurrence_date", "scheduled_for", "status")
    )


@pytest.mark.django_db
def test_occurrences_across_the_spring_change_become_reservations_at_the_same_local_time(settings):
    assert settings.TIME_ZONE == "America/New_York"  # ROCHDALE_TIME_ZONE's default
    ensure_service_area()
    series = series_row(RiderFactory(), starts_on=date(2027, 3, 1), pickup_window_s=600)

    report = recurring_ride_materialise(series_id=series.id, now=BEFORE_SPRING)

    # Three days ahead (ROCHDALE_RECURRING_HORIZON_DAYS): Saturday on EST, Sunday and Monday on EDT; Friday's
    # 07:30 has passed.
    assert _trips(series) == [
        (date(2027, 3, 13), datetime(2027, 3, 13, 12, 30, tzinfo=UTC), TripStatus.SCHEDULED),
        (date(2027, 3, 14), datetime(2027, 3, 14, 11, 30, tzinfo=UTC), TripStatus.SCHEDULED),
        (date(2027, 3, 15), datetime(2027, 3, 15, 11, 30, tzinfo=UTC), TripStatus.SCHEDULED),
    ]
    assert [b.occurrence_date for b in report.booked] == [
        date(2027, 3, 13),
        date(2027, 3, 14),
        date(2027, 3, 15),
    ]
    trip = Trip.objects.get(series=series, occurrence_date=date(2027, 3, 14))
    assert trip.pickup_window_end - trip.pickup_window_start == timedelta(seconds=1200)
    assert trip.rider_id == series.rider_id and trip.payer == "rider"
    series.refresh_from_db()
    assert series.materialised_through == date(2027, 3, 15)

    # A second run (as the beat's next one) books nothing more.
    assert recurring_rides_materialise(now=BEFORE_SPRING + timedelta(minutes=15)).booked == []
    assert len(_trips(series)) == 3


@pytest.mark.django_db
def test_the_horizon_never_goes_beyond_the_boards_max_ahead_days(settings):
    settings.ROCHDALE_RECURRING_HORIZON_DAYS = 30
    ensure_service_area()
    series = series_row(RiderFactory(), starts_on=date(2027, 3, 1), weekdays=(4,))
    recurring_ride_materialise(series_id=series.id, now=BEFORE_SPRING)
    # The board allows 6 days ahead of Friday the 12th: next Thursday (the 18th) only, the 11th has passed.
    assert [day for day, _, _ in _trips(series)] == [date(2027, 3, 18)]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_book_each_occurrence_once():
    ensure_service_area()
    series = series_row(RiderFactory(), starts_on=date(2027, 3, 1))
    start = threading.Barrier(2)

    def run():
        start.wait(WAIT_S)
        return recurring_rides_materialise(now=BEFORE_SPRING)

    runs = [run_in_thread(run) for _ in range(2)]
    for thread, _ in runs:
        thread.join(WAIT_S)
    outcomes = [outcome for _, outcome in runs]
    assert [outcome.error for outcome in outcomes] == [None, None]
    booked = sorted(b.occurrence_date for outcome in outcomes for b in outcome.value.booked)
    assert booked == [date(2027, 3, 13), date(2027, 3, 14), date(2027, 3, 15)]
    assert all(outcome.value.failed == [] for outcome in outcomes)
    assert [day for day, _, _ in _trips(series)] == booked


@pytest.mark.django_db
def test_a_refused_occurrence_does_not_stop_the_others_and_says_why(caplog):
    ensure_service_area()
    clinic = organisation()
    coordinator = member_of(clinic)
    guest = guest_of(clinic)
    series = series_row(
        guest, starts_on=date(2027, 3, 1), organisation=clinic, booked_by=coordinator, reference="CC-12"
    )
    # The clinic books weekday rides only: Saturday's and Sunday's are refused, Monday's is booked.
    clinic.allowed_hours = [{"weekdays": [1, 2, 3, 4, 5], "from": "06:00", "to": "20:00"}]
    clinic.save(update_fields=["allowed_hours"])

    with caplog.at_level(logging.WARNING, logger="dispatch.services.recurring"):
        report = recurring_ride_materialise(series_id=series.id, now=BEFORE_SPRING)

    assert [(f.occurrence_date, f.code) for f in report.failed] == [
        (date(2027, 3, 13), "organisation_hours"),
        (date(2027, 3, 14), "organisation_hours"),
    ]
    ((monday, _, status),) = _trips(series)
    assert (monday, status) == (date(2027, 3, 15), TripStatus.SCHEDULED)
    trip = Trip.objects.get(series=series)
    assert (trip.organisation_id, trip.payer, trip.booked_by_id, trip.reference) == (
        clinic.id,
        "organisation",
        coordinator.id,
        "CC-12",
    )
    assert "organisation_hours" in caplog.text and "2027-03-13" in caplog.text
    # The series' dates say which were not booked, and why.
    series.refresh_from_db()
    listed = recurring_ride_occurrences(
        series=series, start=date(2027, 3, 13), end=date(2027, 3, 16), now=BEFORE_SPRING
    )
    assert [(v.occurrence.local_date, v.state) for v in listed] == [
        (date(2027, 3, 13), "not_booked"),
        (date(2027, 3, 14), "not_booked"),
        (date(2027, 3, 15), "booked"),
        (date(2027, 3, 16), "upcoming"),
    ]
    assert listed[0].failure["code"] == "organisation_hours"
    assert (listed[2].trip_id, listed[2].trip_status) == (trip.id, TripStatus.SCHEDULED)

    # Once the clinic books weekends too, the next run books what it refused.
    clinic.allowed_hours = []
    clinic.save(update_fields=["allowed_hours"])
    again = recurring_ride_materialise(series_id=series.id, now=BEFORE_SPRING + timedelta(minutes=15))
    assert [b.occurrence_date for b in again.booked] == [date(2027, 3, 13), date(2027, 3, 14)]
    assert (
        recurring_ride_occurrences(
            series=series, start=date(2027, 3, 13), end=date(2027, 3, 13), now=BEFORE_SPRING
        )[0].failure
        is None
    )


@pytest.mark.django_db
def test_a_counted_series_ends_after_its_last_date_and_is_no_longer_booked():
    ensure_service_area()
    # Two rides: Monday 15 and Wednesday 17 March at 07:30.
    series = series_row(RiderFactory(), starts_on=date(2027, 3, 15), weekdays=(1, 3), count=2)
    recurring_rides_materialise(now=datetime(2027, 3, 14, 15, 0, tzinfo=UTC))
    assert [day for day, _, _ in _trips(series)] == [date(2027, 3, 15), date(2027, 3, 17)]
    series.refresh_from_db()
    assert series.status == RecurringRideStatus.ACTIVE

    report = recurring_rides_materialise(now=datetime(2027, 3, 18, 15, 0, tzinfo=UTC))
    series.refresh_from_db()
    assert series.status == RecurringRideStatus.ENDED and report.ended == [series.id]
    assert len(_trips(series)) == 2


@pytest.mark.django_db
def test_the_beat_runs_the_task():
    ensure_service_area()
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["recurring-rides-materialise"]
    assert entry["task"] == "dispatch.tasks.materialise_recurring_rides"
    # Starting tomorrow, every day: the task books what falls within three days of now.
    tomorrow = date.today() + timedelta(days=1)
    series = series_row(RiderFactory(), starts_on=tomorrow, pickup_time=time(12, 0))
    counts = materialise_recurring_rides.apply().get()
    assert counts["booked"] == Trip.objects.filter(series=series).count() >= 2
    assert counts["failed"] == 0
