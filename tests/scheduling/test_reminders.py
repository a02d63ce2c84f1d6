"""Reminders before a reservation, through notifications: once each, however often the sweep runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.scheduling.conftest import in_, make_reservation, sent

pytestmark = pytest.mark.django_db


def test_a_rider_is_reminded_a_day_ahead_and_half_an_hour_ahead_once_each(area, rider):
    from dispatch.models import Trip
    from dispatch.services.reservations import reservation_reminders_send

    trip = make_reservation(rider, scheduled_for=in_(86400 - 60), booked_at=in_(-3 * 86400))
    booked_today = make_reservation(rider, scheduled_for=in_(5 * 3600), booked_at=in_(-3600), window_s=600)

    assert reservation_reminders_send() == {"rider_day": 1}
    assert reservation_reminders_send() == {}
    [day] = sent("reservation_reminder", rider)
    assert day.context["trip_id"] == str(trip.id)

    # A day later, half an hour before: the second reminder. The ride booked today gets only that one.
    soon = timezone.now() + timedelta(seconds=1700)
    Trip.objects.filter(id=trip.id).update(
        rider_reminded_at=soon - timedelta(days=1),
        scheduled_for=soon,
        pickup_window_start=soon - timedelta(seconds=900),
        pickup_window_end=soon + timedelta(seconds=900),
    )
    assert reservation_reminders_send() == {"rider_soon": 1}
    assert reservation_reminders_send() == {}
    assert len(sent("reservation_reminder", rider)) == 2
    assert Trip.objects.get(id=booked_today.id).rider_reminded_at is None


def test_the_driver_who_claimed_a_ride_is_reminded_an_hour_ahead_once(area, rider, driver):
    from dispatch.services.reservations import reservation_reminders_send

    booked = {"booked_at": in_(-600), "claimed_by": driver, "claimed_at": in_(-60)}
    make_reservation(rider, scheduled_for=in_(3 * 3600), **booked)
    trip = make_reservation(rider, scheduled_for=in_(3000), **booked)

    assert reservation_reminders_send() == {"driver": 1}
    assert reservation_reminders_send() == {}
    [reminder] = sent("reservation_driver_reminder", driver)
    assert reminder.context["trip_id"] == str(trip.id)
    assert reminder.context["pickup_area"] == "40.76, -73.99"
