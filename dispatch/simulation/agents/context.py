"""What every simulated app shares: the run's context (city, clocks, measurements, trip registry), signing
in, and the few contract rules an app computes for itself (places, the pay floor it expects)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from dispatch.simulation.city import City
from dispatch.simulation.client import ApiClient, ApiError, Credentials
from dispatch.simulation.demand import DriverBehaviour, RiderBehaviour
from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.report import SimulationSummary
from dispatch.simulation.routing import Router

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
