"""The hot, in-Redis side of dispatch: key names, the one-round-trip location script, small helpers.

PostgreSQL holds the truth (trips, offers, presence rows); Redis holds what changes every few seconds
(each driver's last fix, the "available" geo sets, the fixes stream the dispatch worker tails and the
flush task persists, the dispatch event stream). Everything here can be rebuilt from PostgreSQL.

Keys (`{region}` is the dispatch region, one worker process each; see docs/dispatch.md):
- `rd:drv:{driver}`          hash: lat lng h s a t (last accepted fix), online, trip, rider, wav, vehicle,
                              idle (epoch s), conns (open sockets), jumps (refused jumps, total)
- `rd:avail:{region}`        geo set of online drivers without a trip (`...:wav` for accessible vehicles)
- `rd:fixes:{region}`        stream of fixes (accepted and refused), bounded by MAXLEN ~
- `rd:events:{region}`       stream of dispatch events (request, decline, accept, withdraw, on, off, free)
- `rd:grace`                 sorted set: driver -> when their disconnect grace ends
- `rd:ontrip`                set of drivers whose hash names a trip (reconciled against PostgreSQL)
- `rd:flush:{region}`        last stream id persisted to PostGIS; `rd:flush:lock:{region}` its lock
- `rd:worker:{region}`       the dispatch worker's heartbeat
- `rd:trail:{trip}`          list of the trip's accepted fixes ("t,lat,lng,accuracy"), so completion measures
                             the trail without waiting for the batched flush (expires after a day)
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from backend.redis import get_redis

DRIVER_PREFIX = "rd:drv:"
GRACE_KEY = "rd:grace"
ON_TRIP_KEY = "rd:ontrip"
FIXES_MAXLEN = 200_000
EVENTS_MAXLEN = 50_000
# GEOADD refuses latitudes beyond the Web Mercator limit; such fixes are kept but not geo-indexed.
GEO_LAT_LIMIT = 85.05112878


def region() -> str:
    return getattr(settings, "ROCHDALE_DISPATCH_REGION", "default")


def driver_key(driver_id: Any) -> str:
    return f"{DRIVER_PREFIX}{driver_id}"


def available_key(region_name: str | None = None, *, wav: bool = False) -> str:
    base = f"rd:avail:{region_name or region()}"
    return f"{base}:wav" if wav else base


TRAIL_PREFIX = "rd:trail:"
TRAIL_TTL_S = 24 * 3600


def trail_key(trip_id: Any) -> str:
    return f"{TRAIL_PREFIX}{trip_id}"


def fixes_key(region_name: str | None = None) -> str:
    return f"rd:fixes:{region_name or region()}"


def events_key(region_name: str | None = None) -> str:
    return f"rd:events:{region_name or region()}"


def flush_cursor_key(region_name: str | None = None) -> str:
    return f"rd:flush:{region_name or region()}"


def flush_lock_key(region_name: str | None = None) -> str:
    return f"rd:flush:lock:{region_name or region()}"


def worker_heartbeat_key(region_name: str | None = None) -> str:
    return f"rd:worker:{region_name or region()}"


# One round trip per fix: compare with the previous accepted fix, refuse an impossible jump (counted), or
# store the fix, keep the available geo sets current, and append it to the stream. Returns
# {"ok", rider, trip} for an accepted fix, {"jump", metres} or {"stale"} otherwise.
FIX_SCRIPT = """
local h = redis.call('HMGET', KEYS[1], 'lat', 'lng', 't', 'online', 'trip', 'rider', 'wav')
local lat = tonumber(ARGV[2])
local lng = tonumber(ARGV[3])
local t = tonumber(ARGV[7])
local trip = h[5] or ''
local online = h[4] or '0'
local wav = h[7] or '0'
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
  -- The trail key is derived here (single-node Redis; a cluster would need it declared in KEYS).
  local trail = ARGV[13] .. trip
  redis.call('RPUSH', trail, ARGV[7] .. ',' .. ARGV[2] .. ',' .. ARGV[3] .. ',' .. ARGV[6])
  redis.call('EXPIRE', trail, ARGV[14])
end
return {'ok', h[6] or '', trip}
"""


def now_epoch() -> float:
    return time.time()


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def driver_live_state(driver_id: Any) -> dict[str, str]:
    """The driver's hash as strings (empty dict when Redis knows nothing of them)."""
    return decode_hash(get_redis().hgetall(driver_key(driver_id)))


def post_event(kind: str, *, region_name: str | None = None, **fields: Any) -> None:
    """Append a dispatch event for the region's worker (sync; callers run it after commit)."""
    payload = {"k": kind, **{key: "" if value is None else str(value) for key, value in fields.items()}}
    get_redis().xadd(events_key(region_name), payload, maxlen=EVENTS_MAXLEN, approximate=True)
