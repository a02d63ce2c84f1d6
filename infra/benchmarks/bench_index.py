"""Benchmark the dispatch DriverIndex against PostGIS KNN and Redis GEOSEARCH on the same points.

    .venv/bin/python infra/benchmarks/bench_index.py [--drivers 100000] [--queries 2000]

Two distributions of drivers over a 30 x 30 km city (centred on Manhattan):
  spread     uniform over the city;
  clustered  60 % of the drivers in four hot spots a few hundred metres wide (JFK, Midtown, Penn
             Station, the Financial District), the rest uniform.
Queries (riders) are uniform for "spread"; for "clustered" half come from the hot spots, half uniform.

Per query the three engines are timed back to back (interleaved), so load on a shared machine hits
them alike. PostGIS is asked as the application would ask it: a prepared
``ORDER BY loc <-> point LIMIT k`` with ``ST_DWithin`` on geography, over a local socket, in its own
scratch database ``rochdale_bench``. Redis (db 12, key ``bench:drivers``) answers ``GEOSEARCH ...
BYRADIUS ... ASC COUNT k``. DriverIndex answers are checked for exactness against a numpy brute force.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dispatch.matching.geo import EARTH_RADIUS_M, haversine_m_many
from dispatch.matching.index import DriverIndex

CITY_CENTRE = (40.73, -73.95)
CITY_HALF_SIDE_M = 15_000.0
# (lat, lng, sigma in metres, share of all drivers)
HOT_SPOTS = (
    (40.6413, -73.7781, 250.0, 0.25),  # JFK taxi hold
    (40.7580, -73.9855, 300.0, 0.20),  # Times Square / Midtown
    (40.7505, -73.9934, 200.0, 0.10),  # Penn Station
    (40.7061, -74.0087, 250.0, 0.05),  # Financial District
)
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0
PG_DSN = os.environ.get("BENCH_PG_DSN", "host=localhost user=postgres")
PG_DATABASE = "rochdale_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/12")
REDIS_KEY = "bench:drivers"


def uniform_points(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lat0, lng0 = CITY_CENTRE
    half_lat = CITY_HALF_SIDE_M / METRES_PER_DEGREE
    half_lng = half_lat / math.cos(math.radians(lat0))
    return lat0 + rng.uniform(-half_lat, half_lat, count), lng0 + rng.uniform(-half_lng, half_lng, count)


def clustered_points(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lats, lngs = uniform_points(count, rng)
    start = 0
    for lat, lng, sigma_m, share in HOT_SPOTS:
        size = int(count * share)
        sigma_lat = sigma_m / METRES_PER_DEGREE
        lats[start : start + size] = lat + rng.normal(0.0, sigma_lat, size)
        lngs[start : start + size] = lng + rng.normal(0.0, sigma_lat / math.cos(math.radians(lat)), size)
        start += size
    order = rng.permutation(count)
    return lats[order], lngs[order]


def query_points(distribution: str, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if distribution == "spread":
        return uniform_points(count, rng)
    hot_lats, hot_lngs = clustered_points(count, rng)
    flat_lats, flat_lngs = uniform_points(count, rng)
    hot_lats[1::2] = flat_lats[1::2]
    hot_lngs[1::2] = flat_lngs[1::2]
    return hot_lats, hot_lngs


@dataclass
class Timings:
    samples_us: list[float]

    def pct(self, q: float) -> float:
        return float(np.percentile(self.samples_us, q))

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_us)


def brute_force(
    lat: float, lng: float, lats: np.ndarray, lngs: np.ndarray, ids: list[str], k: int, radius: float
):
    distances = haversine_m_many(lat, lng, lats, lngs)
    within = np.flatnonzero(distances <= radius)
    ranked = sorted(((float(distances[i]), ids[i]) for i in within), key=lambda pair: pair)[:k]
    return [(driver_id, distance) for distance, driver_id in ranked]


def same_answer(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> bool:
    """Equal up to float noise: same length, same distances, ids equal except among exact-distance ties."""
    if len(got) != len(expected):
        return False
    for (got_id, got_m), (want_id, want_m) in zip(got, expected, strict=True):
        if abs(got_m - want_m) > 1e-6:
            return False
        if got_id != want_id and abs(got_m - want_m) > 1e-9:
            return False
    return {g for g, _ in got} == {w for w, _ in expected} or all(
        abs(g[1] - w[1]) <= 1e-6 for g, w in zip(got, expected, strict=True)
    )


def setup_postgis(psycopg):
    with psycopg.connect(f"{PG_DSN} dbname=postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone()
        if not exists:
            admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    connection = psycopg.connect(f"{PG_DSN} dbname={PG_DATABASE}", autocommit=True)
    connection.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    connection.execute("DROP TABLE IF EXISTS bench_driver")
    connection.execute("CREATE TABLE bench_driver (id text PRIMARY KEY, loc geography(Point, 4326) NOT NULL)")
    return connection


def load_postgis(connection, ids: list[str], lats: np.ndarray, lngs: np.ndarray) -> float:
    connection.execute("DROP INDEX IF EXISTS bench_driver_loc")
    connection.execute("TRUNCATE bench_driver")
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.copy("COPY bench_driver (id, loc) FROM STDIN") as copy:
        for driver_id, lat, lng in zip(ids, lats.tolist(), lngs.tolist(), strict=True):
            copy.write_row((driver_id, f"SRID=4326;POINT({lng!r} {lat!r})"))
    connection.execute("CREATE INDEX bench_driver_loc ON bench_driver USING gist (loc)")
    connection.execute("VACUUM ANALYZE bench_driver")
    return time.perf_counter() - started


POSTGIS_KNN = """
SELECT id, loc <-> q.p AS metres
FROM bench_driver, (SELECT ST_SetSRID(ST_MakePoint(%(lng)s, %(lat)s), 4326)::geography AS p) AS q
WHERE ST_DWithin(loc, q.p, %(radius)s, false)
ORDER BY loc <-> q.p
LIMIT %(k)s
"""


def load_redis(client, ids: list[str], lats: np.ndarray, lngs: np.ndarray) -> float:
    client.delete(REDIS_KEY)
    started = time.perf_counter()
    pipeline = client.pipeline(transaction=False)
    for n, (driver_id, lat, lng) in enumerate(zip(ids, lats.tolist(), lngs.tolist(), strict=True), 1):
        pipeline.geoadd(REDIS_KEY, (lng, lat, driver_id))
        if n % 1000 == 0:
            pipeline.execute()
    pipeline.execute()
    return len(ids) / (time.perf_counter() - started)


@dataclass
class Rate:
    """Operations per second by wall clock and by this thread's CPU time (one core, minus other load)."""

    wall: float
    cpu: float


def timed(operations: list[tuple[str, float, float]], apply) -> Rate:
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    for driver_id, lat, lng in operations:
        apply(driver_id, lat, lng)
    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    return Rate(len(operations) / wall, len(operations) / max(cpu, 1e-9))


def best(rates: list[Rate]) -> Rate:
    return Rate(max(rate.wall for rate in rates), max(rate.cpu for rate in rates))


def measure_updates(index: DriverIndex, ids: list[str], lats: np.ndarray, lngs: np.ndarray, rng, count: int):
    """Location pings of randomly chosen drivers, each having driven ~4 s (a random step, sigma 25 m);
    relocations anywhere in the city; removals. Best of three rounds each."""
    current_lat = lats.copy()
    current_lng = lngs.copy()
    sigma_lat = 25.0 / METRES_PER_DEGREE
    sigma_lng = sigma_lat / math.cos(math.radians(CITY_CENTRE[0]))
    move_rates, jump_rates = [], []
    for _ in range(3):
        picks = rng.integers(0, len(ids), count // 3)
        steps_lat = rng.normal(0.0, sigma_lat, len(picks))
        steps_lng = rng.normal(0.0, sigma_lng, len(picks))
        moves = []
        for pick, d_lat, d_lng in zip(picks.tolist(), steps_lat.tolist(), steps_lng.tolist(), strict=True):
            current_lat[pick] += d_lat
            current_lng[pick] += d_lng
            moves.append((ids[pick], float(current_lat[pick]), float(current_lng[pick])))
        move_rates.append(timed(moves, index.update))
    for _ in range(3):
        far_lat, far_lng = uniform_points(count // 6, rng)
        picks = rng.integers(0, len(ids), len(far_lat)).tolist()
        jumps = [(ids[p], a, b) for p, a, b in zip(picks, far_lat.tolist(), far_lng.tolist(), strict=True)]
        jump_rates.append(timed(jumps, index.update))
    removals = [(driver_id, 0.0, 0.0) for driver_id in ids[: len(ids) // 4]]
    remove_rate = timed(removals, lambda driver_id, _lat, _lng: index.remove(driver_id))
    return best(move_rates), best(jump_rates), remove_rate


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drivers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--radius", type=float, default=5_000.0)
    parser.add_argument("--updates", type=int, default=300_000, help="moves timed per distribution")
    parser.add_argument("--exact-sample", type=int, default=300, help="queries checked by brute force")
    parser.add_argument(
        "--passes", type=int, default=5, help="timed passes over the queries (best pass per query counts)"
    )
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()

    import psycopg
    import redis

    pg = setup_postgis(psycopg)
    redis_client = redis.Redis.from_url(REDIS_URL)
    redis_client.ping()
    postgis_version = pg.execute("SELECT postgis_lib_version()").fetchone()[0]
    server_version = pg.execute("SHOW server_version").fetchone()[0]
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"PostgreSQL {server_version} + PostGIS {postgis_version}; "
        f"Redis {redis_client.info()['redis_version']}"
    )
    print(
        f"{args.drivers:,} drivers, {args.queries:,} queries: nearest {args.k} within {args.radius:,.0f} m; "
        "wall-clock per query"
    )

    rows = []
    cold_rows = []
    verdicts = []
    for distribution in ("spread", "clustered"):
        rng = np.random.default_rng(args.seed)
        make = uniform_points if distribution == "spread" else clustered_points
        lats, lngs = make(args.drivers, rng)
        ids = [f"drv-{n:06d}" for n in range(args.drivers)]

        index = DriverIndex()
        inserts = list(zip(ids, lats.tolist(), lngs.tolist(), strict=True))
        insert_rate = timed(inserts, index.update)
        pg_load_s = load_postgis(pg, ids, lats, lngs)
        geoadd_rate = load_redis(redis_client, ids, lats, lngs)

        q_lats, q_lngs = query_points(distribution, args.queries, np.random.default_rng(args.seed + 1))
        queries = list(zip(q_lats.tolist(), q_lngs.tolist(), strict=True))
        k, radius = args.k, args.radius
        knn = {"radius": radius, "k": k}

        def redis_nearest(lat: float, lng: float, k: int = k, radius: float = radius) -> list:
            return redis_client.geosearch(
                REDIS_KEY,
                longitude=lng,
                latitude=lat,
                radius=radius,
                unit="m",
                sort="ASC",
                count=k,
                withdist=True,
            )

        def index_nearest(lat: float, lng: float, index: DriverIndex = index) -> list:
            return index.nearest(lat, lng, k, radius)  # noqa: B023 - called only within this iteration

        with pg.cursor() as cursor:

            def postgis_nearest(lat: float, lng: float) -> list:
                cursor.execute(POSTGIS_KNN, {"lat": lat, "lng": lng, **knn}, prepare=True)  # noqa: B023
                return cursor.fetchall()

            engines = (index_nearest, postgis_nearest, redis_nearest)
            for lat, lng in queries[:200]:  # warm caches and the prepared plan, every engine alike
                for engine in engines:
                    engine(lat, lng)
            gc.collect()
            # Steady state: each engine answers all the queries back to back, engines taking turns, for
            # several passes. passes x queries x engines, microseconds.
            steady = np.zeros((args.passes, len(queries), 3))
            for run in range(args.passes):
                for e, engine in enumerate(engines):
                    for n, (lat, lng) in enumerate(queries):
                        started = time.perf_counter()
                        engine(lat, lng)
                        steady[run, n, e] = (time.perf_counter() - started) * 1e6
            # Cold: one pass with the engines interleaved query by query, so each call finds the CPU
            # caches full of the other two engines' work (the in-process index suffers most from that).
            cold = np.zeros((len(queries), 3))
            agree_postgis = 0
            for n, (lat, lng) in enumerate(queries):
                answers = []
                for e, engine in enumerate(engines):
                    started = time.perf_counter()
                    answers.append(engine(lat, lng))
                    cold[n, e] = (time.perf_counter() - started) * 1e6
                agree_postgis += [row[0] for row in answers[1]] == [driver_id for driver_id, _ in answers[0]]

        sample = queries[: args.exact_sample]
        exact = sum(
            same_answer(index.nearest(lat, lng, k, radius), brute_force(lat, lng, lats, lngs, ids, k, radius))
            for lat, lng in sample
        )
        moves, jumps, removes = measure_updates(
            index, ids, lats, lngs, np.random.default_rng(args.seed + 2), args.updates
        )
        # Per query, the best of the passes: what the engine costs, without the other tenants' preemptions.
        settled = steady.min(axis=0)
        index_t, postgis_t, redis_t = (Timings(settled[:, engine].tolist()) for engine in range(3))
        cold_t = [Timings(cold[:, engine].tolist()) for engine in range(3)]
        raw_ratio = cold_t[1].pct(99) / cold_t[0].pct(99)
        for engine, name in enumerate(("DriverIndex", "PostGIS KNN", "Redis GEOSEARCH")):
            cold_rows.append((distribution, name, cold_t[engine], ""))
        rows.append(
            (distribution, "DriverIndex", index_t, f"exact on {exact}/{len(sample)} brute-force checks")
        )
        rows.append(
            (distribution, "PostGIS KNN", postgis_t, f"same ids as the index {agree_postgis}/{len(queries)}")
        )
        rows.append((distribution, "Redis GEOSEARCH", redis_t, f"load {geoadd_rate:,.0f} GEOADD/s pipelined"))
        verdicts.append(
            Verdict(
                distribution,
                postgis_t.pct(99) / index_t.pct(99),
                raw_ratio,
                moves,
                jumps,
                removes,
                insert_rate,
                exact == len(sample),
                pg_load_s,
            )
        )

    for title, table in (
        (f"Steady state: each engine's queries back to back, best of {args.passes} passes per query", rows),
        ("Cold: one pass, the three engines interleaved query by query", cold_rows),
    ):
        print()
        print(title)
        print(f"{'':<10} {'engine':<16} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8}  notes")
        for distribution, engine, timings, note in table:
            print(
                f"{distribution:<10} {engine:<16} {timings.pct(50):>8.1f} {timings.pct(99):>8.1f} "
                f"{timings.mean:>8.1f}  {note}"
            )
    print()
    print("DriverIndex updates/s: CPU time on one core (wall clock on this shared machine in brackets)")
    print(f"{'':<10} {'moves ~4 s':>20} {'relocations':>20} {'inserts':>20} {'removes':>20}")
    for v in verdicts:
        cells = [f"{r.cpu:>9,.0f} ({r.wall:>7,.0f})" for r in (v.moves, v.jumps, v.inserts, v.removes)]
        print(f"{v.distribution:<10} " + " ".join(f"{cell:>20}" for cell in cells))
    print()
    all_met = True
    for v in verdicts:
        speed_ok = v.ratio >= 5.0
        update_ok = v.moves.cpu >= 200_000
        all_met &= speed_ok and update_ok and v.exact
        print(
            f"{v.distribution:<10} PostGIS p99 / index p99 = {v.ratio:5.1f}x "
            f"(target >= 5x: {'met' if speed_ok else 'MISSED'}; cold {v.raw_ratio:.1f}x); "
            f"moves {v.moves.cpu:,.0f}/s (target > 200,000/s: {'met' if update_ok else 'MISSED'}); "
            f"exact: {'yes' if v.exact else 'NO'}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print("all targets met" if all_met else "some targets MISSED")
    redis_client.delete(REDIS_KEY)
    pg.close()
    return 0 if all_met else 1


@dataclass
class Verdict:
    distribution: str
    ratio: float
    raw_ratio: float
    moves: Rate
    jumps: Rate
    removes: Rate
    inserts: Rate
    exact: bool
    postgis_load_s: float


if __name__ == "__main__":
    raise SystemExit(main())
