"""Reads on trips and service areas, scoped to who may see them.

A trip is visible to its rider and its driver, nobody else: for anyone else it does not exist (404, exactly
like an unknown id), so ids cannot be probed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection

from django.contrib.gis.geos import Point
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from backend.accounts.models import Vehicle
from backend.errors import NotFound
from dispatch.live import DriverLiveRecord
from dispatch.models import DriverPresence, Offer, PresenceStatus, ServiceArea, Trip
from dispatch.state import DRIVER_ACTIVE_STATUSES


def trips_visible_to(user_id: uuid.UUID) -> QuerySet[Trip]:
    """Trips the user rode or drove, newest first, with what the trip object needs loaded."""
    return (
        Trip.objects.filter(Q(rider_id=user_id) | Q(driver_id=user_id))
        .select_related("rider", "driver", "vehicle", "organisation")
        .prefetch_related("events")
        .order_by("-requested_at")
    )


def trip_load(trip_id: uuid.UUID) -> Trip:
    """A trip with what its contract object needs (rider, driver, vehicle, events) loaded: no view built
    from it queries again, however many parties it is shown to."""
    return (
        Trip.objects.select_related("rider", "driver", "vehicle", "organisation")
        .prefetch_related("events")
        .get(id=trip_id)
    )


def trip_get_for(*, user_id: uuid.UUID, trip_id: uuid.UUID) -> Trip:
    """The trip if the user rode or drove it; NotFound (`trip_not_found`) otherwise."""
    trip = trips_visible_to(user_id).filter(id=trip_id).first()
    if trip is None:
        raise NotFound(_("No such trip."), code="trip_not_found")
    return trip


def organisation_trips(*, organisation_id: uuid.UUID, rider_id: uuid.UUID | None = None) -> QuerySet[Trip]:
    """The trips an organisation booked, newest first; only `rider_id`'s when given (a rider on the
    organisation's account sees their own, its admins, coordinators and keys all of them)."""
    trips = (
        Trip.objects.filter(organisation_id=organisation_id)
        .select_related("rider", "driver", "vehicle", "organisation", "booked_by", "booked_by_key")
        .prefetch_related("events")
        .order_by("-requested_at")
    )
    return trips if rider_id is None else trips.filter(rider_id=rider_id)


def organisation_trip_get(
    *, organisation_id: uuid.UUID, trip_id: uuid.UUID, rider_id: uuid.UUID | None = None
) -> Trip:
    """One of those trips; NotFound `trip_not_found` for any other, as for an id that does not exist."""
    trip = organisation_trips(organisation_id=organisation_id, rider_id=rider_id).filter(id=trip_id).first()
    if trip is None:
        raise NotFound(_("No such trip."), code="trip_not_found")
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
        Trip.objects.select_related("rider", "driver", "vehicle", "organisation")
        .prefetch_related("events")
        .filter(driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES))
        .first()
    )


def driver_offers(*, driver_id: uuid.UUID) -> QuerySet[Offer]:
    """Every offer made to this driver: their own dispatch history."""
    return Offer.objects.filter(driver_id=driver_id)


def online_driver_live_records() -> list[DriverLiveRecord]:
    """Every online driver's live state as PostgreSQL has it, to rebuild Redis after it lost its data."""
    presences = list(DriverPresence.objects.filter(status=PresenceStatus.ONLINE))
    return _live_records([p.driver_id for p in presences], {p.driver_id: p for p in presences})


def driver_live_record(*, driver_id: uuid.UUID) -> DriverLiveRecord:
    """One driver's live state as PostgreSQL has it, online or not (no presence row: offline)."""
    presence = DriverPresence.objects.filter(driver_id=driver_id).first()
    return _live_records([driver_id], {driver_id: presence} if presence else {})[0]


def _live_records(
    driver_ids: Collection[uuid.UUID], presences: dict[uuid.UUID, DriverPresence]
) -> list[DriverLiveRecord]:
    trips = {
        driver: (trip_id, rider_id)
        for driver, trip_id, rider_id in Trip.objects.filter(
            driver_id__in=driver_ids, status__in=sorted(DRIVER_ACTIVE_STATUSES)
        ).values_list("driver_id", "id", "rider_id")
    }
    vehicles = {
        driver: (vehicle_id, wav)
        for driver, vehicle_id, wav in Vehicle.objects.filter(
            is_active=True, driver__user_id__in=driver_ids
        ).values_list("driver__user_id", "id", "wheelchair_accessible")
    }
    now = time.time()
    records = []
    for driver_id in driver_ids:
        presence = presences.get(driver_id)
        trip_id, rider_id = trips.get(driver_id, ("", ""))
        vehicle_id, wav = vehicles.get(driver_id, ("", False))
        location = presence.location if presence else None
        records.append(
            DriverLiveRecord(
                driver_id=str(driver_id),
                online=bool(presence and presence.status == PresenceStatus.ONLINE),
                wav=bool(wav),
                vehicle_id=str(vehicle_id),
                idle_since=presence.idle_since.timestamp() if presence and presence.idle_since else now,
                trip_id=str(trip_id),
                rider_id=str(rider_id),
                lat=location.y if location else None,
                lng=location.x if location else None,
                fix_at=presence.fix_at.timestamp() if presence and presence.fix_at else None,
            )
        )
    return records
