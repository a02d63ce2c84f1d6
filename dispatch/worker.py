"""The region's dispatch worker: one asyncio process that owns the in-memory DriverIndex.

It tails two Redis streams with one blocking XREAD: the fixes stream (to keep the index current) and the
dispatch event stream (ride requests, declines, accepts, withdrawals, drivers going on/off line or freed).
A request is matched at once (or, with `ROCHDALE_BATCH_WINDOW_MS` > 0, with the others that arrived in
the window, by linear assignment), and offered under the trip's row lock (dispatch/services/dispatching.py).
Offer timers are asyncio timers; every deadline is also in PostgreSQL (`Offer.expires_at`,
`Trip.next_dispatch_at`), so a restarted worker re-arms them, and `sweep_dispatch` covers a dead one.

Redis is a cache to it: the worker never exits on a Redis connection error. It waits with capped, jittered
backoff (logging the outage once), and on every reconnect and every heartbeat checks the region's
generation key (`rd:{region}:gen`, a random token it wrote). A Redis without it has lost its data, and the
worker rebuilds the live state from PostgreSQL: every online driver's record (last fix, trip, vehicle) is
put back and indexed, the stream positions start over, the offer holders and timers are re-armed.

Run it with `manage.py dispatch_worker [--region default]`, as many per region as should stand by: the
one holding the region's lease (dispatch/services/leases.py) is active, the others wait as standbys and take
over within seconds of its death, rebuilding the index and re-arming the timers from Redis and PostgreSQL.
Every write it makes carries its lease's fencing token: rounds are checked against PostgreSQL's lease row,
its Redis beat and restores against the region's fence key, so a worker that was taken over writes nothing
more. docs/dispatch.md has the failure modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from redis.commands.core import AsyncScript

from backend import heartbeats, metrics
from backend.redis import REDIS_UNREACHABLE, RedisOutage, get_async_redis, queue_script
from dispatch import live, selectors
from dispatch.batch_assignment import assign_batch
from dispatch.matching.index import DriverIndex
from dispatch.models import Offer, OfferStatus, Trip
from dispatch.policy import DispatchPolicy, dispatch_policy_in_force
from dispatch.services import dispatching
from dispatch.services.dispatching import Candidate, RankedCandidate, RoundResult, TripInfo
from dispatch.services.leases import (
    LEASE_RENEW_S,
    LEASE_TTL_S,
    STANDBY_POLL_S,
    Lease,
    LeaseLost,
    holder_id,
    lease_acquire,
    lease_release,
    lease_renew,
)
from dispatch.state import TripStatus

logger = logging.getLogger(__name__)

STREAM_BLOCK_MS = 200
# The least time between two stream reads that found entries: at a few hundred fixes a second each read
# would otherwise carry one or two, and the read itself (a round trip through the client) costs more than
# the entries. Waiting this long lets them gather: a request waits at most this much longer for its round.
STREAM_MIN_INTERVAL_S = 0.01
STREAM_BATCH = 2_000
HEARTBEAT_TTL_S = 5
POLICY_REFRESH_S = 10.0
STALE_DRIVER_S = 300.0
RESCAN_S = 10.0
# A round that could not read Redis's live flags is tried again this soon (the outage backoff paces the
# worker's own reconnects; this only keeps the trip from waiting for the 10 s rescan).
ROUND_RETRY_AFTER_REDIS_S = 1.0
STREAM_START = "0-0"
# How often the event loop's lag is sampled: a timer due every LOOP_LAG_PROBE_S, measured against when it ran.
LOOP_LAG_PROBE_S = 0.25


@dataclass(slots=True)
class DriverMeta:
    fix_at: float
    wav: bool


def _text(value: bytes | str | int | None) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def _hygienic[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """`function` between two of Django's connection checks (a broken or too-old connection is replaced)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def _db[**P, R](function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run ORM code in the worker's one database thread, with Django's connection hygiene."""
    return sync_to_async(_hygienic(function), thread_sensitive=True)


class DispatchWorker:
    """Owns the index, the offer timers and the dispatch rounds of one region."""

    def __init__(self, region: str | None = None, *, batch_window_ms: int | None = None) -> None:
        self.region = region or live.region()
        self.batch_window_s = (
            settings.ROCHDALE_BATCH_WINDOW_MS if batch_window_ms is None else batch_window_ms
        ) / 1000.0
        self.index = DriverIndex()
        self.meta: dict[str, DriverMeta] = {}
        self.trips: dict[str, TripInfo] = {}
        self.offer_holders: dict[str, str] = {}  # driver id -> trip id of their open offer
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.pending: list[str] = []
        # When each trip not yet offered was requested (its request event's `t`), for request-to-offer.
        self.requested_at: dict[str, float] = {}
        self.in_flight: set[str] = set()
        self.again: set[str] = set()
        self.redis: Any = None
        self.restore_script: AsyncScript | None = None
        self.beat_script: AsyncScript | None = None
        # The region's lease while active (None while standby), and why this worker must stop acting: the
        # lease renewal found another holder, a fenced write was refused, or renewals failed past the TTL.
        self.holder = holder_id()
        self.lease: Lease | None = None
        self.lease_lost = asyncio.Event()
        self.lease_renewed_at = 0.0  # monotonic time the last successful renewal was sent
        # Its own thread (and so its own database connection): a renewal never waits behind a round.
        self.lease_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lease-{self.region}")
        self.policy: DispatchPolicy | None = None
        self.policy_loaded_at = 0.0
        self.stream_ids: dict[str, str] = {}
        self.generation: str | None = None  # the token in `rd:{region}:gen` this worker's state matches
        self.rebuilds = 0  # how many times Redis was found to have lost its data
        self.outage = RedisOutage(f"dispatch worker {self.region}", logger=logger)
        self.rounds = 0
        self._tasks: set[asyncio.Task] = set()
        self._batch_task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        # One thread for road ranking: the in-process engine keeps one actor (and its tile cache) per thread.
        self.road_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"roads-{self.region}")

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the region's lease if this worker does not hold it yet (RuntimeError when another does),
        connect, remember where the streams end, claim or adopt Redis's generation, then rebuild the index
        (restoring from PostgreSQL any online driver Redis has no record of) and re-arm every timer.
        Raises `REDIS_UNREACHABLE` errors; `run()` retries it until Redis answers."""
        self._connect()
        if self.lease is None and not await self.try_lease():
            raise RuntimeError(f"the dispatch lease of region {self.region} is held by another worker")
        for key in (live.fixes_key(self.region), live.events_key(self.region)):
            last = await self.redis.xrevrange(key, count=1)
            self.stream_ids[key] = _text(last[0][0]) if last else STREAM_START
        await self.heartbeat()
        await self.rebuild_index()
        await self.rearm_from_database()

    def request_stop(self) -> None:
        """Ask `run()` to return after the stream read in progress (at most STREAM_BLOCK_MS).

        Preferred to cancelling the task: a cancellation that lands inside a blocking Redis read can be lost
        by redis-py's hiredis parser, leaving the task waiting on a socket nobody will write to."""
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        await self.step_down()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
            self.redis = None
        self.road_executor.shutdown(wait=False, cancel_futures=True)
        self.road_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"roads-{self.region}")
        self.lease_executor.shutdown(wait=False, cancel_futures=True)
        self.lease_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lease-{self.region}")

    def _connect(self) -> None:
        if self.redis is None:
            self.redis = get_async_redis()
            self.restore_script = self.redis.register_script(live.RESTORE_SCRIPT)
            self.beat_script = self.redis.register_script(live.WORKER_BEAT_SCRIPT)

    # -- the lease: active or standby ------------------------------------------------------------------------

    async def _lease_call[R](self, function: Callable[..., R], **kwargs: object) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.lease_executor, functools.partial(_hygienic(function), **kwargs)
        )

    async def try_lease(self) -> bool:
        """One attempt at the region's lease (above the highest token Redis has seen); True once held."""
        floor = 0
        with contextlib.suppress(*REDIS_UNREACHABLE):
            floor = int(await self.redis.get(live.fence_key(self.region)) or 0)
        sent_at = time.monotonic()
        lease = await self._lease_call(
            lease_acquire, region=self.region, holder=self.holder, token_floor=floor
        )
        if lease is None:
            return False
        self.lease, self.lease_renewed_at = lease, sent_at
        self.lease_lost.clear()
        metrics.worker_active.labels(region=self.region).set(1)
        metrics.lease_takeovers.labels(region=self.region, event="taken").inc()
        logger.info("dispatch worker %s: active (lease token %d, %s)", self.region, lease.token, self.holder)
        return True

    async def wait_for_lease(self) -> bool:
        """Stand by until the region's lease is this worker's (True), or until asked to stop (False). A
        standby beats only its own liveness key; it reads nothing else and writes nothing else."""
        announced = False
        metrics.worker_active.labels(region=self.region).set(0)
        while not self._stopping.is_set():
            self._connect()
            try:
                if await self.try_lease():
                    return True
            except DatabaseError as exc:
                logger.warning("dispatch worker %s: cannot reach the lease (%s); retrying", self.region, exc)
            if not announced:
                logger.info("dispatch worker %s: standby (the lease is held by another worker)", self.region)
                announced = True
            with contextlib.suppress(*REDIS_UNREACHABLE):
                await self.redis.set(
                    heartbeats.host_key(live.worker_heartbeat_key(self.region)),
                    str(time.time()),
                    ex=heartbeats.expiry_s(),
                )
            await self._pause(STANDBY_POLL_S)
        return False

    async def _keep_lease(self) -> None:
        """Renew every LEASE_RENEW_S. Lost when another holds it, or when no renewal has gone through for
        LEASE_TTL_S (the database may have let it expire: a standby may be taking over)."""
        while self.lease is not None and not self.lease_lost.is_set():
            await asyncio.sleep(LEASE_RENEW_S)
            lease, sent_at = self.lease, time.monotonic()
            if lease is None:
                return
            try:
                held = await self._lease_call(lease_renew, lease=lease)
            except DatabaseError as exc:
                if time.monotonic() - self.lease_renewed_at < LEASE_TTL_S:
                    logger.warning("dispatch worker %s: lease renewal failed (%s)", self.region, exc)
                    continue
                held = False
            if held:
                self.lease_renewed_at = sent_at
            else:
                self.lost_lease("its renewal found another holder or failed for longer than the lease")

    def lost_lease(self, why: str) -> None:
        """Stop acting at once: the serving loop ends after its current read, and the worker stands by."""
        if self.lease_lost.is_set() or self.lease is None:
            return
        logger.warning(
            "dispatch worker %s: lost the lease (token %d): %s", self.region, self.lease.token, why
        )
        metrics.lease_takeovers.labels(region=self.region, event="lost").inc()
        self.lease_lost.set()

    async def step_down(self) -> None:
        """Cancel every timer and task and forget the region's live state (a new term rebuilds it); give
        the lease back when still held (a clean stop: a standby takes over within one poll)."""
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.ready.clear()
        lease, self.lease = self.lease, None
        metrics.worker_active.labels(region=self.region).set(0)
        if lease is not None and not self.lease_lost.is_set():
            if self.redis is not None:
                with contextlib.suppress(Exception):
                    await self.redis.delete(live.worker_heartbeat_key(self.region))
            with contextlib.suppress(Exception):
                await self._lease_call(lease_release, lease=lease)
        self.index = DriverIndex()
        self.meta.clear()
        self.trips.clear()
        self.offer_holders.clear()
        self.pending.clear()
        self.requested_at.clear()
        self.in_flight.clear()
        self.again.clear()
        self.stream_ids.clear()
        self.generation = None

    async def run(self) -> None:
        """Stand by until the region's lease is free, then start (waiting for Redis if it is down) and
        serve until cancelled, `stop()`, or the lease is lost, when it stands by again. A Redis connection
        error never ends it: the loop waits the outage out and carries on."""
        try:
            while await self.wait_for_lease():
                try:
                    await self._serve()
                finally:
                    await self.step_down()
        finally:
            await self.stop()

    async def _serve(self) -> None:
        """One term as the region's active worker: until stopped or the lease is lost."""
        if not await self._start_when_redis_answers():
            return
        self._spawn(self._keep_lease())
        self.ready.set()
        self._spawn(self._probe_loop_lag())
        # From the start, not only after the first second: a scrape right after the worker came up
        # (seen in CI) would otherwise find no index gauge at all.
        metrics.index_drivers.labels(region=self.region).set(len(self.index))
        last_beat = last_prune = last_scan = time.monotonic()
        while not self._stopping.is_set() and not self.lease_lost.is_set():
            try:
                read_at = time.monotonic()
                if await self.step(block_ms=STREAM_BLOCK_MS):
                    await asyncio.sleep(max(0.0, read_at + STREAM_MIN_INTERVAL_S - time.monotonic()))
                now = time.monotonic()
                if now - last_beat >= 1.0:
                    await self.heartbeat()
                    last_beat = now
                    metrics.index_drivers.labels(region=self.region).set(len(self.index))
                self.outage.recovered()
            except REDIS_UNREACHABLE as exc:
                await self._ride_out_outage(exc)
                now = last_beat = time.monotonic()
            if now - last_prune >= 30.0:
                self.prune_stale()
                last_prune = now
            if now - last_scan >= RESCAN_S:
                self._spawn(self.rearm_from_database())
                last_scan = now

    async def _start_when_redis_answers(self) -> bool:
        """`start()`, retried with backoff while Redis is unreachable; False if asked to stop first."""
        while not self._stopping.is_set():
            try:
                await self.start()
            except REDIS_UNREACHABLE as exc:
                await self._pause(self.outage.failed(exc))
                continue
            self.outage.recovered()
            return True
        return False

    async def _ride_out_outage(self, error: Exception) -> None:
        """Wait (capped, jittered backoff) until Redis answers a heartbeat again, which also finds out
        whether it lost its data; then re-arm what failed meanwhile. Returns early when asked to stop."""
        delay = self.outage.failed(error)
        while not self._stopping.is_set() and not self.lease_lost.is_set():
            await self._pause(delay)
            if self._stopping.is_set():
                return
            try:
                await self.heartbeat()
            except REDIS_UNREACHABLE as again:
                delay = self.outage.failed(again)
                continue
            self.outage.recovered()
            # Rounds and events that failed during the outage: PostgreSQL knows every open trip and offer.
            self._spawn(self.rearm_from_database())
            if self.pending:
                self._spawn(self.flush_pending())
            return

    async def _probe_loop_lag(self) -> None:
        """Sample how late the loop runs a due timer: the time it spent on other work (a long round, a
        burst of fixes, a blocking call) that every offer timer and stream read waited behind."""
        lag = metrics.worker_loop_lag_seconds.labels(region=self.region)
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LOOP_LAG_PROBE_S
            await asyncio.sleep(LOOP_LAG_PROBE_S)
            lag.observe(max(0.0, loop.time() - due))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def heartbeat(self) -> None:
        """Beat (`rd:{region}:worker`, read by the sweeper), fenced by the lease's token, and check Redis
        still holds this worker's generation: if not, Redis lost its data and the live state is rebuilt from
        PostgreSQL. A beat refused by the fence (another worker took over) loses the lease."""
        assert self.lease is not None, "only the lease holder beats the region's key"
        beaten, found = await self.beat_script(
            keys=[
                live.worker_heartbeat_key(self.region),
                live.fence_key(self.region),
                heartbeats.host_key(live.worker_heartbeat_key(self.region)),
                live.generation_key(self.region),
            ],
            args=[
                self.lease.token,
                repr(time.time()),
                HEARTBEAT_TTL_S,
                heartbeats.expiry_s(),
                uuid.uuid4().hex,
            ],
        )
        if not beaten:
            self.lost_lease("Redis's fence holds a newer lease token")
            return
        if _text(found) == self.generation:
            return
        if self.generation is None:  # starting: `start()` rebuilds from Redis and PostgreSQL anyway
            self.generation = _text(found)
            return
        logger.warning(
            "dispatch worker %s: Redis lost its data (generation %s, now %s); rebuilding from PostgreSQL",
            self.region,
            self.generation,
            _text(found),
        )
        await self.rebuild_after_redis_loss()
        # Only now: a rebuild cut short by another outage is started again by the next heartbeat.
        self.generation = _text(found)

    async def rebuild_after_redis_loss(self) -> None:
        """Live state from PostgreSQL into an empty Redis: online drivers re-marked with their last fixes
        and indexed, both streams read from their (new) beginning, offer holders and timers re-armed."""
        self.rebuilds += 1
        self.stream_ids = {key: STREAM_START for key in self.stream_ids}
        self.index = DriverIndex()
        self.meta.clear()
        await self.rebuild_index()
        await self.rearm_from_database()

    def _spawn(self, coroutine: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("dispatch task failed", exc_info=task.exception())

    # -- the streams -----------------------------------------------------------------------------------------

    async def step(self, *, block_ms: int = 0) -> int:
        """Read whatever is waiting on the two streams (blocking up to `block_ms`) and act on it; returns the
        number of entries handled. Tests call this to run the worker one step at a time."""
        answer = await self.redis.xread(self.stream_ids, count=STREAM_BATCH, block=block_ms or None)
        handled = 0
        requested = False
        newest_ms = 0
        for raw_key, entries in answer or []:
            key = _text(raw_key)
            for entry_id, raw in entries:
                fields = {_text(k): _text(v) for k, v in raw.items()}
                if key == live.fixes_key(self.region):
                    self.on_fix(fields)
                else:
                    trip_id = await self.on_event(fields)
                    if trip_id:
                        requested = True
                        if trip_id not in self.pending:
                            self.pending.append(trip_id)
                # Moved past an entry only once it is applied: an event whose Redis read failed is read again.
                self.stream_ids[key] = _text(entry_id)
                newest_ms = max(newest_ms, int(self.stream_ids[key].split("-", 1)[0]))
                handled += 1
        if handled:
            # The entry ids are Redis's clock in ms: how far behind the streams this worker is running.
            behind = max(0.0, time.time() - newest_ms / 1000.0)
            metrics.worker_stream_lag_seconds.labels(region=self.region).set(behind)
        if requested:
            if self.batch_window_s <= 0:
                await self.flush_pending()
            elif self._batch_task is None or self._batch_task.done():
                self._batch_task = self._spawn(self._flush_after_window())
        return handled

    def on_fix(self, fields: dict[str, str]) -> None:
        if fields.get("k") != "fix" or fields.get("ok") != "1":
            return
        driver_id = fields["d"]
        lat, lng = float(fields["lat"]), float(fields["lng"])
        self.meta[driver_id] = DriverMeta(float(fields["t"]), fields.get("wav") == "1")
        if fields.get("on") == "1" and not fields.get("trip"):
            self.index.update(driver_id, lat, lng)
        else:
            self.index.remove(driver_id)

    async def on_event(self, fields: dict[str, str]) -> str | None:
        """Apply one dispatch event; returns a trip id that needs a round now."""
        kind = fields.get("k")
        driver_id = fields.get("d", "")
        trip_id = fields.get("trip", "")
        if kind == "request" and trip_id:
            if fields.get("t"):
                self.requested_at.setdefault(trip_id, float(fields["t"]))
            if fields.get("lat"):
                self.trips.setdefault(
                    trip_id,
                    TripInfo(trip_id, float(fields["lat"]), float(fields["lng"]), fields.get("wav") == "1"),
                )
            return trip_id
        if kind == "decline" and trip_id:
            if self.offer_holders.get(driver_id) == trip_id:
                del self.offer_holders[driver_id]
            info = self.trips.get(trip_id)
            if info is not None:
                info.excluded.add(driver_id)
            return trip_id
        if kind in ("accept", "withdraw"):
            self.offer_holders.pop(driver_id, None)
            if trip_id:
                self._forget_trip(trip_id)
            if kind == "accept":
                self.index.remove(driver_id)
            return None
        if kind in ("on", "free"):
            await self._reindex_from_redis(driver_id)
            return None
        if kind == "off":
            self.index.remove(driver_id)
            return None
        return None

    async def _reindex_from_redis(self, driver_id: str) -> None:
        lat, lng, fix_at, online, trip, wav = await self.redis.hmget(
            live.driver_key(driver_id), "lat", "lng", "t", "online", "trip", "wav"
        )
        if lat is None or fix_at is None:
            return
        self.meta[driver_id] = DriverMeta(float(fix_at), wav == b"1")
        if online == b"1" and not trip:
            self.index.update(driver_id, float(lat), float(lng))
        else:
            self.index.remove(driver_id)

    def prune_stale(self) -> None:
        """Forget drivers unheard of for minutes (they would be filtered out anyway)."""
        cutoff = time.time() - STALE_DRIVER_S
        for driver_id in [d for d, m in self.meta.items() if m.fix_at < cutoff]:
            del self.meta[driver_id]
            self.index.remove(driver_id)

    # -- rebuild after a restart -----------------------------------------------------------------------------

    async def rebuild_index(self) -> int:
        """Index every available driver: first put back, from PostgreSQL, the record of every online
        driver Redis has no complete record of (it lost its data, or a fix or a counter wrote a partial
        one since), then load every driver's record from Redis. Returns the drivers indexed."""
        restored = await self.restore_from_database()
        loaded = 0
        prefix = live.driver_prefix(self.region)
        keys = [
            key
            async for key in self.redis.scan_iter(match=f"{prefix}*", count=1000)
            if b":" not in key[len(prefix) :]  # a driver's own hash, not `...:drv:{id}:...`
        ]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            pipe = self.redis.pipeline(transaction=False)
            for key in chunk:
                pipe.hmget(key, "lat", "lng", "t", "online", "trip", "wav")
            for key, (lat, lng, fix_at, online, trip, wav) in zip(chunk, await pipe.execute(), strict=True):
                if lat is None or fix_at is None:
                    continue
                driver_id = _text(key)[len(prefix) :]
                self.meta[driver_id] = DriverMeta(float(fix_at), wav == b"1")
                if online == b"1" and not trip:
                    self.index.update(driver_id, float(lat), float(lng))
                    loaded += 1
        logger.info(
            "dispatch worker %s: %d available drivers indexed (%d records restored from PostgreSQL)",
            self.region,
            loaded,
            restored,
        )
        return loaded

    async def restore_from_database(self) -> int:
        """Write back each online driver's record from PostgreSQL where Redis lacks it (RESTORE_SCRIPT
        fills in missing fields only: those present are newer). Returns how many records it filled in."""
        records = await _db(selectors.online_driver_live_records)()
        token = self.lease.token if self.lease is not None else None
        restored = 0
        # A pipeline on a cluster does not load its scripts first (one on a single Redis does).
        await self.redis.script_load(live.RESTORE_SCRIPT)
        for start in range(0, len(records), 500):
            pipe = self.redis.pipeline(transaction=False)
            for record in records[start : start + 500]:
                queue_script(
                    pipe,
                    self.restore_script.sha,
                    keys=live.restore_keys(record, region_name=self.region),
                    args=live.restore_args(record, lease_token=token),
                )
            filled = await pipe.execute()
            if -1 in filled:  # refused by the fence: another worker has the region now
                self.lost_lease("Redis's fence refused its restore")
                return restored
            restored += sum(filled)
        return restored

    async def rearm_from_database(self) -> None:
        """Arm a timer for every open offer and every trip still looking for a driver."""
        offers, trips = await _db(_dispatch_state)()
        loop = asyncio.get_running_loop()
        # PostgreSQL's open offers are the truth: an accept or decline event lost with Redis must not
        # leave a driver marked as holding an offer forever (and so never offered another trip).
        self.offer_holders = {driver_id: trip_id for trip_id, driver_id, _ in offers}
        for trip_id, _driver_id, expires_at in offers:
            self._arm(trip_id, expires_at, loop=loop)
        for trip_id, due_at in trips:
            if trip_id not in self.timers and trip_id not in self.in_flight:
                self._arm(trip_id, due_at, loop=loop)

    # -- timers and rounds -----------------------------------------------------------------------------------

    def _arm(
        self, trip_id: str, at: datetime | None, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        loop = loop or asyncio.get_running_loop()
        old = self.timers.pop(trip_id, None)
        if old is not None:
            old.cancel()
        delay = 0.0 if at is None else max(0.0, (at - timezone.now()).total_seconds())
        self.timers[trip_id] = loop.call_later(delay, self._fire, trip_id)

    def _fire(self, trip_id: str) -> None:
        self.timers.pop(trip_id, None)
        self._spawn(self.run_rounds([trip_id]))

    def _forget_trip(self, trip_id: str) -> None:
        handle = self.timers.pop(trip_id, None)
        if handle is not None:
            handle.cancel()
        self.trips.pop(trip_id, None)
        self.requested_at.pop(trip_id, None)

    async def _flush_after_window(self) -> None:
        await asyncio.sleep(self.batch_window_s)
        await self.flush_pending()

    async def flush_pending(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            await self.run_rounds(batch)

    async def current_policy(self) -> DispatchPolicy:
        if self.policy is None or time.monotonic() - self.policy_loaded_at > POLICY_REFRESH_S:
            self.policy = await _db(dispatch_policy_in_force)()
            self.policy_loaded_at = time.monotonic()
        return self.policy

    async def run_rounds(self, trip_ids: Sequence[str]) -> list[RoundResult]:
        """One dispatch round for each trip; several trips are assigned together (linear assignment)."""
        wanted = []
        for trip_id in trip_ids:
            if trip_id in self.in_flight:
                self.again.add(trip_id)
            else:
                wanted.append(trip_id)
        if not wanted:
            return []
        self.in_flight.update(wanted)
        try:
            policy = await self.current_policy()
            infos = []
            for trip_id in wanted:
                info = self.trips.get(trip_id)
                if info is None:
                    info = await _db(dispatching.trip_info)(trip_id=trip_id)
                    if info is None:
                        self._forget_trip(trip_id)
                        continue
                    self.trips[trip_id] = info
                infos.append(info)
            now = time.time()
            try:
                candidate_lists = [await self.candidates_for(info, policy=policy, now=now) for info in infos]
            except REDIS_UNREACHABLE as exc:
                self.outage.failed(exc)
                retry_at = timezone.now() + timedelta(seconds=ROUND_RETRY_AFTER_REDIS_S)
                for info in infos:
                    self._arm(info.trip_id, retry_at)
                return []
            plans = self.plan(infos, candidate_lists, policy=policy)
            results = []
            for info, (ranked, batch) in zip(infos, plans, strict=True):
                if self.lease is None or self.lease_lost.is_set():
                    break
                try:
                    result = await _db(dispatching.dispatch_round)(
                        trip_id=info.trip_id, ranked=ranked, policy=policy, lease=self.lease, batch=batch
                    )
                except LeaseLost:
                    self.lost_lease("a dispatch round was fenced out")
                    break
                self.rounds += 1
                self.after_round(info, result)
                results.append(result)
            return results
        finally:
            self.in_flight.difference_update(wanted)
            repeat = [t for t in wanted if t in self.again]
            self.again.difference_update(repeat)
            if repeat:
                self._spawn(self.run_rounds(repeat))

    async def candidates_for(self, info: TripInfo, *, policy: DispatchPolicy, now: float) -> list[Candidate]:
        """Nearest free drivers from the index, filtered (WAV, fresh fix, not yet offered this trip, not
        holding another offer), then checked against Redis's live flags."""
        near = self.index.nearest(info.lat, info.lng, policy.max_candidates * 2, policy.search_radius_m)
        filtered = []
        for driver_id, metres in near:
            meta = self.meta.get(driver_id)
            if meta is None or now - meta.fix_at > policy.max_fix_age_s:
                continue
            if info.wav and not meta.wav:
                continue
            if driver_id in info.excluded or driver_id in self.offer_holders:
                continue
            filtered.append((driver_id, metres, self.index.position(driver_id)))
        candidates = await dispatching.alive_candidates(
            self.redis, filtered, policy=policy, excluded=info.excluded, now=now
        )
        # The road engine computes in C++ for a few milliseconds; its own thread keeps fixes flowing.
        return await asyncio.get_running_loop().run_in_executor(
            self.road_executor,
            functools.partial(
                dispatching.by_road, candidates[: policy.max_candidates], pickup=(info.lat, info.lng)
            ),
        )

    def plan(
        self, infos: Sequence[TripInfo], candidate_lists: Sequence[list[Candidate]], *, policy: DispatchPolicy
    ) -> list[tuple[list[RankedCandidate], dict[str, Any] | None]]:
        """Each trip's ranked candidates. With several trips, a minimum-total-ETA assignment decides who goes
        first for each, and a driver assigned to one trip is not ranked first for another."""
        ranked = [
            dispatching.rank_candidates(c, policy=policy, wheelchair_required=info.wav)
            for info, c in zip(infos, candidate_lists, strict=True)
        ]
        if len(infos) < 2:
            return [(r, None) for r in ranked]
        chosen = assign_batch(candidate_lists, max_eta_s=policy.max_pickup_eta_s)
        plans = []
        taken = {driver for driver in chosen if driver}
        for position, (options, driver) in enumerate(zip(ranked, chosen, strict=True)):
            first = [r for r in options if r.candidate.driver_id == driver]
            others = [
                r for r in options if r.candidate.driver_id != driver and r.candidate.driver_id not in taken
            ]
            batch = {"size": len(infos), "position": position, "assigned_driver": driver}
            plans.append(([*first, *others], batch))
        return plans

    def after_round(self, info: TripInfo, result: RoundResult) -> None:
        metrics.dispatch_rounds.labels(region=self.region, result=result.kind).inc()
        requested_at = self.requested_at.pop(info.trip_id, None) if result.kind == "offered" else None
        if requested_at is not None:  # the trip's first offer since its request reached this worker
            latency = max(0.0, time.time() - requested_at)
            metrics.request_to_offer_seconds.labels(region=self.region).observe(latency)
        if result.expired_offer is not None:
            _, driver_id = result.expired_offer
            self.offer_holders.pop(driver_id, None)
            info.excluded.add(driver_id)
        if result.kind == "offered":
            assert result.driver_id is not None
            self.offer_holders[result.driver_id] = info.trip_id
            info.excluded.add(result.driver_id)
        if result.kind in ("offered", "open", "waiting") and result.next_at is not None:
            self._arm(info.trip_id, result.next_at)
        else:
            self._forget_trip(info.trip_id)


def _dispatch_state() -> tuple[list[tuple[str, str, datetime]], list[tuple[str, datetime | None]]]:
    offers = [
        (str(trip_id), str(driver_id), expires_at)
        for trip_id, driver_id, expires_at in Offer.objects.filter(status=OfferStatus.OPEN).values_list(
            "trip_id", "driver_id", "expires_at"
        )
    ]
    with_offer = {trip_id for trip_id, _, _ in offers}
    trips = [
        (str(trip_id), due_at)
        for trip_id, due_at in Trip.objects.filter(status=TripStatus.REQUESTED).values_list(
            "id", "next_dispatch_at"
        )
        if str(trip_id) not in with_offer
    ]
    return offers, trips
