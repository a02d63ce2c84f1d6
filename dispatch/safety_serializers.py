"""The shapes of the safety features (docs/safety.md), shared by the REST views, the driver socket's `sos`
answer and the staff live map's frames: one shape each, in one place.

- `alert_for_staff`: everything staff need to act on an SOS (who, their phone, the trip and the other
  party, where, what was done so far);
- `alert_for_raiser`: what the person who pressed SOS is told back (that it was received, and whether staff
  took it on), nothing about staff;
- `shared_trip_view`: what a share link's holder sees: the trip's progress and nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.gis.geos import Point

from backend.accounts.models import User
from backend.timestamps import wire_timestamp
from dispatch.models import (
    SafetyAlert,
    SafetyAlertAction,
    SafetyAlertActionKind,
    Trip,
    TripShareLink,
)

ALERT_STATUSES = ("open", "acknowledged", "resolved")
# A share link shows a trip in these; once it ends the link answers 404.
SHARED_TRIP_STATUSES = ("scheduled", "requested", "assigned", "arrived", "in_progress")

# Pickup and dropoff areas on a share link: two decimals of a degree, about a kilometre: the district, never
# the door.
SHARED_AREA_DECIMALS = 2


def _action(actions: list[SafetyAlertAction], kind: str) -> SafetyAlertAction | None:
    return next((action for action in actions if action.kind == kind), None)


def alert_status(alert: SafetyAlert) -> str:
    """`open`, `acknowledged` or `resolved`, from the alert's append-only actions."""
    kinds = {action.kind for action in alert.actions.all()}
    if SafetyAlertActionKind.RESOLVED in kinds:
        return "resolved"
    if SafetyAlertActionKind.ACKNOWLEDGED in kinds:
        return "acknowledged"
    return "open"


def _action_view(action: SafetyAlertAction | None) -> dict[str, Any] | None:
    if action is None:
        return None
    return {
        "by": {"id": str(action.by_id), "name": action.by.name},
        "at": wire_timestamp(action.at),
        "note": action.note,
    }


def _party(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": str(user.id), "name": user.name, "phone": user.phone}


def alert_for_staff(alert: SafetyAlert) -> dict[str, Any]:
    actions = list(alert.actions.all())
    trip = alert.trip
    trip_view = None
    if trip is not None:
        vehicle = trip.vehicle
        trip_view = {
            "id": str(trip.id),
            "status": trip.status,
            "rider": _party(trip.rider),
            "driver": _party(trip.driver) if trip.driver_id else None,
            "vehicle": None
            if vehicle is None
            else {"plate": vehicle.plate, "make": vehicle.make, "model": vehicle.model},
        }
    return {
        "id": str(alert.id),
        "status": alert_status(alert),
        "raised_at": wire_timestamp(alert.raised_at),
        "role": alert.role,
        "source": alert.source,
        "raised_by": _party(alert.raised_by),
        "trip": trip_view,
        "position": None if alert.position is None else {"lat": alert.position.y, "lng": alert.position.x},
        "accuracy_m": alert.accuracy_m,
        "position_source": alert.position_source or None,
        "acknowledged": _action_view(_action(actions, SafetyAlertActionKind.ACKNOWLEDGED)),
        "resolved": _action_view(_action(actions, SafetyAlertActionKind.RESOLVED)),
    }


def alert_for_raiser(alert: SafetyAlert) -> dict[str, Any]:
    acknowledged = _action(list(alert.actions.all()), SafetyAlertActionKind.ACKNOWLEDGED)
    return {
        "id": str(alert.id),
        "trip_id": str(alert.trip_id) if alert.trip_id else None,
        "raised_at": wire_timestamp(alert.raised_at),
        "status": alert_status(alert),
        "acknowledged_at": wire_timestamp(acknowledged.at) if acknowledged else None,
    }


def share_link_view(link: TripShareLink, *, now: datetime) -> dict[str, Any]:
    """A share link as its rider sees it (never its token, which is shown once at creation)."""
    return {
        "id": str(link.id),
        "trip_id": str(link.trip_id),
        "created_at": wire_timestamp(link.created_at),
        "expires_at": wire_timestamp(link.expires_at),
        "revoked_at": wire_timestamp(link.revoked_at) if link.revoked_at else None,
        "active": link.revoked_at is None and link.expires_at > now,
    }


def _area(point: Point) -> dict[str, float]:
    return {"lat": round(point.y, SHARED_AREA_DECIMALS), "lng": round(point.x, SHARED_AREA_DECIMALS)}


def first_name(name: str) -> str:
    return (name.split() or [""])[0]


def shared_trip_view(
    link: TripShareLink,
    *,
    car: dict[str, Any] | None,
    eta: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The trip's progress for whoever holds the link: its status, the driver's first name and the car to
    look for, where the car is (`car`, only while it drives to the pickup or the ride is under way), the
    ETA, and the pickup and dropoff only to about a kilometre. Nothing of the rider, the fare or the
    trip's history."""
    trip: Trip = link.trip
    vehicle = trip.vehicle
    return {
        "status": trip.status,
        "driver": None
        if trip.driver_id is None
        else {
            "first_name": first_name(trip.driver.name),
            "vehicle": None
            if vehicle is None
            else {"make": vehicle.make, "model": vehicle.model, "plate": vehicle.plate},
        },
        "car": car,
        "eta": eta,
        "pickup_area": _area(trip.pickup),
        "dropoff_area": _area(trip.dropoff),
        "scheduled_for": wire_timestamp(trip.scheduled_for) if trip.scheduled_for else None,
        "link_expires_at": wire_timestamp(link.expires_at),
        "updated_at": wire_timestamp(now),
    }
