"""The driver's payout routes and the staff screens: a driver sees their own payouts (paged) and each one's
statement (the week's trips, tips, top-ups and a total equal to what was paid), nobody else's; the Stripe
onboarding link comes from Stripe (a fake one, over real HTTP); staff see bank details masked and payout
amounts read-only."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone

from dispatch.models import DriverBankAccount, DriverStripeAccount, Payout
from dispatch.money.payouts import payouts_run
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.payouts.builders import bank_account, driver_with_bank, earn
from tests.payouts.conftest import DRIVER_BANK_ROUTING, OTHER_BANK_ROUTING

pytestmark = pytest.mark.django_db


def a_payout(driver, week_start: date, amount: int = 1000) -> Payout:
    return Payout.objects.create(
        driver=driver,
        week_start=week_start,
        cut_off=timezone.now(),
        method="ach",
        amount_minor=amount,
        payable_minor=amount,
        tips_minor=0,
        currency="USD",
        destination="****6789",
        idempotency_key=f"rochdale:payout:{uuid.uuid4()}:{amount}USD",
    )


def test_a_driver_lists_their_own_payouts_newest_week_first(db):
    driver, other = DriverFactory(), DriverFactory()
    weeks = [date(2026, 11, 2) + timedelta(days=7 * n) for n in range(3)]
    for week in weeks:
        a_payout(driver, week)
    a_payout(other, weeks[0], amount=99999)
    client = auth_client_for(driver)

    first = client.get("/api/v1/driver/payouts?page_size=2")
    assert first.status_code == 200
    body = first.json()
    assert [item["week_start"] for item in body["results"]] == ["2026-11-16", "2026-11-09"]
    assert body["next"]
    second = client.get(body["next"]).json()
    assert [item["week_start"] for item in second["results"]] == ["2026-11-02"] and second["next"] is None
    item = body["results"][0]
    assert set(item) == {
        "id", "week_start", "week_end", "status", "method", "amount", "pay", "tips", "destination",
        "created_at", "submitted_at", "paid_at", "failure_reason",
    }  # fmt: skip
    assert item["week_end"] == "2026-11-22" and item["amount"] == {"amount": 1000, "currency": "USD"}
    assert item["destination"] == "****6789" and item["failure_reason"] is None

    assert (
        RiderFactory
        and auth_client_for(RiderFactory()).get("/api/v1/driver/payouts").json()["error"]["code"]
        == "driver_role_required"
    )
    assert client.get("/api/v1/driver/payouts?cursor=garbled").json()["error"]["code"] == "invalid_cursor"


def test_a_payouts_statement_adds_up_to_what_was_paid(seeded_policy, this_week, payout_files):
    monday, after = this_week
    driver = driver_with_bank()
    trips = earn(seeded_policy, driver, trips=2, tip_minor=250)
    payouts_run(week_start=monday, now=after)
    payout = Payout.objects.get()

    response = auth_client_for(driver).get(f"/api/v1/driver/payouts/{payout.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["payout"]["id"] == str(payout.id) and body["payout"]["status"] == "submitted"
    statement = body["statement"]
    assert statement["week_start"] == monday.isoformat() and statement["trips"] == 2
    lines = statement["lines"]
    assert [line["kind"] for line in lines] == ["trip", "trip", "tip"]
    assert [line["trip_id"] for line in lines] == [str(trips[0].id), str(trips[1].id), str(trips[1].id)]
    for line, trip in zip(lines, trips, strict=False):
        assert line["pay"]["amount"] == trip.driver_pay_minor and line["fare"]["amount"] == trip.fare_minor
        assert (line["distance_m"], line["duration_s"]) == (
            trip.measured_distance_m,
            trip.measured_duration_s,
        )
    assert lines[2]["tip"] == {"amount": 250, "currency": "USD"}
    totals = statement["totals"]
    assert totals["pay"]["amount"] == sum(trip.driver_pay_minor for trip in trips)
    assert totals["tips"]["amount"] == 250 and totals["weekly_top_ups"]["amount"] == 0
    assert statement["brought_forward"]["amount"] == 0
    assert statement["total"]["amount"] == payout.amount_minor == body["payout"]["amount"]["amount"]


def test_nobody_else_sees_a_drivers_payout(db):
    driver = DriverFactory()
    payout = a_payout(driver, date(2026, 11, 16))
    for outsider in (DriverFactory(), RiderFactory(), StaffFactory()):
        response = auth_client_for(outsider).get(f"/api/v1/driver/payouts/{payout.id}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert auth_client_for(driver).get(f"/api/v1/driver/payouts/{payout.id}").status_code == 200


def test_stripe_onboarding_makes_one_account_and_a_fresh_link_each_time(db, fake_stripe):
    driver = DriverFactory()
    client = auth_client_for(driver)

    first = client.post("/api/v1/driver/payouts/stripe-onboarding")
    second = client.post("/api/v1/driver/payouts/stripe-onboarding")

    assert first.status_code == second.status_code == 200, first.content
    account = DriverStripeAccount.objects.get(driver=driver)
    assert first.json()["account_id"] == second.json()["account_id"] == account.account_id
    assert first.json()["url"] != second.json()["url"]
    assert first.json()["url"].startswith(f"https://connect.stripe.test/setup/e/{account.account_id}/")
    assert first.json()["expires_at"].endswith("Z")
    [created] = fake_stripe.calls("/v1/accounts")
    assert created.form["type"] == "express" and created.form["country"] == "US"
    assert created.form["capabilities[transfers][requested]"] == "true"
    assert created.idempotency_key == f"rochdale:connect-account:{driver.id}"
    links = fake_stripe.calls("/v1/account_links")
    assert [link.form["type"] for link in links] == ["account_onboarding"] * 2
    assert {link.form["account"] for link in links} == {account.account_id}

    rider = auth_client_for(RiderFactory()).post("/api/v1/driver/payouts/stripe-onboarding")
    assert rider.status_code == 403 and rider.json()["error"]["code"] == "driver_role_required"


def test_stripe_onboarding_says_when_stripe_cannot_be_used(db, fake_stripe, settings):
    client = auth_client_for(DriverFactory())
    fake_stripe.script("/v1/accounts", "server_error")
    down = client.post("/api/v1/driver/payouts/stripe-onboarding")
    assert down.status_code == 503 and down.json()["error"]["code"] == "payout_provider_unavailable"
    assert not DriverStripeAccount.objects.exists()
    settings.STRIPE_API_KEY = ""
    off = client.post("/api/v1/driver/payouts/stripe-onboarding")
    assert off.status_code == 503 and off.json()["error"]["code"] == "stripe_not_configured"


# --- Staff screens ----------------------------------------------------------------------------------------


@pytest.fixture
def staff_browser(client):
    client.force_login(StaffFactory())
    return client


def test_bank_accounts_are_masked_on_every_staff_page(staff_browser):
    driver = DriverFactory()
    account = bank_account(driver, number="000987654321")
    pages = [
        "/admin/dispatch/driverbankaccount/",
        f"/admin/dispatch/driverbankaccount/{account.id}/change/",
    ]
    for page in pages:
        html = staff_browser.get(page).content.decode()
        assert "****4321" in html, page
        assert "987654321" not in html, page


def test_staff_add_bank_details_checked_and_the_old_ones_retired(staff_browser):
    driver = DriverFactory()
    old = bank_account(driver)
    form = {
        "driver": str(driver.id),
        "holder_name": driver.name,
        "routing_number": "026009594",  # a digit off: the checksum fails
        "account_number": "55554444",
        "account_type": "savings",
    }
    refused = staff_browser.post("/admin/dispatch/driverbankaccount/add/", form)
    assert refused.status_code == 200 and "Not an ABA routing number" in refused.content.decode()
    assert DriverBankAccount.objects.count() == 1

    saved = staff_browser.post(
        "/admin/dispatch/driverbankaccount/add/", {**form, "routing_number": OTHER_BANK_ROUTING}
    )
    assert saved.status_code == 302, saved.content.decode()[:3000]
    new = DriverBankAccount.objects.get(is_active=True)
    assert (new.routing_number, new.account_number, new.account_type) == (
        OTHER_BANK_ROUTING,
        "55554444",
        "savings",
    )
    old.refresh_from_db()
    assert not old.is_active and old.deactivated_at is not None
    assert old.routing_number == DRIVER_BANK_ROUTING  # never edited: payouts keep the account they went to


def test_payout_amounts_are_read_only_for_staff(staff_browser, seeded_policy, this_week, payout_files):
    monday, after = this_week
    driver = driver_with_bank()
    earn(seeded_policy, driver)
    payouts_run(week_start=monday, now=after)
    payout = Payout.objects.get()

    listing = staff_browser.get("/admin/dispatch/payout/").content.decode()
    assert payout.destination in listing and "000123456789" not in listing
    page = staff_browser.get(f"/admin/dispatch/payout/{payout.id}/change/").content.decode()
    assert "000123456789" not in page
    assert not re.search(r'<input[^>]+name="amount_minor"', page)  # shown, never a field to edit

    marked = staff_browser.post(
        "/admin/dispatch/payout/", {"action": "mark_paid", "_selected_action": [str(payout.id)]}
    )
    assert marked.status_code == 302
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.paid_at is not None
