"""The staff map in a real headless Chromium: it signs in, draws the streets, and its drivers move; on a
built tile set it draws the city's real streets, the service areas and each trip along its route."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from tests.simulation.conftest import SPEEDUP, seed_service_area

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class BackgroundSimulation:
    def __init__(self, simulation) -> None:
        self.simulation = simulation
        self.loop = asyncio.new_event_loop()
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = self.loop.run_until_complete(self.simulation.run())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.simulation.interrupt)
        self.thread.join(timeout=60)


def sign_in(page, base_url: str, user, device) -> None:
    """Staff sign in on the one sign-in page: the password, then the code of their authenticator `device`
    (made before playwright starts: the ORM does not run inside its event loop)."""
    from tests.factories import TEST_PASSWORD
    from tests.second_factor import code_now

    page.goto(f"{base_url}/map/")
    page.fill("#id_username", user.phone)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/account/verify/?next=/map/")
    page.fill("#id_code", code_now(device, refresh=False))
    page.click("#verify")
    page.wait_for_url(f"{base_url}/map/")


def drawn_drivers(page) -> dict[str, tuple[float, float, str]]:
    raw = page.eval_on_selector("#map", "canvas => canvas.dataset.drivers")
    return {driver_id: (lat, lng, state) for driver_id, lat, lng, state in json.loads(raw)}


def test_map_is_staff_only_and_shows_drivers_moving(live_stack):
    from playwright.sync_api import sync_playwright

    from dispatch.simulation.runner import Simulation, SimulationConfig
    from tests.factories import TEST_PASSWORD, RiderFactory, StaffFactory
    from tests.second_factor import authenticator_for, code_now

    staff = StaffFactory()
    device = authenticator_for(staff)
    rider = RiderFactory()
    anonymous = httpx.get(f"{live_stack.base_url}/map/", follow_redirects=False)
    assert anonymous.status_code == 302
    assert anonymous.headers["location"].startswith("/admin/login/?next=/map/")
    assert httpx.get(f"{live_stack.base_url}/map/snapshot.json").status_code == 302

    config = SimulationConfig(
        base_url=live_stack.base_url,
        drivers=6,
        riders=3,
        duration_s=60.0,
        drain_s=0.0,
        speedup=SPEEDUP,
        requests_per_minute=12.0,
        seed=5,
        token_cache=None,
        progress=False,
    )
    simulation = Simulation(config)
    seed_service_area(simulation.city)

    with BackgroundSimulation(simulation), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})

            # A signed-in non-staff user is sent to the (one) sign-in page too.
            page.goto(f"{live_stack.base_url}/map/")
            assert "/account/login/" in page.url
            page.fill("#id_username", rider.phone)
            page.fill("#id_password", TEST_PASSWORD)
            with page.expect_navigation():
                page.click("input[type=submit]")
            page.wait_for_url(f"{live_stack.base_url}/account/login/?next=/map/")

            # Staff give the code of their authenticator after the password.
            page.fill("#id_username", staff.phone)
            page.fill("#id_password", TEST_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_stack.base_url}/account/verify/?next=/map/")
            page.fill("#id_code", code_now(device, refresh=False))
            page.click("#verify")
            page.wait_for_url(f"{live_stack.base_url}/map/")

            page.wait_for_function(
                "() => window.rochdaleMap?.layer && window.rochdaleMap.layer.streets.length > 50"
            )
            # Every street of the layer is stroked (whatever its class), not just fetched.
            page.wait_for_function("() => window.rochdaleMap.drawn.streets > 0")
            assert page.evaluate("() => window.rochdaleMap.drawn.streets") == page.evaluate(
                "() => window.rochdaleMap.layer.streets.length"
            )
            page.wait_for_function(
                "() => JSON.parse(document.getElementById('map').dataset.drivers).length >= 4", timeout=60_000
            )
            first = drawn_drivers(page)
            snapshots_before = int(page.eval_on_selector("#map", "c => c.dataset.snapshots"))
            time.sleep(4.0)
            second = drawn_drivers(page)
            snapshots_after = int(page.eval_on_selector("#map", "c => c.dataset.snapshots"))

            # About one snapshot a second, not one message per location fix.
            assert 2 <= snapshots_after - snapshots_before <= 7
            moved = [
                driver_id
                for driver_id, (lat, lng, _) in second.items()
                if driver_id in first
                and (abs(first[driver_id][0] - lat) + abs(first[driver_id][1] - lng)) > 1e-5
            ]
            assert moved, (first, second)
            bounds = simulation.city.bounds
            for lat, lng, state in second.values():
                assert bounds.south - 0.01 < lat < bounds.north + 0.01
                assert bounds.west - 0.01 < lng < bounds.east + 0.01
                assert state in {"free", "offered", "on_trip"}

            # The canvas is really drawn on: not a blank page.
            assert (
                page.eval_on_selector(
                    "#map",
                    """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                          const seen = new Set();
                          for (let i = 0; i < d.length; i += 388) seen.add(`${d[i]},${d[i+1]},${d[i+2]}`);
                          return seen.size; }""",
                )
                > 5
            )
        finally:
            browser.close()


@pytest.fixture
def helsinki_roads_env(monkeypatch, helsinki_tiles):
    """The stack's processes take their settings from the environment: point them at the Helsinki tiles.
    Requested before `live_stack`, so it is set when the processes start."""
    monkeypatch.setenv("ROCHDALE_ROADS_DIR", str(helsinki_tiles.root.parent))
    monkeypatch.setenv("ROCHDALE_ROADS_CITY", helsinki_tiles.name)
    return helsinki_tiles


PIXEL_AT = """([lat, lng]) => {
    const state = window.rochdaleMap, view = state.view, canvas = document.getElementById('map');
    const x = Math.round(view.x(lng) * view.ratio), y = Math.round(view.y(lat) * view.ratio);
    return Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
}"""


def test_map_draws_the_tile_streets_the_service_area_and_routes_along_the_streets(
    helsinki_roads_env, live_stack, tmp_path
):
    from io import StringIO

    from django.core.management import call_command
    from playwright.sync_api import sync_playwright

    from tests.factories import StaffFactory
    from tests.second_factor import authenticator_for
    from tests.simulation.test_live_map_layers import EAST, WEST, open_trip, planned_route

    tiles = helsinki_roads_env
    features = json.loads(tiles.streets_path.read_text())["features"]
    staff = StaffFactory()
    device = authenticator_for(staff)
    area_file = tmp_path / "centre.geojson"
    ring = [[24.937, 60.166], [24.952, 60.166], [24.952, 60.177], [24.937, 60.177], [24.937, 60.166]]
    area_file.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    call_command("service_area_load", str(area_file), "--name", "Helsinki centre", stdout=StringIO())
    route = planned_route(tiles, WEST, EAST)
    routed = open_trip(route=route)
    # A trip from before routes were stored: drawn as the straight line, as the map always did.
    open_trip(route=None, pickup=(60.1760, 24.9450), dropoff=(60.1700, 24.9480))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            sign_in(page, live_stack.base_url, staff, device)
            page.wait_for_function(
                "() => { const d = window.rochdaleMap?.drawn; return d?.routes === 1 && d.straight === 1; }",
                timeout=30_000,
            )
            state = page.evaluate(
                "() => { const map = window.rochdaleMap;"
                " return {source: map.layer.source, city: map.layer.city, ...map.drawn}; }"
            )
            assert state == {
                "source": "tiles", "city": "helsinki", "streets": len(features), "areas": 1, "routes": 1,
                "straight": 1,
            }  # fmt: skip
            assert page.text_content("#streets-source") == "streets: helsinki (road tiles)"
            routes = json.loads(page.eval_on_selector("#map", "c => c.dataset.routes"))
            assert [str(routed.id)[:8], "assigned", len(route.simplify(1e-5).coords)] in routes

            # The route is painted along the streets, in the trip's blue, at its middle vertex...
            middle = route.coords[len(route.coords) // 2]
            red, green, blue = page.evaluate(PIXEL_AT, [middle[1], middle[0]])
            assert blue > red + 60 and blue > green + 30, (red, green, blue)
            # ...and a main street south of the trips (they lie north of 60.169) in street colour.
            lng, lat = next(
                middle
                for f in features
                if f["properties"]["highway"] == "primary"
                and (middle := f["geometry"]["coordinates"][len(f["geometry"]["coordinates"]) // 2])[1]
                < 60.166
            )
            red, green, blue = page.evaluate(PIXEL_AT, [lat, lng])
            background = (244, 241, 234)
            assert abs(red - background[0]) + abs(green - background[1]) + abs(blue - background[2]) > 40
            assert abs(red - blue) < 80  # a warm grey, not a trip's blue or orange
        finally:
            browser.close()
