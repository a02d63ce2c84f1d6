"""Reads on trips and service areas, scoped to who may see them.

A trip is visible to its rider and its driver, nobody else: for anyone else it does not exist (404, exactly
like an unknown id), so ids cannot be probed.
"""

from __future__ import annotations

import uuid

from django.contrib.gis.geos import Point
from django.db.models import Q, QuerySet

from backend.errors import NotFound
from dispatch.models import Offer, ServiceArea, Trip
from dispatch.state import DRIVER_ACTIVE_STATUSES


def trips_visible_to(user_id: uuid.UUID) -> QuerySet[Trip]:
    """Trips the user rode or drove, newest first, with what the trip object needs loaded."""
    return (
        Trip.objects.filter(Q(rider_id=user_id) | Q(driver_id=user_id))
        .select_related("rider", "driver", "vehicle")
        .prefetch_related("events")
        .order_by("-requested_at")
    )


def trip_load(trip_id: uuid.UUID) -> Trip:
    """A trip with what its contract object needs (rider, driver, vehicle, events) loaded: no view built
    from it queries again, however many parties it is shown to."""
    return (
        Trip.objects.select_related("rider", "driver", "vehicle").prefetch_related("events").get(id=trip_id)
    )


def trip_get_for(*, user_id: uuid.UUID, trip_id: uuid.UUID) -> Trip:
    """The trip if the user rode or drove it; NotFound (`trip_not_found`) otherwise."""
    trip = trips_visible_to(user_id).filter(id=trip_id).first()
    if trip is None:
        raise NotFound("No such trip.", code="trip_not_found")
    return trip


def point_in_service_area(*, lat: float, lng: float) -> bool:
    """Whether an active service area covers the point (edges included)."""
    point = Point(lng, lat, srid=4326)
    return ServiceArea.objects.filter(is_active=True, area__intersects=point).exists()


def places_outside_service_area(**places: tuple[float, float]) -> list[str]:
    """The names of the given (lat, lng) places that no active service area covers."""
    return [name for name, (lat, lng) in places.items() if not point_in_service_area(lat=lat, lng=lng)]


def driver_active_trip(*, driver_id: uuid.UUID) -> Trip | None:
    """The driver's trip that is assigned, arrived or in progress (at most one, by constraint)."""
    return (
        Trip.objects.select_related("rider", "driver", "vehicle")
        .prefetch_related("events")
        .filter(driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES))
        .first()
    )


def driver_offers(*, driver_id: uuid.UUID) -> QuerySet[Offer]:
    """Every offer made to this driver: their own dispatch history."""
    return Offer.objects.filter(driver_id=driver_id)
