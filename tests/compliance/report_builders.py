"""Zones and a month of trips for the regulator's reports, made through the real services: zones through
the loader, trips through tests/fares/builders.py (the real status writer and settlement) under the New
York example policy, with its congestion and airport fee zones as service areas."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.gis.geos import LineString, MultiPolygon, Point, Polygon

from backend.fares.models import FarePolicyVersion
from backend.fares.services import policy_version_create
from dispatch.models import ServiceArea, Trip
from tests.fares.builders import complete_trip, ensure_seed_policy, in_progress_trip

NEW_YORK_POLICY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fare-policy-new-york.json"

# (lng, lat) of the places the month's trips use.
MIDTOWN = (-73.9855, 40.7580)
UPPER_EAST_SIDE = (-73.9555, 40.7780)
JFK = (-73.7781, 40.6413)
NEWARK = (-74.1724, 40.7357)  # outside every zone of these tests (New Jersey)
JERSEY_CITY = (-74.0776, 40.7282)  # outside every zone too
CONGESTION_SQUARE = (-73.9705, 40.7680)  # halfway between Midtown and the Upper East Side

# TLC-like zones: LocationID, borough, zone, service zone, centre, half side in degrees.
TLC_LIKE_ZONES = [
    (161, "Manhattan", "Midtown Center", "Yellow Zone", MIDTOWN, 0.006),
    (236, "Manhattan", "Upper East Side North", "Yellow Zone", UPPER_EAST_SIDE, 0.006),
    (132, "Queens", "JFK Airport", "Airports", JFK, 0.02),
]


def square_ring(centre: tuple[float, float], half: float) -> list[list[float]]:
    lng, lat = centre
    return [
        [lng - half, lat - half],
        [lng + half, lat - half],
        [lng + half, lat + half],
        [lng - half, lat + half],
        [lng - half, lat - half],
    ]


def zone_feature(location_id: object, borough: str, zone: str, service_zone: str, ring: list) -> dict:
    return {
        "type": "Feature",
        "properties": {
            "LocationID": location_id,
            "borough": borough,
            "zone": zone,
            "service_zone": service_zone,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def zones_file(tmp_path: Path, features: list[dict], name: str = "zones.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def tlc_like_zones_file(tmp_path: Path) -> Path:
    return zones_file(
        tmp_path,
        [
            zone_feature(location_id, borough, zone, service_zone, square_ring(centre, half))
            for location_id, borough, zone, service_zone, centre, half in TLC_LIKE_ZONES
        ],
    )


def square(centre: tuple[float, float], half: float) -> MultiPolygon:
    return MultiPolygon(Polygon(square_ring(centre, half), srid=4326), srid=4326)


def new_york_fee_zones() -> None:
    """The example policy's two fee zones, inactive (they price, they do not serve)."""
    ServiceArea.objects.create(
        name="Manhattan south of 96th St", area=square(CONGESTION_SQUARE, 0.002), is_active=False
    )
    ServiceArea.objects.create(name="JFK and LaGuardia airports", area=square(JFK, 0.02), is_active=False)


def new_york_policy() -> FarePolicyVersion:
    ensure_seed_policy()
    return policy_version_create(
        document=json.loads(NEW_YORK_POLICY.read_text()), effective_at=None, source="founding"
    )


def new_york_trip(
    policy: FarePolicyVersion,
    *,
    rider,
    driver,
    pickup: tuple[float, float],
    dropoff: tuple[float, float],
    via: tuple[float, float] | None = None,
    started_at: datetime,
    assigned_after_s: int = 120,
    arrived_after_s: int = 420,
    distance_m: int,
    duration_s: int,
    wav: bool = False,
    settle: bool = True,
    organisation_id=None,
) -> Trip:
    """A trip completed through the real services: the rider asked 8 minutes before `started_at`, a driver
    was assigned and arrived the given seconds after the request, the planned route runs through `via` when
    given, and the trip ends `duration_s` after pickup; billed to `organisation_id` when given."""
    requested_at = started_at - timedelta(minutes=8)
    trip = in_progress_trip(
        rider=rider,
        driver=driver,
        policy_version=policy,
        wav=wav,
        estimated_distance_m=distance_m,
        estimated_duration_s=duration_s,
        started_at=started_at,
        assigned_at=requested_at + timedelta(seconds=assigned_after_s),
    )
    points = [pickup, via, dropoff] if via else [pickup, dropoff]
    Trip.objects.filter(id=trip.id).update(
        pickup=Point(*pickup, srid=4326),
        dropoff=Point(*dropoff, srid=4326),
        route_geometry=LineString(points, srid=4326),
        requested_at=requested_at,
        arrived_at=requested_at + timedelta(seconds=arrived_after_s),
        **({"organisation_id": organisation_id, "payer": "organisation"} if organisation_id else {}),
    )
    trip.refresh_from_db()
    completed_at = started_at + timedelta(seconds=duration_s)
    if not settle:
        return _complete_without_settling(trip, distance_m=distance_m, duration_s=duration_s, at=completed_at)
    return complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=completed_at)


def _complete_without_settling(trip: Trip, *, distance_m: int, duration_s: int, at: datetime) -> Trip:
    """A completion whose fare entry is missing (what the report must list, never drop): the status writer
    alone, as if settlement had been lost."""
    from dispatch.money.settlement import completion_fields
    from dispatch.services.transitions import trip_transition
    from dispatch.state import TripStatus

    fields = completion_fields(trip=trip, distance_m=distance_m, duration_s=duration_s)
    fields.update(completed_at=at, ended_at=at)
    return trip_transition(trip_id=trip.id, to=TripStatus.COMPLETED, actor_id=trip.driver_id, fields=fields)
