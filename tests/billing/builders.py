"""Organisations and their trips, made through the real services: `trip_request` on the organisation's
account, the one status writer (`trip_transition`) with the times a test chooses, and settlement as the
completion and cancellation services call it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import transaction

from backend.fares.pay import local_zone
from backend.organisations.models import Organisation, OrganisationMembership, OrganisationRole
from dispatch.models import Trip
from dispatch.money import settlement
from dispatch.selectors import trip_load
from dispatch.services.estimates import Place
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_request
from dispatch.state import TripStatus
from tests.factories import DriverFactory, RiderFactory, UserFactory
from tests.mobile_api.builders import DROPOFF, PICKUP, ensure_service_area

ESTIMATED_DISTANCE_M = 6000
ESTIMATED_DURATION_S = 1200


def organisation_with_people(name: str = "Harlem Dialysis Center", **fields: object):
    """An organisation with an admin, a coordinator and a rider on its account."""
    ensure_service_area()
    organisation = Organisation.objects.create(name=name, kind="clinic", **fields)
    admin = UserFactory(name=f"{name} admin")
    coordinator = UserFactory(name=f"{name} coordinator")
    rider = RiderFactory(name=f"{name} patient")
    for user, role in (
        (admin, OrganisationRole.ADMIN),
        (coordinator, OrganisationRole.COORDINATOR),
        (rider, OrganisationRole.RIDER),
    ):
        OrganisationMembership.objects.create(organisation=organisation, user=user, role=role)
    return organisation, admin, coordinator, rider


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """That wall-clock time on that day in the co-op's time zone (settings.TIME_ZONE)."""
    return datetime.combine(day, time(hour, minute), tzinfo=local_zone())


def assign(trip: Trip, driver, *, at: datetime) -> Trip:
    vehicle = driver.driver_profile.active_vehicle
    fields = {"driver_id": driver.id, "vehicle_id": vehicle.id, "assigned_at": at}
    trip_transition(trip_id=trip.id, to=TripStatus.ASSIGNED, actor_id=driver.id, fields=fields)
    return trip_load(trip.id)


def book(*, rider, organisation=None, coordinator=None, at: datetime, reference: str = "CC-7") -> Trip:
    """A ride now (at `at`), on the organisation's account when one is given, else the rider's own."""
    return trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        at=at,
        organisation_id=organisation.id if organisation else None,
        booked_by_id=coordinator.id if coordinator else None,
        reference=reference if organisation else "",
    )


def arrived(*, rider, driver, organisation, coordinator, at: datetime, reference: str) -> Trip:
    """Booked 40 minutes before `at`, assigned 30 and arrived at the pickup 24 minutes before."""
    trip = book(
        rider=rider,
        organisation=organisation,
        coordinator=coordinator,
        at=at - timedelta(minutes=40),
        reference=reference,
    )
    assign(trip, driver, at=at - timedelta(minutes=30))
    fields = {"arrived_at": at - timedelta(minutes=24)}
    trip_transition(trip_id=trip.id, to=TripStatus.ARRIVED, actor_id=driver.id, fields=fields)
    return trip_load(trip.id)


def completed(
    *,
    rider,
    driver=None,
    organisation=None,
    coordinator=None,
    at: datetime,
    reference: str = "CC-7",
    distance_m: int = ESTIMATED_DISTANCE_M,
    duration_s: int = ESTIMATED_DURATION_S,
) -> Trip:
    """Booked 40 minutes before `at` and completed at `at`, settled in the completing transaction."""
    driver = driver or DriverFactory()
    kwargs = {"organisation": organisation, "coordinator": coordinator, "reference": reference}
    trip = arrived(rider=rider, driver=driver, at=at, **kwargs)
    trip_transition(
        trip_id=trip.id,
        to=TripStatus.IN_PROGRESS,
        actor_id=driver.id,
        fields={"started_at": at - timedelta(minutes=20)},
    )
    trip = trip_load(trip.id)
    fields = settlement.completion_fields(trip=trip, distance_m=distance_m, duration_s=duration_s)
    with transaction.atomic():
        done = trip_transition(
            trip_id=trip.id,
            to=TripStatus.COMPLETED,
            actor_id=driver.id,
            fields={**fields, "completed_at": at, "ended_at": at},
        )
        settlement.trip_completion_settle(trip=done)
    return trip_load(trip.id)


def cancelled_late(*, rider, organisation, coordinator, at: datetime, reference: str = "CC-7") -> Trip:
    """Assigned half an hour before `at` (well past the free period) and cancelled on the rider's side at
    `at` by the organisation, with the fee the policy sets, as `trip_cancel` posts it."""
    kwargs = {"organisation": organisation, "coordinator": coordinator, "reference": reference}
    trip = arrived(rider=rider, driver=DriverFactory(), at=at, **kwargs)
    fields = settlement.cancellation_fields(trip=trip, cancelled_by="rider", at=at)
    assert fields["cancellation_fee_minor"], "the policy charges a late cancellation"
    with transaction.atomic():
        done = trip_transition(
            trip_id=trip.id,
            to=TripStatus.CANCELLED,
            actor_id=coordinator.id,
            guard={"organisation_id": organisation.id},
            fields={**fields, "cancelled_by": "rider", "ended_at": at},
        )
        settlement.post_cancellation_fee(trip=done)
    return trip_load(trip.id)
