"""The one sign-in path in a real headless Chromium on a phone-sized screen, against a live ASGI server: a
director with no authenticator yet signs in with the password, sets the app up from the key the page shows
and reaches the board; signed out, they come back with the password and a code from the same key."""

from __future__ import annotations

from base64 import b32decode

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import TEST_PASSWORD
from tests.governance.conftest import make_director, make_member, seeded_policy  # noqa: F401 - fixtures
from tests.governance.test_board_page import CHROMIUM_ARGS
from tests.live_server import live_asgi_server  # noqa: F401 - the fixture

PHONE = {"width": 390, "height": 844}


def _code(key: bytes, *, steps_ahead: int = 0) -> str:
    """What an authenticator app holding `key` shows now (a code is accepted once: the next one is later)."""
    return f"{totp(key, step=30, digits=6, drift=steps_ahead):06d}"


@pytest.mark.browser
def test_a_director_enrols_then_signs_in_with_a_totp_code(
    live_asgi_server,  # noqa: F811
    make_director,  # noqa: F811
    monkeypatch,
):
    from playwright.sync_api import expect, sync_playwright

    director = make_director()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM below runs beside playwright's loop
    base = live_asgi_server.url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            page.set_default_timeout(15000)
            page.goto(f"{base}/board/")
            expect(page).to_have_url(f"{base}/account/login/?next=/board/")
            page.get_by_label("Phone number").fill(director.user.phone)
            page.get_by_label("Password").fill(TEST_PASSWORD)
            page.get_by_role("button", name="Sign in").click()

            # No authenticator yet: the board sends the director to set one up.
            expect(page).to_have_url(f"{base}/account/two-factor/?next=/board/")
            expect(page.locator("#totp-qr svg")).to_be_visible()
            secret = page.locator("#totp-secret").inner_text().replace(" ", "")
            key = b32decode(secret + "=" * (-len(secret) % 8))
            assert key == TOTPDevice.objects.get(user=director.user).bin_key
            page.fill("#id_code", _code(key))
            page.click("#confirm-device")
            expect(page.locator("#policy-version")).to_have_text("1")
            assert TOTPDevice.objects.get(user=director.user).confirmed

            page.click("text=Sign out")
            page.goto(f"{base}/board/")
            page.fill("#id_username", director.user.phone)
            page.fill("#id_password", TEST_PASSWORD)
            page.click("#sign-in")
            expect(page).to_have_url(f"{base}/account/verify/?next=/board/")
            page.fill("#id_code", _code(key, steps_ahead=1))
            page.click("#verify")
            expect(page).to_have_url(f"{base}/board/")
            expect(page.locator("#policy-version")).to_have_text("1")
        finally:
            browser.close()
