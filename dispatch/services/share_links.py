"""Share-trip links (docs/safety.md): the trip's rider makes an expiring, unguessable link for a friend,
who follows the ride with it until the trip ends.

The token is 32 random bytes (`secrets.token_urlsafe`), shown once when the link is made; only its SHA-256 is
stored, so the table opens no trip. A link works until it expires (ROCHDALE_SHARE_LINK_TTL_S unless the
rider asks for less, at most ROCHDALE_SHARE_LINK_MAX_TTL_S), its rider revokes it, or the trip ends; at most
ROCHDALE_SHARE_LINKS_PER_TRIP work at once for one trip (MAX_LINKS_EVER made in all), decided under the
trip's row lock. Every way a link stops working answers the same 404 (`share_link_not_found`).

The holder sees the car's position only while the driver heads to the pickup or drives the ride, and the
ETA (by road from the driver's last fix, computed at most every ROCHDALE_REMAINING_ETA_REFRESH_S per trip
and counted down in between, through Redis so every server process shares one computation).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import Conflict, InvalidInput, NotFound
from backend.redis import REDIS_UNREACHABLE, get_redis
from backend.timestamps import wire_timestamp
from dispatch import live
from dispatch.models import DriverPresence, Trip, TripShareLink
from dispatch.roads.choice import road_router
from dispatch.safety_selectors import share_token_digest, shared_trip_link
from dispatch.safety_serializers import shared_trip_view
from dispatch.state import FINAL_STATUSES, TripStatus

logger = logging.getLogger(__name__)

MIN_TTL_S = 300
# However many are revoked: a trip is not a place to mint links without end.
MAX_LINKS_EVER = 10
# While the trip is in one of these the link shows where the car is: on its way to the pickup, or driving
# the ride. Not while it waits at the pickup (that would show the pickup's exact place).
CAR_SHOWN_STATUSES = frozenset({TripStatus.ASSIGNED, TripStatus.IN_PROGRESS})
# A fix older than this is not "where the car is" any more.
STALE_CAR_S = 120.0
ETA_KEY_PREFIX = "rd:share:eta:"


def share_link_create(
    *, rider_id: uuid.UUID, trip_id: uuid.UUID, expires_in_s: int | None = None
) -> tuple[TripShareLink, str]:
    """Make a link to the rider's trip; returns it and its token (shown to the rider once, never stored).

    Raises NotFound `trip_not_found` for anyone else's trip, Conflict `share_trip_ended` for a trip that has
    ended, Conflict `share_link_limit` (`details.max`) when the trip has as many working links as allowed,
    InvalidInput for a lifetime out of range."""
    ttl_s = settings.ROCHDALE_SHARE_LINK_TTL_S if expires_in_s is None else expires_in_s
    longest = settings.ROCHDALE_SHARE_LINK_MAX_TTL_S
    if not MIN_TTL_S <= ttl_s <= longest:
        raise InvalidInput(
            _("A link works for %(min)d to %(max)d seconds.") % {"min": MIN_TTL_S, "max": longest},
            details={
                "expires_in_s": [_("Between %(min)d and %(max)d.") % {"min": MIN_TTL_S, "max": longest}]
            },
        )
    now = timezone.now()
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update()
            .filter(id=trip_id, rider_id=rider_id)
            .only("id", "status")
            .first()
        )
        if trip is None:
            raise NotFound(_("No such trip."), code="trip_not_found")
        if trip.status in FINAL_STATUSES:
            raise Conflict(
                _("The trip has ended: there is nothing left to follow."),
                code="share_trip_ended",
                details={"status": trip.status},
            )
        links = TripShareLink.objects.filter(trip_id=trip.id)
        working = links.filter(revoked_at__isnull=True, expires_at__gt=now).count()
        allowed = settings.ROCHDALE_SHARE_LINKS_PER_TRIP
        if working >= allowed or links.count() >= MAX_LINKS_EVER:
            raise Conflict(
                _("This trip has as many share links as it may: revoke one first."),
                code="share_link_limit",
                details={"max": allowed},
            )
        token = secrets.token_urlsafe(32)
        link = TripShareLink.objects.create(
            trip_id=trip.id,
            token_sha256=share_token_digest(token),
            created_by_id=rider_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    return link, token


def share_link_revoke(*, rider_id: uuid.UUID, trip_id: uuid.UUID, link_id: uuid.UUID) -> TripShareLink:
    """The rider stops a link at once (revoking a revoked link changes nothing). Raises NotFound
    `share_link_not_found` for a link that is not one of this rider's links to this trip."""
    link = TripShareLink.objects.filter(id=link_id, trip_id=trip_id, trip__rider_id=rider_id).first()
    if link is None:
        raise NotFound(_("No such share link."), code="share_link_not_found")
    TripShareLink.objects.filter(id=link.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    link.refresh_from_db(fields=["revoked_at"])
    return link


def shared_trip_progress(*, token: str) -> dict[str, Any]:
    """What the link's holder sees now (`dispatch.safety_serializers.shared_trip_view`); raises
    ShareLinkNotFound (`share_link_not_found`) for every link that does not show a trip."""
    link = shared_trip_link(token=token)
    trip = link.trip
    now = timezone.now()
    car = _car_position(trip) if trip.status in CAR_SHOWN_STATUSES and trip.driver_id else None
    eta = _eta(trip, car) if car is not None else None
    return shared_trip_view(link, car=car, eta=eta, now=now)


def _car_position(trip: Trip) -> dict[str, Any] | None:
    """The driver's last accepted fix: the live one from Redis, else the last one flushed to PostGIS."""
    try:
        state = live.driver_live_state(trip.driver_id)
    except REDIS_UNREACHABLE:
        state = {}
    try:
        fix_at = float(state["t"])
        lat, lng = float(state["lat"]), float(state["lng"])
        heading = float(state["h"]) if state.get("h") else None
    except (KeyError, ValueError):
        presence = DriverPresence.objects.filter(driver_id=trip.driver_id).only("location", "fix_at").first()
        if presence is None or presence.location is None or presence.fix_at is None:
            return None
        fix_at, lat, lng, heading = (
            presence.fix_at.timestamp(),
            presence.location.y,
            presence.location.x,
            None,
        )
    if time.time() - fix_at > STALE_CAR_S:
        return None
    return {
        "lat": round(lat, 5),
        "lng": round(lng, 5),
        "heading": None if heading is None else round(heading),
        "at": wire_timestamp(datetime.fromtimestamp(fix_at, tz=UTC)),
    }


def _eta(trip: Trip, car: dict[str, Any]) -> dict[str, Any] | None:
    """Seconds by road to the pickup (while assigned) or the dropoff (in progress), shared by every process
    through Redis for ROCHDALE_REMAINING_ETA_REFRESH_S and counted down in between; None when the road
    engine has no answer (the page then shows none)."""
    to, place = ("pickup", trip.pickup) if trip.status == TripStatus.ASSIGNED else ("dropoff", trip.dropoff)
    key = f"{ETA_KEY_PREFIX}{trip.id}:{to}"
    refresh_s = settings.ROCHDALE_REMAINING_ETA_REFRESH_S
    now = time.time()
    try:
        cached = get_redis().get(key)
    except REDIS_UNREACHABLE:
        cached = None
    if cached is not None:
        known = json.loads(cached)
        return {"seconds": max(int(known["seconds"] - (now - known["at"])), 0), "to": to}
    try:
        [leg] = road_router().legs_to([(car["lat"], car["lng"])], (place.y, place.x), timezone.now())
    except Exception:  # a courtesy: the page shows no ETA rather than failing
        logger.warning("trip %s: no ETA for its share link this time", trip.id, exc_info=True)
        return None
    if leg is None:
        return None
    with contextlib.suppress(*REDIS_UNREACHABLE):
        get_redis().set(key, json.dumps({"seconds": leg.duration_s, "at": now}), ex=max(int(refresh_s), 1))
    return {"seconds": leg.duration_s, "to": to}
