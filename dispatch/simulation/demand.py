"""When riders ask for rides, from where to where, and how riders and drivers behave.

Times here are *simulated* seconds since midnight. The demand curve is a rate in requests per hour that
follows the hour of the day (a night trough, a morning and a bigger evening rush), interpolated linearly
between the middles of the hours so it has no steps; arrivals are a non-homogeneous Poisson process drawn
exactly by thinning. `SimClock` maps wall-clock time to simulated time so a whole day can be swept in a
few minutes (the compression applies to the time of day; what a trip does on the server still runs in
real seconds).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dispatch.simulation.city import City

SECONDS_PER_DAY = 86_400.0

# Share of a day's requests in each hour, shaped like a big city's taxi day: quiet 3-5 am, a morning rush
# at 8, a lunchtime bump and the busiest hours at 6-7 pm, with a long evening tail.
DEFAULT_HOURLY_SHAPE: tuple[float, ...] = (
    2.6, 1.9, 1.4, 1.0, 0.9, 1.2,   # 00-05
    2.3, 3.9, 5.2, 5.0, 4.3, 4.3,   # 06-11
    4.6, 4.6, 4.8, 5.0, 5.3, 5.9,   # 12-17
    6.4, 6.6, 6.0, 5.4, 4.7, 3.6,   # 18-23
)  # fmt: skip


class DemandCurve:
    """Requests per hour over the day, scaled so that the whole day brings `daily_total` requests."""

    def __init__(self, daily_total: float, hourly_shape: Sequence[float] = DEFAULT_HOURLY_SHAPE) -> None:
        if len(hourly_shape) != 24 or any(w < 0 for w in hourly_shape) or sum(hourly_shape) <= 0:
            raise ValueError("hourly_shape needs 24 non-negative weights, not all zero")
        if daily_total < 0:
            raise ValueError("daily_total must not be negative")
        self.daily_total = float(daily_total)
        scale = self.daily_total / sum(hourly_shape)
        # The rate at the middle of hour h; the periodic linear interpolation between the middles keeps
        # each hour's integral equal to the trapezoid sum, so the day integrates to exactly daily_total.
        self.hourly_rates: tuple[float, ...] = tuple(w * scale for w in hourly_shape)
        self.peak_rate_per_hour = max(self.hourly_rates)

    def scaled_to(self, daily_total: float) -> DemandCurve:
        return DemandCurve(
            daily_total, self.hourly_rates if sum(self.hourly_rates) > 0 else DEFAULT_HOURLY_SHAPE
        )

    def rate_per_hour(self, sim_s: float) -> float:
        """Instantaneous arrival rate at `sim_s` seconds after midnight (any day: the curve repeats)."""
        hour = (sim_s % SECONDS_PER_DAY) / 3600.0
        position = hour - 0.5
        low = math.floor(position)
        fraction = position - low
        return (1 - fraction) * self.hourly_rates[low % 24] + fraction * self.hourly_rates[(low + 1) % 24]

    def rate_per_second(self, sim_s: float) -> float:
        return self.rate_per_hour(sim_s) / 3600.0

    def expected_between(self, start_s: float, end_s: float, steps_per_hour: int = 60) -> float:
        """Expected number of requests in [start_s, end_s], by the trapezoid rule (exact at 2+ steps/hour)."""
        if end_s <= start_s:
            return 0.0
        steps = max(1, math.ceil((end_s - start_s) / 3600.0 * steps_per_hour))
        width = (end_s - start_s) / steps
        total = 0.5 * (self.rate_per_second(start_s) + self.rate_per_second(end_s))
        total += sum(self.rate_per_second(start_s + k * width) for k in range(1, steps))
        return total * width

    def next_arrival(self, now_s: float, rng: random.Random) -> float:
        """When the next request comes, after `now_s` (Lewis-Shedler thinning against the peak rate)."""
        peak = self.peak_rate_per_hour / 3600.0
        if peak <= 0:
            return math.inf
        t = now_s
        while True:
            t += rng.expovariate(peak)
            if rng.random() * peak <= self.rate_per_second(t):
                return t


@dataclass(frozen=True, slots=True)
class HotSpot:
    """A place where trips start or end more often than elsewhere, fading out over about `radius_m`."""

    name: str
    lat: float
    lng: float
    radius_m: float
    origin_weight: float
    destination_weight: float


def default_hot_spots(city: City) -> tuple[HotSpot, ...]:
    """A midtown business district north of the centre and a transit hub west of it, placed relative to
    the city so they exist in any generated size."""
    north = min(city.height_m * 0.15, 1_500.0)
    west = min(city.width_m * 0.15, 900.0)
    theta = math.radians(city.rotation_deg)
    midtown = city.to_latlng(north * math.sin(theta), north * math.cos(theta))
    hub = city.to_latlng(-west * math.cos(theta), west * math.sin(theta))
    radius = min(city.width_m, city.height_m) * 0.12
    return (
        HotSpot("Midtown", midtown[0], midtown[1], radius, origin_weight=6.0, destination_weight=8.0),
        HotSpot("Transit hub", hub[0], hub[1], radius * 0.6, origin_weight=9.0, destination_weight=5.0),
    )


@dataclass(frozen=True, slots=True)
class TripDemand:
    """One rider's wish: from one intersection to another, at a simulated time."""

    requested_at_s: float
    origin_node: int
    destination_node: int
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    wheelchair_accessible: bool

    def pickup_place(self) -> dict[str, float]:
        return {"lat": round(self.pickup[0], 7), "lng": round(self.pickup[1], 7)}

    def dropoff_place(self) -> dict[str, float]:
        return {"lat": round(self.dropoff[0], 7), "lng": round(self.dropoff[1], 7)}


class PlaceChooser:
    """Picks intersections with probability background + the hot spots' gaussian bumps."""

    def __init__(self, city: City, hot_spots: Sequence[HotSpot], background: float = 1.0) -> None:
        self.city = city
        self.hot_spots = tuple(hot_spots)
        origin_weights: list[float] = []
        destination_weights: list[float] = []
        for lat, lng in city.nodes:
            origin, destination = background, background
            for spot in self.hot_spots:
                closeness = math.exp(
                    -0.5 * (city.distance_m((lat, lng), (spot.lat, spot.lng)) / spot.radius_m) ** 2
                )
                origin += spot.origin_weight * closeness
                destination += spot.destination_weight * closeness
            origin_weights.append(origin)
            destination_weights.append(destination)
        self._origin_cumulative = list(itertools.accumulate(origin_weights))
        self._destination_cumulative = list(itertools.accumulate(destination_weights))

    def origin(self, rng: random.Random) -> int:
        return bisect.bisect_right(self._origin_cumulative, rng.random() * self._origin_cumulative[-1])

    def destination(self, rng: random.Random) -> int:
        return bisect.bisect_right(
            self._destination_cumulative, rng.random() * self._destination_cumulative[-1]
        )


@dataclass(frozen=True, slots=True)
class RiderBehaviour:
    """How simulated riders act. Probabilities are per trip."""

    estimate_first_probability: float = 0.9
    walk_away_after_estimate_probability: float = 0.05
    cancel_before_assignment_probability: float = 0.08
    patience_before_assignment_s: tuple[float, float] = (10.0, 90.0)
    cancel_after_assignment_probability: float = 0.05
    cancel_after_assignment_delay_s: tuple[float, float] = (5.0, 240.0)
    wheelchair_probability: float = 0.03
    tip_probability: float = 0.4
    tip_share_of_fare: tuple[float, float] = (0.10, 0.25)
    rating_probability: float = 0.6
    star_weights: tuple[float, float, float, float, float] = (0.02, 0.03, 0.07, 0.18, 0.70)

    def plan(self, rng: random.Random) -> RiderPlan:
        """Draw everything this rider will do on one trip, up front, so a run replays from its seed."""
        walks_away = rng.random() < self.walk_away_after_estimate_probability
        cancel_before = (
            rng.uniform(*self.patience_before_assignment_s)
            if rng.random() < self.cancel_before_assignment_probability
            else None
        )
        cancel_after = (
            rng.uniform(*self.cancel_after_assignment_delay_s)
            if rng.random() < self.cancel_after_assignment_probability
            else None
        )
        tip_share = rng.uniform(*self.tip_share_of_fare) if rng.random() < self.tip_probability else 0.0
        stars = (
            rng.choices(range(1, 6), weights=self.star_weights)[0]
            if rng.random() < self.rating_probability
            else None
        )
        return RiderPlan(
            asks_estimate=rng.random() < self.estimate_first_probability,
            walks_away_after_estimate=walks_away,
            cancel_before_assignment_after_s=cancel_before,
            cancel_after_assignment_after_s=cancel_after,
            tip_share_of_fare=tip_share,
            rating_stars=stars,
        )


@dataclass(frozen=True, slots=True)
class RiderPlan:
    asks_estimate: bool
    walks_away_after_estimate: bool
    cancel_before_assignment_after_s: float | None  # waiting this long unassigned, the rider cancels
    cancel_after_assignment_after_s: float | None  # this long after assignment (before pickup), cancels
    tip_share_of_fare: float  # 0 means no tip
    rating_stars: int | None

    def tip_cents(self, fare_cents: int) -> int:
        return round(fare_cents * self.tip_share_of_fare)


@dataclass(frozen=True, slots=True)
class DriverBehaviour:
    """How simulated drivers answer offers and move between jobs."""

    decline_probability: float = 0.08
    ignore_offer_probability: float = 0.03  # lets the offer expire
    answer_delay_s: tuple[float, float] = (0.5, 6.0)
    cancel_after_accept_probability: float = 0.01
    boarding_delay_s: tuple[float, float] = (10.0, 60.0)  # from arrival to trip start
    cruise_when_idle_probability: float = 0.5
    cruise_radius_m: float = 800.0

    def answer(self, rng: random.Random) -> tuple[str, float]:
        """('accept' | 'decline' | 'ignore', seconds to wait before answering)."""
        draw = rng.random()
        if draw < self.ignore_offer_probability:
            return ("ignore", 0.0)
        choice = "decline" if draw < self.ignore_offer_probability + self.decline_probability else "accept"
        return (choice, rng.uniform(*self.answer_delay_s))


@dataclass
class DemandModel:
    """The whole demand side: when requests come, where they go, and who is asking."""

    city: City
    curve: DemandCurve
    hot_spots: tuple[HotSpot, ...] = ()
    rider_behaviour: RiderBehaviour = field(default_factory=RiderBehaviour)
    background_weight: float = 1.0
    min_trip_m: float = 500.0
    _places: PlaceChooser = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._places = PlaceChooser(self.city, self.hot_spots, self.background_weight)

    @classmethod
    def default(cls, city: City, daily_total: float = 2_000.0) -> DemandModel:
        return cls(city=city, curve=DemandCurve(daily_total), hot_spots=default_hot_spots(city))

    def next_arrival(self, now_s: float, rng: random.Random) -> float:
        return self.curve.next_arrival(now_s, rng)

    def choose_trip(self, requested_at_s: float, rng: random.Random) -> TripDemand:
        """An origin and a destination at least `min_trip_m` apart (as the crow flies)."""
        origin = self._places.origin(rng)
        destination = self._places.destination(rng)
        for _ in range(100):
            if self.city.distance_m(self.city.nodes[origin], self.city.nodes[destination]) >= self.min_trip_m:
                break
            destination = self._places.destination(rng)
        return TripDemand(
            requested_at_s=requested_at_s,
            origin_node=origin,
            destination_node=destination,
            pickup=self.city.nodes[origin],
            dropoff=self.city.nodes[destination],
            wheelchair_accessible=rng.random() < self.rider_behaviour.wheelchair_probability,
        )

    def arrivals(self, start_s: float, end_s: float, rng: random.Random) -> list[TripDemand]:
        """Every request in [start_s, end_s), in time order."""
        trips: list[TripDemand] = []
        t = self.next_arrival(start_s, rng)
        while t < end_s:
            trips.append(self.choose_trip(t, rng))
            t = self.next_arrival(t, rng)
        return trips


class SimClock:
    """Simulated seconds since midnight, running `compression` times faster than the wall clock.

    `SimClock.for_day_in_minutes(10)` sweeps a whole day in ten wall minutes (compression 144).
    """

    def __init__(
        self,
        start_s: float = 7 * 3600.0,
        compression: float = 1.0,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if compression <= 0:
            raise ValueError("compression must be positive")
        self.start_s = start_s
        self.compression = compression
        self._wall_clock = wall_clock
        self._wall_start = wall_clock()

    @classmethod
    def for_day_in_minutes(
        cls, minutes: float, start_s: float = 0.0, wall_clock: Callable[[], float] = time.monotonic
    ) -> SimClock:
        return cls(start_s=start_s, compression=SECONDS_PER_DAY / (minutes * 60.0), wall_clock=wall_clock)

    def now(self) -> float:
        return self.start_s + (self._wall_clock() - self._wall_start) * self.compression

    def hour_of_day(self) -> float:
        return (self.now() % SECONDS_PER_DAY) / 3600.0

    def wall_seconds_until(self, sim_s: float) -> float:
        """How long to sleep (wall seconds) until the simulated time `sim_s`; never negative."""
        return max(0.0, (sim_s - self.now()) / self.compression)
