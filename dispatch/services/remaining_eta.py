"""The countdown a rider sees on `driver.location`: how long, by road, until the driver reaches them (while
the trip is assigned) or the dropoff (while it is in progress).

A road query per fix would cost the socket server a matrix call every few seconds per trip, so each trip's
ETA is computed at most every ROCHDALE_REMAINING_ETA_REFRESH_S from the driver's fix (one read of the trip,
one matrix call, on the server's thread pool) and counted down in between. A trip whose driver has arrived,
or that has ended, has no countdown; a move of the trip forgets its countdown (`forget_countdown`), so the
next fix computes the new one. The countdown is a courtesy: when it cannot be computed in
COMPUTE_BUDGET_S (the database or the engine is slow or down) the frame carries none, and it is not tried
again before the refresh interval, so the fix path never waits on it for long.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from backend.concurrency import database_call
from dispatch.models import Trip
from dispatch.roads.choice import road_router
from dispatch.roads.engine import LatLng
from dispatch.state import TripStatus

# Entries older than this are dropped when the table grows past MAX_TRACKED_TRIPS: ended trips stop sending.
STALE_AFTER_S = 600.0
MAX_TRACKED_TRIPS = 20_000
COMPUTE_BUDGET_S = 0.5

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Countdown:
    eta_s: int
    to: str  # "pickup" or "dropoff"


@dataclass(frozen=True, slots=True)
class _Known:
    computed_at: float  # time.monotonic()
    countdown: Countdown | None


_known: dict[str, _Known] = {}


def _computed(trip_id: str, position: LatLng) -> Countdown | None:
    row = Trip.objects.filter(id=uuid.UUID(trip_id)).values_list("status", "pickup", "dropoff").first()
    if row is None:
        return None
    status, pickup, dropoff = row
    if status == TripStatus.ASSIGNED:
        to, place = "pickup", pickup
    elif status == TripStatus.IN_PROGRESS:
        to, place = "dropoff", dropoff
    else:
        return None
    [leg] = road_router().legs_to([position], (place.y, place.x), timezone.now())
    if leg is None:
        return None
    return Countdown(eta_s=leg.duration_s, to=to)


def forget_countdown(trip_id: uuid.UUID | str) -> None:
    """The trip moved (arrived, started, ended): its countdown is for a place it no longer drives to."""
    _known.pop(str(trip_id), None)


def _forget_stale(now: float) -> None:
    for trip_id in [t for t, known in _known.items() if now - known.computed_at > STALE_AFTER_S]:
        del _known[trip_id]


async def remaining_eta(trip_id: str, position: LatLng) -> Countdown | None:
    """The trip's countdown from the driver at `position`: recomputed by road when the last one is older
    than the refresh interval, else the last one less the time since."""
    now = time.monotonic()
    known = _known.get(trip_id)
    if known is None or now - known.computed_at >= settings.ROCHDALE_REMAINING_ETA_REFRESH_S:
        try:
            async with asyncio.timeout(COMPUTE_BUDGET_S):
                countdown = await database_call(_computed)(trip_id, position)
        except Exception:  # a courtesy to the rider must never fail the driver's fix
            logger.warning("trip %s: no countdown this time", trip_id, exc_info=True)
            countdown = None
        if len(_known) >= MAX_TRACKED_TRIPS:
            _forget_stale(now)
        _known[trip_id] = known = _Known(now, countdown)
    if known.countdown is None:
        return None
    elapsed = math.floor(now - known.computed_at)
    return Countdown(eta_s=max(known.countdown.eta_s - elapsed, 0), to=known.countdown.to)
