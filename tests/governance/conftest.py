"""Fixtures for the governance tests: members, directors and completed trips, made through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest


@pytest.fixture
def seeded_policy():
    """Fare policy version 1 as the fares migration seeds it: transactional tests truncate every table
    (the seed included), so a test after one of them must put it back."""
    from datetime import UTC, datetime

    from backend.fares.models import FarePolicyVersion
    from backend.fares.policy import DEFAULT_POLICY_DOCUMENT

    if not FarePolicyVersion.objects.exists():
        FarePolicyVersion.objects.create(
            version=1,
            effective_at=datetime(2020, 1, 1, tzinfo=UTC),
            document=DEFAULT_POLICY_DOCUMENT,
            source="seed",
        )
    return FarePolicyVersion.objects.order_by("version").first()


@pytest.fixture
def make_member(seeded_policy):
    """``make_member(**driver_kwargs)``: an approved driver who joined (one member share subscribed)."""
    from governance import services
    from tests.factories import DriverFactory

    def make(**kwargs):
        return services.membership_join(user=DriverFactory(**kwargs))

    return make


@pytest.fixture
def make_director(make_member):
    """``make_director()``: a member seated as a founding director by staff."""
    from governance import services
    from tests.factories import StaffFactory

    staff = []

    def make(**kwargs):
        if not staff:
            staff.append(StaffFactory())
        member = make_member(**kwargs)
        services.board_seat_found(member_id=member.id, actor=staff[0])
        return member

    return make


@pytest.fixture
def complete_trip(seeded_policy):
    """``complete_trip(driver, pay_minor=..., engaged_s=..., at=...)``: a completed trip whose fare is
    settled as the completion services settle it (dispatch/money/settlement.py: the share instalment
    withheld, then the fare posted)."""
    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from backend.fares.models import FarePolicyVersion
    from dispatch.models import Trip
    from dispatch.money.settlement import trip_completion_settle
    from tests.factories import RiderFactory

    def make(driver, *, pay_minor=2000, fare_minor=2400, engaged_s=1200, at=None, post=True):
        completed = at or timezone.now()
        trip = Trip.objects.create(
            rider=RiderFactory(),
            driver=driver,
            status="completed",
            pickup=Point(-73.98, 40.75, srid=4326),
            dropoff=Point(-73.95, 40.78, srid=4326),
            policy_version=FarePolicyVersion.objects.order_by("version").first(),
            currency="USD",
            fare_estimate_minor=fare_minor,
            estimated_distance_m=5000,
            estimated_duration_s=900,
            fare_minor=fare_minor,
            driver_pay_minor=pay_minor,
            commission_minor=max(fare_minor - pay_minor, 0),
            assigned_at=completed - timedelta(seconds=engaged_s),
            started_at=completed - timedelta(seconds=engaged_s // 2),
            completed_at=completed,
            ended_at=completed,
        )
        if post:
            trip_completion_settle(trip=trip)
        return trip

    return make


def client_for(user):
    from tests.conftest import auth_client_for

    return auth_client_for(user)


def fare_policy_payload(**rider_changes):
    from backend.fares.policy import DEFAULT_POLICY_DOCUMENT

    document = {
        key: (dict(value) if isinstance(value, dict) else value)
        for key, value in DEFAULT_POLICY_DOCUMENT.items()
    }
    document["rider"].update(rider_changes)
    return document
