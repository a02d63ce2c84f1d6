"""The region's dispatch worker: one asyncio process that owns the in-memory DriverIndex.

It tails two Redis streams with one blocking XREAD: the fixes stream (to keep the index current) and the
dispatch event stream (ride requests, declines, accepts, withdrawals, drivers going on/off line or freed).
A request is matched at once (or, with `ROCHDALE_BATCH_WINDOW_MS` > 0, with the others that arrived in
the window, by linear assignment), and offered under the trip's row lock (dispatch/services/dispatching.py).
Offer timers are asyncio timers; every deadline is also in PostgreSQL (`Offer.expires_at`,
`Trip.next_dispatch_at`), so a restarted worker re-arms them, and `sweep_dispatch` covers a dead one.

Run it with `manage.py dispatch_worker [--region default]`; docs/dispatch.md has the failure modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from backend.redis import get_async_redis
from dispatch import live
from dispatch.matching.index import DriverIndex
from dispatch.policy import DispatchPolicy, dispatch_policy_in_force
from dispatch.services import dispatching
from dispatch.services.dispatching import Candidate, RankedCandidate, RoundResult, TripInfo

logger = logging.getLogger(__name__)

STREAM_BLOCK_MS = 200
STREAM_BATCH = 2_000
HEARTBEAT_TTL_S = 5
POLICY_REFRESH_S = 10.0
STALE_DRIVER_S = 300.0
RESCAN_S = 10.0


@dataclass(slots=True)
class DriverMeta:
    fix_at: float
    wav: bool


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def _db(function: Any) -> Any:
    """Run ORM code in the worker's one database thread, with Django's connection hygiene."""

    def run(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=True)


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
        self.in_flight: set[str] = set()
        self.again: set[str] = set()
        self.redis: Any = None
        self.policy: DispatchPolicy | None = None
        self.policy_loaded_at = 0.0
        self.stream_ids: dict[str, str] = {}
        self.rounds = 0
        self._tasks: set[asyncio.Task] = set()
        self._batch_task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, remember where the streams end, then rebuild the index and re-arm every timer."""
        self.redis = get_async_redis()
        for key in (live.fixes_key(self.region), live.events_key(self.region)):
            last = await self.redis.xrevrange(key, count=1)
            self.stream_ids[key] = _text(last[0][0]) if last else "0-0"
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
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.delete(live.worker_heartbeat_key(self.region))
            await self.redis.aclose()
            self.redis = None

    async def run(self) -> None:
        """Start, then serve until cancelled or `stop()`."""
        await self.start()
        self.ready.set()
        last_beat = last_prune = last_scan = time.monotonic()
        try:
            while not self._stopping.is_set():
                await self.step(block_ms=STREAM_BLOCK_MS)
                now = time.monotonic()
                if now - last_beat >= 1.0:
                    await self.heartbeat()
                    last_beat = now
                if now - last_prune >= 30.0:
                    self.prune_stale()
                    last_prune = now
                if now - last_scan >= RESCAN_S:
                    self._spawn(self.rearm_from_database())
                    last_scan = now
        finally:
            await self.stop()

    async def heartbeat(self) -> None:
        await self.redis.set(live.worker_heartbeat_key(self.region), str(time.time()), ex=HEARTBEAT_TTL_S)

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
        requests: list[str] = []
        for raw_key, entries in answer or []:
            key = _text(raw_key)
            for entry_id, raw in entries:
                self.stream_ids[key] = _text(entry_id)
                fields = {_text(k): _text(v) for k, v in raw.items()}
                handled += 1
                if key == live.fixes_key(self.region):
                    self.on_fix(fields)
                else:
                    trip_id = await self.on_event(fields)
                    if trip_id:
                        requests.append(trip_id)
        if requests:
            self.pending.extend(t for t in requests if t not in self.pending)
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
        """Load every online driver's last fix from Redis; when Redis has lost them, from PostGIS (and put
        them back into Redis)."""
        loaded = 0
        keys = [key async for key in self.redis.scan_iter(match=f"{live.DRIVER_PREFIX}*", count=1000)]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            pipe = self.redis.pipeline()
            for key in chunk:
                pipe.hmget(key, "lat", "lng", "t", "online", "trip", "wav")
            for key, (lat, lng, fix_at, online, trip, wav) in zip(chunk, await pipe.execute(), strict=True):
                if lat is None or fix_at is None:
                    continue
                driver_id = _text(key)[len(live.DRIVER_PREFIX) :]
                self.meta[driver_id] = DriverMeta(float(fix_at), wav == b"1")
                if online == b"1" and not trip:
                    self.index.update(driver_id, float(lat), float(lng))
                    loaded += 1
        if not keys:
            loaded = await self._restore_from_postgis()
        logger.info("dispatch worker %s: %d available drivers indexed", self.region, loaded)
        return loaded

    async def _restore_from_postgis(self) -> int:
        rows = await _db(_online_presences)()
        if not rows:
            return 0
        pipe = self.redis.pipeline()
        loaded = 0
        for row in rows:
            driver_id = row["driver_id"]
            mapping = {
                "online": "1",
                "wav": "1" if row["wav"] else "0",
                "idle": repr(row["idle"]),
                "trip": row["trip"],
                "rider": row["rider"],
                "conns": "0",
            }
            if row["lat"] is not None:
                mapping.update(lat=repr(row["lat"]), lng=repr(row["lng"]), t=repr(row["fix_at"]))
            pipe.hset(live.driver_key(driver_id), mapping=mapping)
            if row["trip"]:
                pipe.sadd(live.ON_TRIP_KEY, driver_id)
            if row["lat"] is None:
                continue
            self.meta[driver_id] = DriverMeta(row["fix_at"], row["wav"])
            if not row["trip"]:
                self.index.update(driver_id, row["lat"], row["lng"])
                if abs(row["lat"]) <= live.GEO_LAT_LIMIT:
                    pipe.geoadd(live.available_key(self.region), (row["lng"], row["lat"], driver_id))
                    if row["wav"]:
                        pipe.geoadd(
                            live.available_key(self.region, wav=True), (row["lng"], row["lat"], driver_id)
                        )
                loaded += 1
        await pipe.execute()
        return loaded

    async def rearm_from_database(self) -> None:
        """Arm a timer for every open offer and every trip still looking for a driver."""
        offers, trips = await _db(_dispatch_state)()
        loop = asyncio.get_running_loop()
        for trip_id, driver_id, expires_at in offers:
            self.offer_holders[driver_id] = trip_id
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
            candidate_lists = [await self.candidates_for(info, policy=policy, now=now) for info in infos]
            plans = self.plan(infos, candidate_lists, policy=policy)
            results = []
            for info, (ranked, batch) in zip(infos, plans, strict=True):
                result = await _db(dispatching.dispatch_round)(
                    trip_id=info.trip_id, ranked=ranked, policy=policy, batch=batch
                )
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
            filtered.append((driver_id, metres))
        candidates = await dispatching.alive_candidates(
            self.redis, filtered, policy=policy, excluded=info.excluded, now=now
        )
        return candidates[: policy.max_candidates]

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
        from dispatch.batch_assignment import assign_batch

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


def _online_presences() -> list[dict[str, Any]]:
    from backend.accounts.models import Vehicle
    from dispatch.models import DriverPresence, PresenceStatus, Trip
    from dispatch.state import DRIVER_ACTIVE_STATUSES

    active = dict(
        Trip.objects.filter(status__in=sorted(DRIVER_ACTIVE_STATUSES)).values_list("driver_id", "id")
    )
    riders = dict(Trip.objects.filter(id__in=active.values()).values_list("id", "rider_id"))
    wav = set(
        Vehicle.objects.filter(is_active=True, wheelchair_accessible=True).values_list(
            "driver__user_id", flat=True
        )
    )
    rows = []
    for presence in DriverPresence.objects.filter(status=PresenceStatus.ONLINE):
        trip_id = active.get(presence.driver_id)
        rows.append(
            {
                "driver_id": str(presence.driver_id),
                "lat": presence.location.y if presence.location else None,
                "lng": presence.location.x if presence.location else None,
                "fix_at": presence.fix_at.timestamp() if presence.fix_at else time.time(),
                "idle": (presence.idle_since or timezone.now()).timestamp(),
                "wav": presence.driver_id in wav,
                "trip": str(trip_id) if trip_id else "",
                "rider": str(riders.get(trip_id, "")) if trip_id else "",
            }
        )
    return rows


def _dispatch_state() -> tuple[list[tuple[str, str, datetime]], list[tuple[str, datetime | None]]]:
    from dispatch.models import Offer, OfferStatus, Trip
    from dispatch.state import TripStatus

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
