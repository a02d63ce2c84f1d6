"""Driver presence: online/offline, socket connect/disconnect with a grace period, and pickup ETA lookups.

PostgreSQL keeps the durable presence row (and one PresenceSession per online stretch, for earnings);
Redis keeps the live flags the location script and the dispatch worker read. A dropped socket keeps the
driver online for `ROCHDALE_PRESENCE_GRACE_S`; reconnecting within it cancels the grace, otherwise
`sweep_presence` takes them offline.

Sockets survive their server's crash the same way. Each server process holds a lease (its id in
`rd:srv:leases`, scored with when it last renewed, every `ROCHDALE_SERVER_LEASE_RENEW_S`;
dispatch/server_lease.py) and registers every driver socket it owns under that id. A server that has not
renewed for `ROCHDALE_SERVER_LEASE_S` is dead: `sweep_presence` claims its sockets and closes each one as a
clean disconnect would, the grace starting when the server missed its renewal.

Keys (beside those in dispatch/live.py):
- `rd:srv:leases`            sorted set: server id -> when it last renewed its lease (epoch s)
- `rd:srv:socks:{server}`    hash: socket id -> driver id, the driver sockets that server holds open
- `rd:srv:dead`              hash: server id -> its last renewal, for dead servers being swept
- `rd:srv:dead:{server}`     hash: the dead server's sockets, not yet closed by the sweep
- `rd:drvsocks:{driver}`     set of "server/socket": the driver's open sockets, whichever server holds
                             them (its size is mirrored to `conns` in the driver hash)
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from backend.accounts.models import DriverProfile, Vehicle
from backend.errors import PermissionDenied
from backend.redis import AsyncRedis, SyncRedis, get_redis
from dispatch import live
from dispatch.models import DriverPresence, PresenceSession, PresenceStatus, Trip
from dispatch.services.eligibility import driver_eligibility, eligibility_checked, eligibility_refusal
from dispatch.state import DRIVER_ACTIVE_STATUSES

logger = logging.getLogger(__name__)


def _approved_vehicle(driver_id: uuid.UUID) -> Vehicle | None:
    profile = DriverProfile.objects.filter(user_id=driver_id).first()
    if profile is None or not profile.is_approved:
        raise PermissionDenied(
            gettext("Your driver account is not approved yet, so you cannot go online."),
            code="driver_not_approved",
        )
    return profile.active_vehicle


def presence_go_online(*, driver_id: uuid.UUID) -> DriverPresence:
    """Start taking offers. Refused (`driver_not_approved`) unless staff approved the driver, and with the
    first eligibility problem's code (`document_missing`, `document_pending`, `document_expired`,
    `hours_limit_reached`) while the regulator profile's documents or hours limits keep them from work;
    a driver on a trip may still come (back) online to finish it (offer rounds skip them afterwards)."""
    vehicle = _approved_vehicle(driver_id)
    now = timezone.now()
    if eligibility_checked() and not _on_a_trip(driver_id):
        problems = driver_eligibility(driver_id=driver_id, at=now)
        if problems:
            raise eligibility_refusal(problems)
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
    driver_id: uuid.UUID,
    *,
    wav: bool,
    vehicle_id: uuid.UUID | None,
    idle: float,
    active_trip: tuple[uuid.UUID, uuid.UUID] | None,
) -> None:
    client = get_redis()
    key = live.driver_key(driver_id)
    trip_id, rider_id = active_trip if active_trip else ("", "")
    pipe = client.pipeline(transaction=True)
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
    pipe.zrem(live.grace_key(), str(driver_id))
    pipe.hmget(key, "lat", "lng")
    results = pipe.execute()
    lat, lng = results[-1]
    if lat is not None and not trip_id and abs(float(lat)) <= live.GEO_LAT_LIMIT:
        client.geoadd(live.available_key(), (float(lng), float(lat), str(driver_id)))
        if wav:
            client.geoadd(live.available_key(wav=True), (float(lng), float(lat), str(driver_id)))
    if trip_id:
        client.sadd(live.on_trip_key(), str(driver_id))
    live.post_event("on", d=driver_id)


def _on_a_trip(driver_id: uuid.UUID) -> bool:
    return Trip.objects.filter(driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES)).exists()


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
    pipe = client.pipeline(transaction=True)
    pipe.hset(live.driver_key(driver_id), "online", "0")
    pipe.zrem(live.available_key(), str(driver_id))
    pipe.zrem(live.available_key(wav=True), str(driver_id))
    pipe.zrem(live.grace_key(), str(driver_id))
    pipe.execute()
    live.post_event("off", d=driver_id)


# The region's keys (the `rd:{region}:` hash tag, dispatch/live.py): a socket's registration touches the
# server's, the driver's and the region's keys in one script, so all of them share the tag.
def server_leases_key(region_name: str | None = None) -> str:
    return f"{live.region_prefix(region_name)}srv:leases"


def dead_servers_key(region_name: str | None = None) -> str:
    return f"{live.region_prefix(region_name)}srv:dead"


def server_sockets_key(server_id: str, region_name: str | None = None) -> str:
    return f"{live.region_prefix(region_name)}srv:socks:{server_id}"


def dead_server_sockets_key(server_id: str, region_name: str | None = None) -> str:
    return f"{live.region_prefix(region_name)}srv:dead:{server_id}"


def driver_sockets_key(driver_id: uuid.UUID | str, region_name: str | None = None) -> str:
    # Not under `...:drv:`: whatever scans the driver hashes by that prefix must find hashes only.
    return f"{live.region_prefix(region_name)}drvsocks:{driver_id}"


# Register one socket under its server (renewing that server's lease: it is alive right now) and in the
# driver's set; cancel the driver's grace. Idempotent: a server re-registers its sockets after a sweep
# wrongly took it for dead, or after Redis lost them. Returns {1 if the driver lacked this socket, conns}.
REGISTER_SOCKET_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
local added = redis.call('SADD', KEYS[2], ARGV[3])
local conns = redis.call('SCARD', KEYS[2])
redis.call('HSET', KEYS[3], 'conns', conns)
redis.call('ZREM', KEYS[4], ARGV[2])
return {added, conns}
"""

# Close one socket found in KEYS[1] (its live server's hash, or a dead server's claimed hash): the driver's
# remaining socket count, or -1 when someone else already closed it (each socket is closed exactly once)
# or its server, alive after all, registered it again.
UNREGISTER_SOCKET_SCRIPT = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
if KEYS[1] ~= KEYS[2] and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return -1 end
redis.call('SREM', KEYS[3], ARGV[2])
local conns = redis.call('SCARD', KEYS[3])
redis.call('HSET', KEYS[4], 'conns', conns)
return conns
"""

# Claim a dead server's sockets: only while its lease is still older than the cutoff (a server that just
# renewed is alive), atomically, so two sweeps never claim the same sockets and a renewal never races the
# claim. Returns when the server was last seen, or false.
CLAIM_DEAD_SERVER_SCRIPT = """
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not seen or tonumber(seen) > tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
local sockets = redis.call('HGETALL', KEYS[2])
for i = 1, #sockets, 2 do redis.call('HSET', KEYS[3], sockets[i], sockets[i + 1]) end
redis.call('DEL', KEYS[2])
if #sockets > 0 then redis.call('HSET', KEYS[4], ARGV[1], seen) end
return seen
"""


def _register_socket(
    client: SyncRedis, *, server_id: str, socket_id: str, driver_id: uuid.UUID | str
) -> bool:
    """Register the socket; True when the driver did not hold it already."""
    added, _conns = client.register_script(REGISTER_SOCKET_SCRIPT)(
        keys=[
            server_sockets_key(server_id),
            driver_sockets_key(driver_id),
            live.driver_key(driver_id),
            live.grace_key(),
            server_leases_key(),
        ],
        args=[socket_id, str(driver_id), f"{server_id}/{socket_id}", repr(time.time()), server_id],
    )
    return bool(added)


def _unregister_socket(
    client: SyncRedis, *, found_in: str, server_id: str, socket_id: str, driver_id: uuid.UUID | str
) -> int:
    return client.register_script(UNREGISTER_SOCKET_SCRIPT)(
        keys=[
            found_in,
            server_sockets_key(server_id),
            driver_sockets_key(driver_id),
            live.driver_key(driver_id),
        ],
        args=[socket_id, f"{server_id}/{socket_id}"],
    )


def _grace_begins(client: SyncRedis, *, driver_id: uuid.UUID | str, at: float) -> None:
    """The driver's last socket closed at `at` (epoch s): they stay online until the grace runs out."""
    client.zadd(live.grace_key(), {str(driver_id): at + settings.ROCHDALE_PRESENCE_GRACE_S})
    DriverPresence.objects.filter(driver_id=driver_id).update(
        connected=False, disconnected_at=datetime.fromtimestamp(at, tz=UTC)
    )


def presence_connected(*, driver_id: uuid.UUID, server_id: str, socket_id: str) -> None:
    """A driver socket opened on server `server_id`: registered under its lease; cancels any running grace."""
    _register_socket(get_redis(), server_id=server_id, socket_id=socket_id, driver_id=driver_id)
    DriverPresence.objects.filter(driver_id=driver_id).update(connected=True, disconnected_at=None)


def presence_disconnected(*, driver_id: uuid.UUID, server_id: str, socket_id: str) -> None:
    """A driver socket closed: when it was their last, start the grace period (they stay online)."""
    client = get_redis()
    found_in = server_sockets_key(server_id)
    remaining = _unregister_socket(
        client, found_in=found_in, server_id=server_id, socket_id=socket_id, driver_id=driver_id
    )
    if remaining == 0:
        _grace_begins(client, driver_id=driver_id, at=time.time())


def presence_sockets_restore(*, server_id: str, sockets: dict[str, uuid.UUID]) -> int:
    """Register again every socket a live server holds (`sockets`: socket id -> driver id), after a sweep
    took the server for dead or Redis lost its registrations. Idempotent; returns the sockets restored."""
    client = get_redis()
    restored = [
        driver_id
        for socket_id, driver_id in sockets.items()
        if _register_socket(client, server_id=server_id, socket_id=socket_id, driver_id=driver_id)
    ]
    if restored:
        DriverPresence.objects.filter(driver_id__in=restored).update(connected=True, disconnected_at=None)
        logger.warning("server %s: %d sockets registered again", server_id, len(restored))
    return len(restored)


async def server_lease_renew(*, client: AsyncRedis, server_id: str) -> int:
    """Renew the server's lease (one round trip); returns how many sockets Redis has registered for it, so
    the server can tell when they were taken away (a sweep took it for dead, or Redis lost them)."""
    pipe = client.pipeline(transaction=False)
    pipe.zadd(server_leases_key(), {server_id: time.time()})
    pipe.hlen(server_sockets_key(server_id))
    _added, registered = await pipe.execute()
    return int(registered)


def sweep_dead_servers() -> int:
    """Close the sockets of every server whose lease ran out, as clean disconnects at the moment the server
    missed its renewal (so their drivers' grace runs from then). Returns how many sockets were closed.

    A claim moves the dead server's sockets aside in one script, and each is closed once by its own script,
    so a sweep that dies halfway is finished by the next one.
    """
    client = get_redis()
    cutoff = time.time() - settings.ROCHDALE_SERVER_LEASE_S
    claim = client.register_script(CLAIM_DEAD_SERVER_SCRIPT)
    for raw in client.zrangebyscore(server_leases_key(), "-inf", cutoff):
        server_id = raw.decode()
        claim(
            keys=[
                server_leases_key(),
                server_sockets_key(server_id),
                dead_server_sockets_key(server_id),
                dead_servers_key(),
            ],
            args=[server_id, repr(cutoff)],
        )
    closed = 0
    for raw_server, raw_seen in client.hgetall(dead_servers_key()).items():
        server_id, seen = raw_server.decode(), float(raw_seen)
        # It died between its last renewal and the one it missed: starting the grace at the missed one never
        # cuts a driver's grace short (and it is at most one renewal interval longer than a clean one's).
        closed_at = min(seen + settings.ROCHDALE_SERVER_LEASE_RENEW_S, time.time())
        claimed = dead_server_sockets_key(server_id)
        for raw_socket, raw_driver in client.hgetall(claimed).items():
            driver_id = raw_driver.decode()
            remaining = _unregister_socket(
                client,
                found_in=claimed,
                server_id=server_id,
                socket_id=raw_socket.decode(),
                driver_id=driver_id,
            )
            if remaining < 0:
                continue
            closed += 1
            if remaining == 0:
                _grace_begins(client, driver_id=driver_id, at=closed_at)
        if not client.exists(claimed):
            client.hdel(dead_servers_key(), server_id)
        logger.warning(
            "server %s died (last seen %.1f s ago): its sockets are closed", server_id, time.time() - seen
        )
    return closed


def sweep_presence() -> int:
    """Take offline every online driver whose disconnect grace ran out. Returns how many went offline.

    First the sockets of dead servers are closed (their grace starts when the server missed its renewal).
    Redis's grace set is the fast path; the PostgreSQL rows (connected=False, disconnected_at older than
    the grace) catch drivers whose grace entry was lost with Redis.
    """
    sweep_dead_servers()
    client = get_redis()
    now = time.time()
    due = {raw.decode() for raw in client.zrangebyscore(live.grace_key(), "-inf", now)}
    cutoff = timezone.now() - timedelta(seconds=settings.ROCHDALE_PRESENCE_GRACE_S)
    due |= {
        str(driver_id)
        for driver_id in DriverPresence.objects.filter(
            status=PresenceStatus.ONLINE, connected=False, disconnected_at__lt=cutoff
        ).values_list("driver_id", flat=True)
    }
    gone = 0
    for driver_id in due:
        if client.scard(driver_sockets_key(driver_id)) > 0:  # reconnected meanwhile
            client.zrem(live.grace_key(), driver_id)
            continue
        presence_go_offline(driver_id=uuid.UUID(driver_id), reason="disconnected")
        gone += 1
    _reconcile_trips(client)
    return gone


def _reconcile_trips(client: SyncRedis) -> None:
    """Free drivers whose hash still names a trip that has ended (e.g. a rider cancelled it)."""
    on_trip = [raw.decode() for raw in client.smembers(live.on_trip_key())]
    if not on_trip:
        return
    pipe = client.pipeline(transaction=False)
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
            live.driver_release(
                driver_id=uuid.UUID(driver_id), trip_id=uuid.UUID(trip_id) if trip_id else None
            )


def presence_is_online(*, driver_id: uuid.UUID) -> bool:
    return DriverPresence.objects.filter(driver_id=driver_id, status=PresenceStatus.ONLINE).exists()
