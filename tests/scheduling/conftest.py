"""Reservations written directly (the booking path, `trip_request(scheduled_for=...)`, is tested by its
owner in tests/booking/): a `scheduled` trip with its window and release time, as booking leaves it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.dispatch.conftest import CENTRE


def make_reservation(
    rider,
    *,
    scheduled_for: datetime,
    window_s: int = 900,
    lat: float = CENTRE[0],
    lng: float = CENTRE[1],
    wav: bool = False,
    release_at: datetime | None = None,
    booked_at: datetime | None = None,
    **fields,
):
    """A scheduled trip for `rider`, picked up at (lat, lng) within `window_s` either side of
    `scheduled_for`; due to be looked at from `release_at` (now by default)."""
    from django.contrib.gis.geos import Point

    from backend.fares.models import FarePolicyVersion
    from dispatch.models import Trip, TripEvent

    policy = FarePolicyVersion.objects.order_by("-version").first()
    window = timedelta(seconds=window_s)
    trip = Trip.objects.create(
        rider=rider,
        status="scheduled",
        pickup=Point(lng, lat, srid=4326),
        dropoff=Point(lng + 0.02, lat + 0.02, srid=4326),
        wheelchair_accessible=wav,
        policy_version=policy,
        currency="USD",
        fare_estimate_minor=1500,
        estimated_distance_m=3000,
        estimated_duration_s=600,
        requested_at=booked_at or timezone.now() - timedelta(days=2),
        scheduled_for=scheduled_for,
        pickup_window_start=scheduled_for - window,
        pickup_window_end=scheduled_for + window,
        release_at=release_at or timezone.now(),
        **fields,
    )
    TripEvent.objects.create(trip=trip, status="scheduled")
    return trip


def in_(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def sent(event: str, user) -> list:
    """The notifications of `event` written for `user` (one row per channel: SMS for every account)."""
    from backend.notifications.models import Notification

    return list(Notification.objects.filter(event=event, user=user, channel="sms"))


@pytest.fixture
def area(db):
    """Fare policy v1 and an active service area around CENTRE (Midtown Manhattan)."""
    from tests.mobile_api.builders import ensure_service_area

    return ensure_service_area()
