"""What the live map shows, read from the hot state (Redis driver hashes) and PostgreSQL (offers, trips).

One snapshot describes the whole city at one moment; the map socket sends one about every second, however
many location fixes arrived in between.

Each open trip carries its planned route (Trip.route_geometry, along the streets) by a short `route_key`
(a digest PostgreSQL computes, so unchanged routes are never loaded), and the route's points only when
the receiver does not have them yet: a socket sends a route once, then the key alone; `snapshot.json`
sends every route. A trip planned before routes were stored has none (`route_key` null) and is drawn as a
straight line from pickup to dropoff.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from typing import Any

from django.contrib.gis.geos import LineString
from django.db.models import CharField, F, Func
from django.db.models.functions import Left
from django.utils import timezone

from backend.redis import get_redis
from dispatch import live
from dispatch.models import DriverPresence, Offer, OfferStatus, Trip
from dispatch.safety_selectors import safety_alerts
from dispatch.safety_serializers import alert_for_staff
from dispatch.state import OPEN_STATUSES

# A driver whose last fix is older than this is not drawn (the app is gone; presence will notice).
STALE_FIX_S = 120.0
SCAN_COUNT = 500
MAX_TRIPS = 2000
MAX_ALERTS = 50
# Routes are drawn, not measured: points closer than about a metre to the line through their neighbours
# add nothing on screen (Valhalla's shapes carry one every few metres along a straight street).
ROUTE_SIMPLIFY_DEG = 1e-5
ROUTE_PRECISION = 5
ROUTE_KEY_LENGTH = 12


def route_key_expression() -> Func:
    """md5 of the route's WKB, in SQL: changes whenever the route is re-planned, costs no geometry load."""
    digest = Func(Func(F("route_geometry"), function="ST_AsBinary"), function="md5", output_field=CharField())
    return Left(digest, ROUTE_KEY_LENGTH)


def route_points(geometry: LineString) -> list[list[float]]:
    """A route as [[lat, lng], ...] for drawing: simplified, about a metre of precision, ends kept."""
    drawn = geometry.simplify(ROUTE_SIMPLIFY_DEG, preserve_topology=False)
    if not isinstance(drawn, LineString) or drawn.num_points < 2:
        drawn = geometry
    return [[round(lat, ROUTE_PRECISION), round(lng, ROUTE_PRECISION)] for lng, lat, *_ in drawn.coords]


def _routes_for(trip_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[list[float]]]:
    if not trip_ids:
        return {}
    rows = Trip.objects.filter(id__in=trip_ids, route_geometry__isnull=False).values_list(
        "id", "route_geometry"
    )
    return {trip_id: route_points(geometry) for trip_id, geometry in rows}


def _live_drivers() -> dict[str, dict[str, Any]]:
    redis = get_redis()
    prefix = live.driver_prefix()
    keys = list(redis.scan_iter(match=f"{prefix}*", count=SCAN_COUNT))
    if not keys:
        return {}
    pipeline = redis.pipeline(transaction=False)
    for key in keys:
        pipeline.hgetall(key)
    now = time.time()
    drivers: dict[str, dict[str, Any]] = {}
    for key, raw in zip(keys, pipeline.execute(), strict=True):
        state = live.decode_hash(raw)
        online, trip = state.get("online") == "1", state.get("trip", "")
        if not (online or trip) or "lat" not in state:
            continue
        try:
            fix_at = float(state.get("t", "0"))
            lat, lng = float(state["lat"]), float(state["lng"])
            heading = float(state.get("h") or 0.0)
        except ValueError:
            continue
        if now - fix_at > STALE_FIX_S:
            continue
        driver_id = key.decode().removeprefix(prefix)
        drivers[driver_id] = {
            "lat": round(lat, 6),
            "lng": round(lng, 6),
            "heading": round(heading),
            "state": "on_trip" if trip else "free",
            "wav": state.get("wav") == "1",
        }
    return drivers


def _presence_drivers(exclude: set[str]) -> dict[str, dict[str, Any]]:
    """Online drivers Redis knows nothing about (after a Redis restart): their last flushed position."""
    cutoff = timezone.now() - timezone.timedelta(seconds=STALE_FIX_S)
    drivers: dict[str, dict[str, Any]] = {}
    rows = DriverPresence.objects.filter(status="online", location__isnull=False, fix_at__gte=cutoff)
    for presence in rows.only("driver_id", "location", "heading"):
        driver_id = str(presence.driver_id)
        if driver_id in exclude:
            continue
        drivers[driver_id] = {
            "lat": round(presence.location.y, 6),
            "lng": round(presence.location.x, 6),
            "heading": round(presence.heading or 0.0),
            "state": "free",
            "wav": False,
        }
    return drivers


def build_snapshot(routes_known: Collection[str] | None = None) -> dict[str, Any]:
    """The city now. `routes_known`: route keys the receiver has already (their points are left out);
    None sends every route."""
    drivers = _live_drivers()
    drivers.update(_presence_drivers(set(drivers)))
    on_trip = {
        str(driver_id)
        for driver_id in Trip.objects.filter(
            status__in=["assigned", "arrived", "in_progress"], driver__isnull=False
        ).values_list("driver_id", flat=True)
    }
    offered = {
        str(driver_id)
        for driver_id in Offer.objects.filter(status=OfferStatus.OPEN).values_list("driver_id", flat=True)
    }
    for driver_id, driver in drivers.items():
        if driver_id in on_trip:
            driver["state"] = "on_trip"
        elif driver_id in offered:
            driver["state"] = "offered"
        elif driver["state"] == "on_trip":
            driver["state"] = "free"  # the hash lags the trip's end by a moment
    open_trips = list(
        Trip.objects.filter(status__in=sorted(OPEN_STATUSES))
        .only("id", "status", "pickup", "dropoff", "driver_id")
        .annotate(route_key=route_key_expression())[:MAX_TRIPS]
    )
    known = set(routes_known or ())
    routes = _routes_for(
        [
            trip.id
            for trip in open_trips
            if trip.route_key and (routes_known is None or trip.route_key not in known)
        ]
    )
    trips = []
    for trip in open_trips:
        entry: dict[str, Any] = {
            "id": str(trip.id)[:8],
            "status": trip.status,
            "pickup": [round(trip.pickup.y, 6), round(trip.pickup.x, 6)],
            "dropoff": [round(trip.dropoff.y, 6), round(trip.dropoff.x, 6)],
            "driver": str(trip.driver_id)[:8] if trip.driver_id else None,
            "route_key": trip.route_key,
        }
        if trip.id in routes:
            entry["route"] = routes[trip.id]
        trips.append(entry)
    counts = {"free": 0, "offered": 0, "on_trip": 0}
    for driver in drivers.values():
        counts[driver["state"]] += 1
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    counts["trips_open"] = len(trips)
    counts["completed_today"] = Trip.objects.filter(status="completed", completed_at__gte=today).count()
    return {
        "type": "snapshot",
        "at": timezone.now().isoformat(),
        "drivers": [{"id": driver_id[:8], **driver} for driver_id, driver in sorted(drivers.items())],
        "trips": trips,
        "counts": counts,
        # SOS alerts not yet resolved, newest first (docs/safety.md): the banner and markers resync from here.
        "alerts": [alert_for_staff(alert) for alert in safety_alerts(status="unresolved")[:MAX_ALERTS]],
    }
