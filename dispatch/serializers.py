"""The contract's trip object, used by the REST API and the websocket pushes alike (one shape, one place).

Location privacy: the rider sees the driver's position only while the trip is assigned, arrived or in
progress. The driver sees exact pickup and dropoff while the trip is theirs and open; once it has ended,
their history shows both rounded to about 100 m, enough to recognise a trip, not a front door.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import LineString, Point
from django.utils.translation import gettext as _
from rest_framework import serializers

from backend.fares.money import money
from backend.timestamps import wire_timestamp
from dispatch.models import DriverPresence, Trip
from dispatch.state import LOCATION_SHARING_STATUSES, OPEN_STATUSES, TripStatus

HISTORY_PRECISION_DECIMALS = 3


class PlaceSerializer(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)

    def to_internal_value(self, data: Any) -> dict[str, float]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(_('A place is {"lat": number, "lng": number}.'))
        for key in ("lat", "lng"):
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise serializers.ValidationError({key: [_("Must be a number.")]})
        return super().to_internal_value(data)


class MoneySerializer(serializers.Serializer):
    amount = serializers.IntegerField(min_value=0)
    currency = serializers.CharField(min_length=3, max_length=3)


class VehicleSerializer(serializers.Serializer):
    plate = serializers.CharField()
    make = serializers.CharField()
    model = serializers.CharField()
    year = serializers.IntegerField()
    seats = serializers.IntegerField()
    wheelchair_accessible = serializers.BooleanField()


class PartySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class TripDriverSerializer(PartySerializer):
    vehicle = VehicleSerializer(allow_null=True)
    location = PlaceSerializer(allow_null=True)


class TripEventSerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()


class LineStringSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["LineString"])
    coordinates = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        help_text="[lng, lat] pairs, GeoJSON's order.",
    )


class RouteSerializer(serializers.Serializer):
    """A planned route (docs/roads.md): its path along the streets, and which router planned it."""

    router = serializers.ChoiceField(
        choices=["valhalla", "valhalla-http", "model"],
        help_text="`model` is a straight line: no road graph, or the road engine could not route it.",
    )
    geometry = LineStringSerializer()


def route_document(geometry: LineString | None, router: str) -> dict[str, Any] | None:
    """The route object of the wire contract's extension, or None where no path was planned."""
    if geometry is None:
        return None
    return {
        "router": router or "model",
        "geometry": {
            "type": "LineString",
            "coordinates": [[round(lng, 6), round(lat, 6)] for lng, lat in geometry.coords],
        },
    }


class ReservationSerializer(serializers.Serializer):
    scheduled_for = serializers.DateTimeField(help_text="The pickup time asked for.")
    window_start = serializers.DateTimeField(help_text="The driver arrives no earlier than this ...")
    window_end = serializers.DateTimeField(help_text="... and no later than this.")
    claimed = serializers.BooleanField(help_text="A driver has claimed the ride ahead of time.")
    series_id = serializers.UUIDField(allow_null=True, help_text="The recurring ride it is one of.")


class TripOrganisationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    reference = serializers.CharField(
        allow_blank=True, help_text="The booking's cost centre or reference; empty in the driver's view."
    )


class RidePinSerializer(serializers.Serializer):
    pin = serializers.CharField(
        allow_null=True, help_text="The four digits, in the rider's own view only; `null` for anyone else."
    )
    attempts_left = serializers.IntegerField(
        help_text="Wrong PINs the driver may still send before the lock."
    )
    locked = serializers.BooleanField(
        help_text="Too many wrong PINs: no start until the rider issues a new PIN or staff waive it."
    )


class TripSerializer(serializers.Serializer):
    """Read-only: every field here is set by the server."""

    id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=[s.value for s in TripStatus], read_only=True)
    pickup = PlaceSerializer(read_only=True)
    dropoff = PlaceSerializer(read_only=True)
    wheelchair_accessible = serializers.BooleanField(read_only=True)
    requested_at = serializers.DateTimeField(read_only=True)
    rider = PartySerializer(read_only=True)
    driver = TripDriverSerializer(read_only=True, allow_null=True)
    fare_estimate = MoneySerializer(read_only=True)
    fare = MoneySerializer(read_only=True, allow_null=True)
    driver_pay = MoneySerializer(read_only=True, allow_null=True)
    cancellation_fee = MoneySerializer(read_only=True, allow_null=True)
    fare_breakdown = serializers.DictField(read_only=True, allow_null=True)
    total = MoneySerializer(
        read_only=True,
        allow_null=True,
        help_text="**Extension.** What the rider is charged in all: `fare` + the pass-through fees listed in "
        "`fare_breakdown.fees` (docs/fares.md); `null` until completion.",
    )
    distance_m = serializers.IntegerField(read_only=True)
    duration_s = serializers.IntegerField(read_only=True)
    cancelled_by = serializers.ChoiceField(
        choices=["rider", "driver", "system"], allow_null=True, read_only=True
    )
    events = TripEventSerializer(many=True, read_only=True)
    route = RouteSerializer(
        read_only=True,
        allow_null=True,
        help_text="**Extension.** The planned route; `null` for a driver's ended trips (places are coarse "
        "there) and for trips planned before routes were kept.",
    )
    distance_source = serializers.ChoiceField(
        choices=["map_matched", "geodesic", "estimate"],
        allow_null=True,
        read_only=True,
        help_text="**Extension.** How `distance_m` was measured at completion; `null` before.",
    )

    reservation = ReservationSerializer(
        read_only=True,
        allow_null=True,
        help_text="**Extension.** A ride booked ahead (docs/scheduling.md): its pickup time and window; "
        "`null` for a ride requested now.",
    )
    organisation = TripOrganisationSerializer(
        read_only=True,
        allow_null=True,
        help_text="**Extension.** The organisation that booked the ride and pays for it "
        "(docs/organisations.md); `null` for a rider's own ride.",
    )

    ride_pin = RidePinSerializer(
        read_only=True,
        allow_null=True,
        help_text="**Extension.** The ride PIN (docs/safety.md): `null` when the rider asked for none; its "
        "digits only in the rider's own view.",
    )

    def to_representation(self, instance: Trip) -> dict[str, Any]:
        return trip_for(instance, viewer_id=self.context.get("viewer_id"))


def _place(point: Point, *, coarse: bool = False) -> dict[str, float]:
    if coarse:
        return {
            "lat": round(point.y, HISTORY_PRECISION_DECIMALS),
            "lng": round(point.x, HISTORY_PRECISION_DECIMALS),
        }
    return {"lat": point.y, "lng": point.x}


def _total(trip: Trip) -> dict[str, Any] | None:
    """Fare + pass-through fees, as recorded at completion (trips completed before fees had none)."""
    if trip.fare_minor is None:
        return None
    total = (trip.fare_breakdown or {}).get("total", trip.fare_minor)
    return dict(money(total, trip.currency))


def ride_pin_view(trip: Trip, *, viewer_id: uuid.UUID | None) -> dict[str, Any] | None:
    """The trip's ride PIN as `viewer_id` may see it: the digits to its rider alone (never to the driver,
    not even a driver riding their own trip), how many wrong tries are left to anyone who sees the trip."""
    if not trip.ride_pin:
        return None
    left = max(settings.ROCHDALE_RIDE_PIN_MAX_FAILURES - trip.ride_pin_failures, 0)
    shown = viewer_id is not None and viewer_id == trip.rider_id and viewer_id != trip.driver_id
    return {"pin": trip.ride_pin if shown else None, "attempts_left": left, "locked": left == 0}


def trip_for(
    trip: Trip, *, viewer_id: uuid.UUID | None, driver_location: dict[str, float] | None = None
) -> dict:
    """The trip as `viewer_id` may see it. `driver_location` may be passed by callers that hold a fresher
    position than the database (the live location path); otherwise the last flushed position is used."""
    currency = trip.currency
    is_rider = viewer_id is not None and viewer_id == trip.rider_id
    is_driver = viewer_id is not None and viewer_id == trip.driver_id
    coarse_places = is_driver and not is_rider and trip.status not in OPEN_STATUSES
    driver: dict[str, Any] | None = None
    if trip.driver_id:
        vehicle = trip.vehicle
        location = None
        if is_rider and trip.status in LOCATION_SHARING_STATUSES:
            if driver_location is not None:
                location = driver_location
            else:
                presence = DriverPresence.objects.filter(driver_id=trip.driver_id).only("location").first()
                if presence is not None and presence.location is not None:
                    location = _place(presence.location)
        driver = {
            "id": str(trip.driver_id),
            "name": trip.driver.name,
            "vehicle": None
            if vehicle is None
            else {
                "plate": vehicle.plate,
                "make": vehicle.make,
                "model": vehicle.model,
                "year": vehicle.year,
                "seats": vehicle.seats,
                "wheelchair_accessible": vehicle.wheelchair_accessible,
            },
            "location": location,
        }
    completed = trip.status == TripStatus.COMPLETED
    return {
        "id": str(trip.id),
        "status": trip.status,
        "pickup": _place(trip.pickup, coarse=coarse_places),
        "dropoff": _place(trip.dropoff, coarse=coarse_places),
        "wheelchair_accessible": trip.wheelchair_accessible,
        "requested_at": wire_timestamp(trip.requested_at),
        "rider": {"id": str(trip.rider_id), "name": trip.rider.name},
        "driver": driver,
        "fare_estimate": money(trip.fare_estimate_minor, currency),
        "fare": money(trip.fare_minor, currency) if trip.fare_minor is not None else None,
        # Both parties see what the driver earns: the co-op's split is public by design.
        "driver_pay": money(trip.driver_pay_minor, currency) if trip.driver_pay_minor is not None else None,
        "cancellation_fee": money(trip.cancellation_fee_minor, currency)
        if trip.cancellation_fee_minor is not None
        else None,
        "fare_breakdown": trip.fare_breakdown,
        "total": _total(trip),
        "distance_m": trip.measured_distance_m
        if completed and trip.measured_distance_m is not None
        else trip.estimated_distance_m,
        "duration_s": trip.measured_duration_s
        if completed and trip.measured_duration_s is not None
        else trip.estimated_duration_s,
        "cancelled_by": trip.cancelled_by,
        "events": [{"status": event.status, "at": wire_timestamp(event.at)} for event in trip.events.all()],
        # The path reveals the places as exactly as the places themselves: coarse places, no path.
        "route": None if coarse_places else route_document(trip.route_geometry, trip.router),
        "distance_source": (trip.distance_source or None) if completed else None,
        "reservation": None
        if trip.scheduled_for is None
        else {
            "scheduled_for": wire_timestamp(trip.scheduled_for),
            "window_start": wire_timestamp(trip.pickup_window_start),
            "window_end": wire_timestamp(trip.pickup_window_end),
            "claimed": trip.claimed_by_id is not None,
            "series_id": str(trip.series_id) if trip.series_id else None,
        },
        "organisation": None
        if trip.organisation_id is None
        else {
            "id": str(trip.organisation_id),
            "name": trip.organisation.name,
            "reference": "" if is_driver and not is_rider else trip.reference,
        },
        "ride_pin": ride_pin_view(trip, viewer_id=viewer_id),
    }
