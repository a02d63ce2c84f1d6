"""The safety pages in a real headless Chromium (Debian's) against a live ASGI server: a friend follows a
shared ride on a phone-sized screen as it moves and sees it stop being shared when it ends; a staff member
sees an SOS on the live map's banner and takes it on with its button. Nothing is fetched from anywhere but
the server."""

from __future__ import annotations

import pytest

from dispatch.models import SafetyAlertAction
from dispatch.services import sos
from dispatch.services.share_links import share_link_create
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_cancel
from dispatch.state import TripStatus
from tests.factories import DriverFactory, RiderFactory
from tests.live_server import start_asgi_server
from tests.mobile_api.builders import assigned_trip
from tests.safety.conftest import live_fix

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def fast_polling_server(transactional_db):
    """A server of its own whose share page polls every second, so the test need not wait ten."""
    with start_asgi_server(extra_env={"ROCHDALE_SHARE_PAGE_POLL_S": "1"}) as server:
        yield server


def _only_from(server_url: str, requests: list[str]) -> None:
    strangers = [url for url in requests if not url.startswith(server_url)]
    assert strangers == [], strangers


@pytest.mark.browser
def test_a_friend_follows_the_shared_ride_until_it_ends(fast_polling_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    rider, driver = RiderFactory(name="Ada Rider"), DriverFactory(name="Grace Hopper")
    trip = assigned_trip(rider, driver)
    live_fix(driver, 40.7611, -73.9800)
    _link, token = share_link_create(rider_id=rider.id, trip_id=trip.id)
    plate = driver.driver_profile.active_vehicle.plate
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            page.set_default_timeout(15000)
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(f"{fast_polling_server.url}/share/{token}")

            expect(page.locator("#status")).to_have_text("The driver is on the way to the pickup.")
            expect(page.locator("#driver-name")).to_have_text("Grace")
            expect(page.locator("#vehicle")).to_contain_text(plate)
            expect(page.locator("#eta")).to_contain_text("min to the pickup")
            expect(page.locator("#sketch-car")).to_have_attribute("visibility", "visible")
            expect(page.locator('[data-step="assigned"]')).to_have_attribute("aria-current", "step")
            assert "Ada" not in page.content() and rider.phone not in page.content()

            # The page follows the ride by itself: at the pickup the car is no longer drawn.
            trip_transition(trip_id=trip.id, to=TripStatus.ARRIVED, actor_id=driver.id)
            expect(page.locator("#status")).to_have_text("The driver is at the pickup.")
            expect(page.locator("#sketch-car")).to_have_attribute("visibility", "hidden")
            expect(page.locator("#eta")).to_have_text("")

            trip_cancel(trip_id=trip.id, actor_id=rider.id, cancelled_by="rider", reason="")
            expect(page.locator("#status")).to_contain_text("no longer shared")
            expect(page.locator("#driver")).to_be_hidden()
            _only_from(fast_polling_server.url, requests)
        finally:
            browser.close()


@pytest.mark.browser
def test_staff_see_an_sos_on_the_live_map_and_take_it_on(
    fast_polling_server, client, staff_user, monkeypatch
):
    from playwright.sync_api import expect, sync_playwright

    rider = RiderFactory(name="Ada Rider")
    trip = assigned_trip(rider)
    alert, _created = sos.sos_raise(
        user_id=rider.id,
        client_key="browser",
        source="api",
        trip_id=trip.id,
        position=sos.SosPosition(40.7611, -73.9800),
    )
    client.force_login(staff_user)
    session = client.cookies["sessionid"].value
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": session, "url": fast_polling_server.url}])
            page = context.new_page()
            page.set_default_timeout(15000)
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(f"{fast_polling_server.url}/map/")

            banner = page.locator("#sos")
            expect(banner).to_be_visible()
            line = page.locator(f'#sos-alerts li[data-alert-id="{alert.id}"]')
            expect(line).to_contain_text("Ada Rider")
            expect(line).to_contain_text(rider.phone)
            expect(line).to_contain_text("40.76110, -73.98000")
            line.get_by_role("button", name="I am on it").click()

            expect(page).to_have_url(f"{fast_polling_server.url}/map/")
            expect(page.locator(f'#sos-alerts li[data-alert-id="{alert.id}"]')).to_contain_text("taken on by")
            expect(page.locator("#map")).to_have_attribute("data-alerts", f'[["{alert.id}","acknowledged"]]')
            _only_from(fast_polling_server.url, requests)
        finally:
            browser.close()
    assert SafetyAlertAction.objects.get(alert=alert).by_id == staff_user.id
