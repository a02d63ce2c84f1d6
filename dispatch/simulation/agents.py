"""Simulated driver and rider apps. Each agent holds its own REST session and websocket and does what a
person with the app would do; the only way they touch the server is the wire contract.

`speedup` compresses simulated motion and human delays (boarding, hesitation, patience): a car advances
`speedup` seconds of driving for each wall second, so a demo trip completes in seconds. What the server
times (offer timeouts, the dispatch search budget) still runs in real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

import httpx

from dispatch.simulation.city import City
from dispatch.simulation.client import ApiClient, ApiError, Credentials, FrameError, FrameSocket
from dispatch.simulation.demand import DriverBehaviour, RiderBehaviour, TripDemand
from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.motion import Fix, Vehicle
from dispatch.simulation.report import PayRecord, SimulationSummary
from dispatch.simulation.routing import NoRouteError, Router

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "unfulfilled", "cancelled"})
METRES_PER_UNIT = {"mile": Decimal("1609.344"), "km": Decimal("1000")}
CENT = Decimal("0.01")


def place(lat_lng: tuple[float, float]) -> dict[str, float]:
    return {"lat": round(lat_lng[0], 7), "lng": round(lat_lng[1], 7)}


def pay_floor_cents(
    policy: dict[str, Any], *, distance_m: int, duration_s: int, wheelchair_accessible: bool
) -> int:
    """The board's per-trip pay floor for a trip driven `distance_m` in `duration_s` (the contract's rule)."""
    minimum = policy["driver_minimum"]
    unit = METRES_PER_UNIT[policy.get("distance_unit", "mile")]
    per_distance = Decimal(minimum["wav_per_distance" if wheelchair_accessible else "per_distance"])
    floor = max(
        per_distance * Decimal(distance_m) / unit + Decimal(minimum["per_minute"]) * Decimal(duration_s) / 60,
        Decimal(minimum.get("per_trip", "0")),
    )
    return int((floor.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())


@dataclass
class SimContext:
    """What every agent of one run shares: the city, the clocks, the measurements and the trip registry."""

    base_url: str
    http: httpx.AsyncClient
    city: City
    router: Router
    metrics: MetricsRecorder
    summary: SimulationSummary
    speedup: float = 1.0
    location_interval_s: float = 4.0
    driver_behaviour: DriverBehaviour = field(default_factory=DriverBehaviour)
    rider_behaviour: RiderBehaviour = field(default_factory=RiderBehaviour)
    fare_policy: dict[str, Any] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Cross-agent timings, keyed by trip id, measured on the recorder's clock.
    trip_requested: dict[str, float] = field(default_factory=dict)
    accept_sent: dict[str, float] = field(default_factory=dict)
    location_sent: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # trip id -> its last trip object
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # phone -> {"access", "refresh"}
    sign_in_gate: asyncio.Semaphore | None = None  # signing in costs the server a password hash

    def api(self) -> ApiClient:
        return ApiClient(self.http, self.metrics, base_url=self.base_url)

    def human_delay(self, seconds: float) -> float:
        """A person's delay (hesitating, boarding, losing patience), compressed like motion."""
        return seconds / max(self.speedup, 1e-9)

    async def sleep(self, seconds: float) -> bool:
        """Sleep, but wake when the run stops; True if it is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), max(0.0, seconds))
        return self.stopping.is_set()


async def sign_in(context: SimContext, credentials: Credentials, registration: dict[str, Any]) -> ApiClient:
    """A session for this user: a remembered refresh token if it still works, else sign in (registering the
    phone the first time). Signing in costs the server a password hash, so apps, and we, keep tokens."""
    async with context.sign_in_gate or contextlib.nullcontext():
        return await _sign_in(context, credentials, registration)


async def _sign_in(context: SimContext, credentials: Credentials, registration: dict[str, Any]) -> ApiClient:
    api = context.api()
    remembered = context.tokens.get(credentials.phone)
    if remembered:
        api.access, api.refresh = remembered.get("access"), remembered.get("refresh")
        try:
            api.user = await api.call("GET", "/me", step="me")
        except ApiError:
            api.access = api.refresh = None
    if not api.user:
        await api.sign_in_or_register(credentials, registration)
    context.tokens[credentials.phone] = {"access": api.access or "", "refresh": api.refresh or ""}
    return api


class DriverState(StrEnum):
    OFFLINE = "offline"
    FREE = "free"
    OFFERED = "offered"
    TO_PICKUP = "to_pickup"
    AT_PICKUP = "at_pickup"
    ON_TRIP = "on_trip"


ENGAGED_STATES = frozenset({DriverState.TO_PICKUP, DriverState.AT_PICKUP, DriverState.ON_TRIP})


class DriverAgent:
    """A driver with the app open: online, moving along streets, answering offers, driving trips."""

    def __init__(
        self,
        context: SimContext,
        *,
        index: int,
        credentials: Credentials,
        start_node: int,
        wheelchair_accessible: bool,
        accept_rate: float,
        rng: random.Random,
    ) -> None:
        self.context = context
        self.index = index
        self.credentials = credentials
        self.wheelchair_accessible = wheelchair_accessible
        self.accept_rate = accept_rate
        self.rng = rng
        self.vehicle = Vehicle(context.city, start_node, rng, gps_jitter_m=3.0)
        self.state = DriverState.OFFLINE
        self.trip: dict[str, Any] | None = None
        self.offer_id: str | None = None
        self.boarding_until = 0.0
        self.api: ApiClient | None = None
        self.socket: FrameSocket | None = None
        self.online_s = 0.0
        self.engaged_s = 0.0
        self.last_fix: Fix | None = None

    @property
    def trip_id(self) -> str | None:
        return None if self.trip is None else str(self.trip["id"])

    def registration(self) -> dict[str, Any]:
        return {
            "name": f"Sim Driver {self.index + 1}",
            "role": "driver",
            "license_number": f"SIM{self.credentials.phone[-7:]}",
            "vehicle": {
                "plate": f"SIM{self.index:04d}",
                "make": "Toyota",
                "model": "Sienna" if self.wheelchair_accessible else "Prius",
                "year": 2022,
                "seats": 4,
                "wheelchair_accessible": self.wheelchair_accessible,
            },
        }

    async def run(self) -> None:
        context = self.context
        try:
            self.api = await sign_in(context, self.credentials, self.registration())
        except (ApiError, httpx.HTTPError) as error:
            context.metrics.incr("driver.sign_in_failed")
            logger.warning("driver %s could not sign in: %s", self.index, error)
            return
        while not context.stopping.is_set():
            reader: asyncio.Task[None] | None = None
            try:
                self.socket = FrameSocket(self.api, "/ws/driver/", self.on_push, name=f"d{self.index}")
                await self.socket.open()
                reader = asyncio.create_task(self.socket.run())
                await self.socket.command({"type": "online"}, step="online")
                if self.state == DriverState.OFFLINE:
                    self.state = DriverState.FREE
                await self.resync()
                await self.drive(reader)
            except FrameError as error:
                context.metrics.incr(f"driver.refused.{error.code}")
                logger.warning("driver %s: %s", self.index, error)
                if await context.sleep(5.0):
                    break
            except (ApiError, httpx.HTTPError, OSError, TimeoutError) as error:
                context.metrics.incr("driver.reconnects")
                logger.info("driver %s reconnecting after %s", self.index, error)
                if await context.sleep(1.0 + self.rng.random()):
                    break
            finally:
                if reader is not None and context.stopping.is_set() and self.socket is not None:
                    with contextlib.suppress(Exception):
                        await self.socket.command({"type": "offline"}, step="offline", timeout_s=3)
                    await self.socket.close()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
        self.state = DriverState.OFFLINE

    async def resync(self) -> None:
        """After (re)connecting, take up whatever the server says we are doing (the app's resync)."""
        assert self.api is not None
        try:
            state = await self.api.driver_state()
        except ApiError as error:
            self.context.metrics.incr(f"driver.state_unavailable.{error.status}")
            return
        trip = state.get("trip")
        if trip and trip.get("status") not in FINAL_STATUSES:
            self.adopt_trip(trip)
        elif self.trip is not None:
            self.trip = None
            self.state = DriverState.FREE
        offer = state.get("offer")
        if offer and self.trip is None:
            await self.on_offer({"type": "offer", **offer})

    def adopt_trip(self, trip: dict[str, Any]) -> None:
        previous = self.trip_id
        self.trip = trip
        status = trip.get("status")
        if status == "assigned":
            if previous != str(trip["id"]) or self.state != DriverState.TO_PICKUP:
                self.head_for(trip["pickup"])
            self.state = DriverState.TO_PICKUP
        elif status == "arrived":
            self.state = DriverState.AT_PICKUP
            self.boarding_until = min(self.boarding_until, self.context.metrics.now() + 1.0)
        elif status == "in_progress":
            if self.state != DriverState.ON_TRIP:
                self.head_for(trip["dropoff"])
            self.state = DriverState.ON_TRIP

    def head_for(self, target: dict[str, float]) -> None:
        node = self.context.city.nearest_node(target["lat"], target["lng"])
        try:
            self.vehicle.drive_to(self.context.router, node)
        except NoRouteError:
            self.context.metrics.incr("driver.no_route")

    async def drive(self, reader: asyncio.Task[None]) -> None:
        """The app's main loop: move, report the position, and move the trip along."""
        context = self.context
        assert self.socket is not None
        last = context.metrics.now()
        while not context.stopping.is_set() and not reader.done():
            now = context.metrics.now()
            elapsed = now - last
            last = now
            if self.state != DriverState.OFFLINE:
                self.online_s += elapsed
            if self.state in ENGAGED_STATES:
                self.engaged_s += elapsed
            fix = self.vehicle.advance(elapsed * context.speedup)
            self.last_fix = fix
            if await self.socket.send(fix.to_location_frame(datetime.now(UTC), accuracy_m=5.0)):
                context.metrics.incr("location.sent")
                if self.trip_id and self.state in {DriverState.TO_PICKUP, DriverState.ON_TRIP}:
                    context.location_sent[self.trip_id] = now
            await self.advance_trip()
            if self.state == DriverState.FREE and self.vehicle.arrived:
                self.cruise()
            interval = context.location_interval_s * self.rng.uniform(0.9, 1.1)
            if await context.sleep(interval):
                break

    def cruise(self) -> None:
        behaviour = self.context.driver_behaviour
        if self.rng.random() >= behaviour.cruise_when_idle_probability:
            return
        lat, lng = self.vehicle.position
        nearby = self.context.city.nodes_within(lat, lng, behaviour.cruise_radius_m)
        if nearby:
            with contextlib.suppress(NoRouteError):
                self.vehicle.drive_to(self.context.router, self.rng.choice(nearby))

    async def advance_trip(self) -> None:
        if self.trip is None or self.socket is None:
            return
        trip_id = self.trip_id
        try:
            if self.state == DriverState.TO_PICKUP and self.vehicle.arrived:
                await self.socket.command({"type": "trip.arrived", "trip_id": trip_id}, step="trip_arrived")
                self.state = DriverState.AT_PICKUP
                low, high = self.context.driver_behaviour.boarding_delay_s
                self.boarding_until = self.context.metrics.now() + self.context.human_delay(
                    self.rng.uniform(low, high)
                )
            elif self.state == DriverState.AT_PICKUP and self.context.metrics.now() >= self.boarding_until:
                await self.socket.command({"type": "trip.start", "trip_id": trip_id}, step="trip_start")
                self.state = DriverState.ON_TRIP
                self.head_for(self.trip["dropoff"])
            elif self.state == DriverState.ON_TRIP and self.vehicle.arrived:
                await self.socket.command({"type": "trip.complete", "trip_id": trip_id}, step="trip_complete")
                self.context.metrics.incr("driver.trips_completed")
                self.finish_trip()
        except FrameError as error:
            # The trip moved under us (the rider cancelled): resync from the server, as the app would.
            self.context.metrics.incr(f"driver.trip_refused.{error.code}")
            await self.resync_trip()

    async def resync_trip(self) -> None:
        if self.api is None or self.trip_id is None:
            return
        try:
            trip = await self.api.call("GET", f"/trips/{self.trip_id}", step="trip_get")
        except ApiError:
            self.finish_trip()
            return
        if trip.get("status") in FINAL_STATUSES:
            self.finish_trip()
        else:
            self.adopt_trip(trip)

    def finish_trip(self) -> None:
        if self.trip_id:
            self.context.location_sent.pop(self.trip_id, None)
        self.trip = None
        self.state = DriverState.FREE

    # -- pushes -------------------------------------------------------------------------------------------

    async def on_push(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "offer":
            await self.on_offer(frame)
        elif kind in {"offer.expired", "offer.withdrawn"}:
            self.context.metrics.incr(f"driver.{kind}")
            if frame.get("offer_id") == self.offer_id:
                self.offer_id = None
                if self.state == DriverState.OFFERED:
                    self.state = DriverState.FREE
        elif kind == "trip.updated":
            trip = frame.get("trip") or {}
            if str(trip.get("id")) != self.trip_id:
                return
            if trip.get("status") in FINAL_STATUSES:
                if trip.get("status") == "cancelled":
                    self.context.metrics.incr(f"driver.trip_cancelled_by_{trip.get('cancelled_by')}")
                self.vehicle.stop()
                self.finish_trip()
            else:
                self.trip = trip

    async def on_offer(self, frame: dict[str, Any]) -> None:
        context = self.context
        context.metrics.incr("offers.received")
        trip_id = str(frame.get("trip_id"))
        requested = context.trip_requested.get(trip_id)
        if requested is not None:
            context.metrics.record_since("request_to_offer", requested)
        if self.trip is not None:
            return  # Should not happen; let it expire and say so in the counters.
        self.offer_id = str(frame.get("offer_id"))
        self.state = DriverState.OFFERED
        asyncio.create_task(self.answer_offer(frame))  # noqa: RUF006 - fire and forget, bounded by expiry

    async def answer_offer(self, frame: dict[str, Any]) -> None:
        context = self.context
        choice, delay = context.driver_behaviour.answer(self.rng)
        if choice != "ignore":
            choice = "accept" if self.rng.random() < self.accept_rate else "decline"
        offer_id = str(frame.get("offer_id"))
        if choice == "ignore":
            context.metrics.incr("offers.ignored")
            return
        if await context.sleep(context.human_delay(delay)) or self.socket is None:
            return
        if self.offer_id != offer_id:
            return  # expired or withdrawn while we hesitated
        try:
            if choice == "decline":
                await self.socket.command(
                    {"type": "offer.decline", "offer_id": offer_id}, step="offer_decline"
                )
                context.metrics.incr("offers.declined")
                self.offer_id = None
                self.state = DriverState.FREE
                return
            trip_id = str(frame.get("trip_id"))
            context.accept_sent[trip_id] = context.metrics.now()
            answer = await self.socket.command(
                {"type": "offer.accept", "offer_id": offer_id}, step="offer_accept"
            )
        except FrameError as error:
            context.metrics.incr(f"offers.refused.{error.code}")
            self.offer_id = None
            if self.state == DriverState.OFFERED:
                self.state = DriverState.FREE
            return
        except (ConnectionError, TimeoutError):
            return
        context.metrics.incr("offers.accepted")
        self.offer_id = None
        trip = answer.get("trip") or {
            "id": trip_id,
            "status": "assigned",
            "pickup": frame.get("pickup"),
            "dropoff": frame.get("dropoff"),
        }
        self.adopt_trip({**trip, "status": "assigned"} if trip.get("status") == "requested" else trip)
        if self.rng.random() < context.driver_behaviour.cancel_after_accept_probability:
            await context.sleep(context.human_delay(self.rng.uniform(5.0, 30.0)))
            if self.trip_id == trip_id and self.state == DriverState.TO_PICKUP and self.socket is not None:
                with contextlib.suppress(FrameError, ConnectionError, TimeoutError):
                    await self.socket.command(
                        {"type": "trip.cancel", "trip_id": trip_id, "reason": "simulated change of plan"},
                        step="driver_cancel",
                    )
                    self.vehicle.stop()
                    self.finish_trip()


class RiderAgent:
    """A rider with the app: asks estimates, requests rides, watches them, cancels, rates and tips."""

    def __init__(
        self, context: SimContext, *, index: int, credentials: Credentials, rng: random.Random
    ) -> None:
        self.context = context
        self.index = index
        self.credentials = credentials
        self.rng = rng
        self.api: ApiClient | None = None
        self.socket: FrameSocket | None = None
        self.updates: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.trip_ids: list[str] = []
        self.busy = False
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Sign in, open the socket and clear any trip a previous run left open. False if it cannot."""
        try:
            self.api = await sign_in(
                self.context, self.credentials, {"name": f"Sim Rider {self.index + 1}", "role": "rider"}
            )
            for attempt in range(3):
                try:
                    await self.connect()
                    break
                except (ApiError, httpx.HTTPError, OSError, TimeoutError):
                    if attempt == 2:
                        raise
                    self.context.metrics.incr("rider.connect_retries")
                    await asyncio.sleep(1.0 + 2 * attempt)
            await self.clear_leftovers()
        except (ApiError, httpx.HTTPError, OSError, TimeoutError) as error:
            self.context.metrics.incr("rider.start_failed")
            logger.warning("rider %s could not start: %s", self.index, error)
            return False
        return True

    async def connect(self) -> None:
        assert self.api is not None
        self.socket = FrameSocket(self.api, "/ws/rider/", self.on_push, name=f"r{self.index}")
        await self.socket.open()
        self._reader = asyncio.create_task(self.socket.run())

    async def ensure_connected(self) -> None:
        if self._reader is None or self._reader.done():
            self.context.metrics.incr("rider.reconnects")
            with contextlib.suppress(ApiError, httpx.HTTPError, OSError, TimeoutError):
                await self.connect()

    async def clear_leftovers(self) -> None:
        assert self.api is not None
        with contextlib.suppress(ApiError):
            for trip in await self.api.trips():
                if trip.get("status") in {"requested", "assigned", "arrived"}:
                    with contextlib.suppress(ApiError):
                        await self.api.call("POST", f"/trips/{trip['id']}/cancel", json_body={})
                        self.context.metrics.incr("rider.leftover_trips_cancelled")

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def on_push(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "trip.updated":
            trip = frame.get("trip") or {}
            queue = self.updates.get(str(trip.get("id")))
            if queue is not None:
                queue.put_nowait(trip)
        elif kind == "driver.location":
            sent = self.context.location_sent.pop(str(frame.get("trip_id")), None)
            if sent is not None:
                self.context.metrics.record_since("location_ack", sent)
            self.context.metrics.incr("location.forwarded_to_rider")

    async def ride(self, demand: TripDemand) -> None:
        """One trip, from the first estimate to the rating."""
        self.busy = True
        try:
            await self._ride(demand)
        except (ApiError, httpx.HTTPError, OSError, TimeoutError) as error:
            self.context.metrics.incr("rider.ride_failed")
            logger.info("rider %s: ride failed: %s", self.index, error)
        finally:
            self.busy = False

    async def _ride(self, demand: TripDemand) -> None:
        context = self.context
        assert self.api is not None
        await self.ensure_connected()
        plan = context.rider_behaviour.plan(self.rng)
        pickup, dropoff = place(demand.pickup), place(demand.dropoff)
        estimate: dict[str, Any] | None = None
        if plan.asks_estimate:
            estimate = await self.api.estimate(pickup, dropoff, demand.wheelchair_accessible)
            if plan.walks_away_after_estimate:
                context.metrics.incr("rider.walked_away_after_estimate")
                return
        trip = await self.api.request_trip(
            pickup,
            dropoff,
            estimate_id=estimate.get("estimate_id") if estimate else None,
            wheelchair_accessible=demand.wheelchair_accessible,
        )
        trip_id = str(trip["id"])
        self.trip_ids.append(trip_id)
        requested_at = context.metrics.now()
        context.trip_requested[trip_id] = requested_at
        context.summary.trips_requested += 1
        context.outcomes[trip_id] = trip
        if estimate and estimate.get("pickup_eta_s") is not None:
            context.summary.pickup_eta_quoted_s.append(float(estimate["pickup_eta_s"]))
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.updates[trip_id] = queue
        try:
            final = await self.follow(trip, queue, plan, requested_at)
        finally:
            self.updates.pop(trip_id, None)
        if final is None:
            return
        if final.get("status") == "completed":
            await self.after_completion(final, plan, demand.wheelchair_accessible)

    async def follow(
        self, trip: dict[str, Any], queue: asyncio.Queue[dict[str, Any]], plan: Any, requested_at: float
    ) -> dict[str, Any] | None:
        """Watch the trip until it ends (or the run stops); cancel when the plan says so."""
        context = self.context
        assert self.api is not None
        trip_id = str(trip["id"])
        seen: set[str] = set()
        assigned_at: float | None = None
        cancel_before = (
            None
            if plan.cancel_before_assignment_after_s is None
            else requested_at + context.human_delay(plan.cancel_before_assignment_after_s)
        )
        cancelling = False
        last_poll = context.metrics.now()
        while True:
            status = str(trip.get("status"))
            context.outcomes[trip_id] = trip
            now = context.metrics.now()
            if status not in seen:
                seen.add(status)
                if status == "assigned":
                    assigned_at = now
                    sent = context.accept_sent.pop(trip_id, None)
                    if sent is not None:
                        context.metrics.record_since("accept_to_rider_notified", sent)
                elif status == "arrived":
                    context.summary.pickup_wait_s.append((now - requested_at) * context.speedup)
            if status in FINAL_STATUSES:
                self.count_outcome(trip)
                return trip
            if context.stopping.is_set():
                return None
            deadline: float | None = None
            if not cancelling and status == "requested" and cancel_before is not None:
                deadline = cancel_before
            elif (
                not cancelling
                and status in {"assigned", "arrived"}
                and plan.cancel_after_assignment_after_s is not None
                and assigned_at is not None
            ):
                deadline = assigned_at + context.human_delay(plan.cancel_after_assignment_after_s)
            if deadline is not None and now >= deadline:
                cancelling = True
                try:
                    trip = await self.api.cancel(trip_id, "simulated rider changed plans")
                    context.metrics.incr("rider.cancelled")
                except ApiError as error:
                    context.metrics.incr(f"rider.cancel_refused.{error.code}")
                continue
            wait = 5.0 if deadline is None else max(0.05, min(5.0, deadline - now))
            try:
                trip = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if context.metrics.now() - last_poll >= 5.0:
                    # Pushes are best effort: resync from REST, as the app does.
                    last_poll = context.metrics.now()
                    trip = await self.api.trip(trip_id)
                    context.metrics.incr("rider.resync_polls")

    def count_outcome(self, trip: dict[str, Any]) -> None:
        summary = self.context.summary
        trip_id = str(trip["id"])
        if self.context.outcomes.get(trip_id, {}).get("_counted"):
            return
        summary.count_outcome(str(trip["status"]), trip.get("cancelled_by"))
        self.context.outcomes[trip_id] = {**trip, "_counted": True}

    async def after_completion(self, trip: dict[str, Any], plan: Any, wheelchair_accessible: bool) -> None:
        context = self.context
        assert self.api is not None
        fare = trip.get("fare") or {}
        pay = trip.get("driver_pay") or {}
        tip_cents = plan.tip_cents(int(fare.get("amount") or 0)) if plan.tip_share_of_fare > 0 else 0
        if plan.rating_stars is not None:
            try:
                await self.api.rate(str(trip["id"]), plan.rating_stars)
            except ApiError as error:
                context.metrics.incr(f"rider.rating_refused.{error.code}")
        if tip_cents > 0:
            try:
                await self.api.tip(
                    str(trip["id"]), {"amount": tip_cents, "currency": fare.get("currency", "USD")}
                )
            except ApiError as error:
                context.metrics.incr(f"rider.tip_refused.{error.code}")
                tip_cents = 0
        if "amount" in pay and context.fare_policy is not None:
            floor = pay_floor_cents(
                context.fare_policy,
                distance_m=int(trip.get("distance_m") or 0),
                duration_s=int(trip.get("duration_s") or 0),
                wheelchair_accessible=wheelchair_accessible,
            )
            context.summary.pay.append(
                PayRecord(
                    driver_pay_cents=int(pay["amount"]),
                    floor_cents=floor,
                    fare_cents=int(fare.get("amount") or 0),
                    tip_cents=tip_cents,
                )
            )


def driver_counts(drivers: list[DriverAgent]) -> dict[str, int]:
    counts = {state.value: 0 for state in DriverState}
    for driver in drivers:
        counts[driver.state.value] += 1
    return counts


def open_trip_counts(outcomes: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trip in outcomes.values():
        status = str(trip.get("status"))
        counts[status] = counts.get(status, 0) + 1
    return counts


def poisson_wait_s(rate_per_s: float, rng: random.Random) -> float:
    return math.inf if rate_per_s <= 0 else rng.expovariate(rate_per_s)
