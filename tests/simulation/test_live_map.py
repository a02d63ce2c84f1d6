"""The staff map in a real headless Chromium: it signs in, draws the streets, and its drivers move."""

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


def drawn_drivers(page) -> dict[str, tuple[float, float, str]]:
    raw = page.eval_on_selector("#map", "canvas => canvas.dataset.drivers")
    return {driver_id: (lat, lng, state) for driver_id, lat, lng, state in json.loads(raw)}


def test_map_is_staff_only_and_shows_drivers_moving(live_stack):
    from playwright.sync_api import sync_playwright

    from dispatch.simulation.runner import Simulation, SimulationConfig
    from tests.factories import TEST_PASSWORD, RiderFactory, StaffFactory

    staff = StaffFactory()
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

            # A signed-in non-staff user is sent to the login page too.
            page.goto(f"{live_stack.base_url}/map/")
            assert "/admin/login/" in page.url
            page.fill("#id_username", rider.phone)
            page.fill("#id_password", TEST_PASSWORD)
            page.click("input[type=submit]")
            assert "/map/" not in page.url or "/admin/login/" in page.url

            page.fill("#id_username", staff.phone)
            page.fill("#id_password", TEST_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_stack.base_url}/map/")

            page.wait_for_function(
                "() => window.rochdaleMap?.layer && window.rochdaleMap.layer.streets.length > 50"
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
