"""Driver location fixes: validated at the socket, written to Redis by one script, persisted in batches.

No fix costs a PostgreSQL write, a Celery task or a core-layer channel message of its own (docs/dispatch.md
has the measured reasons): `LocationRecorder.record` runs one Lua script (compare with the last fix, HSET,
GEOADD, XADD), pipelined with the other sockets' fixes that arrive with it (`FixPipeline`), and, when the
driver is on a trip, publishes `driver.location` to the rider through the pub/sub channel layer.
`flush_pending_fixes` (the `flush_locations` task, every 2 s) bulk-inserts the stream into LocationFix
and updates every moved DriverPresence row with one `UPDATE ... FROM (VALUES ...)`.

Only a driver who is online or on a trip has fixes stored (`not_online` otherwise). A driver whose Redis
record was lost (Redis restarted empty) is restored from PostgreSQL by their next fix, before it is stored.
While Redis is unreachable, fixes are refused with `service_unavailable` (the pipeline backs off, and logs
the outage once), never stored half-way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from redis.exceptions import NoScriptError

from backend import metrics
from backend.concurrency import database_call
from backend.errors import Conflict, InvalidInput, ServiceUnavailable
from backend.redis import REDIS_UNREACHABLE, RedisOutage, get_async_redis, get_redis, queue_script
from dispatch import live, selectors
from dispatch.realtime import apush_to_user
from dispatch.services.remaining_eta import remaining_eta

logger = logging.getLogger(__name__)

FUTURE_SKEW_S = 10.0
MAX_FIX_AGE_S = 60.0
MAX_ACCURACY_M = 10_000.0
MAX_SPEED_FIELD_MPS = 150.0
JUMP_SLACK_M = 30.0
FLUSH_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Fix:
    lat: float
    lng: float
    heading: float | None
    speed_mps: float | None
    accuracy_m: float | None
    recorded_at: float  # epoch seconds


def _number(frame: dict[str, Any], key: str, *, required: bool, low: float, high: float) -> float | None:
    value = frame.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(
            gettext('"%(key)s" must be a number.') % {"key": key},
            code="invalid_location",
            details={"field": key},
        )
    if not low <= value <= high:
        raise InvalidInput(
            gettext('"%(key)s" must be between %(low)g and %(high)g.')
            % {"key": key, "low": low, "high": high},
            code="invalid_location",
            details={"field": key},
        )
    return float(value)


def fix_from_frame(frame: dict[str, Any], *, now: float | None = None) -> Fix:
    """Validate a `location` frame: ranges, and a `recorded_at` neither in the future nor a minute old."""
    lat = _number(frame, "lat", required=True, low=-90.0, high=90.0)
    lng = _number(frame, "lng", required=True, low=-180.0, high=180.0)
    heading = _number(frame, "heading", required=False, low=0.0, high=360.0)
    speed = _number(frame, "speed_mps", required=False, low=0.0, high=MAX_SPEED_FIELD_MPS)
    accuracy = _number(frame, "accuracy_m", required=False, low=0.0, high=MAX_ACCURACY_M)
    raw_time = frame.get("recorded_at")
    recorded = parse_datetime(raw_time) if isinstance(raw_time, str) and len(raw_time) <= 40 else None
    if recorded is None or recorded.tzinfo is None:
        raise InvalidInput(
            gettext('"recorded_at" must be an ISO 8601 time with a zone.'),
            code="invalid_location",
            details={"field": "recorded_at"},
        )
    at = recorded.timestamp()
    current = time.time() if now is None else now
    if at > current + FUTURE_SKEW_S:
        raise InvalidInput(gettext("The fix is recorded in the future."), code="fix_in_future")
    if at < current - MAX_FIX_AGE_S:
        raise InvalidInput(gettext("The fix is more than a minute old."), code="fix_too_old")
    assert lat is not None and lng is not None
    return Fix(lat, lng, heading, speed, accuracy, at)


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(value)


class FixPipeline:
    """The fix scripts of every socket on one event loop, sent to Redis in pipelines.

    Each socket awaits its own fix's verdict, but the fixes that arrive during one turn of the loop (or,
    with `ROCHDALE_FIX_BATCH_MS` > 0, within that window) leave together: one pipeline, one pooled
    connection, one write and one read for all of them. The per-command cost of the client (pool checkout,
    timeouts, awaits, the syscalls) is paid once per batch instead of once per fix, and however fast fixes
    come, a process holds at most one Redis connection per batch in flight."""

    def __init__(self) -> None:
        self.client = get_async_redis()
        self.sha = self.client.register_script(live.FIX_SCRIPT).sha
        self.restore_script = self.client.register_script(live.RESTORE_SCRIPT)
        self.pending: list[tuple[list[str], list[Any], asyncio.Future]] = []
        self.sends: set[asyncio.Task] = set()
        self.outage = RedisOutage("location fixes", logger=logger)

    async def run(self, keys: list[str], args: list[Any]) -> Any:
        """The script's answer for one fix; ServiceUnavailable while Redis is unreachable (refused at once
        until the backoff allows the next try, so a dead Redis is not asked once per fix)."""
        if not self.outage.may_try():
            raise _redis_unavailable(self.outage)
        loop = asyncio.get_running_loop()
        if not self.pending:
            loop.call_later(settings.ROCHDALE_FIX_BATCH_MS / 1000.0, self._send_pending)
        answer = loop.create_future()
        self.pending.append((keys, args, answer))
        return await answer

    def _send_pending(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self.sends.add(task)
        task.add_done_callback(self.sends.discard)

    async def _send(self, batch: list[tuple[list[str], list[Any], asyncio.Future]]) -> None:
        try:
            results = await self._execute(batch)
            unknown = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if unknown:  # Redis restarted or its scripts were flushed: load it, run those fixes again
                await self.client.script_load(live.FIX_SCRIPT)
                again = await self._execute([batch[i] for i in unknown])
                for i, result in zip(unknown, again, strict=True):
                    results[i] = result
        except REDIS_UNREACHABLE as exc:
            self.outage.failed(exc)
            results = [_redis_unavailable(self.outage) for _ in batch]  # one each: raised in each socket
        except Exception as exc:
            results = [exc] * len(batch)
        else:
            self.outage.recovered()
        for (_keys, _args, answer), result in zip(batch, results, strict=True):
            if answer.done():
                continue
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)

    async def _execute(self, batch: list[tuple[list[str], list[Any], asyncio.Future]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for keys, args, _answer in batch:
            queue_script(pipe, self.sha, keys=keys, args=args)
        return await pipe.execute(raise_on_error=False)

    async def restore_driver(self, driver_id: uuid.UUID | str) -> None:
        """Fill in the driver's Redis record from PostgreSQL (presence, active trip, vehicle): only what
        is missing, what is there is newer. A driver who is not online gets `online=0`, so their next fixes
        are refused by the script itself, without asking PostgreSQL again."""
        record = await database_call(selectors.driver_live_record)(driver_id=uuid.UUID(str(driver_id)))
        try:
            await self.restore_script(keys=live.restore_keys(record), args=live.restore_args(record))
        except REDIS_UNREACHABLE as exc:
            self.outage.failed(exc)
            raise _redis_unavailable(self.outage) from exc


def _redis_unavailable(outage: RedisOutage) -> ServiceUnavailable:
    return ServiceUnavailable(
        gettext("Live positions are unavailable for a moment; keep sending fixes."),
        details={"retry_after_s": round(max(0.0, outage.retry_at - time.monotonic()), 1)},
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_pipelines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FixPipeline] = weakref.WeakKeyDictionary()


def fix_pipeline() -> FixPipeline:
    """This event loop's FixPipeline: thousands of driver sockets share it (and its few connections)."""
    loop = asyncio.get_running_loop()
    pipeline = _pipelines.get(loop)
    if pipeline is None:
        pipeline = _pipelines[loop] = FixPipeline()
    return pipeline


class LocationRecorder:
    """The socket's writer of fixes, through the process's shared FixPipeline."""

    async def close(self) -> None:
        """Nothing to release: the pipeline is shared by the process's sockets."""

    async def record(self, *, driver_id: uuid.UUID | str, fix: Fix) -> None:
        """Store an accepted fix or raise InvalidInput (`implausible_jump`, `fix_out_of_order`), Conflict
        (`not_online`: neither online nor on a trip, nothing stored) or ServiceUnavailable (Redis is
        unreachable); forward `driver.location` to the rider of the driver's active trip."""
        region = live.region()
        pipeline = fix_pipeline()
        keys = [
            live.driver_key(driver_id, region),
            live.available_key(region),
            live.available_key(region, wav=True),
            live.fixes_key(region),
            live.trail_key(driver_id, region),
        ]
        args = [
            str(driver_id),
            repr(fix.lat),
            repr(fix.lng),
            _fmt(fix.heading),
            _fmt(fix.speed_mps),
            _fmt(fix.accuracy_m),
            repr(fix.recorded_at),
            repr(time.time()),
            settings.ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS,
            live.FIXES_MAXLEN,
            JUMP_SLACK_M + min(fix.accuracy_m or 0.0, 200.0),
            live.GEO_LAT_LIMIT,
            live.TRAIL_TTL_S,
        ]
        answer = await pipeline.run(keys, args)
        verdict = _text(answer[0])
        if verdict == "unknown":  # Redis lost the driver's record: restore it, then store this fix on it
            await pipeline.restore_driver(driver_id)
            answer = await pipeline.run(keys, args)
            verdict = _text(answer[0])
        if verdict == "not_online":
            raise Conflict(
                gettext("You are neither online nor on a trip, so this fix is not stored; go online first."),
                code="not_online",
            )
        if verdict == "unknown":  # lost again between the restore and the retry
            raise _redis_unavailable(pipeline.outage)
        if verdict == "stale":
            raise InvalidInput(gettext("The fix is not newer than the last one."), code="fix_out_of_order")
        if verdict == "jump":
            raise InvalidInput(
                gettext("The fix is too far from the last one to be real; it is not used for matching."),
                code="implausible_jump",
                details={"distance_m": int(answer[1])},
            )
        rider_id = answer[1].decode() if isinstance(answer[1], bytes) else answer[1]
        trip_id = answer[2].decode() if isinstance(answer[2], bytes) else answer[2]
        if rider_id and trip_id:
            countdown = await remaining_eta(trip_id, (fix.lat, fix.lng))
            await apush_to_user(
                rider_id,
                {
                    "type": "driver.location",
                    "trip_id": trip_id,
                    "lat": fix.lat,
                    "lng": fix.lng,
                    "heading": fix.heading,
                    "eta_s": None if countdown is None else countdown.eta_s,
                    "eta_to": None if countdown is None else countdown.to,
                },
            )


# -- persistence (Celery task and completion) -------------------------------------------------------------


# The flush stages its rows with COPY in two temporary tables of the session, then inserts and updates
# from them in one statement each. A multi-row INSERT with a placeholder per value cost the Celery worker
# most of its CPU in psycopg parsing the ten thousand placeholders of each chunk (py-spy, make bench-e2e).
# Each is emptied once read: a flush inside a longer transaction (a trip's completion) may stage twice.
_STAGE_FIXES = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS flush_fixes (driver_id uuid, trip_id uuid, lng float8, "
    "lat float8, recorded_at timestamptz, received_at timestamptz, heading float8, speed_mps float8, "
    "accuracy_m float8, accepted boolean) ON COMMIT DELETE ROWS"
)
_INSERT_FIXES = (
    "INSERT INTO dispatch_locationfix (driver_id, trip_id, point, recorded_at, received_at, heading, "
    "speed_mps, accuracy_m, accepted) "
    "SELECT v.driver_id, v.trip_id, ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326), v.recorded_at, "
    "v.received_at, v.heading, v.speed_mps, v.accuracy_m, v.accepted FROM flush_fixes AS v "
    "WHERE EXISTS (SELECT 1 FROM accounts_user u WHERE u.id = v.driver_id)"
)
_STAGE_PRESENCE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS flush_presence (driver_id uuid, lat float8, lng float8, "
    "heading float8, speed float8, fix_at timestamptz, accuracy float8, jumps int) ON COMMIT DELETE ROWS"
)
# A newer fix already stored (a flush racing a completion's flush) is never overwritten by an older one:
# each column keeps its value where `v.fix_at IS NULL OR (p.fix_at IS NOT NULL AND p.fix_at > v.fix_at)`.
_UPDATE_PRESENCE = """
UPDATE dispatch_driverpresence AS p SET
  location = CASE WHEN v.fix_at IS NULL OR (p.fix_at IS NOT NULL AND p.fix_at > v.fix_at)
             THEN p.location ELSE ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326) END,
  heading = CASE WHEN v.fix_at IS NULL OR (p.fix_at IS NOT NULL AND p.fix_at > v.fix_at)
            THEN p.heading ELSE v.heading END,
  speed_mps = CASE WHEN v.fix_at IS NULL OR (p.fix_at IS NOT NULL AND p.fix_at > v.fix_at)
              THEN p.speed_mps ELSE v.speed END,
  accuracy_m = CASE WHEN v.fix_at IS NULL OR (p.fix_at IS NOT NULL AND p.fix_at > v.fix_at)
               THEN p.accuracy_m ELSE v.accuracy END,
  fix_at = GREATEST(p.fix_at, v.fix_at),
  implausible_jumps = p.implausible_jumps + v.jumps,
  updated_at = now()
FROM flush_presence AS v WHERE p.driver_id = v.driver_id
"""


def _parse_entry(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in fields.items()}


def _opt(value: str) -> float | None:
    return float(value) if value else None


def flush_pending_fixes(*, region_name: str | None = None, wait_s: float = 5.0) -> int:
    """Persist the fixes stream since the last flush: bulk INSERT of LocationFix rows and one bulk UPDATE of
    DriverPresence (latest accepted fix per driver, refused jumps counted). Returns the rows inserted.

    A Redis lock keeps two flushes from inserting the same entries; a trip completing calls this too, so
    its trail is complete before it is measured. While Redis is unreachable it stores nothing and returns
    0 (the outage is logged once, not every 2 s); the fixes it did not reach were lost with Redis or wait
    in the stream for the next flush.
    """
    try:
        total = _flush_under_lock(region_name=region_name, wait_s=wait_s)
    except REDIS_UNREACHABLE as exc:
        _flush_outage.failed(exc)
        return 0
    _flush_outage.recovered()
    metrics.location_fixes_stored.inc(total)
    return total


_flush_outage = RedisOutage("location flush", logger=logger)


def _flush_under_lock(*, region_name: str | None, wait_s: float) -> int:
    client = get_redis()
    lock = client.lock(live.flush_lock_key(region_name), timeout=60, blocking_timeout=wait_s)
    if not lock.acquire():
        logger.info("location flush skipped: another flush holds the lock")
        return 0
    try:
        total = 0
        stream = live.fixes_key(region_name)
        while True:
            cursor = client.get(live.flush_cursor_key(region_name))
            start = "(" + cursor.decode() if cursor else "-"
            entries = client.xrange(stream, min=start, max="+", count=FLUSH_CHUNK)
            if not entries:
                return total
            total += _persist(entries)
            client.set(live.flush_cursor_key(region_name), entries[-1][0])
            if len(entries) < FLUSH_CHUNK:
                return total
    finally:
        try:
            lock.release()
        except REDIS_UNREACHABLE:
            pass  # Redis went away mid-flush; the caller logs the outage, the lock expires with Redis
        except Exception:  # the lock may have expired under a very slow flush; nothing to undo
            logger.warning("location flush lock expired before release")


def _persist(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
    rows: list[tuple[Any, ...]] = []
    latest: dict[str, tuple[Any, ...]] = {}
    jumps: dict[str, int] = {}
    for _entry_id, raw in entries:
        fields = _parse_entry(raw)
        if fields.get("k") != "fix":
            continue
        driver_id = fields["d"]
        accepted = fields.get("ok") == "1"
        recorded = datetime.fromtimestamp(float(fields["t"]), tz=UTC)
        received = datetime.fromtimestamp(float(fields["rx"]), tz=UTC)
        lat, lng = float(fields["lat"]), float(fields["lng"])
        heading, speed, accuracy = (
            _opt(fields.get("h", "")),
            _opt(fields.get("s", "")),
            _opt(fields.get("a", "")),
        )
        rows.append(
            (
                driver_id,
                fields.get("trip") or None,
                lng,
                lat,
                recorded,
                received,
                heading,
                speed,
                accuracy,
                accepted,
            )
        )
        if accepted:
            previous = latest.get(driver_id)
            if previous is None or previous[5] <= recorded:
                latest[driver_id] = (driver_id, lat, lng, heading, speed, recorded, accuracy)
        else:
            jumps[driver_id] = jumps.get(driver_id, 0) + 1
    if not rows:
        return 0
    updates = []
    for driver_id in set(latest) | set(jumps):
        fix = latest.get(driver_id) or (driver_id, None, None, None, None, None, None)
        updates.append((*fix, jumps.get(driver_id, 0)))
    with transaction.atomic(), connection.cursor() as cursor:
        _copy_into(cursor, stage=_STAGE_FIXES, table="flush_fixes", rows=rows)
        cursor.execute(_INSERT_FIXES)
        cursor.execute("DELETE FROM flush_fixes")
        if updates:
            _copy_into(cursor, stage=_STAGE_PRESENCE, table="flush_presence", rows=updates)
            cursor.execute(_UPDATE_PRESENCE)
            cursor.execute("DELETE FROM flush_presence")
    return len(rows)


def _copy_into(cursor: CursorWrapper, *, stage: str, table: str, rows: list[tuple[Any, ...]]) -> None:
    cursor.execute(stage)
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
