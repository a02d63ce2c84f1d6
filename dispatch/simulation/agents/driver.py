"""A simulated driver app: online, moving along streets, answering offers, driving trips.

Now and then a free driver looks at the rides booked ahead they may claim (`GET /driver/reservations`)
and claims one near them (`POST .../claim`; of drivers claiming one ride, one wins). The server sets the
ride off to them when it is time (`scheduled -> assigned`, a `trip.updated` push): they drive it like any
trip. From a few minutes before the ride's arrival target they turn offers down, to be free for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from dispatch.simulation.agents.context import FINAL_STATUSES, PickupTiming, SimContext, sign_in
from dispatch.simulation.client import ApiClient, ApiError, Credentials, FrameError, FrameSocket
from dispatch.simulation.motion import Fix, Vehicle
from dispatch.simulation.routing import NoRouteError

logger = logging.getLogger(__name__)


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
        self.claim: dict[str, Any] | None = None  # the reservation this driver claimed, as the list shows it
        self.next_look_at = context.metrics.now() + rng.uniform(0.2, 1.0) * context.claim_look_s

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
                heading = self.head_for(trip["pickup"])
                timing = self.context.pickups.setdefault(str(trip["id"]), PickupTiming())
                if heading and timing.set_off_at is None:
                    timing.set_off_at = self.context.metrics.now()
                    timing.drive_s = self.vehicle.remaining_s
            self.state = DriverState.TO_PICKUP
        elif status == "arrived":
            self.state = DriverState.AT_PICKUP
            self.boarding_until = min(self.boarding_until, self.context.metrics.now() + 1.0)
        elif status == "in_progress":
            if self.state != DriverState.ON_TRIP:
                self.head_for(trip["dropoff"])
            self.state = DriverState.ON_TRIP

    def head_for(self, target: dict[str, float]) -> bool:
        """Drive to the intersection nearest `target`; False when no road leads there."""
        node = self.context.city.nearest_node(target["lat"], target["lng"])
        try:
            self.vehicle.drive_to(self.context.router, node)
        except NoRouteError:
            self.context.metrics.incr("driver.no_route")
            return False
        return True

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
            await self.look_at_reservations()
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
                if trip_id in self.context.pickups:
                    self.context.pickups[trip_id].arrived = True
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

    # -- rides booked ahead ------------------------------------------------------------------------------

    async def look_at_reservations(self) -> None:
        """Every so often: with a claim, check it still stands (and take the ride if it was set off to us
        while a push went missing); free and without one, maybe claim a reservation near us."""
        context = self.context
        now = context.metrics.now()
        if context.claim_probability <= 0 or self.api is None or now < self.next_look_at:
            return
        # A claim is checked often (its set-off may come any time); the list is looked at now and then.
        every = context.claim_look_s / 4 if self.claim is not None else context.claim_look_s
        self.next_look_at = now + every * self.rng.uniform(0.75, 1.25)
        if self.claim is None and self.state != DriverState.FREE:
            return
        try:
            listed = await self.api.driver_reservations()
        except (ApiError, httpx.HTTPError) as error:
            context.metrics.incr(f"driver.reservations_unavailable.{getattr(error, 'code', 'transport')}")
            return
        if self.claim is not None:
            if not any(r.get("id") == self.claim["id"] and r.get("claimed_by_you") for r in listed):
                await self.claim_gone()
            return
        near = [
            r
            for r in listed
            if not r.get("claimed_by_you")
            and r.get("pickup_distance_m") is not None
            and r["pickup_distance_m"] <= context.claim_radius_m
        ]
        if not near or self.rng.random() >= context.claim_probability:
            return
        choice = min(near, key=lambda r: r["pickup_distance_m"])
        try:
            self.claim = await self.api.reservation_claim(str(choice["id"]))
        except ApiError as error:
            # Another driver won it (409 reservation_already_claimed), it went into dispatch (404), ...
            context.summary.count_claim_refusal(error.code)
            return
        context.summary.claims_won.add(str(choice["id"]))
        context.metrics.incr("driver.reservations_claimed")
        logger.info("driver %s claimed reservation %s", self.index, choice["id"])

    async def claim_gone(self) -> None:
        """Our claim is off the list: set off to us (take the trip, if the push did not bring it), or
        dropped, given to another driver, cancelled."""
        assert self.claim is not None and self.api is not None
        trip_id = str(self.claim["id"])
        if self.trip_id != trip_id and self.trip is None:
            with contextlib.suppress(ApiError, httpx.HTTPError):
                state = await self.api.driver_state()
                trip = state.get("trip")
                if trip and str(trip.get("id")) == trip_id and trip.get("status") not in FINAL_STATUSES:
                    self.take_claimed(trip)
                    return
            self.context.metrics.incr("driver.claims_lost")
        self.claim = None

    def take_claimed(self, trip: dict[str, Any]) -> None:
        """The server set the ride we claimed off to us: head for the pickup."""
        self.claim = None
        self.offer_id = None  # an offer we were hesitating over is not answered now
        self.context.metrics.incr("driver.claimed_rides_set_off")
        logger.info("driver %s: claimed ride %s set off to us", self.index, trip.get("id"))
        self.adopt_trip(trip)

    def keeping_free_for_claim(self) -> bool:
        """Whether the ride we claimed is due soon enough that we turn other work down."""
        if self.claim is None:
            return False
        target = self.context.arrival_target(self.claim)
        if target is None:
            return False
        return (target - datetime.now(UTC)).total_seconds() <= self.context.claim_keep_free_s

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
                claimed = self.claim is not None and str(trip.get("id")) == str(self.claim["id"])
                if claimed and self.trip is None and trip.get("status") == "assigned":
                    self.take_claimed(trip)
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
        context.pickups.setdefault(trip_id, PickupTiming()).offers += 1
        if self.trip is not None:
            return  # Should not happen; let it expire and say so in the counters.
        self.offer_id = str(frame.get("offer_id"))
        self.state = DriverState.OFFERED
        asyncio.create_task(self.answer_offer(frame))  # noqa: RUF006 - fire and forget, bounded by expiry

    async def answer_offer(self, frame: dict[str, Any]) -> None:
        context = self.context
        received_at = context.metrics.now()
        choice, delay = context.driver_behaviour.answer(self.rng)
        if choice != "ignore":
            choice = "accept" if self.rng.random() < self.accept_rate else "decline"
        if choice == "accept" and self.keeping_free_for_claim():
            choice = "decline"
            context.metrics.incr("offers.declined_for_claimed_ride")
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
            timing = context.pickups.setdefault(trip_id, PickupTiming())
            timing.offered_at = received_at
            if frame.get("pickup_eta_s") is not None:
                timing.offered_eta_s = float(frame["pickup_eta_s"])
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
