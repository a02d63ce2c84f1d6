"""End-to-end dispatch benchmark: simulated drivers over real websockets to the real stack.

    .venv/bin/python infra/benchmarks/bench_e2e.py [--drivers 2000] [--duration 75] [--rps 5]
                                                   [--router valhalla|model|both] [--driver-procs 2]
                                                   [--ladder 2000,5000,10000,20000,30000]

`--router` is what the stack quotes and dispatches on (docs/roads.md): `valhalla` (the default) builds the
demo city's road tiles under var/bench-roads/ first (skipped when up to date) and runs the stack on them;
`model` is the straight-line ETA model; `both` runs the model first as the same-run baseline, then Valhalla.

Starts, as subprocesses against a scratch database `rochdale_bench_e2e` (recreated) and Redis db 13, the
stack as production runs it: the socket servers (`python -m backend.serve --workers 2`), the REST server on
another port (nginx routes /ws/ and /api/ to separate pools the same way), `manage.py dispatch_worker`, and
a Celery worker with beat (flush, sweeps, fare captures).
Then `--drivers` driver sockets, each online and sending a location every 4 s (spread over the 4 s), held
by `--driver-procs` processes of the lean generator (loadgen_drivers.py: bare asyncio protocols on uvloop,
so the generator costs a few hundredths of a core at 2,000 drivers; `--driver-procs 0` runs the
`websockets` client in this process instead, as before 2026-12-03), and from this process `--rps` ride
requests per second over REST, each from a rider whose socket is open. A driver accepts every offer at
once, then arrives, starts and completes after a few seconds, so drivers come back. Measured:

- request_to_offer: POST /trips sent -> the `offer` frame at the driver (includes the REST call);
- accept_to_rider_notified: `offer.accept` sent -> the rider's `trip.updated` (assigned);
- location messages per second sent, and the fixes the server stored (stream entries) per second;
- the CPU each part of the stack used over the window, and the whole machine's busy cores (from /proc);
- unit costs, the load generator excluded: stack CPU per fix, by process, over a first window of fixes
  alone (`--fix-window`, 20 s); the CPU of one more fix, from a second such window at twice the rate (what
  the stack spends whatever the rate cancels out); and per trip, over the ride window less its fixes.

`--ladder` runs one step per driver count, each on a fresh stack at one ride request per 2,000 drivers a
second (New York's rate), and prints the table README and docs/dispatch.md show (also written to
out/e2e/ladder-{router}.md).

Figures print at the end and go to infra/benchmarks/out/e2e/ (results.json, latency.png, throughput.png)
through dispatch/simulation's MetricsRecorder and report writer. The load generator shares the 2 cores
with the stack, so the numbers are a floor on what the stack does alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "infra" / "benchmarks" / "out" / "e2e"
DB_NAME = "rochdale_bench_e2e"
REDIS_URL = "redis://localhost:6379/13"
CENTRE = (40.7580, -73.9855)
PORT = 8765  # websockets
REST_PORT = 8766  # the REST API, served by its own process(es) as infra/deploy/nginx.conf routes it
# Socket server processes, one per core (each serves its sockets on one event loop), and the REST API on a
# process of its own, so a ride request never queues behind thousands of sockets' traffic.
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
REST_WORKERS = int(os.environ.get("BENCH_REST_WORKERS", "1"))

ENV = {
    **os.environ,
    "DATABASE_URL": f"postgis://postgres@localhost:5432/{DB_NAME}",
    "REDIS_URL": REDIS_URL,
    "DATABASE_CONN_MAX_AGE": "60",
    # Production mode: DEBUG would keep every SQL query in memory and wrap each cursor call.
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "benchmark-only-secret-key-not-for-any-real-deployment-0123456789",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "ROCHDALE_LOG_LEVEL": "WARNING",
    "ROCHDALE_USER_RATE": "100000/min",
    # Tens of thousands of drivers connect over a minute or two: their tickets, issued up front, must last.
    "ROCHDALE_WS_TICKET_TTL_S": "900",
    "PYTHONUNBUFFERED": "1",
}
os.environ.update(
    {
        k: ENV[k]
        for k in (
            "DATABASE_URL",
            "REDIS_URL",
            "DATABASE_CONN_MAX_AGE",
            "DJANGO_DEBUG",
            "DJANGO_SECRET_KEY",
            "ROCHDALE_WS_TICKET_TTL_S",
        )
    }
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
sys.path.insert(0, str(REPO))


def recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@localhost:5432/postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [DB_NAME])
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    with psycopg.connect(f"postgresql://postgres@localhost:5432/{DB_NAME}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=ENV, check=True)


def make_people(drivers: int, riders: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Approved drivers with vehicles and riders, written in bulk; returns driver ids and (rider id, JWT)."""
    import django

    django.setup()
    from django.db import connections
    from rest_framework_simplejwt.tokens import RefreshToken

    # A second run in this process: recreate_database() ended the connection the first run left open.
    connections.close_all()

    from backend.accounts.models import DriverProfile, User, Vehicle
    from tests.factories import square_service_area

    square_service_area()
    driver_users = [
        User(phone=f"+1212{7000000 + i:07d}", name=f"Driver {i}", is_driver=True, password="!")
        for i in range(drivers)
    ]
    User.objects.bulk_create(driver_users)
    DriverProfile.objects.bulk_create(
        [
            DriverProfile(user=u, license_number=f"B{i:07d}", status="approved")
            for i, u in enumerate(driver_users)
        ]
    )
    Vehicle.objects.bulk_create(
        [
            Vehicle(driver_id=u.id, plate=f"B{i:06d}", make="Toyota", model="Prius", year=2022, seats=4)
            for i, u in enumerate(driver_users)
        ]
    )
    rider_users = [
        User(phone=f"+1646{7000000 + i:07d}", name=f"Rider {i}", is_rider=True, password="!")
        for i in range(riders)
    ]
    User.objects.bulk_create(rider_users)
    return (
        [str(u.id) for u in driver_users],
        [(str(u.id), str(RefreshToken.for_user(u).access_token)) for u in rider_users],
    )


BENCH_ROADS = REPO / "var" / "bench-roads"


def demo_tiles() -> None:
    """The demo city's tiles, as `make run` builds them (both commands skip work already done)."""
    pbf = BENCH_ROADS / "demo.osm.pbf"
    env = {**ENV, "ROCHDALE_ROADS_DIR": str(BENCH_ROADS)}
    for command in (
        ["manage.py", "city_export_osm", "--out", str(pbf)],
        ["manage.py", "roads_build", "--pbf", str(pbf), "--name", "demo"],
    ):
        subprocess.run([sys.executable, *command], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def router_env(router: str) -> dict[str, str]:
    if router == "model":
        return {"ROCHDALE_ROUTER": "model"}
    return {
        "ROCHDALE_ROUTER": "valhalla",
        "ROCHDALE_ROADS_DIR": str(BENCH_ROADS),
        "ROCHDALE_ROADS_CITY": "demo",
    }


def start_stack(router: str) -> dict[str, subprocess.Popen]:
    logs = OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "uvicorn": [
            sys.executable,
            "-m",
            "backend.serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--workers",
            str(WEB_WORKERS),
        ],
        "rest": [
            sys.executable,
            "-m",
            "backend.serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(REST_PORT),
            "--workers",
            str(REST_WORKERS),
        ],
        "dispatch": [sys.executable, "manage.py", "dispatch_worker"],
        "celery": [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backend.celery",
            "worker",
            "--beat",
            "-c",
            "1",
            "-l",
            "WARNING",
            "-s",
            str(logs / "beat-schedule"),
        ],
    }
    processes = {}
    for name, command in commands.items():
        log = (logs / f"{name}.log").open("w")
        processes[name] = subprocess.Popen(
            command, cwd=REPO, env={**ENV, **router_env(router)}, stdout=log, stderr=subprocess.STDOUT
        )
    return processes


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds used so far) for every process we may read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return table


def cpu_roles(processes: dict[str, subprocess.Popen]) -> dict[int, tuple[str, float]]:
    """pid -> (role, CPU seconds used so far) for each part of the stack: our subprocesses with their
    children, every PostgreSQL and Redis server process, and this load generator."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _name, _cpu) in table.items():
        children.setdefault(parent, []).append(pid)
    roles: dict[int, str] = {}
    for role, root in [("load generator", os.getpid())] + [(r, p.pid) for r, p in processes.items()]:
        todo = [root]
        while todo:
            pid = todo.pop()
            roles[pid] = role
            todo.extend(children.get(pid, []))
    for pid, (_parent, name, _cpu) in table.items():
        if name.startswith("postgres"):
            roles[pid] = "postgres"
        elif name.startswith("redis-server"):
            roles[pid] = "redis"
    return {pid: (role, table[pid][2]) for pid, role in roles.items() if pid in table}


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and I/O wait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def cpu_seconds_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]):
    """CPU seconds each role used between two samples. A process that started in between counts from zero;
    one that ended in between is missed (PostgreSQL backends live as long as their pooled connection)."""
    used: dict[str, float] = {}
    for pid, (role, cpu) in after.items():
        used[role] = used.get(role, 0.0) + cpu - before.get(pid, (role, 0.0))[1]
    return dict(sorted(used.items(), key=lambda item: -item[1]))


def cpu_cores_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], seconds: float):
    """Cores each role kept busy between two samples (`cpu_seconds_used` over the window)."""
    return {role: used / seconds for role, used in cpu_seconds_used(before, after).items()}


def unit_costs(fixes_only: dict, rides: dict) -> dict:
    """Stack CPU per fix and per trip, by role, the load generator excluded.

    Per fix: each role's CPU over the fixes-only window (drivers online and moving, nobody riding) divided
    by the fixes stored in it. Per trip: each role's CPU over the ride window less what its fixes cost at
    that rate, divided by the ride requests made in it (each trip's life: request, offer, accept, arrive,
    start, complete, capture; those still under way when the window closes are balanced by those under
    way when it opened)."""
    stack = [role for role in {**fixes_only["cpu_s"], **rides["cpu_s"]} if role != "load generator"]
    per_fix = {role: fixes_only["cpu_s"].get(role, 0.0) / max(1, fixes_only["fixes"]) for role in stack}
    per_trip = {
        role: max(0.0, rides["cpu_s"].get(role, 0.0) - cost * rides["fixes"]) / max(1, rides["trips"])
        for role, cost in per_fix.items()
    }
    return {
        "fix_us": {role: cost * 1e6 for role, cost in per_fix.items()},
        "fix_us_stack": sum(per_fix.values()) * 1e6,
        "trip_ms": {role: cost * 1e3 for role, cost in per_trip.items()},
        "trip_ms_stack": sum(per_trip.values()) * 1e3,
        "load_generator_cores": fixes_only["cpu_s"].get("load generator", 0.0) / fixes_only["seconds"],
    }


def marginal_fix_costs(slow: dict, fast: dict) -> dict[str, float]:
    """CPU µs by role of one more fix a second: the two windows' CPU rates apart, over their fix rates apart
    (what the stack spends whatever the rate, on sockets' keepalives and timers, cancels out)."""
    extra_fixes_per_s = fast["fixes"] / fast["seconds"] - slow["fixes"] / slow["seconds"]
    roles = {role for role in {**slow["cpu_s"], **fast["cpu_s"]} if role != "load generator"}

    def rate(window: dict, role: str) -> float:
        return window["cpu_s"].get(role, 0.0) / window["seconds"]

    per_fix = 1e6 / max(1.0, extra_fixes_per_s)
    costs = {role: (rate(fast, role) - rate(slow, role)) * per_fix for role in roles}
    return {"stack": sum(costs.values()), **dict(sorted(costs.items(), key=lambda item: -item[1]))}


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Bench:
    def __init__(self, args: argparse.Namespace, processes: dict[str, subprocess.Popen]) -> None:
        from dispatch.simulation.metrics import MetricsRecorder

        self.args = args
        self.processes = processes
        self.metrics = MetricsRecorder()
        self.requested_at: dict[str, float] = {}
        self.accepted_at: dict[str, float] = {}
        self.stop = asyncio.Event()
        self.locations_sent = 0
        self.ws_errors = 0
        self.background: set[asyncio.Task] = set()
        self.online = 0
        self.offered: set[str] = set()
        self.first_offer_at: dict[str, float] = {}
        self.all_online = asyncio.Event()
        # Seconds between one driver's fixes: 4 (the app's rate), halved for the second fixes-only window.
        self.fix_interval_s = 4.0
        # The lean generator's processes (`--driver-procs`) and their latest tallies.
        self.driver_procs: list[asyncio.subprocess.Process] = []
        self.online_by_proc: dict[int, int] = {}
        self.sent_by_proc: dict[int, int] = {}
        self.sockets_lost = 0

    async def ticket(self, user_id: str) -> str:
        from asgiref.sync import sync_to_async

        from backend.accounts.tickets import ticket_issue

        ticket, _ = await sync_to_async(ticket_issue, thread_sensitive=False)(user_id=uuid.UUID(user_id))
        return ticket

    async def driver(self, driver_id: str, rng: random.Random) -> None:
        import websockets

        ticket = await self.ticket(driver_id)
        url = f"ws://127.0.0.1:{PORT}/ws/driver/?ticket={ticket}"
        lat = CENTRE[0] + rng.uniform(-0.04, 0.04)
        lng = CENTRE[1] + rng.uniform(-0.05, 0.05)
        try:
            async with websockets.connect(
                url, additional_headers={"Origin": "http://localhost"}, open_timeout=60, ping_interval=None
            ) as socket:
                await socket.send(json.dumps({"type": "online", "ref": "on"}))
                sender = asyncio.create_task(self.send_locations(socket, rng, lat, lng))
                try:
                    async for raw in socket:
                        frame = json.loads(raw)
                        if frame["type"] == "result" and frame.get("ref") == "on":
                            self.online += 1
                            if self.online == self.args.drivers:
                                self.all_online.set()
                        elif frame["type"] == "offer":
                            self.background.add(asyncio.create_task(self.take(socket, frame)))
                        elif frame["type"] == "error" and frame.get("code") not in ("offer_not_open",):
                            self.metrics.incr(f"driver_error_{frame.get('code')}")
                finally:
                    sender.cancel()
        except Exception as exc:
            self.ws_errors += 1
            status = getattr(getattr(exc, "response", None), "status_code", None)  # a refused handshake's
            self.metrics.incr(f"driver_socket_{type(exc).__name__}" + (f"_{status}" if status else ""))

    async def send_locations(self, socket, rng: random.Random, lat: float, lng: float) -> None:
        await asyncio.sleep(rng.uniform(0, 4.0))
        heading = rng.uniform(0, 360)
        while not self.stop.is_set():
            heading = (heading + rng.uniform(-20, 20)) % 360
            lat += 40.0 / 111_195.0 * math.cos(math.radians(heading))
            lng += 40.0 / 84_000.0 * math.sin(math.radians(heading))
            await socket.send(
                json.dumps(
                    {
                        "type": "location",
                        "lat": lat,
                        "lng": lng,
                        "heading": heading,
                        "speed_mps": 10.0,
                        "accuracy_m": 5.0,
                        "recorded_at": iso_now(),
                    }
                )
            )
            self.locations_sent += 1
            self.metrics.record("location_sent", 0.0)
            await asyncio.sleep(self.fix_interval_s)

    async def take(self, socket, offer: dict) -> None:
        trip_id = offer["trip_id"]
        self.offer_received(trip_id, time.perf_counter())
        self.accepted_at[trip_id] = time.perf_counter()
        await socket.send(
            json.dumps({"type": "offer.accept", "offer_id": offer["offer_id"], "ref": f"a{trip_id}"})
        )
        await asyncio.sleep(3)
        for kind in ("trip.arrived", "trip.start"):
            await socket.send(json.dumps({"type": kind, "trip_id": trip_id, "ref": kind}))
            await asyncio.sleep(1)
        await socket.send(json.dumps({"type": "trip.complete", "trip_id": trip_id, "ref": "c"}))

    def offer_received(self, trip_id: str, at: float) -> None:
        """Record request→offer for a trip's first offer only: a re-offer after a timeout or decline is not
        dispatch latency. The offer may reach the driver before the rider's POST has returned the trip's
        id; then the rider's side records it."""
        if trip_id in self.first_offer_at or trip_id in self.offered:
            self.metrics.incr("re_offers")
            return
        self.offered.add(trip_id)
        started = self.requested_at.get(trip_id)
        if started is not None:
            self.metrics.record("request_to_offer", at - started)
        else:
            self.first_offer_at[trip_id] = at

    async def rider(self, rider_id: str, token: str, http, rng: random.Random) -> None:
        import websockets

        ticket = await self.ticket(rider_id)
        url = f"ws://127.0.0.1:{PORT}/ws/rider/?ticket={ticket}"
        async with websockets.connect(
            url, additional_headers={"Origin": "http://localhost"}, ping_interval=None
        ) as socket:
            pickup = {
                "lat": CENTRE[0] + rng.uniform(-0.03, 0.03),
                "lng": CENTRE[1] + rng.uniform(-0.04, 0.04),
            }
            dropoff = {
                "lat": CENTRE[0] + rng.uniform(-0.05, 0.05),
                "lng": CENTRE[1] + rng.uniform(-0.05, 0.05),
            }
            started = time.perf_counter()
            response = await http.post(
                "/api/v1/trips",
                json={"pickup": pickup, "dropoff": dropoff},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
            )
            if response.status_code != 201:
                self.metrics.incr(f"request_http_{response.status_code}")
                return
            self.metrics.record("rest_trip_request", time.perf_counter() - started)
            trip_id = response.json()["id"]
            self.requested_at[trip_id] = started
            offered_at = self.first_offer_at.pop(trip_id, None)
            if offered_at is not None:
                self.metrics.record("request_to_offer", offered_at - started)
            try:
                async with asyncio.timeout(60):
                    async for raw in socket:
                        frame = json.loads(raw)
                        if frame["type"] == "trip.updated" and frame["trip"]["status"] == "assigned":
                            accepted = self.accepted_at.get(trip_id)
                            if accepted is not None:
                                self.metrics.record(
                                    "accept_to_rider_notified", time.perf_counter() - accepted
                                )
                            return
                        if frame["type"] == "trip.updated" and frame["trip"]["status"] == "unfulfilled":
                            self.metrics.incr("unfulfilled")
                            return
            except TimeoutError:
                self.metrics.incr("rider_timeout")

    async def run(self, driver_ids: list[str], riders: list[tuple[str, str]]) -> dict:
        import httpx
        import redis.asyncio as aioredis

        rng = random.Random(7)
        driver_tasks = []
        if self.args.driver_procs:
            driver_tasks.append(asyncio.create_task(self.driver_processes(driver_ids)))
        else:
            for i, driver_id in enumerate(driver_ids):
                driver_tasks.append(asyncio.create_task(self.driver(driver_id, random.Random(i))))
                if i % 100 == 99:
                    await asyncio.sleep(0.5)  # connect in waves, as apps do after a deploy
        # Measure the steady state: going online is a one-off database transaction per driver, and a
        # reconnect storm is not what the targets describe.
        connect_started = time.perf_counter()
        try:
            async with asyncio.timeout(max(180.0, self.args.drivers / 50)):
                await self.all_online.wait()
        except TimeoutError:
            pass
        self.connect_s = time.perf_counter() - connect_started
        await asyncio.sleep(8)  # one full round of locations from every driver
        client = aioredis.Redis.from_url(REDIS_URL)
        stream = "rd:{default}:fixes"  # dispatch.live.fixes_key("default")
        # The same run's baseline for unit costs: windows of fixes alone, nobody riding, at the app's rate
        # and then at twice it; the difference is what a fix costs beyond what the stack spends anyway.
        print(
            f"drivers online after {self.connect_s:.0f} s; "
            f"fixes alone for {self.args.fix_window:.0f} s, twice",
            flush=True,
        )
        fixes_only = await self.fixes_window(client, stream)
        self.set_fix_interval(2.0)
        await asyncio.sleep(self.fix_interval_s * 2)  # every driver on the new rate
        fixes_doubled = await self.fixes_window(client, stream)
        self.set_fix_interval(4.0)
        await asyncio.sleep(4.0)
        warm = time.perf_counter()
        # Progress for whoever attaches a profiler (py-spy) to a process of the stack for this window.
        print(f"ride window: {self.args.duration:.0f} s from now", flush=True)
        first_added = await stream_added(client, stream)
        sent_before = self.locations_sent
        cpu_before, busy_before = cpu_roles(self.processes), machine_busy_s()
        rider_tasks = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{REST_PORT}", timeout=30) as http:
            interval = 1.0 / self.args.rps
            next_at = time.perf_counter()
            for rider_id, token in riders:
                if time.perf_counter() - warm > self.args.duration:
                    break
                rider_tasks.append(asyncio.create_task(self.rider(rider_id, token, http, rng)))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            elapsed = time.perf_counter() - warm
            last_added = await stream_added(client, stream)
            sent = self.locations_sent - sent_before
            cpu_after, busy_after = cpu_roles(self.processes), machine_busy_s()
            await asyncio.wait(rider_tasks, timeout=20)
        self.stop.set()
        await self.stop_driver_processes()
        for task in driver_tasks:
            task.cancel()
        await asyncio.gather(*driver_tasks, return_exceptions=True)
        # A trip still being driven when its socket closed: its task would fail after the stack is gone.
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await client.aclose()
        return {
            "location_msgs_sent_per_s": sent / elapsed,
            "location_fixes_stored_per_s": (last_added - first_added) / elapsed,
            "measured_s": elapsed,
            "requests": len(rider_tasks),
            "drivers_online": self.online,
            "sockets_lost": self.sockets_lost,
            "load_generator_cores": cpu_cores_used(cpu_before, cpu_after, elapsed).get("load generator", 0.0),
            "all_online_after_s": self.connect_s,
            "cpu_cores_used": cpu_cores_used(cpu_before, cpu_after, elapsed),
            "machine_cores_busy": (busy_after - busy_before) / elapsed,
            "unit_costs": unit_costs(
                fixes_only,
                {
                    "fixes": last_added - first_added,
                    "trips": len(rider_tasks),
                    "cpu_s": cpu_seconds_used(cpu_before, cpu_after),
                },
            ),
            "fixes_only_window": fixes_only,
            "marginal_fix_us": marginal_fix_costs(fixes_only, fixes_doubled),
        }

    def set_fix_interval(self, seconds: float) -> None:
        self.fix_interval_s = seconds
        for process in self.driver_procs:
            assert process.stdin is not None
            process.stdin.write(f"interval {seconds}\n".encode())

    async def driver_processes(self, driver_ids: list[str]) -> None:
        """The drivers' sockets in `--driver-procs` lean generator processes (loadgen_drivers.py), each on
        a loopback address of its own; their tallies and offers come back as JSON lines."""
        from backend.accounts.tickets import ticket_issue

        tickets = await asyncio.to_thread(
            lambda: [ticket_issue(user_id=uuid.UUID(driver_id))[0] for driver_id in driver_ids]
        )
        count = self.args.driver_procs
        readers = []
        for index in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(REPO / "infra" / "benchmarks" / "loadgen_drivers.py"),
                "--port",
                str(PORT),
                "--source-ip",
                f"127.0.0.{2 + index}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 20,
            )
            assert process.stdin is not None
            mine = zip(driver_ids[index::count], tickets[index::count], strict=True)
            lines = [f"{driver_id} {ticket}\n" for driver_id, ticket in mine]
            process.stdin.write(("".join(lines) + "\n").encode())
            self.driver_procs.append(process)
            readers.append(asyncio.create_task(self.read_driver_process(index, process)))
        await asyncio.gather(*readers)

    async def read_driver_process(self, index: int, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            event = json.loads(line)
            if "online" in event:
                self.online_by_proc[index] = event["online"]
                self.sent_by_proc[index] = event["sent"]
                self.online = sum(self.online_by_proc.values())
                self.locations_sent = sum(self.sent_by_proc.values())
                if self.online >= self.args.drivers:
                    self.all_online.set()
            elif "offer" in event:
                self.offer_received(event["offer"], event["t"])
            elif "accept" in event:
                self.accepted_at[event["accept"]] = event["t"]
            elif "error" in event:
                code = event["error"]
                if code == "socket_lost" or code.startswith(("connect_", "handshake_")):
                    self.ws_errors += 1
                    if code == "socket_lost":
                        self.sockets_lost += 1
                self.metrics.incr(f"driver_error_{code}")

    async def stop_driver_processes(self) -> None:
        for process in self.driver_procs:
            assert process.stdin is not None
            process.stdin.write(b"stop\n")
        for process in self.driver_procs:
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()

    async def fixes_window(self, client, stream: str) -> dict:
        """Fixes stored and CPU used by role over `--fix-window` seconds of fixes alone."""
        started = time.perf_counter()
        added, cpu = await stream_added(client, stream), cpu_roles(self.processes)
        await asyncio.sleep(self.args.fix_window)
        return {
            "seconds": time.perf_counter() - started,
            "fixes": await stream_added(client, stream) - added,
            "cpu_s": cpu_seconds_used(cpu, cpu_roles(self.processes)),
        }


async def stream_added(client, stream: str) -> int:
    try:
        return (await client.xinfo_stream(stream))["entries-added"]
    except Exception:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drivers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=75.0)
    parser.add_argument("--rps", type=float, default=5.0)
    parser.add_argument(
        "--fix-window", type=float, default=20.0, help="seconds of fixes alone, the baseline for unit costs"
    )
    parser.add_argument("--router", choices=["valhalla", "model", "both"], default="valhalla")
    parser.add_argument(
        "--driver-procs",
        type=int,
        default=2,
        help="processes of the lean driver generator (loadgen_drivers.py); 0: the websockets client in here",
    )
    parser.add_argument(
        "--ladder",
        default="",
        help="driver counts to run one after another (e.g. 2000,5000,10000,20000,30000), each at one ride "
        "request per 2,000 drivers a second; prints a table",
    )
    args = parser.parse_args()
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.router != "model":
        demo_tiles()
    routers = ["model", "valhalla"] if args.router == "both" else [args.router]
    if args.ladder:
        ladder(args, routers, [int(step) for step in args.ladder.split(",")])
        return
    reports = {router: run_once(args, router)["lines"] for router in routers}
    for router, lines in reports.items():
        print(f"\n== router: {router} ==\n" + "\n".join(lines))


def ladder(args: argparse.Namespace, routers: list[str], steps: list[int]) -> None:
    """Each step on a fresh stack at New York's rate (one ride request per 2,000 drivers a second); the
    table of them all, in README's form, printed and written to out/e2e/ladder-{router}.md."""
    for router in routers:
        rows = []
        for drivers in steps:
            step_args = argparse.Namespace(**{**vars(args), "drivers": drivers, "rps": drivers / 2000})
            rows.append(run_once(step_args, router)["row"])
            table = ladder_table(rows, router)
            print(table, flush=True)
            (OUT / f"ladder-{router}.md").write_text(table + "\n")


def ladder_table(rows: list[dict], router: str) -> str:
    lines = [
        f"router: {router}",
        "",
        "| drivers | fixes/s sent / stored | requests/s | request→offer p50 / p95 / p99 | sockets lost "
        "| stack CPU per fix / one more fix / per trip | cores busy (load generator) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['drivers']:,} ({row['online']:,} online) | {row['sent_per_s']:,.0f} / "
            f"{row['stored_per_s']:,.0f} | {row['rps']:g} "
            f"| {row['p50']} / **{row['p95']}** / {row['p99']} ms "
            f"| {row['sockets_lost']} | {row['fix_us']:.0f} / {row['marginal_us']:.0f} µs / "
            f"{row['trip_ms']:.0f} ms | {row['busy']:.2f} ({row['loadgen']:.2f}) |"
        )
    return "\n".join(lines)


def run_once(args: argparse.Namespace, router: str) -> dict:
    """One window of load on a fresh stack routing on `router`: its summary lines and its ladder row."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    print(f"recreating {DB_NAME} ...", flush=True)
    recreate_database()
    riders_needed = int(args.rps * args.duration) + 10
    driver_ids, riders = make_people(args.drivers, riders_needed)
    processes = start_stack(router)
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if all(
                    httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
                    for port in (PORT, REST_PORT)
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or processes["uvicorn"].poll() is not None:
                raise SystemExit("uvicorn did not come up; see infra/benchmarks/out/e2e/logs/uvicorn.log")
            time.sleep(0.3)
        print(f"stack up; connecting {args.drivers} drivers", flush=True)
        bench = Bench(args, processes)
        figures = asyncio.run(bench.run(driver_ids, riders))
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    from dispatch.simulation.report import write_load_results

    summaries = {s.step: s for s in bench.metrics.summaries()}
    lines = [
        f"router: {router}",
        f"drivers online: {figures['drivers_online']} of {args.drivers} "
        f"(all online {figures['all_online_after_s']:.0f} s after the last connect wave; "
        f"socket failures: {bench.ws_errors})",
        f"location msgs/s sent: {figures['location_msgs_sent_per_s']:.0f}; "
        f"fixes stored/s: {figures['location_fixes_stored_per_s']:.0f} over {figures['measured_s']:.0f} s",
        f"ride requests: {figures['requests']} at {args.rps}/s",
        f"CPU over the window: {figures['machine_cores_busy']:.2f} of {os.cpu_count()} cores busy; "
        + ", ".join(f"{role} {cores:.2f}" for role, cores in figures["cpu_cores_used"].items()),
    ]
    costs = figures["unit_costs"]
    lines.append(
        f"stack CPU per fix: {costs['fix_us_stack']:.0f} µs ("
        + ", ".join(f"{role} {us:.0f}" for role, us in costs["fix_us"].items() if us >= 0.5)
        + f"), over {figures['fixes_only_window']['seconds']:.0f} s of fixes alone "
        f"({figures['fixes_only_window']['fixes']} fixes; "
        f"load generator {costs['load_generator_cores']:.2f} cores)"
    )
    marginal = figures["marginal_fix_us"]
    lines.append(
        f"stack CPU of one more fix (fixes every 2 s against every 4 s): {marginal['stack']:.0f} µs ("
        + ", ".join(f"{role} {us:.0f}" for role, us in marginal.items() if role != "stack" and abs(us) >= 0.5)
        + ")"
    )
    lines.append(
        f"stack CPU per trip: {costs['trip_ms_stack']:.1f} ms ("
        + ", ".join(f"{role} {ms:.1f}" for role, ms in costs["trip_ms"].items() if ms >= 0.05)
        + "), the ride window less its fixes at the rate above"
    )
    for step in ("request_to_offer", "accept_to_rider_notified", "rest_trip_request"):
        s = summaries.get(step)
        if s is not None and s.count:
            lines.append(
                f"{step}: n={s.count} p50={s.p50_s * 1000:.0f} ms p95={s.p95_s * 1000:.0f} ms "
                f"p99={s.p99_s * 1000:.0f} ms max={s.max_s * 1000:.0f} ms"
            )
    lines.append(f"counters: {bench.metrics.counters}")
    print("\n".join(lines))
    out = OUT / router
    files = write_load_results(bench.metrics, out, meta={"args": vars(args), **figures, "summary": lines})
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"written: {files.results_json}, {files.latency_png}, {files.throughput_png}")
    offers = summaries.get("request_to_offer")

    def ms(seconds: float | None) -> str:
        return "—" if seconds is None else f"{seconds * 1000:,.0f}"

    row = {
        "drivers": args.drivers,
        "online": figures["drivers_online"],
        "sent_per_s": figures["location_msgs_sent_per_s"],
        "stored_per_s": figures["location_fixes_stored_per_s"],
        "rps": args.rps,
        "p50": ms(offers.p50_s if offers and offers.count else None),
        "p95": ms(offers.p95_s if offers and offers.count else None),
        "p99": ms(offers.p99_s if offers and offers.count else None),
        "sockets_lost": figures["sockets_lost"] if args.driver_procs else bench.ws_errors,
        "fix_us": costs["fix_us_stack"],
        "marginal_us": marginal["stack"],
        "trip_ms": costs["trip_ms_stack"],
        "busy": figures["machine_cores_busy"],
        "loadgen": figures["load_generator_cores"],
    }
    return {"lines": lines, "row": row}


if __name__ == "__main__":
    main()
