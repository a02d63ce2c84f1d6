"""The hot, in-Redis side of dispatch: key names, the one-round-trip location script, small helpers.

PostgreSQL holds the truth (trips, offers, presence rows); Redis holds what changes every few seconds
(each driver's last fix, the "available" geo sets, the fixes stream the dispatch worker tails and the
flush task persists, the dispatch event stream). Everything here can be rebuilt from PostgreSQL.

Keys. Every one begins `rd:{R}:` where R is the dispatch region (one worker process each; see
docs/dispatch.md): the braces make R the key's hash tag, so all of a region's keys live in one slot of a
Redis Cluster, and every script and transaction below (which only ever touches one region's keys) runs
there as on a single Redis. Each script names every key it touches in KEYS.
- `rd:{R}:drv:{driver}`      hash: lat lng h s a t (last accepted fix), online, trip, rider, wav, vehicle,
                              idle (epoch s), conns (open sockets), jumps (refused jumps, total). A record
                              without `online` or `trip` is partial (after a loss, a counter or one mirror
                              wrote to it): the fix script refuses to build on it, the server restores it
- `rd:{R}:avail`             geo set of online drivers without a trip (`...:wav` for accessible vehicles)
- `rd:{R}:fixes`             stream of fixes (accepted and refused), bounded by MAXLEN ~
- `rd:{R}:events`            stream of dispatch events (request, decline, accept, withdraw, on, off, free)
- `rd:{R}:grace`             sorted set: driver -> when their disconnect grace ends
- `rd:{R}:ontrip`            set of drivers whose hash names a trip (reconciled against PostgreSQL)
- `rd:{R}:flush`             last stream id persisted to PostGIS; `rd:{R}:flush:lock` its lock
- `rd:{R}:worker`            the active dispatch worker's heartbeat (`...:{host}`: each worker process's own,
                             active or standby, for its liveness probe)
- `rd:{R}:fence`             the highest dispatch-lease token that has written here: a worker whose token is
                             lower was taken over, and its writes are refused (docs/dispatch.md, "Failover")
- `rd:{R}:gen`               the generation: a random token the region's worker writes when it finds none.
                             Redis without it has lost its data (restarted empty, flushed, evicted): the
                             worker then rebuilds the live state from PostgreSQL (docs/dispatch.md)
- `rd:{R}:trail:{driver}`    list of the driver's accepted fixes on a trip ("trip,t,lat,lng,accuracy"), so
                             completion measures the trail without waiting for the batched flush. Keyed by
                             driver, not trip, because the fix script must be handed every key it writes
                             before it reads which trip the driver is on (expires after a day)
- presence (dispatch/services/presence.py): `rd:{R}:srv:leases`, `rd:{R}:srv:dead`,
  `rd:{R}:srv:socks:{server}`, `rd:{R}:srv:dead:{server}`, `rd:{R}:drvsocks:{driver}`
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from backend import heartbeats
from backend.redis import REDIS_UNREACHABLE, get_redis
from dispatch.roads.engine import LatLng

logger = logging.getLogger(__name__)

FIXES_MAXLEN = 200_000
EVENTS_MAXLEN = 50_000
# GEOADD refuses latitudes beyond the Web Mercator limit; such fixes are kept but not geo-indexed.
GEO_LAT_LIMIT = 85.05112878
# Available drivers an estimate looks at for the nearest fresh one (the nearest may be stale or taken).
NEAREST_CANDIDATES = 8


def region() -> str:
    return getattr(settings, "ROCHDALE_DISPATCH_REGION", "default")


def region_prefix(region_name: str | None = None) -> str:
    """`rd:{R}:`, the start of every key of region R; the braces are its Redis Cluster hash tag."""
    return heartbeats.region_prefix(region_name or region())


def driver_prefix(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}drv:"


def driver_key(driver_id: uuid.UUID | str, region_name: str | None = None) -> str:
    return f"{driver_prefix(region_name)}{driver_id}"


def available_key(region_name: str | None = None, *, wav: bool = False) -> str:
    base = f"{region_prefix(region_name)}avail"
    return f"{base}:wav" if wav else base


TRAIL_TTL_S = 24 * 3600


def trail_key(driver_id: uuid.UUID | str, region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}trail:{driver_id}"


def grace_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}grace"


def on_trip_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}ontrip"


def fixes_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}fixes"


def events_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}events"


def flush_cursor_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}flush"


def flush_lock_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}flush:lock"


def worker_heartbeat_key(region_name: str | None = None) -> str:
    # Named in backend.heartbeats, where readiness (below dispatch in the layers) reads it too.
    return heartbeats.dispatch_worker_key(region_name or region())


def generation_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}gen"


def fence_key(region_name: str | None = None) -> str:
    return f"{region_prefix(region_name)}fence"


# The active dispatch worker's beat, fenced: refused (0) when a higher lease token has written to Redis (this
# worker was taken over); otherwise raises the fence to its token, beats the region's key, and returns the
# generation, claiming it with ARGV[5] when Redis has none (it lost its data). The process's own key (its
# liveness) is beaten either way.
# KEYS: region heartbeat, fence, this host's heartbeat, generation.
# ARGV: lease token, now (epoch s), region key TTL, host key TTL, new generation token.
WORKER_BEAT_SCRIPT = """
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
local mine = tonumber(ARGV[1])
if mine < seen then return {0, ''} end
if mine > seen then redis.call('SET', KEYS[2], ARGV[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local generation = redis.call('GET', KEYS[4])
if not generation then
  redis.call('SET', KEYS[4], ARGV[5])
  generation = ARGV[5]
end
return {1, generation}
"""


# One round trip per fix: compare with the previous accepted fix, refuse an impossible jump (counted), or
# store the fix, keep the available geo sets current, and append it to the stream. Returns
# {"ok", rider, trip} for an accepted fix, {"jump", metres} or {"stale"} otherwise; {"not_online"} (nothing
# written) for a driver neither online nor on a trip; {"unknown"} (nothing written) when the driver's record
# lacks `online` or `trip`: Redis lost it, and a fix must not build a record that hides an online driver, so
# the caller restores the record from PostgreSQL (RESTORE_SCRIPT) and runs the fix again. On a trip, the
# accepted fix is appended to the driver's trail as "trip,t,lat,lng,accuracy".
# KEYS: driver hash, available set, available WAV set, fixes stream, the driver's trail.
# ARGV: driver, lat, lng, heading, speed, accuracy, t, received at, max plausible speed, stream MAXLEN, jump
#       slack (m), GEO latitude limit, trail TTL (s).
FIX_SCRIPT = """
local h = redis.call('HMGET', KEYS[1], 'lat', 'lng', 't', 'online', 'trip', 'rider', 'wav')
if not h[4] or not h[5] then return {'unknown'} end
local lat = tonumber(ARGV[2])
local lng = tonumber(ARGV[3])
local t = tonumber(ARGV[7])
local trip = h[5] or ''
local online = h[4]
local wav = h[7] or '0'
if online ~= '1' and trip == '' then return {'not_online'} end
if h[3] then
  local pt = tonumber(h[3])
  if t <= pt then return {'stale'} end
  local plat = tonumber(h[1])
  local plng = tonumber(h[2])
  local r = math.pi / 180
  local sdp = math.sin((lat - plat) * r / 2)
  local sdl = math.sin((lng - plng) * r / 2)
  local a = sdp * sdp + math.cos(plat * r) * math.cos(lat * r) * sdl * sdl
  local d = 2 * 6371008.8 * math.asin(math.min(1, math.sqrt(a)))
  if d > tonumber(ARGV[9]) * (t - pt) + tonumber(ARGV[11]) then
    redis.call('HINCRBY', KEYS[1], 'jumps', 1)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[10], '*', 'k', 'fix', 'd', ARGV[1], 'lat', ARGV[2],
      'lng', ARGV[3], 'h', ARGV[4], 's', ARGV[5], 'a', ARGV[6], 't', ARGV[7], 'rx', ARGV[8], 'ok', '0',
      'trip', trip, 'on', online, 'wav', wav)
    return {'jump', tostring(math.floor(d))}
  end
end
redis.call('HSET', KEYS[1], 'lat', ARGV[2], 'lng', ARGV[3], 'h', ARGV[4], 's', ARGV[5], 'a', ARGV[6],
  't', ARGV[7])
if online == '1' and trip == '' and math.abs(lat) <= tonumber(ARGV[12]) then
  redis.call('GEOADD', KEYS[2], lng, lat, ARGV[1])
  if wav == '1' then redis.call('GEOADD', KEYS[3], lng, lat, ARGV[1]) end
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[10], '*', 'k', 'fix', 'd', ARGV[1], 'lat', ARGV[2],
  'lng', ARGV[3], 'h', ARGV[4], 's', ARGV[5], 'a', ARGV[6], 't', ARGV[7], 'rx', ARGV[8], 'ok', '1',
  'trip', trip, 'on', online, 'wav', wav)
if trip ~= '' then
  redis.call('RPUSH', KEYS[5], trip .. ',' .. ARGV[7] .. ',' .. ARGV[2] .. ',' .. ARGV[3] .. ',' .. ARGV[6])
  redis.call('EXPIRE', KEYS[5], ARGV[13])
end
return {'ok', h[6] or '', trip}
"""

# Put back a driver's record from what PostgreSQL knows (DriverLiveRecord): only the fields Redis lacks
# are written (HSETNX), because every field present was written by its own mirror after PostgreSQL
# committed it, and is at least as new as the read this restore is made of. The last fix is written only
# where Redis has none. Then the available sets and the on-trip set follow the record as it now stands.
# Returns 1 when it filled something in, 0 when the record was complete, -1 (nothing written) when a
# dispatch worker's restore carries a lease token below the region's fence (it was taken over).
# KEYS: driver hash, available set, available WAV set, on-trip set, the region's fence.
# ARGV: driver, online, wav, vehicle, idle, trip, rider, lat, lng, t ('' for none), GEO latitude limit,
#       the worker's lease token ('' from a socket server, which holds none).
RESTORE_SCRIPT = """
if ARGV[12] ~= '' and tonumber(redis.call('GET', KEYS[5]) or '0') > tonumber(ARGV[12]) then return -1 end
local filled = 0
local fields = {'online', ARGV[2], 'wav', ARGV[3], 'vehicle', ARGV[4], 'idle', ARGV[5], 'trip', ARGV[6],
  'rider', ARGV[7]}
for i = 1, #fields, 2 do
  filled = filled + redis.call('HSETNX', KEYS[1], fields[i], fields[i + 1])
end
if ARGV[10] ~= '' and redis.call('HEXISTS', KEYS[1], 't') == 0 then
  redis.call('HSET', KEYS[1], 'lat', ARGV[8], 'lng', ARGV[9], 't', ARGV[10])
  filled = filled + 1
end
local h = redis.call('HMGET', KEYS[1], 'online', 'trip', 'wav', 'lat', 'lng')
if h[2] ~= '' then redis.call('SADD', KEYS[4], ARGV[1]) end
if h[1] == '1' and h[2] == '' and h[4] and math.abs(tonumber(h[4])) <= tonumber(ARGV[11]) then
  redis.call('GEOADD', KEYS[2], h[5], h[4], ARGV[1])
  if h[3] == '1' then redis.call('GEOADD', KEYS[3], h[5], h[4], ARGV[1]) end
end
if filled > 0 then return 1 end
return 0
"""


@dataclass(frozen=True, slots=True)
class DriverLiveRecord:
    """What PostgreSQL knows of one driver's live state (presence row, active trip, vehicle): enough for
    a complete Redis record. Read by `dispatch.selectors.driver_live_record(s)`."""

    driver_id: str
    online: bool
    wav: bool
    vehicle_id: str
    idle_since: float  # epoch seconds
    trip_id: str  # "" without an active trip
    rider_id: str
    lat: float | None
    lng: float | None
    fix_at: float | None  # epoch seconds of the last flushed fix


def restore_keys(record: DriverLiveRecord, *, region_name: str | None = None) -> list[str]:
    return [
        driver_key(record.driver_id, region_name),
        available_key(region_name),
        available_key(region_name, wav=True),
        on_trip_key(region_name),
        fence_key(region_name),
    ]


def restore_args(record: DriverLiveRecord, *, lease_token: int | None = None) -> list[str]:
    located = record.lat is not None and record.lng is not None and record.fix_at is not None
    return [
        record.driver_id,
        "1" if record.online else "0",
        "1" if record.wav else "0",
        record.vehicle_id,
        repr(record.idle_since),
        record.trip_id,
        record.rider_id,
        repr(record.lat) if located else "",
        repr(record.lng) if located else "",
        repr(record.fix_at) if located else "",
        repr(GEO_LAT_LIMIT),
        "" if lease_token is None else str(lease_token),
    ]


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def driver_live_state(driver_id: uuid.UUID | str) -> dict[str, str]:
    """The driver's hash as strings (empty dict when Redis knows nothing of them)."""
    return decode_hash(get_redis().hgetall(driver_key(driver_id)))


def post_event(kind: str, *, region_name: str | None = None, **fields: Any) -> None:
    """Append a dispatch event for the region's worker (sync; callers run it after commit)."""
    payload = {"k": kind, **{key: "" if value is None else str(value) for key, value in fields.items()}}
    get_redis().xadd(events_key(region_name), payload, maxlen=EVENTS_MAXLEN, approximate=True)


def driver_release(*, driver_id: uuid.UUID, trip_id: uuid.UUID | None = None) -> None:
    """The driver's trip ended (completed or cancelled by anyone): stop sharing their location with the
    rider and make them available again. Idempotent; call after commit. `sweep_presence` calls it too
    for any ended trip Redis still names, so a missed call heals within seconds."""
    client = get_redis()
    key = driver_key(driver_id)
    current = client.hget(key, "trip")
    if trip_id is not None and current is not None and current.decode() not in ("", str(trip_id)):
        return  # already on another trip
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"trip": "", "rider": "", "idle": repr(time.time())})
    pipe.srem(on_trip_key(), str(driver_id))
    pipe.hmget(key, "online", "lat", "lng", "wav")
    online, lat, lng, wav = pipe.execute()[-1]
    if online == b"1" and lat is not None and abs(float(lat)) <= GEO_LAT_LIMIT:
        client.geoadd(available_key(), (float(lng), float(lat), str(driver_id)))
        if wav == b"1":
            client.geoadd(available_key(wav=True), (float(lng), float(lat), str(driver_id)))
    post_event("free", d=driver_id, trip=trip_id)


def nearest_available(
    *, lat: float, lng: float, wheelchair_accessible: bool
) -> list[tuple[str, float, LatLng]]:
    """Up to NEAREST_CANDIDATES available drivers with a fresh fix near (lat, lng), nearest first, as
    (driver id, straight-line metres, (lat, lng)): what a fare estimate's pickup ETA is computed from. A
    GEOSEARCH on the available set; never touches PostgreSQL; empty when Redis is unreachable."""
    if abs(lat) > GEO_LAT_LIMIT:
        return []
    client = get_redis()
    try:
        found = client.geosearch(
            available_key(wav=wheelchair_accessible),
            longitude=lng,
            latitude=lat,
            radius=settings.ROCHDALE_SEARCH_RADIUS_M,
            unit="m",
            sort="ASC",
            count=NEAREST_CANDIDATES,
            withdist=True,
            withcoord=True,
        )
        if not found:
            return []
        pipe = client.pipeline(transaction=False)
        for member, _distance, _coordinates in found:
            pipe.hmget(driver_key(member.decode()), "t", "online", "trip")
        flags = pipe.execute()
    except REDIS_UNREACHABLE:
        logger.warning("nearest_available: Redis unavailable", exc_info=True)
        return []
    freshest_allowed = time.time() - settings.ROCHDALE_FIX_MAX_AGE_S
    near = []
    for (member, distance, (driver_lng, driver_lat)), (fix_at, online, trip) in zip(
        found, flags, strict=True
    ):
        if online != b"1" or trip or fix_at is None or float(fix_at) < freshest_allowed:
            continue
        near.append((member.decode(), float(distance), (float(driver_lat), float(driver_lng))))
    return near
