"""Fare estimates: the quote a rider sees before requesting, priced by the policy in force.

The route's distance, duration and path come from the process's road router (dispatch/roads/, docs/roads.md):
Valhalla on the city's streets where its tiles are built, the shared ETA model otherwise, so the quote, the
offer a driver sees and the simulator agree. The pickup ETA is the road ETA of the nearest free drivers.
An estimate is kept ROCHDALE_ESTIMATE_TTL_S (5 minutes); a trip that names it pays the quoted fare under the
tolerance rule of backend/fares/pricing.py (`fare_with_quote_tolerance`, applied at completion).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import LineString, Point
from django.utils import timezone
from django.utils.translation import gettext

from backend.errors import Unprocessable
from backend.fares.models import FarePolicyVersion
from backend.fares.pricing import quote_fare, trip_floor
from backend.fares.selectors import policy_of, policy_version_in_force
from dispatch.eta_model import pickup_eta_by_road_s
from dispatch.live import nearest_available
from dispatch.models import FareEstimate
from dispatch.roads.choice import road_router
from dispatch.roads.engine import LatLng
from dispatch.roads.routers import RoadRoute
from dispatch.selectors import places_outside_service_area


@dataclass(frozen=True)
class Place:
    lat: float
    lng: float

    def as_point(self) -> Point:
        return Point(self.lng, self.lat, srid=4326)


@dataclass(frozen=True)
class RouteQuote:
    """A route priced under one policy version: what an estimate stores and a trip copies."""

    distance_m: int
    duration_s: int
    fare_minor: int
    driver_pay_minimum_minor: int
    currency: str
    breakdown: list[dict[str, Any]]
    policy_version: FarePolicyVersion
    route: RoadRoute

    @property
    def route_geometry(self) -> LineString | None:
        return route_line(self.route.geometry)


def route_line(points: tuple[LatLng, ...]) -> LineString | None:
    """The path as a PostGIS LineString (lng, lat order), or None when there is no path to draw."""
    if len(points) < 2:
        return None
    return LineString([(lng, lat) for lat, lng in points], srid=4326)


def require_in_service_area(*, pickup: Place, dropoff: Place) -> None:
    """Raise 422 `outside_service_area` unless active service areas cover both places."""
    outside = places_outside_service_area(pickup=(pickup.lat, pickup.lng), dropoff=(dropoff.lat, dropoff.lng))
    if outside:
        # One whole sentence per case, so each language can word it its own way.
        if outside == ["pickup"]:
            message = gettext("We do not serve this place yet: pickup is outside our service area.")
        elif outside == ["dropoff"]:
            message = gettext("We do not serve this place yet: dropoff is outside our service area.")
        else:
            message = gettext(
                "We do not serve these places yet: pickup and dropoff are outside our service area."
            )
        raise Unprocessable(message, code="outside_service_area", details={"places": outside})


def route_estimate(*, pickup: Place, dropoff: Place, at: datetime) -> RoadRoute:
    """The drive between two places, by road where the router can (never fails: the model answers)."""
    return road_router().route((pickup.lat, pickup.lng), (dropoff.lat, dropoff.lng), at)


def route_quote(
    *, pickup: Place, dropoff: Place, wheelchair_accessible: bool, at: datetime | None = None
) -> RouteQuote:
    """Price the route under the policy in force at `at` (now by default)."""
    moment = at or timezone.now()
    version = policy_version_in_force(moment)
    policy = policy_of(version)
    route = route_estimate(pickup=pickup, dropoff=dropoff, at=moment)
    distance_m, duration_s = max(route.distance_m, 0), max(route.duration_s, 0)
    quote = quote_fare(policy, distance_m=distance_m, duration_s=duration_s)
    floor = trip_floor(
        policy, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=wheelchair_accessible
    )
    return RouteQuote(
        distance_m=distance_m,
        duration_s=duration_s,
        fare_minor=quote.fare,
        driver_pay_minimum_minor=floor,
        currency=quote.currency,
        breakdown=quote.breakdown_document(),
        policy_version=version,
        route=route,
    )


def pickup_eta_near(*, pickup: Place, wheelchair_accessible: bool, at: datetime | None = None) -> int | None:
    """Seconds for the soonest of the nearest available drivers to reach the pickup by road (one matrix
    call over them, plus the model's pickup overhead), or None when no driver is near."""
    near = nearest_available(lat=pickup.lat, lng=pickup.lng, wheelchair_accessible=wheelchair_accessible)
    if not near:
        return None
    legs = road_router().legs_to(
        [position for _, _, position in near], (pickup.lat, pickup.lng), at or timezone.now()
    )
    durations = [leg.duration_s for leg in legs if leg is not None]
    if not durations:
        return None
    return pickup_eta_by_road_s(min(durations))


def estimate_create(
    *,
    rider_id: uuid.UUID,
    pickup: Place,
    dropoff: Place,
    wheelchair_accessible: bool = False,
    at: datetime | None = None,
) -> FareEstimate:
    """Quote a trip for a rider and keep the quote for ROCHDALE_ESTIMATE_TTL_S.

    Raises Unprocessable `outside_service_area`, ServiceUnavailable `no_fare_policy`."""
    moment = at or timezone.now()
    require_in_service_area(pickup=pickup, dropoff=dropoff)
    quote = route_quote(
        pickup=pickup, dropoff=dropoff, wheelchair_accessible=wheelchair_accessible, at=moment
    )
    return FareEstimate.objects.create(
        rider_id=rider_id,
        pickup=pickup.as_point(),
        dropoff=dropoff.as_point(),
        wheelchair_accessible=wheelchair_accessible,
        distance_m=quote.distance_m,
        duration_s=quote.duration_s,
        route_geometry=quote.route_geometry,
        router=quote.route.router,
        pickup_eta_s=pickup_eta_near(pickup=pickup, wheelchair_accessible=wheelchair_accessible, at=moment),
        fare_minor=quote.fare_minor,
        driver_pay_minimum_minor=quote.driver_pay_minimum_minor,
        currency=quote.currency,
        breakdown=quote.breakdown,
        policy_version=quote.policy_version,
        created_at=moment,
        expires_at=moment + timedelta(seconds=settings.ROCHDALE_ESTIMATE_TTL_S),
    )
