"""Runs one simulation: signs the agents in, feeds riders requests from the demand model, shows live
progress, drains the trips in flight, reconciles every trip with the server and reports.

Two shapes of traffic: the *demo* follows the day's demand curve (`demand.py`, swept quickly by a
`SimClock`), and the *load* mode (a profile from `infra/load/profiles/`) sends requests at a constant
Poisson rate and locations at a fixed total rate, then writes results and plots.

The demo may also book ahead (docs/scheduling.md): a share of the riders book each ride for a pickup time
just beyond the board's shortest lead, an organisation's system (`CoordinatorAgent`, with the API key
`seed_demo` made) books rides for its guests, and drivers claim some of those reservations. The server's
clock is real whatever the speedup, so those rides are dispatched minutes (real ones) after booking.
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
    CoordinatorAgent,
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
# The demo's rides booked ahead (docs/simulation.md), where `manage.py simulate` is not told otherwise; the
# load mode books none unless asked.
DEMO_SCHEDULED_SHARE = 0.2
DEMO_ORGANISATION_BOOKINGS_PER_MINUTE = 1.0
DEMO_CLAIM_PROBABILITY = 0.1


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
    # Rides booked ahead (docs/scheduling.md); none unless asked for (`manage.py simulate` asks, for the
    # demo). The share of riders who book every ride ahead; an organisation's system booking for its
    # guests with its API key (ids and key from seed_demo's credentials file); drivers claiming.
    scheduled_share: float = 0.0
    organisation_id: str | None = None
    organisation_name: str = ""
    organisation_api_key: str | None = None
    organisation_bookings_per_minute: float = 0.0
    organisation_poll_s: float = 15.0  # how often its system reads a booking that has not ended
    claim_probability: float = 0.0
    claim_look_s: float = 60.0

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
        self.coordinator: CoordinatorAgent | None = None
        self._coordinator_tasks: list[asyncio.Task[None]] = []
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
                claim_probability=config.claim_probability,
                claim_look_s=config.claim_look_s,
            )
            self.summary.organisation_name = config.organisation_name
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
                for task in self._coordinator_tasks:
                    task.cancel()
                await asyncio.gather(*self._coordinator_tasks, return_exceptions=True)
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
        self.summary.driver_online_s_by_id = {
            str(d.api.user["id"]): d.online_s * config.speedup
            for d in self.drivers
            if d.api is not None and d.api.user and "id" in d.api.user
        }
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
        planners = round(config.scheduled_share * config.riders)  # the first riders book every ride ahead
        for index in range(config.riders):
            self.riders.append(
                RiderAgent(
                    self.context,
                    index=index,
                    credentials=Credentials(f"{config.rider_phone_prefix}{index:04d}"),
                    rng=random.Random(self.rng.random()),
                    books_ahead=index < planners,
                )
            )

        started = await asyncio.gather(*(rider.start() for rider in self.riders))
        self.riders = [rider for rider, ok in zip(self.riders, started, strict=True) if ok]

    async def _fetch_fare_policy(self, context: SimContext) -> None:
        signed_in = [agent.api for agent in [*self.riders, *self.drivers] if agent.api is not None]
        if not signed_in:
            return
        try:
            context.fare_policy = await signed_in[0].fare_policy()
        except ApiError as error:
            self.metrics.incr(f"fare_policy.unavailable.{error.status}")
            return
        if config_books_ahead(self.config):
            lead_min = context.reservation_rules()["min_lead_s"] // 60
            self.console.print(f"booking ahead: {lead_min}+ real minutes ahead (reservations.min_lead_s)")

    def _start_coordinator(self, context: SimContext, deadline: float) -> None:
        """The organisation's system, when the run has its id and API key and a booking rate."""
        config = self.config
        if not (config.organisation_id and config.organisation_api_key):
            return
        if config.organisation_bookings_per_minute <= 0:
            return
        model, _, _ = self._demand_model()
        self.coordinator = CoordinatorAgent(
            context,
            organisation_id=config.organisation_id,
            api_key=config.organisation_api_key,
            bookings_per_minute=config.organisation_bookings_per_minute,
            demand=model,
            rng=random.Random(self.rng.random()),
            poll_s=config.organisation_poll_s,
        )
        self._coordinator_tasks = [
            asyncio.create_task(self.coordinator.book_until(self.interrupted, deadline)),
            asyncio.create_task(self.coordinator.follow()),
        ]

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
        self._start_coordinator(context, context.metrics.now() + config.duration_s)
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
        while time.monotonic() < deadline and not self.interrupted.is_set():
            if not self.rides and not (self.coordinator and self.coordinator.open_bookings):
                return
            await asyncio.sleep(0.25)

    async def _reconcile(self) -> int:
        """Ask the server how every trip ended: pushes may have been missed, and trips left open at the
        end are counted as such. Returns how many are still open."""
        owners: dict[str, RiderAgent | CoordinatorAgent] = {
            trip_id: rider for rider in self.riders for trip_id in rider.trip_ids
        }
        if self.coordinator is not None:
            owners.update(dict.fromkeys(self.coordinator.trip_ids, self.coordinator))
        open_at_end = 0
        for trip_id, trip in list(self.context.outcomes.items()):
            if trip.get("_counted"):
                continue
            owner = owners.get(trip_id)
            if owner is not None:
                with contextlib.suppress(ApiError, httpx.HTTPError, AssertionError):
                    trip = await owner.read_trip(trip_id)
            if isinstance(owner, CoordinatorAgent):
                owner.take(trip)
            elif trip.get("status") in FINAL_STATUSES:
                self.context.count_outcome(trip)
            else:
                self.context.observe(trip)
            # A ride still booked ahead is not open: it is yet to come (the summary's own lines).
            if trip.get("status") not in FINAL_STATUSES and trip.get("status") != "scheduled":
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
            f"{self._booked_ahead_progress()} | errors {errors}"
        )

    def _booked_ahead_progress(self) -> str:
        """`| ahead: riders 3 booked (1 to come, 1 under way, 1 completed), org ..., 2 claimed`, when any."""
        parts = []
        for booker, label in (("rider", "riders"), ("organisation", "org")):
            figures = self.summary.booked_ahead_figures(booker)
            if figures["booked"]:
                ended = figures["completed"] + figures["unfulfilled"] + figures["cancelled"]
                parts.append(
                    f"{label} {figures['booked']} booked ({figures['still_scheduled']} to come, "
                    f"{figures['booked'] - figures['still_scheduled'] - ended} under way, "
                    f"{figures['completed']} completed)"
                )
        if not parts:
            return ""
        return f" | ahead: {', '.join(parts)}, {len(self.summary.claims_won)} claimed"

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


def config_books_ahead(config: SimulationConfig) -> bool:
    """Whether the run books any ride ahead."""
    return config.scheduled_share > 0 or bool(
        config.organisation_id and config.organisation_api_key and config.organisation_bookings_per_minute > 0
    )


def configure_booking_ahead(
    config: SimulationConfig,
    *,
    scheduled_share: float | None,
    organisation_bookings_per_minute: float | None,
    claim_probability: float | None,
    credentials: Path,
    load: bool,
) -> str | None:
    """Who books ahead in this run: what was asked, else the demo's shares (none in the load mode); the
    organisation's id and API key from seed_demo's credentials file (mode 600), where it has one. Answers
    a note for the log when organisation bookings were wanted but there is no organisation to book for."""

    def chosen(value: float | None, demo: float) -> float:
        return value if value is not None else (0.0 if load else demo)

    config.scheduled_share = chosen(scheduled_share, DEMO_SCHEDULED_SHARE)
    config.claim_probability = chosen(claim_probability, DEMO_CLAIM_PROBABILITY)
    rate = chosen(organisation_bookings_per_minute, DEMO_ORGANISATION_BOOKINGS_PER_MINUTE)
    if rate <= 0:
        return None
    try:
        organisation = json.loads(credentials.read_text()).get("organisation") or {}
    except (OSError, ValueError, AttributeError):
        organisation = {}
    if not (isinstance(organisation, dict) and organisation.get("id") and organisation.get("api_key")):
        return (
            f"no organisation in {credentials} (run manage.py seed_demo): the run books no organisation rides"
        )
    config.organisation_id = str(organisation["id"])
    config.organisation_name = str(organisation.get("name") or "")
    config.organisation_api_key = str(organisation["api_key"])
    config.organisation_bookings_per_minute = rate
    return None


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
