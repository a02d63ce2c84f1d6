"""What the live map shows, read from the hot state (Redis driver hashes) and PostgreSQL (offers, trips).

One snapshot describes the whole city at one moment; the map socket sends one about every second, however
many location fixes arrived in between.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from django.utils import timezone

from backend.redis import get_redis
from dispatch import live
from dispatch.models import DriverPresence, Offer, OfferStatus, ServiceArea, Trip
from dispatch.simulation.city import City
from dispatch.state import OPEN_STATUSES

# A driver whose last fix is older than this is not drawn (the app is gone; presence will notice).
STALE_FIX_S = 120.0
SCAN_COUNT = 500


@lru_cache(maxsize=1)
def demo_city() -> City:
    return City.generate()


@lru_cache(maxsize=1)
def street_layer() -> dict[str, Any]:
    """The demo city's streets for drawing (they never change while the process runs)."""
    city = demo_city()
    south, west, north, east = city.bounds
    return {
        "streets": city.street_polylines(precision=5),
        "bounds": {"south": south, "west": west, "north": north, "east": east},
    }


def service_areas() -> list[list[list[float]]]:
    """Active service areas' outer rings as [[lat, lng], ...] (drawn under the streets)."""
    rings: list[list[list[float]]] = []
    for area in ServiceArea.objects.filter(is_active=True):
        for polygon in area.area:
            rings.append([[round(lat, 5), round(lng, 5)] for lng, lat in polygon.exterior_ring.coords])
    return rings


def _live_drivers() -> dict[str, dict[str, Any]]:
    redis = get_redis()
    keys = list(redis.scan_iter(match=f"{live.DRIVER_PREFIX}*", count=SCAN_COUNT))
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
        driver_id = key.decode().removeprefix(live.DRIVER_PREFIX)
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


def build_snapshot() -> dict[str, Any]:
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
    trips = [
        {
            "id": str(trip.id)[:8],
            "status": trip.status,
            "pickup": [round(trip.pickup.y, 6), round(trip.pickup.x, 6)],
            "dropoff": [round(trip.dropoff.y, 6), round(trip.dropoff.x, 6)],
            "driver": str(trip.driver_id)[:8] if trip.driver_id else None,
        }
        for trip in Trip.objects.filter(status__in=sorted(OPEN_STATUSES)).only(
            "id", "status", "pickup", "dropoff", "driver_id"
        )[:2000]
    ]
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
    }
