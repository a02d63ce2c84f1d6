"""The board's web pages in a real headless Chromium against a live ASGI server: a director signs in (the
password, then the TOTP code), sees the policy in force, drafts a fare-policy proposal with the live preview,
votes, sees the result and the audit trail."""

from __future__ import annotations

import pytest

from backend.fares.policy import FarePolicy
from backend.fares.pricing import driver_pay, quote_fare
from tests.factories import TEST_PASSWORD
from tests.governance.conftest import fare_policy_payload
from tests.live_server import live_asgi_server  # noqa: F401 - the fixture
from tests.second_factor import authenticator_for, code_now

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _dollars(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


@pytest.mark.browser
def test_a_director_drafts_previews_votes_and_sees_the_result(
    live_asgi_server,  # noqa: F811
    make_director,
    monkeypatch,
):
    from playwright.sync_api import expect, sync_playwright

    director = make_director()
    phone = director.user.phone
    device = authenticator_for(director.user)
    # Expected preview of the "across town" sample (5 mi, 18 min) under the draft's per-mile rate.
    proposed = FarePolicy.from_document(fare_policy_payload(per_distance="2.10"))
    proposed_fare = quote_fare(proposed, distance_m=8047, duration_s=1080).fare
    proposed_pay = driver_pay(
        proposed, fare_minor=proposed_fare, distance_m=8047, duration_s=1080, wheelchair_accessible=False
    ).pay
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15000)
            page.goto(f"{live_asgi_server.url}/board/")
            expect(page).to_have_url(f"{live_asgi_server.url}/account/login/?next=/board/")

            page.fill("#id_username", phone)
            page.fill("#id_password", "not the password")
            page.click("#sign-in")
            expect(page.locator("#login-error")).to_contain_text("do not match")
            page.fill("#id_username", phone)
            page.fill("#id_password", TEST_PASSWORD)
            page.click("#sign-in")
            # Directors give the code from their authenticator app after the password (docs/sign-in.md).
            expect(page).to_have_url(f"{live_asgi_server.url}/account/verify/?next=/board/")
            page.fill("#id_code", code_now(device))
            page.click("#verify")

            expect(page.locator("#policy-version")).to_have_text("1")
            expect(page.locator('tr[data-field="rider.per_distance"] td')).to_have_text("1.76")

            page.click("text=New fare proposal")
            page.fill("#title", "Fuel costs: raise the per-mile rate")
            page.fill("#body", "Riders pay 34 cents more a mile.")
            preview_rows = page.locator("#preview tbody tr")
            expect(preview_rows).to_have_count(4)
            page.fill('[id="f-rider.per_distance"]', "2.10")
            across_town = preview_rows.nth(1)
            expect(across_town.locator('td[data-side="proposed"][data-key="fare"]')).to_have_text(
                _dollars(proposed_fare)
            )
            expect(across_town.locator('td[data-side="proposed"][data-key="driver_pay"]')).to_have_text(
                _dollars(proposed_pay)
            )
            expect(across_town.locator('td[data-side="proposed"][data-key="fare"]')).to_have_class("changed")

            page.fill('[id="f-commission_rate"]', "0.9")  # not a valid policy: the preview says why
            expect(page.locator("#preview-errors")).to_contain_text("commission_rate")
            page.fill('[id="f-commission_rate"]', "0.15")
            expect(page.locator("#preview-errors")).to_be_hidden()

            page.click("#submit-proposal")
            expect(page.locator("#proposal-status")).to_have_text("Open")
            expect(page.locator("#proposal-title")).to_have_text("Fuel costs: raise the per-mile rate")

            page.click("#vote-yes")
            expect(page.locator("#proposal-status")).to_have_text("Passed")
            expect(page.locator("#result-yes")).to_have_text("1")
            expect(page.locator("#result-quorum")).to_have_text("yes")
            expect(page.locator("#board-votes")).to_contain_text(director.user.name)
            expect(page.locator("#proposal-effect")).to_contain_text("version 2")

            page.click("text=Policy & proposals")
            expect(page.locator("#policy-version")).to_have_text("2")
            expect(page.locator('tr[data-field="rider.per_distance"] td')).to_have_text("2.10")

            page.click("text=Audit trail")
            expect(page.locator("#audit-verification")).to_contain_text("Chain verified")
            expect(page.locator("#audit-entries")).to_contain_text("fare_policy.adopted")
            expect(page.locator("#audit-entries")).to_contain_text("proposal.vote")
        finally:
            browser.close()

    from backend.fares.selectors import policy_in_force

    assert policy_in_force().version == 2
