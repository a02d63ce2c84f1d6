"""A simulated organisation's own system: a dialysis centre's scheduling software that books rides for
its patients through the organisation API with its API key (docs/organisations.md), as a clinic's system
would, never as a person with the app.

Each booking is for a guest (a name and a phone: no app, no password), a ride ahead (`scheduled_for` just
beyond the board's shortest lead, a window of ten minutes either side) to or from the clinic, with a
reference (`DIALYSIS-0001`, ...) since the organisation requires one. Guests have no app, so nobody
follows the ride on a rider's socket: the driver app alone drives it from pickup to completion (the
server asks nothing of the rider), and the system reads each booking now and then
(`GET /organisations/{id}/trips/{trip_id}`) to know how it ended and what it billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from dataclasses import dataclass
from typing import Any

import httpx

from dispatch.simulation.agents.context import FINAL_STATUSES, SimContext, place
from dispatch.simulation.city import City
from dispatch.simulation.client import ApiClient, ApiError
from dispatch.simulation.demand import DemandModel

logger = logging.getLogger(__name__)

GUEST_NAMES = (
    "Maria Lopez", "James Carter", "Aisha Bello", "Luis Ortega", "Mei Chen", "Samuel Adeyemi",
    "Rosa Delgado", "Walter Hughes", "Fatou Diop", "Harold Kim", "Yolanda Price", "Omar Haddad",
    "Bernice Walker", "Tomasz Nowak", "Gloria Mensah", "Vincent Russo",
)  # fmt: skip
POLL_S = 15.0  # how often the system reads a booking that has not ended (real seconds), by default
WHEELCHAIR_SHARE = 0.15
# A dialysis session starts at a set time: the centre books a narrower window than the board's default.
PICKUP_WINDOW_S = 600
CLINIC_NORTH_SHARE = 0.3  # the clinic lies this share of the city's length north of its centre ("Harlem")


@dataclass(frozen=True, slots=True)
class Guest:
    name: str
    phone: str


def clinic_node(city: City) -> int:
    """The intersection the clinic stands at: north of Midtown along the avenues."""
    north = city.height_m * CLINIC_NORTH_SHARE
    theta = math.radians(city.rotation_deg)
    lat, lng = city.to_latlng(north * math.sin(theta), north * math.cos(theta))
    return city.nearest_node(lat, lng)


class CoordinatorAgent:
    """The organisation's system: books rides ahead for its guests at `bookings_per_minute` (a Poisson
    rate, real time) and follows them until they end."""

    def __init__(
        self,
        context: SimContext,
        *,
        organisation_id: str,
        api_key: str,
        bookings_per_minute: float,
        demand: DemandModel,
        rng: random.Random,
        guest_phone_prefix: str = "+1347555",
        poll_s: float = POLL_S,
    ) -> None:
        self.context = context
        self.organisation_id = organisation_id
        self.api: ApiClient = ApiClient.with_api_key(
            context.http, context.metrics, base_url=context.base_url, api_key=api_key
        )
        self.bookings_per_minute = bookings_per_minute
        self.demand = demand
        self.rng = rng
        self.guests = [Guest(name, f"{guest_phone_prefix}{i:04d}") for i, name in enumerate(GUEST_NAMES)]
        self.clinic = clinic_node(context.city)
        self.trip_ids: list[str] = []
        self.open: dict[str, Guest] = {}  # trip id -> its guest, until the trip ends
        self.busy_guests: set[str] = set()  # phones with a booking that has not ended
        self.references = 0
        self.poll_s = poll_s

    async def book_until(self, stop: asyncio.Event, deadline: float) -> None:
        """Book rides until `deadline` (the recorder's clock) or until `stop` is set."""
        if self.bookings_per_minute <= 0:
            return
        metrics = self.context.metrics
        while True:
            wait = self.rng.expovariate(self.bookings_per_minute / 60.0)
            wait = min(wait, deadline - metrics.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wait))
            if stop.is_set() or metrics.now() >= deadline or self.context.stopping.is_set():
                return
            await self.book_one()

    async def book_one(self) -> None:
        context = self.context
        free = [guest for guest in self.guests if guest.phone not in self.busy_guests]
        if not free:
            context.metrics.incr("organisation.no_free_guest")
            return
        guest = self.rng.choice(free)
        home = self.demand.choose_trip(0.0, self.rng).origin_node
        to_clinic = self.rng.random() < 0.5
        pickup, dropoff = (home, self.clinic) if to_clinic else (self.clinic, home)
        if pickup == dropoff:
            return
        self.references += 1
        scheduled_for = context.booking_time(self.rng)
        body = {
            "guest": {"name": guest.name, "phone": guest.phone},
            "pickup": place(context.city.nodes[pickup]),
            "dropoff": place(context.city.nodes[dropoff]),
            "wheelchair_accessible": self.rng.random() < WHEELCHAIR_SHARE,
            "scheduled_for": scheduled_for.isoformat(),
            "pickup_window_s": PICKUP_WINDOW_S,
            "reference": f"DIALYSIS-{self.references:04d}",
        }
        try:
            trip = await self.api.organisation_book(self.organisation_id, body)
        except ApiError as error:
            # A guest with a ride already booked then (409 reservation_overlaps), the organisation's
            # policy (422 organisation_hours, ...), the board's lead (422 scheduled_too_soon).
            context.summary.count_booking_refusal(booker="organisation", code=error.code)
            logger.info("organisation booking refused: %s", error)
            return
        except httpx.HTTPError as error:
            context.metrics.incr("organisation.book_failed")
            logger.info("organisation booking failed: %s", error)
            return
        trip_id = str(trip["id"])
        self.trip_ids.append(trip_id)
        self.open[trip_id] = guest
        self.busy_guests.add(guest.phone)
        context.summary.trips_requested += 1
        context.summary.observe_booked_ahead(trip, booker="organisation")
        context.observe(trip)
        logger.info(
            "organisation booked %s for guest %s, pickup at %s (trip %s)",
            body["reference"],
            guest.name,
            scheduled_for,
            trip_id,
        )

    async def follow(self) -> None:
        """Read every booking that has not ended, every `poll_s`, until the run stops."""
        while not await self.context.sleep(self.poll_s):
            await self.read_open()

    async def read_open(self) -> None:
        for trip_id in list(self.open):
            try:
                trip = await self.read_trip(trip_id)
            except (ApiError, httpx.HTTPError) as error:
                self.context.metrics.incr(f"organisation.read_failed.{getattr(error, 'code', 'transport')}")
                continue
            self.take(trip)

    async def read_trip(self, trip_id: str) -> dict[str, Any]:
        return await self.api.organisation_trip(self.organisation_id, trip_id)

    def take(self, trip: dict[str, Any]) -> None:
        """What a read of a booking says; an ended one is counted once, with its pay against the floor."""
        context = self.context
        trip_id = str(trip["id"])
        context.observe(trip)
        if trip.get("status") not in FINAL_STATUSES:
            return
        guest = self.open.pop(trip_id, None)
        if guest is not None:
            self.busy_guests.discard(guest.phone)
        counted = context.outcomes.get(trip_id, {}).get("_counted")
        context.count_outcome(trip)
        if not counted and trip.get("status") == "completed":
            # A guest cannot tip (docs/billing.md): the organisation pays for the ride, not gratuities.
            context.record_pay(
                trip, tip_cents=0, wheelchair_accessible=bool(trip.get("wheelchair_accessible"))
            )

    @property
    def open_bookings(self) -> int:
        return len(self.open)
