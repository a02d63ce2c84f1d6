"""Driver presence: online/offline, socket connect/disconnect with a grace period, and pickup ETA lookups.

PostgreSQL keeps the durable presence row (and one PresenceSession per online stretch, for earnings);
Redis keeps the live flags the location script and the dispatch worker read. A dropped socket keeps the
driver online for `ROCHDALE_PRESENCE_GRACE_S`; reconnecting within it cancels the grace, otherwise
`sweep_presence` takes them offline.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.errors import PermissionDenied
from backend.redis import get_redis
from dispatch import live
from dispatch.models import DriverPresence, PresenceSession, PresenceStatus, Trip
from dispatch.state import DRIVER_ACTIVE_STATUSES

logger = logging.getLogger(__name__)

NEAREST_CANDIDATES = 8


def _approved_vehicle(driver_id: uuid.UUID) -> Any:
    from backend.accounts.models import DriverProfile

    profile = DriverProfile.objects.filter(user_id=driver_id).first()
    if profile is None or not profile.is_approved:
        raise PermissionDenied(
            "Your driver account is not approved yet, so you cannot go online.", code="driver_not_approved"
        )
    return profile.active_vehicle


def presence_go_online(*, driver_id: uuid.UUID) -> DriverPresence:
    """Start taking offers. Refused (`driver_not_approved`) unless staff approved the driver."""
    vehicle = _approved_vehicle(driver_id)
    now = timezone.now()
    with transaction.atomic():
        presence, _ = DriverPresence.objects.select_for_update().get_or_create(driver_id=driver_id)
        if presence.status != PresenceStatus.ONLINE:
            presence.status = PresenceStatus.ONLINE
            presence.online_since = now
            if (
                presence.idle_since is None
                or not Trip.objects.filter(
                    driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES)
                ).exists()
            ):
                presence.idle_since = now
        presence.connected = True
        presence.disconnected_at = None
        presence.updated_at = now
        presence.save()
        if not PresenceSession.objects.filter(driver_id=driver_id, ended_at__isnull=True).exists():
            try:
                with transaction.atomic():
                    PresenceSession.objects.create(driver_id=driver_id, started_at=now)
            except IntegrityError:  # a concurrent online opened it first
                pass
        active_trip = (
            Trip.objects.filter(driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES))
            .values_list("id", "rider_id")
            .first()
        )
    wav = bool(vehicle and vehicle.wheelchair_accessible)
    idle = presence.idle_since.timestamp() if presence.idle_since else now.timestamp()
    transaction.on_commit(
        lambda: _mirror_online(
            driver_id, wav=wav, vehicle_id=vehicle.id if vehicle else None, idle=idle, active_trip=active_trip
        )
    )
    return presence


def _mirror_online(
    driver_id: uuid.UUID, *, wav: bool, vehicle_id: Any, idle: float, active_trip: tuple[Any, Any] | None
) -> None:
    client = get_redis()
    key = live.driver_key(driver_id)
    trip_id, rider_id = active_trip if active_trip else ("", "")
    pipe = client.pipeline()
    pipe.hset(
        key,
        mapping={
            "online": "1",
            "wav": "1" if wav else "0",
            "vehicle": str(vehicle_id or ""),
            "idle": repr(idle),
            "trip": str(trip_id),
            "rider": str(rider_id),
        },
    )
    pipe.zrem(live.GRACE_KEY, str(driver_id))
    pipe.hmget(key, "lat", "lng")
    results = pipe.execute()
    lat, lng = results[-1]
    if lat is not None and not trip_id and abs(float(lat)) <= live.GEO_LAT_LIMIT:
        client.geoadd(live.available_key(), (float(lng), float(lat), str(driver_id)))
        if wav:
            client.geoadd(live.available_key(wav=True), (float(lng), float(lat), str(driver_id)))
    if trip_id:
        client.sadd(live.ON_TRIP_KEY, str(driver_id))
    live.post_event("on", d=driver_id)


def presence_go_offline(*, driver_id: uuid.UUID, reason: str = "driver") -> None:
    """Stop taking offers (an open offer simply runs out). Closes the online session."""
    now = timezone.now()
    with transaction.atomic():
        DriverPresence.objects.filter(driver_id=driver_id).update(
            status=PresenceStatus.OFFLINE, online_since=None, updated_at=now
        )
        PresenceSession.objects.filter(driver_id=driver_id, ended_at__isnull=True).update(ended_at=now)
    transaction.on_commit(lambda: _mirror_offline(driver_id))
    logger.info("driver %s offline (%s)", driver_id, reason)


def _mirror_offline(driver_id: uuid.UUID) -> None:
    client = get_redis()
    pipe = client.pipeline()
    pipe.hset(live.driver_key(driver_id), "online", "0")
    pipe.zrem(live.available_key(), str(driver_id))
    pipe.zrem(live.available_key(wav=True), str(driver_id))
    pipe.zrem(live.GRACE_KEY, str(driver_id))
    pipe.execute()
    live.post_event("off", d=driver_id)


def presence_connected(*, driver_id: uuid.UUID) -> None:
    """A driver socket opened: cancels any running disconnect grace."""
    client = get_redis()
    pipe = client.pipeline()
    pipe.hincrby(live.driver_key(driver_id), "conns", 1)
    pipe.zrem(live.GRACE_KEY, str(driver_id))
    pipe.execute()
    DriverPresence.objects.filter(driver_id=driver_id).update(connected=True, disconnected_at=None)


def presence_disconnected(*, driver_id: uuid.UUID) -> None:
    """A driver socket closed: when it was their last, start the grace period (they stay online)."""
    client = get_redis()
    remaining = client.hincrby(live.driver_key(driver_id), "conns", -1)
    if remaining > 0:
        return
    client.hset(live.driver_key(driver_id), "conns", 0)
    now = timezone.now()
    client.zadd(live.GRACE_KEY, {str(driver_id): time.time() + settings.ROCHDALE_PRESENCE_GRACE_S})
    DriverPresence.objects.filter(driver_id=driver_id).update(connected=False, disconnected_at=now)


def sweep_presence() -> int:
    """Take offline every online driver whose disconnect grace ran out. Returns how many went offline.

    Redis's grace set is the fast path; the PostgreSQL rows (connected=False, disconnected_at older than
    the grace) catch drivers whose grace entry was lost with Redis.
    """
    client = get_redis()
    now = time.time()
    due = {raw.decode() for raw in client.zrangebyscore(live.GRACE_KEY, "-inf", now)}
    cutoff = timezone.now() - timedelta(seconds=settings.ROCHDALE_PRESENCE_GRACE_S)
    due |= {
        str(driver_id)
        for driver_id in DriverPresence.objects.filter(
            status=PresenceStatus.ONLINE, connected=False, disconnected_at__lt=cutoff
        ).values_list("driver_id", flat=True)
    }
    gone = 0
    for driver_id in due:
        conns = client.hget(live.driver_key(driver_id), "conns")
        if conns is not None and int(conns) > 0:
            client.zrem(live.GRACE_KEY, driver_id)
            continue
        presence_go_offline(driver_id=uuid.UUID(driver_id), reason="disconnected")
        gone += 1
    _reconcile_trips(client)
    return gone


def _reconcile_trips(client: Any) -> None:
    """Free drivers whose hash still names a trip that has ended (e.g. a rider cancelled it)."""
    from dispatch.services.driving import driver_release

    on_trip = [raw.decode() for raw in client.smembers(live.ON_TRIP_KEY)]
    if not on_trip:
        return
    pipe = client.pipeline()
    for driver_id in on_trip:
        pipe.hget(live.driver_key(driver_id), "trip")
    trips = {
        driver: (raw.decode() if raw else "") for driver, raw in zip(on_trip, pipe.execute(), strict=True)
    }
    held = {trip_id for trip_id in trips.values() if trip_id}
    still_active = {
        str(trip_id)
        for trip_id in Trip.objects.filter(
            id__in=held, status__in=sorted(DRIVER_ACTIVE_STATUSES)
        ).values_list("id", flat=True)
    }
    for driver_id, trip_id in trips.items():
        if trip_id not in still_active:
            driver_release(driver_id=uuid.UUID(driver_id), trip_id=uuid.UUID(trip_id) if trip_id else None)


def presence_is_online(*, driver_id: uuid.UUID) -> bool:
    return DriverPresence.objects.filter(driver_id=driver_id, status=PresenceStatus.ONLINE).exists()


def nearest_pickup_eta_s(*, lat: float, lng: float, wheelchair_accessible: bool) -> int | None:
    """The pickup ETA (s) of the nearest available driver with a fresh fix, for fare estimates; None when
    nobody is near. A GEOSEARCH on the available set plus the shared ETA model; never touches PostgreSQL."""
    from dispatch.eta_model import pickup_eta_s

    if abs(lat) > live.GEO_LAT_LIMIT:
        return None
    client = get_redis()
    try:
        found = client.geosearch(
            live.available_key(wav=wheelchair_accessible),
            longitude=lng,
            latitude=lat,
            radius=settings.ROCHDALE_SEARCH_RADIUS_M,
            unit="m",
            sort="ASC",
            count=NEAREST_CANDIDATES,
            withdist=True,
        )
    except Exception:
        logger.warning("nearest_pickup_eta_s: Redis unavailable", exc_info=True)
        return None
    if not found:
        return None
    pipe = client.pipeline()
    for member, _distance in found:
        pipe.hmget(live.driver_key(member.decode()), "t", "online", "trip")
    freshest_allowed = time.time() - settings.ROCHDALE_FIX_MAX_AGE_S
    for (_member, distance), (fix_at, online, trip) in zip(found, pipe.execute(), strict=True):
        if online != b"1" or trip or fix_at is None or float(fix_at) < freshest_allowed:
            continue
        return pickup_eta_s(float(distance))
    return None
