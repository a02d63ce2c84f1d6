"""Benchmark 4: quoted against lived pickup ETA, with the server on the ETA model and on Valhalla.

    .venv/bin/python infra/benchmarks/bench_sim_eta.py [--drivers 30] [--riders 20] [--duration 90]
                                                       [--speedup 10] [--routers model,valhalla]

For each router in turn: a fresh scratch database `rochdale_bench_sim_eta` (Redis db 12), `seed_demo`
(the demo city's service area and fare policy), then the stack as bench_e2e.py starts it (its helpers,
pointed at this benchmark's database, Redis db and ports) with ROCHDALE_ROUTER set to that router, on the
demo city's Valhalla tiles that bench_e2e builds under var/bench-roads/ (`city_export_osm`, `roads_build`).
Then `manage.py simulate`'s Simulation runs in this process, the same seed each time. In both runs the
simulated cars follow Valhalla's routes on those tiles (dispatch/simulation/road_routing.py), with the
simulator's congestion and red lights: the lived world is the same, only what the server quotes changes.

For every trip whose driver reached the pickup it compares (simulated seconds, lived - quoted):

- quote: the estimate's `pickup_eta_s` (the nearest available drivers, before the request) against the
  request to the car at the pickup (dispatch, offers declined or left to expire, the driver's hesitation
  and the drive);
- offer: the accepted offer's `pickup_eta_s` (the chosen driver) against that offer reaching the driver
  to the car at the pickup (hesitation and the drive).

Errors are given as the mean (signed: positive means the car came later than promised), the mean and p95
of the absolute error, in seconds and relative to the lived time. Which router answered the quotes and the
offers (the model answers when Valhalla cannot) is read from the database. Figures print at the end and go
to infra/benchmarks/out/sim_eta/results.json. A run takes about two and a half minutes per router.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
import bench_e2e  # noqa: E402 - a sibling script, importable once its folder is on the path

if TYPE_CHECKING:
    from dispatch.roads.engine import BuildManifest

REPO = bench_e2e.REPO
OUT = REPO / "infra" / "benchmarks" / "out" / "sim_eta"
DB_NAME = "rochdale_bench_sim_eta"
REDIS_URL = "redis://localhost:6379/12"
PORT, REST_PORT = 8775, 8776
# The demo city's tiles where bench_e2e builds them (bench_e2e.demo_tiles), which the stack routes on.
ROADS_DIR = bench_e2e.BENCH_ROADS
ROADS_CITY = "demo"

# bench_e2e's helpers read these module settings when called: pointing them at this benchmark's database,
# Redis db, ports and output folder lets both benchmarks run on one machine without touching each other.
bench_e2e.DB_NAME = DB_NAME
bench_e2e.REDIS_URL = REDIS_URL
bench_e2e.PORT, bench_e2e.REST_PORT = PORT, REST_PORT
bench_e2e.OUT = OUT
# One socket-server process is plenty for a few dozen simulated apps, and leaves the cores to the rest.
bench_e2e.WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "1"))
bench_e2e.ENV.update(
    {
        "DATABASE_URL": f"postgis://postgres@localhost:5432/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        # The demo environment (infra/bin/run.sh): drivers approved as they register, every app from one
        # address, and motion compressed by the speedup (set per run below).
        "ROCHDALE_AUTO_APPROVE_DRIVERS": "1",
        "ROCHDALE_REGISTER_RATE": "100000/hour",
        "ROCHDALE_SIGN_IN_RATE_IP": "100000/min",
        "ROCHDALE_SIGN_IN_IP_MAX_FAILURES": "100000",
        # Fifty sign-ups at PBKDF2's cost would take the 2 cores for a minute; this measures ETAs, not that.
        "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
    }
)
os.environ.update({k: bench_e2e.ENV[k] for k in ("DATABASE_URL", "REDIS_URL")})


@dataclass(frozen=True)
class Errors:
    """Lived minus quoted, over the trips that have both."""

    n: int
    quoted_mean_s: float
    lived_mean_s: float
    mean_error_s: float  # signed: positive, the car came later than promised
    mean_abs_error_s: float
    p95_abs_error_s: float
    mean_relative_error: float  # signed, relative to the lived time
    mean_abs_relative_error: float
    p95_abs_relative_error: float

    @classmethod
    def of(cls, pairs: list[tuple[float, float]]) -> Errors | None:
        """From (quoted, lived) pairs, in seconds."""
        if not pairs:
            return None
        quoted = np.array([q for q, _ in pairs], dtype=float)
        lived = np.array([max(lv, 1.0) for _, lv in pairs], dtype=float)
        error = lived - quoted
        relative = error / lived
        return cls(
            n=len(pairs),
            quoted_mean_s=float(quoted.mean()),
            lived_mean_s=float(lived.mean()),
            mean_error_s=float(error.mean()),
            mean_abs_error_s=float(np.abs(error).mean()),
            p95_abs_error_s=float(np.percentile(np.abs(error), 95)),
            mean_relative_error=float(relative.mean()),
            mean_abs_relative_error=float(np.abs(relative).mean()),
            p95_abs_relative_error=float(np.percentile(np.abs(relative), 95)),
        )

    def line(self, label: str) -> str:
        return (
            f"{label:<6} n={self.n:<3} quoted {self.quoted_mean_s:5.0f} s, "
            f"lived {self.lived_mean_s:5.0f} s | "
            f"error mean {self.mean_error_s:+5.0f} s ({self.mean_relative_error:+.0%}), "
            f"|error| mean {self.mean_abs_error_s:4.0f} s ({self.mean_abs_relative_error:.0%}), "
            f"p95 {self.p95_abs_error_s:4.0f} s ({self.p95_abs_relative_error:.0%})"
        )


def demo_tiles() -> BuildManifest:
    """The demo city's tiles, built by bench_e2e's helper (`city_export_osm` and `roads_build`, as
    `make run` runs them; both skip work already done)."""
    from dispatch.roads.engine import TileSet

    bench_e2e.demo_tiles()
    return TileSet(ROADS_CITY, ROADS_DIR / ROADS_CITY).manifest()


def seed_demo() -> None:
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "seed_demo",
            "--credentials-file",
            str(OUT / "demo-credentials.json"),
        ],
        cwd=REPO,
        env=bench_e2e.ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def stop_stack(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def who_answered() -> dict[str, dict[str, int]]:
    """Which router priced the estimates and ranked the offered drivers, from the database."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@localhost:5432/{DB_NAME}") as conn:
        estimates = conn.execute(
            "SELECT router, count(*) FROM dispatch_fareestimate GROUP BY router ORDER BY router"
        ).fetchall()
        offers = conn.execute(
            "SELECT coalesce(reason->>'router', ''), count(*) FROM dispatch_offer GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {
        "estimates": {str(r or "?"): int(n) for r, n in estimates},
        "offers": {str(r or "?"): int(n) for r, n in offers},
    }


def run_once(router: str, args: argparse.Namespace) -> dict[str, object]:
    import redis

    from dispatch.simulation.runner import Simulation, SimulationConfig

    bench_e2e.ENV["ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS"] = str(int(args.speedup * 30 + 70))
    redis.Redis.from_url(REDIS_URL).flushdb()
    print(f"[{router}] recreating {DB_NAME} and seeding the demo city ...", flush=True)
    bench_e2e.recreate_database()
    seed_demo()
    config = SimulationConfig(
        base_url=f"http://127.0.0.1:{PORT}",
        drivers=args.drivers,
        riders=args.riders,
        duration_s=args.duration,
        drain_s=args.drain,
        speedup=args.speedup,
        accept_rate=1.0,  # every offer answered is accepted (the behaviour model lets 3 % expire unanswered)
        requests_per_minute=args.requests_per_minute,
        opening_requests=args.opening_requests,
        seed=args.seed,
        token_cache=None,
        progress=True,
        router="valhalla",
        roads_dir=ROADS_DIR,
        roads_city=ROADS_CITY,
        wait_for_server_s=120.0,
    )
    simulation = Simulation(config)
    processes = bench_e2e.start_stack(router)  # its router_env sets ROCHDALE_ROUTER and the tiles
    started = time.perf_counter()
    try:
        print(
            f"[{router}] stack starting; simulating {args.drivers} drivers, {args.riders} riders", flush=True
        )
        result = asyncio.run(simulation.run())
    finally:
        stop_stack(processes)
    pickups = [t for t in simulation.context.pickups.values() if t.arrived]
    quote = Errors.of(
        [
            (t.quoted_eta_s, lived)
            for t in pickups
            if t.quoted_eta_s is not None and (lived := t.lived_wait_s(args.speedup)) is not None
        ]
    )
    offer = Errors.of(
        [
            (t.offered_eta_s, lived)
            for t in pickups
            if t.offered_eta_s is not None and (lived := t.lived_since_offer_s(args.speedup)) is not None
        ]
    )
    summary = result.summary
    return {
        "router": router,
        "seconds": round(time.perf_counter() - started, 1),
        "trips_requested": summary.trips_requested,
        "trips_completed": summary.trips_completed,
        "trips_reached_pickup": len(pickups),
        "re_offered": sum(1 for t in pickups if t.offers > 1),
        "quote": None if quote is None else asdict(quote),
        "offer": None if offer is None else asdict(offer),
        "answered_by": who_answered(),
        "sim_routes": {k: v for k, v in result.metrics.counters.items() if k.startswith("sim_routes.")},
        "_quote": quote,
        "_offer": offer,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drivers", type=int, default=30)
    parser.add_argument("--riders", type=int, default=20)
    parser.add_argument("--duration", type=float, default=90.0, help="wall seconds of new requests")
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--speedup", type=float, default=10.0)
    parser.add_argument("--requests-per-minute", type=float, default=20.0)
    parser.add_argument("--opening-requests", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--routers", default="model,valhalla", help="server routers to compare, in order")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tiles = demo_tiles()
    print(
        f"demo tiles: {ROADS_DIR / ROADS_CITY} ({tiles['nodes']} nodes, "
        f"{tiles['one_way_ways']} one-way ways, built {tiles['built_at']})",
        flush=True,
    )
    runs = [run_once(router.strip(), args) for router in args.routers.split(",") if router.strip()]

    lines = [
        f"pickup ETA, quoted against lived (simulated seconds; lived - quoted), {args.drivers} drivers, "
        f"{args.riders} riders, {args.duration:.0f} s of requests at speedup {args.speedup:g}, "
        f"seed {args.seed}; "
        "simulated cars on Valhalla's routes in both runs"
    ]
    for run in runs:
        lines.append(
            f"server on {run['router']}: {run['trips_requested']} trips requested, "
            f"{run['trips_reached_pickup']} reached the pickup "
            f"({run['re_offered']} after more than one offer), "
            f"{run['trips_completed']} completed; answered by {run['answered_by']}; cars {run['sim_routes']}"
        )
        for label, errors in (("quote", run["_quote"]), ("offer", run["_offer"])):
            lines.append("  " + (errors.line(label) if errors is not None else f"{label:<6} no trips"))
    print("\n".join(lines))
    results = {
        "args": vars(args),
        "tiles": tiles,
        "runs": [{k: v for k, v in run.items() if not k.startswith("_")} for run in runs],
        "summary": lines,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (OUT / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"written: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
