"""Trips in every state, made through the real services (trip_request, trip_transition, settlement)."""

from __future__ import annotations

import importlib
from datetime import datetime

from dispatch.models import ServiceArea, Trip
from dispatch.money.settlement import completion_fields, trip_completion_settle
from dispatch.selectors import trip_load
from dispatch.services.estimates import Place
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_request
from dispatch.state import TripStatus
from tests.factories import DriverFactory, RiderFactory, square_service_area

# Both inside `square_service_area()` (Midtown to Lower Manhattan).
PICKUP = {"lat": 40.7580, "lng": -73.9855}
DROPOFF = {"lat": 40.7128, "lng": -74.0060}
OUTSIDE = {"lat": 51.5074, "lng": -0.1278}  # London


def ensure_fare_policy() -> None:
    """Seed policy v1 again if a transactional test flushed it (the seed migration's own function)."""
    from django.apps import apps

    seeding = importlib.import_module("backend.fares.migrations.0002_seed_default_policy")
    seeding.seed_default_policy(apps, None)


def ensure_service_area() -> ServiceArea:
    """An active service area (and the fare policy every quote needs)."""
    ensure_fare_policy()
    return ServiceArea.objects.filter(is_active=True).first() or square_service_area()


def requested_trip(rider=None, **kwargs) -> Trip:
    ensure_service_area()
    rider = rider or RiderFactory()
    return trip_request(rider_id=rider.id, pickup=Place(**PICKUP), dropoff=Place(**DROPOFF), **kwargs)


def assign(trip: Trip, driver=None, *, assigned_at: datetime | None = None) -> Trip:
    driver = driver or DriverFactory()
    vehicle = driver.driver_profile.active_vehicle
    fields = {"driver_id": driver.id, "vehicle_id": vehicle.id}
    if assigned_at is not None:
        fields["assigned_at"] = assigned_at
    trip_transition(trip_id=trip.id, to=TripStatus.ASSIGNED, actor_id=driver.id, fields=fields)
    return trip_load(trip.id)


def drive_to_completion(trip: Trip, driver=None) -> Trip:
    """From requested (or assigned) to completed, with the fare settled as the driver's app would."""
    if trip.status == TripStatus.REQUESTED:
        trip = assign(trip, driver)
    for status in (TripStatus.ARRIVED, TripStatus.IN_PROGRESS):
        trip_transition(trip_id=trip.id, to=status, actor_id=trip.driver_id)
    trip = trip_load(trip.id)
    fields = completion_fields(
        trip=trip, distance_m=trip.estimated_distance_m, duration_s=trip.estimated_duration_s
    )
    trip_transition(trip_id=trip.id, to=TripStatus.COMPLETED, actor_id=trip.driver_id, fields=fields)
    done = trip_load(trip.id)
    trip_completion_settle(trip=done)
    return done


def assigned_trip(rider=None, driver=None, *, assigned_at: datetime | None = None) -> Trip:
    return assign(requested_trip(rider), driver, assigned_at=assigned_at)


def started_trip(rider=None, driver=None) -> Trip:
    trip = assigned_trip(rider, driver)
    for status in (TripStatus.ARRIVED, TripStatus.IN_PROGRESS):
        trip_transition(trip_id=trip.id, to=status, actor_id=trip.driver_id)
    return trip_load(trip.id)


def completed_trip(rider=None, driver=None) -> Trip:
    return drive_to_completion(requested_trip(rider), driver)
