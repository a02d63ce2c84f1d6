"""Runs one simulation: signs the agents in, feeds riders requests from the demand model, shows live
progress, drains the trips in flight, reconciles every trip with the server and reports.

Two shapes of traffic: the *demo* follows the day's demand curve (`demand.py`, swept quickly by a
`SimClock`), and the *load* mode (a profile from `infra/load/profiles/`) sends requests at a constant
Poisson rate and locations at a fixed total rate, then writes results and plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.text import Text

from dispatch.roads.engine import TileSet
from dispatch.simulation.agents import (
    ENGAGED_STATES,
    FINAL_STATUSES,
    DriverAgent,
    DriverState,
    RiderAgent,
    SimContext,
)
from dispatch.simulation.city import City
from dispatch.simulation.client import ApiError, Credentials
from dispatch.simulation.demand import DemandCurve, DemandModel, SimClock, TripDemand, default_hot_spots
from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.report import LoadResultFiles, SimulationSummary, print_report, write_load_results
from dispatch.simulation.road_routing import RoadFollowingRouter, simulation_router

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILE_DIR = REPO_ROOT / "infra" / "load" / "profiles"
SIGN_IN_CONCURRENCY = 8


@dataclass(frozen=True)
class LoadProfile:
    """A fixed load: how many apps, how much they send, for how long. Stored as JSON in infra/load/."""

    name: str
    drivers: int
    riders: int
    location_messages_per_s: float
    requests_per_s: float
    duration_s: float
    speedup: float = 20.0
    accept_rate: float = 0.95
    drain_s: float = 20.0
    description: str = ""

    @classmethod
    def load(cls, name_or_path: str) -> LoadProfile:
        path = Path(name_or_path)
        if not path.suffix:
            path = PROFILE_DIR / f"{name_or_path}.json"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.json")))
            raise FileNotFoundError(f"no load profile {name_or_path!r} (known: {known})")
        data = json.loads(path.read_text())
        data.setdefault("name", path.stem)
        return cls(**data)

    @property
    def location_interval_s(self) -> float:
        return self.drivers / self.location_messages_per_s if self.location_messages_per_s > 0 else 4.0


@dataclass
class SimulationConfig:
    base_url: str = "http://127.0.0.1:8000"
    drivers: int = 30
    riders: int = 20
    duration_s: float = 60.0
    speedup: float = 8.0
    accept_rate: float = 0.9
    seed: int = 1
    requests_per_minute: float | None = None  # at the demand curve's peak; default 0.75 per rider
    opening_requests: int = 0  # riders who request at once when demand starts (the demo's first minute)
    constant_requests_per_s: float | None = None  # load mode: a flat Poisson rate instead of the curve
    location_interval_s: float | None = None  # default: 4 s, shortened as speedup grows (never below 1 s)
    start_hour: float = 17.0
    day_minutes: float = 10.0  # the demand curve's day sweeps by in this many wall minutes
    drain_s: float = 30.0
    wheelchair_share: float = 0.1
    city_seed: int = 7
    city_width_m: float = 6_000.0
    city_height_m: float = 10_000.0
    driver_phone_prefix: str = "+1646555"
    rider_phone_prefix: str = "+1917555"
    token_cache: Path | None = None
    progress: bool = True
    out_dir: Path | None = None
    load_profile: str | None = None
    wait_for_server_s: float = 60.0
    # What the simulated cars drive on (road_routing.simulation_router): "auto" follows Valhalla's routes
    # when the tile set roads_dir/roads_city was built from this city (make run builds it), else Dijkstra.
    router: str = "auto"
    roads_dir: Path = REPO_ROOT / "var" / "roads"
    roads_city: str = "demo"
    # Where the riders' apps confirm the cards they save (Stripe's SDK's API base): the server's
    # STRIPE_API_BASE, a localstripe; the real Stripe is refused (client.real_stripe_refusal).
    stripe_api_base: str = "https://api.stripe.com"

    @classmethod
    def from_profile(cls, profile: LoadProfile, **overrides: Any) -> SimulationConfig:
        config = cls(
            drivers=profile.drivers,
            riders=profile.riders,
            duration_s=profile.duration_s,
            speedup=profile.speedup,
            accept_rate=profile.accept_rate,
            constant_requests_per_s=profile.requests_per_s,
            location_interval_s=profile.location_interval_s,
            drain_s=profile.drain_s,
            load_profile=profile.name,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config

    def effective_location_interval_s(self) -> float:
        if self.location_interval_s is not None:
            return self.location_interval_s
        return min(4.0, max(1.0, 4.0 / max(self.speedup, 1e-9) * 2))

    def city(self) -> City:
        return City.generate(self.city_seed, width_m=self.city_width_m, height_m=self.city_height_m)


@dataclass
class SimulationResult:
    summary: SimulationSummary
    metrics: MetricsRecorder
    trips_open_at_end: int
    files: LoadResultFiles | None = None
    config: dict[str, Any] = field(default_factory=dict)


class Simulation:
    def __init__(self, config: SimulationConfig, console: Console | None = None) -> None:
        self.config = config
        self.console = console or Console(stderr=True)
        self.rng = random.Random(config.seed)
        self.city = config.city()
        self.router, self.router_note = simulation_router(
            self.city,
            choice=config.router,
            tiles=TileSet(config.roads_city, config.roads_dir / config.roads_city),
        )
        self.metrics = MetricsRecorder()
        self.summary = SimulationSummary(drivers=config.drivers, riders=config.riders)
        self.drivers: list[DriverAgent] = []
        self.riders: list[RiderAgent] = []
        self.rides: set[asyncio.Task[None]] = set()
        self.phase = "starting"
        self._demand_started = 0.0
        self.interrupted = asyncio.Event()

    def interrupt(self) -> None:
        """Stop feeding requests and wind down at once (Ctrl-C); the report is still printed."""
        self.interrupted.set()

    # -- the run ------------------------------------------------------------------------------------------

    async def run(self) -> SimulationResult:
        config = self.config
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits) as http:
            context = SimContext(
                base_url=config.base_url,
                http=http,
                city=self.city,
                router=self.router,
                metrics=self.metrics,
                summary=self.summary,
                speedup=config.speedup,
                location_interval_s=config.effective_location_interval_s(),
                tokens=self._load_tokens(),
                sign_in_gate=asyncio.Semaphore(SIGN_IN_CONCURRENCY),
                stripe_api_base=config.stripe_api_base,
            )
            self.context = context
            self.console.print(self.router_note)
            progress = asyncio.create_task(self._show_progress())
            try:
                await self._wait_for_server(http)
                driver_tasks = await self._start_drivers(context)
                await self._start_riders()
                await self._fetch_fare_policy(context)
                self.phase = "running"
                await self._feed_demand(context)
                self.phase = "draining"
                await self._drain()
                self.phase = "stopping"
                context.stopping.set()
                for task in list(self.rides):
                    task.cancel()
                await asyncio.gather(*self.rides, return_exceptions=True)
                _, late = await asyncio.wait(driver_tasks, timeout=20)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                for rider in self.riders:
                    await rider.stop()
                open_at_end = await self._reconcile()
                self.summary.trips_open_at_end = open_at_end
            finally:
                context.stopping.set()
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
                self._save_tokens(context.tokens)
        if isinstance(self.router, RoadFollowingRouter):
            # How each simulated drive was planned: on the engine's route, or Dijkstra and why.
            for how, count in self.router.counts.items():
                self.metrics.incr(f"sim_routes.{how}", count)
        self.summary.driver_online_s = sum(d.online_s for d in self.drivers) * config.speedup
        self.summary.driver_engaged_s = sum(d.engaged_s for d in self.drivers) * config.speedup
        self.summary.simulated_s = (time.monotonic() - self._demand_started) * config.speedup
        result = SimulationResult(
            summary=self.summary,
            metrics=self.metrics,
            trips_open_at_end=open_at_end,
            config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        )
        if config.out_dir is not None:
            result.files = write_load_results(
                self.metrics,
                config.out_dir,
                summary=self.summary,
                meta={**result.config, "trips_open_at_end": open_at_end},
            )
        return result

    async def _wait_for_server(self, http: httpx.AsyncClient) -> None:
        """The run script starts us alongside the server: wait (a minute at most) until it is healthy."""
        deadline = time.monotonic() + self.config.wait_for_server_s
        url = f"{self.config.base_url}/api/v1/health"
        while True:
            try:
                if (await http.get(url, timeout=5.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline or self.interrupted.is_set():
                raise ConnectionError(
                    f"{url} did not answer 200 within {self.config.wait_for_server_s:.0f} s"
                )
            await asyncio.sleep(1.0)

    async def _start_drivers(self, context: SimContext) -> list[asyncio.Task[None]]:
        config = self.config
        tasks: list[asyncio.Task[None]] = []
        for index in range(config.drivers):
            agent = DriverAgent(
                context,
                index=index,
                credentials=Credentials(f"{config.driver_phone_prefix}{index:04d}"),
                start_node=self.city.random_node(self.rng),
                wheelchair_accessible=self.rng.random() < config.wheelchair_share,
                accept_rate=config.accept_rate,
                rng=random.Random(self.rng.random()),
            )
            self.drivers.append(agent)
            tasks.append(asyncio.create_task(agent.run()))
        # Let drivers get online before riders ask: wait until most are, or a minute at most.
        deadline = time.monotonic() + 60.0 + config.drivers * 0.5
        while time.monotonic() < deadline:
            online = sum(1 for d in self.drivers if d.state != DriverState.OFFLINE)
            finished = sum(1 for t in tasks if t.done())
            if online + finished >= config.drivers:
                break
            await asyncio.sleep(0.25)
        return tasks

    async def _start_riders(self) -> None:
        config = self.config
        for index in range(config.riders):
            self.riders.append(
                RiderAgent(
                    self.context,
                    index=index,
                    credentials=Credentials(f"{config.rider_phone_prefix}{index:04d}"),
                    rng=random.Random(self.rng.random()),
                )
            )

        started = await asyncio.gather(*(rider.start() for rider in self.riders))
        self.riders = [rider for rider, ok in zip(self.riders, started, strict=True) if ok]

    async def _fetch_fare_policy(self, context: SimContext) -> None:
        if not self.riders or self.riders[0].api is None:
            return
        try:
            context.fare_policy = await self.riders[0].api.fare_policy()
        except ApiError as error:
            self.metrics.incr(f"fare_policy.unavailable.{error.status}")

    def _demand_model(self) -> tuple[DemandModel, SimClock, float]:
        config = self.config
        clock = SimClock(
            start_s=config.start_hour * 3600.0, compression=86_400.0 / (config.day_minutes * 60.0)
        )
        per_minute = config.requests_per_minute
        if per_minute is None:
            per_minute = max(1.0, 0.75 * len(self.riders))
        unit = DemandCurve(1.0)
        peak_per_hour = per_minute * 60.0 / clock.compression
        curve = DemandCurve(peak_per_hour / unit.peak_rate_per_hour)
        model = DemandModel(city=self.city, curve=curve, hot_spots=default_hot_spots(self.city))
        return model, clock, per_minute

    async def _feed_demand(self, context: SimContext) -> None:
        config = self.config
        model, clock, _ = self._demand_model()
        self._demand_started = time.monotonic()
        deadline = self._demand_started + config.duration_s
        sim_now = clock.now()
        for _ in range(min(config.opening_requests, len(self.riders))):
            self._dispatch_demand(model.choose_trip(sim_now, self.rng))
        while time.monotonic() < deadline:
            if config.constant_requests_per_s:
                wait = self.rng.expovariate(config.constant_requests_per_s)
                demand_at = clock.now()
            else:
                demand_at = model.next_arrival(sim_now, self.rng)
                wait = clock.wall_seconds_until(demand_at)
            wait = min(wait, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.interrupted.wait(), max(0.0, wait))
            if self.interrupted.is_set() or time.monotonic() >= deadline:
                break
            sim_now = demand_at
            self._dispatch_demand(model.choose_trip(demand_at, self.rng))

    def _dispatch_demand(self, demand: TripDemand) -> None:
        free = [rider for rider in self.riders if not rider.busy]
        if not free:
            self.metrics.incr("demand.no_free_rider")
            return
        rider = self.rng.choice(free)
        rider.busy = True
        task = asyncio.create_task(rider.ride(demand))
        self.rides.add(task)
        task.add_done_callback(self.rides.discard)

    async def _drain(self) -> None:
        """No new requests: give the trips in flight `drain_s` to finish."""
        deadline = time.monotonic() + self.config.drain_s
        while self.rides and time.monotonic() < deadline and not self.interrupted.is_set():
            await asyncio.sleep(0.25)

    async def _reconcile(self) -> int:
        """Ask the server how every trip ended: pushes may have been missed, and trips left open at the
        end are counted as such. Returns how many are still open."""
        owners = {trip_id: rider for rider in self.riders for trip_id in rider.trip_ids}
        open_at_end = 0
        for trip_id, trip in list(self.context.outcomes.items()):
            if trip.get("_counted"):
                continue
            rider = owners.get(trip_id)
            if rider is not None and rider.api is not None:
                with contextlib.suppress(ApiError, httpx.HTTPError):
                    trip = await rider.api.trip(trip_id)
            if trip.get("status") in FINAL_STATUSES:
                rider = rider or self.riders[0]
                rider.count_outcome(trip)
            else:
                open_at_end += 1
        return open_at_end

    # -- progress -----------------------------------------------------------------------------------------

    def progress_line(self) -> str:
        states = [d.state for d in self.drivers]
        online = sum(1 for s in states if s != DriverState.OFFLINE)
        free = sum(1 for s in states if s == DriverState.FREE)
        offered = sum(1 for s in states if s == DriverState.OFFERED)
        engaged = sum(1 for s in states if s in ENGAGED_STATES)
        statuses: dict[str, int] = {}
        for trip in self.context.outcomes.values():
            statuses[str(trip.get("status"))] = statuses.get(str(trip.get("status")), 0) + 1
        waiting = statuses.get("requested", 0)
        moving = sum(statuses.get(s, 0) for s in ("assigned", "arrived", "in_progress"))
        errors = sum(s.errors for s in self.metrics.summaries())
        elapsed = time.monotonic() - self._demand_started if self._demand_started else 0.0
        return (
            f"{self.phase:<8} {elapsed:5.0f}s | drivers {online}/{len(self.drivers)} online: {free} free, "
            f"{offered} offered, {engaged} on a job | trips {self.summary.trips_requested} requested: "
            f"{waiting} waiting, {moving} under way, {self.summary.trips_completed} completed, "
            f"{self.summary.trips_unfulfilled} unfulfilled, {self.summary.trips_cancelled} cancelled"
            f" | errors {errors}"
        )

    async def _show_progress(self) -> None:
        if not self.config.progress:
            return
        if self.console.is_terminal:
            with Live(Text(""), console=self.console, refresh_per_second=4, transient=False) as live:
                while True:
                    live.update(Text(self.progress_line()))
                    await asyncio.sleep(0.5)
        else:
            while True:
                await asyncio.sleep(10.0)
                print(self.progress_line(), file=sys.stderr, flush=True)

    # -- tokens -------------------------------------------------------------------------------------------

    def _load_tokens(self) -> dict[str, dict[str, str]]:
        path = self.config.token_cache
        if path is None or not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except ValueError:
            return {}
        return data.get(self.config.base_url, {}) if isinstance(data, dict) else {}

    def _save_tokens(self, tokens: dict[str, dict[str, str]]) -> None:
        path = self.config.token_cache
        if path is None:
            return
        data: dict[str, Any] = {}
        if path.exists():
            with contextlib.suppress(ValueError):
                data = json.loads(path.read_text())
        data[self.config.base_url] = tokens
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        path.chmod(0o600)


def default_out_dir() -> Path:
    return REPO_ROOT / "var" / "load" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def run_simulation(config: SimulationConfig, console: Console | None = None) -> SimulationResult:
    """Run to the end and print the report (the `simulate` command's body)."""
    console = console or Console()
    simulation = Simulation(config, console=Console(stderr=True))

    async def main() -> SimulationResult:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, simulation.interrupt)
        return await simulation.run()

    result = asyncio.run(main())
    print_report(result.metrics, result.summary, console=console)
    if result.files is not None:
        console.print(f"results: {result.files.results_json.parent}")
    return result
