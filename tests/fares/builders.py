"""Building trips and money the way the services do: Trip rows in a status, then the real transition and
settlement calls (`trip_transition(..., fields=completion_fields(...))` + `trip_completion_settle`)."""

from __future__ import annotations

import copy
import importlib
from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from backend.fares.ledger import ledger_verify
from backend.fares.models import FarePolicyVersion
from backend.fares.pricing import quote_fare
from backend.fares.selectors import policy_of
from backend.fares.services import policy_version_create
from dispatch.money import settlement

# docs/contract.md's example rates: 85% of 0.35 a minute is well below the 0.620 floor, so the floor binds
# often.
CONTRACT_EXAMPLE_POLICY = {
    "currency": "USD",
    "distance_unit": "mile",
    "rider": {
        "base": "2.50",
        "per_distance": "1.75",
        "per_minute": "0.35",
        "booking_fee": "0.00",
        "minimum_fare": "8.00",
        "surge_cap": "1.00",
        "cancellation_fee": "5.00",
        "free_cancellation_s": 120,
    },
    "commission_rate": "0.15",
    "driver_minimum": {
        "per_distance": "1.357",
        "per_minute": "0.620",
        "per_trip": "0.00",
        "wav_per_distance": "1.760",
        "period": "trip",
    },
}

CENTRE = (40.7580, -73.9855)


def policy_document(period: str = "trip", **driver_minimum: str) -> dict:
    doc = copy.deepcopy(CONTRACT_EXAMPLE_POLICY)
    doc["driver_minimum"]["period"] = period
    doc["driver_minimum"].update(driver_minimum)
    return doc


def ensure_seed_policy() -> FarePolicyVersion:
    from django.apps import apps

    importlib.import_module("backend.fares.migrations.0002_seed_default_policy").seed_default_policy(
        apps, None
    )
    return FarePolicyVersion.objects.get(version=1)


def adopt_policy(period: str = "trip", **driver_minimum: str) -> FarePolicyVersion:
    if not FarePolicyVersion.objects.exists():
        ensure_seed_policy()
    return policy_version_create(
        document=policy_document(period, **driver_minimum), effective_at=None, source="founding"
    )


def in_progress_trip(
    *,
    rider,
    driver,
    policy_version: FarePolicyVersion,
    wav: bool = False,
    estimated_distance_m: int = 5000,
    estimated_duration_s: int = 900,
    started_at: datetime | None = None,
    assigned_at: datetime | None = None,
    status: str = "in_progress",
):
    from dispatch.models import Trip, TripEvent

    quote = quote_fare(
        policy_of(policy_version), distance_m=estimated_distance_m, duration_s=estimated_duration_s
    )
    started = started_at or timezone.now()
    lat, lng = CENTRE
    trip = Trip.objects.create(
        rider=rider,
        driver=driver,
        vehicle=driver.driver_profile.active_vehicle,
        status=status,
        pickup=Point(lng, lat, srid=4326),
        dropoff=Point(lng + 0.03, lat + 0.02, srid=4326),
        wheelchair_accessible=wav,
        policy_version=policy_version,
        currency=policy_of(policy_version).currency,
        fare_estimate_minor=quote.fare,
        estimated_distance_m=estimated_distance_m,
        estimated_duration_s=estimated_duration_s,
        requested_at=started - timedelta(minutes=8),
        assigned_at=assigned_at or started - timedelta(minutes=6),
        arrived_at=started - timedelta(minutes=1) if status == "in_progress" else None,
        started_at=started if status == "in_progress" else None,
    )
    TripEvent.objects.create(trip=trip, status=status)
    return trip


def complete_trip(trip, *, distance_m: int, duration_s: int, at: datetime | None = None):
    """Complete through the one status writer, with the settlement's fields, and settle it (the share
    instalment, then the fare entry), as the completion services do."""
    from dispatch.services.transitions import trip_transition
    from dispatch.state import TripStatus

    fields = settlement.completion_fields(trip=trip, distance_m=distance_m, duration_s=duration_s)
    if at is not None:
        fields["completed_at"] = at
        fields["ended_at"] = at
    with transaction.atomic():
        done = trip_transition(
            trip_id=trip.id, to=TripStatus.COMPLETED, actor_id=trip.driver_id, fields=fields
        )
        settlement.trip_completion_settle(trip=done)
    return done


def cancel_by_rider(trip, *, at: datetime):
    from dispatch.services.transitions import trip_transition
    from dispatch.state import TripStatus

    fields = settlement.cancellation_fields(trip=trip, cancelled_by="rider", at=at)
    with transaction.atomic():
        done = trip_transition(
            trip_id=trip.id,
            to=TripStatus.CANCELLED,
            actor_id=trip.rider_id,
            fields={**fields, "cancelled_by": "rider", "ended_at": at},
        )
        settlement.post_cancellation_fee(trip=done)
    return done


def tip_trip(trip, amount_minor: int):
    from dispatch.models import Tip

    with transaction.atomic():
        tip = Tip.objects.create(
            trip=trip,
            rider_id=trip.rider_id,
            driver_id=trip.driver_id,
            amount_minor=amount_minor,
            currency="USD",
        )
        settlement.post_tip(tip=tip)
    return tip


def check_deferred_constraints() -> None:
    """Fire the commit-time checks (balanced-entry trigger, deferred FKs) now, inside a test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def assert_ledger_consistent() -> None:
    check_deferred_constraints()
    report = ledger_verify()
    assert report.ok, report.problems()
