"""Booking a ride ahead over HTTP (docs/scheduling.md): the board's limits, the scheduled status, no
dispatch until its time, the rider's confirmation, several reservations but never two at once, and
cancelling one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.notifications.models import Notification
from dispatch.models import Offer, Trip, TripEvent
from dispatch.state import TripStatus
from tests.mobile_api.builders import DROPOFF, PICKUP

pytestmark = pytest.mark.django_db


def _book(client, idem, *, ahead: timedelta, **extra):
    body = {
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "scheduled_for": (timezone.now() + ahead).isoformat(),
        **extra,
    }
    return client.post("/api/v1/trips", body, format="json", **idem())


def test_a_ride_booked_ahead_is_scheduled_with_its_window_and_is_not_dispatched(
    rider, rider_client, service_area, idem
):
    response = _book(rider_client, idem, ahead=timedelta(days=2))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "scheduled" and body["driver"] is None
    reservation = body["reservation"]
    assert reservation["claimed"] is False and reservation["series_id"] is None
    trip = Trip.objects.get(id=body["id"])
    # The board's default window: 15 minutes either side of the time asked for.
    assert trip.pickup_window_end - trip.scheduled_for == timedelta(minutes=15)
    assert trip.scheduled_for - trip.pickup_window_start == timedelta(minutes=15)
    assert trip.next_dispatch_at is None and trip.search_deadline is None
    assert trip.release_at < trip.pickup_window_start
    assert list(TripEvent.objects.filter(trip=trip).values_list("status", flat=True)) == ["scheduled"]
    assert not Offer.objects.filter(trip=trip).exists()
    # The rider is told, once, by SMS to the account's phone.
    sent = Notification.objects.filter(user=rider, event="reservation_confirmed")
    assert [(n.channel, n.to) for n in sent] == [("sms", rider.phone)]
    assert "booked" in sent[0].body


@pytest.mark.parametrize(
    ("ahead", "extra", "status", "code"),
    [
        (timedelta(minutes=20), {}, 422, "scheduled_too_soon"),
        (timedelta(days=8), {}, 422, "scheduled_too_far_ahead"),
        (timedelta(days=1), {"pickup_window_s": 3600}, 400, "pickup_window_invalid"),
    ],
)
def test_the_boards_limits_refuse_a_booking_with_a_code(
    rider_client, service_area, idem, ahead, extra, status, code
):
    response = _book(rider_client, idem, ahead=ahead, **extra)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Trip.objects.exists()


def test_a_window_without_a_pickup_time_is_refused(rider_client, service_area, idem):
    response = rider_client.post(
        "/api/v1/trips",
        {"pickup": PICKUP, "dropoff": DROPOFF, "pickup_window_s": 600},
        format="json",
        **idem(),
    )
    assert response.status_code == 400 and "pickup_window_s" in response.json()["error"]["details"]


def test_a_rider_may_hold_several_reservations_and_ride_now_but_not_two_rides_at_once(
    rider_client, service_area, idem
):
    assert _book(rider_client, idem, ahead=timedelta(days=1)).status_code == 201
    assert _book(rider_client, idem, ahead=timedelta(days=2)).status_code == 201
    overlapping = _book(rider_client, idem, ahead=timedelta(days=1, minutes=10), pickup_window_s=300)
    assert overlapping.status_code == 409 and overlapping.json()["error"]["code"] == "reservation_overlaps"
    now = rider_client.post("/api/v1/trips", {"pickup": PICKUP, "dropoff": DROPOFF}, format="json", **idem())
    assert now.status_code == 201 and now.json()["status"] == "requested"
    assert Trip.objects.filter(status=TripStatus.SCHEDULED).count() == 2


def test_a_reservation_cancelled_early_costs_nothing(rider_client, service_area, idem):
    trip_id = _book(rider_client, idem, ahead=timedelta(days=1)).json()["id"]
    response = rider_client.post(
        f"/api/v1/trips/{trip_id}/cancel", {"reason": "appointment moved"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (
        body["status"] == "cancelled" and body["cancelled_by"] == "rider" and body["cancellation_fee"] is None
    )
