"""What every simulated app shares: the run's context (city, clocks, measurements, trip registry), signing
in, and the few contract rules an app computes for itself (places, the pay floor it expects)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from dispatch.simulation.city import City
from dispatch.simulation.client import ApiClient, ApiError, Credentials
from dispatch.simulation.demand import DriverBehaviour, RiderBehaviour
from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.report import PayRecord, SimulationSummary
from dispatch.simulation.routing import Router

FINAL_STATUSES = frozenset({"completed", "unfulfilled", "cancelled"})
# The board's reservation rules the simulated apps need, where the fare policy does not name them
# (backend/fares/policy.py ReservationRules' defaults).
DEFAULT_RESERVATION_RULES = {"min_lead_s": 3600, "default_window_s": 900, "dispatch_margin_s": 300}
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
class PickupTiming:
    """One trip's pickup as the server promised it and as the simulated car drove it.

    Times are on the metrics recorder's clock (wall seconds); ETAs and `drive_s` are in simulated seconds,
    the server's own unit. The car's arrival is exact (`drive_s` is the planned motion, red lights and
    congestion included), not when the driver's next tick noticed it."""

    quoted_eta_s: float | None = None  # the estimate's pickup_eta_s, before the request
    requested_at: float | None = None
    offers: int = 0  # offers of this trip the simulated drivers received
    offered_eta_s: float | None = None  # the accepted offer's pickup_eta_s
    offered_at: float | None = None  # when the accepted offer reached its driver
    set_off_at: float | None = None  # the accepted driver heads for the pickup
    drive_s: float | None = None  # that drive, as the car will drive it
    arrived: bool = False  # the driver reached the pickup and said so (trip.arrived)

    def lived_wait_s(self, speedup: float) -> float | None:
        """Request to the car at the pickup, in simulated seconds."""
        if self.requested_at is None or self.set_off_at is None or self.drive_s is None:
            return None
        return (self.set_off_at - self.requested_at) * speedup + self.drive_s

    def lived_since_offer_s(self, speedup: float) -> float | None:
        """The accepted offer reaching its driver to the car at the pickup, in simulated seconds: what the
        offer's pickup_eta_s promised (the driver's hesitation included, as a real driver's would be)."""
        if self.offered_at is None or self.set_off_at is None or self.drive_s is None:
            return None
        return (self.set_off_at - self.offered_at) * speedup + self.drive_s


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
    # Where the riders' apps confirm cards (the Stripe SDK's API base): only ever a fake Stripe.
    stripe_api_base: str = "https://api.stripe.com"
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Cross-agent timings, keyed by trip id, measured on the recorder's clock.
    trip_requested: dict[str, float] = field(default_factory=dict)
    accept_sent: dict[str, float] = field(default_factory=dict)
    location_sent: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # trip id -> its last trip object
    pickups: dict[str, PickupTiming] = field(default_factory=dict)  # trip id -> quoted and lived pickup
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # phone -> {"access", "refresh"}
    sign_in_gate: asyncio.Semaphore | None = None  # signing in costs the server a password hash
    # Rides booked ahead (docs/scheduling.md): booked this many real seconds beyond the board's
    # min_lead_s (the server's clock is real whatever the speedup), and claimed by drivers who look at
    # the list about every claim_look_s (real) and take a reservation within claim_radius_m of them with
    # claim_probability each look.
    book_ahead_extra_s: tuple[float, float] = (30.0, 120.0)
    claim_probability: float = 0.0
    claim_look_s: float = 60.0
    claim_radius_m: float = 2_500.0
    # A driver holding a claim turns offers down from this long (real) before the ride's arrival target.
    claim_keep_free_s: float = 240.0

    def reservation_rules(self) -> dict[str, int]:
        """The board's reservation rules in force, as `GET /fare-policy` gave them."""
        section = (self.fare_policy or {}).get("reservations") or {}
        return {**DEFAULT_RESERVATION_RULES, **section}

    def booking_time(self, rng: random.Random) -> datetime:
        """A pickup time to book ahead for: just beyond the board's shortest lead, in real time."""
        lead = self.reservation_rules()["min_lead_s"] + round(rng.uniform(*self.book_ahead_extra_s))
        return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)

    def arrival_target(self, reservation: dict[str, Any]) -> datetime | None:
        """When dispatch aims for the driver to reach a reservation's pickup (docs/scheduling.md): the
        board's margin before the pickup time, never before the window opens."""
        try:
            scheduled_for = datetime.fromisoformat(str(reservation["scheduled_for"]))
            window_start = datetime.fromisoformat(str(reservation["window_start"]))
        except (KeyError, ValueError):
            return None
        margin = timedelta(seconds=self.reservation_rules()["dispatch_margin_s"])
        return max(window_start, scheduled_for - margin)

    def observe(self, trip: dict[str, Any]) -> None:
        """The latest trip object of a trip we follow (for the progress line and the reconciliation), and
        of a ride booked ahead, what became of it."""
        trip_id = str(trip["id"])
        if self.outcomes.get(trip_id, {}).get("_counted"):
            return
        self.outcomes[trip_id] = trip
        self.summary.observe_booked_ahead(trip)

    def record_pay(self, trip: dict[str, Any], *, tip_cents: int, wheelchair_accessible: bool) -> None:
        """A completed trip's pay against the board's floor for it (recomputed from the fare policy)."""
        pay, fare = trip.get("driver_pay") or {}, trip.get("fare") or {}
        if "amount" not in pay or self.fare_policy is None:
            return
        floor = pay_floor_cents(
            self.fare_policy,
            distance_m=int(trip.get("distance_m") or 0),
            duration_s=int(trip.get("duration_s") or 0),
            wheelchair_accessible=wheelchair_accessible,
        )
        self.summary.pay.append(
            PayRecord(
                driver_pay_cents=int(pay["amount"]),
                floor_cents=floor,
                fare_cents=int(fare.get("amount") or 0),
                tip_cents=tip_cents,
                driver_id=str((trip.get("driver") or {}).get("id") or ""),
            )
        )

    def count_outcome(self, trip: dict[str, Any]) -> None:
        """Count a trip's final status once (the apps may see it end more than once)."""
        trip_id = str(trip["id"])
        if self.outcomes.get(trip_id, {}).get("_counted"):
            return
        self.summary.count_outcome(str(trip["status"]), trip.get("cancelled_by"))
        self.summary.observe_booked_ahead(trip)
        self.outcomes[trip_id] = {**trip, "_counted": True}

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
