"""One whole ride paid by card, through real processes: uvicorn, the dispatch worker and a Celery worker,
with the real Stripe SDK against a private localstripe that also delivers its own signed webhooks.

The rider saves a card as an app does (a SetupIntent confirmed at Stripe), requests a New York trip (the
congestion surcharge, the Black Car Fund and sales tax apply), the driver takes and drives it over the
websocket, completion captures the exact total from the hold, the rider tips, staff refund part of it, and
the weekly payout pays the driver. Then the ledger, the receipt and the driver's statement must agree to the
cent."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.apps import apps
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.test import override_settings
from rest_framework_simplejwt.tokens import RefreshToken

from backend.cards.models import CardHold, HoldStatus, WebhookEvent
from backend.fares.ledger import balance_minor, ledger_verify
from backend.fares.models import (
    AccountKind,
    CapturePurpose,
    CaptureStatus,
    JournalEntry,
    PaymentCapture,
    Posting,
)
from backend.fares.services import policy_version_create
from dispatch.models import Payout, ServiceArea, Trip
from dispatch.money.payouts import payouts_reconcile, payouts_run, week_cut_off
from dispatch.money.weekly import week_start_of
from tests.cards.localstripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, LocalStripe
from tests.conftest import auth_client_for
from tests.e2e.test_dispatch_processes import _ride, _wait_for_worker, dispatch_worker_process
from tests.factories import DriverFactory, RiderFactory, StaffFactory, square_service_area
from tests.faults.procs import celery_worker, wait_until
from tests.live_server import start_asgi_server
from tests.payouts.builders import bank_account
from tests.payouts.conftest import ACH_SETTINGS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_YORK_POLICY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fare-policy-new-york.json"
CONGESTION_ZONE = "Manhattan south of 96th St"
TIP_MINOR = 300
REFUND_MINOR = 250


def _new_york() -> None:
    """The seeds a transactional test's flush removed, the service area, the congestion zone, NY's policy."""
    importlib.import_module("backend.fares.migrations.0002_seed_default_policy").seed_default_policy(
        apps, None
    )
    importlib.import_module("dispatch.migrations.0003_seed_dispatch_policy").seed(apps, None)
    square_service_area()
    ring = [(-74.03, 40.70), (-73.93, 40.70), (-73.93, 40.80), (-74.03, 40.80), (-74.03, 40.70)]
    ServiceArea.objects.create(
        name=CONGESTION_ZONE, area=MultiPolygon(Polygon(ring, srid=4326), srid=4326), is_active=False
    )
    policy_version_create(
        document=json.loads(NEW_YORK_POLICY.read_text()), effective_at=None, source="founding"
    )


def _token(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def _capture(trip_id, purpose: str) -> PaymentCapture | None:
    return PaymentCapture.objects.filter(trip_id=trip_id, purpose=purpose).first()


def _succeeded(trip_id, purpose: str) -> PaymentCapture | None:
    capture = _capture(trip_id, purpose)
    return capture if capture is not None and capture.status == CaptureStatus.SUCCEEDED else None


def test_a_card_ride_from_request_to_payout_agrees_to_the_cent(localstripe: LocalStripe, tmp_path):
    localstripe_process = localstripe  # this process's settings point at it too (receipts read the card)
    _new_york()
    rider, driver, staff = RiderFactory(), DriverFactory(), StaffFactory()
    stripe_env = {
        "ROCHDALE_PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": localstripe_process.url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
    }
    with (
        start_asgi_server(extra_env=stripe_env) as server,
        dispatch_worker_process() as (dispatch, dispatch_log),
        celery_worker(extra_env=stripe_env),
    ):
        _wait_for_worker(dispatch, dispatch_log)
        localstripe_process.register_webhook(f"{server.url}/api/v1/payments/stripe/webhook")
        with httpx.Client(base_url=server.url, timeout=15) as http:
            setup = http.post("/api/v1/payment-methods/setup", headers=_token(rider)).json()
            localstripe_process.confirm_setup(
                setup_intent_id=setup["setup_intent_id"], client_secret=setup["client_secret"]
            ).raise_for_status()
            saved = http.post(
                "/api/v1/payment-methods",
                json={"setup_intent_id": setup["setup_intent_id"]},
                headers=_token(rider),
            )
            assert saved.status_code == 201, saved.text

            token = lambda user: _token(user)["Authorization"].removeprefix("Bearer ")  # noqa: E731
            ride = asyncio.run(
                _ride(server.url, f"ws://127.0.0.1:{server.port}", token(rider), token(driver))
            )
            trip_id = ride["id"]

            # Authorisation at request: the quoted total plus the board's margin, held, not taken.
            hold = CardHold.objects.get(trip_id=trip_id)
            assert hold.amount_minor > 0 and hold.payment_intent_id
            fare = wait_until(
                lambda: _succeeded(trip_id, CapturePurpose.FARE), timeout_s=30, what="the fare's capture"
            )
            trip = Trip.objects.get(id=trip_id)
            total = trip.fare_breakdown["total"]
            fees = {line["code"]: line["amount"] for line in trip.fare_breakdown["fees"]}
            assert set(fees) == {"nys_congestion", "black_car_fund", "sales_tax"}, fees
            assert fare.amount_minor == total == trip.fare_minor + sum(fees.values())
            assert localstripe_process.captured_minor(hold.payment_intent_id) == total
            assert CardHold.objects.get(id=hold.id).status == HoldStatus.CAPTURED

            tipped = http.post(
                f"/api/v1/trips/{trip_id}/tip",
                json={"amount": {"amount": TIP_MINOR, "currency": trip.currency}},
                headers={**_token(rider), "Idempotency-Key": "tip-1"},
            )
            assert tipped.status_code == 201, tipped.text
            tip = wait_until(lambda: _succeeded(trip_id, CapturePurpose.TIP), timeout_s=30, what="the tip")
            assert localstripe_process.captured_minor(tip.provider_reference) == TIP_MINOR

            refunded = http.post(
                f"/api/v1/staff/trips/{trip_id}/refunds",
                json={"amount": {"amount": REFUND_MINOR, "currency": trip.currency}, "reason": "Detour"},
                headers={**_token(staff), "Idempotency-Key": "refund-1"},
            )
            assert refunded.status_code == 201, refunded.text
            payback = wait_until(
                lambda: _succeeded(trip_id, CapturePurpose.REFUND), timeout_s=30, what="the refund"
            )
            assert localstripe_process.captured_minor(hold.payment_intent_id) == total - REFUND_MINOR
            assert payback.provider_reference.startswith("re_")

            # localstripe's own signed deliveries reached the endpoint and changed nothing twice.
            wait_until(
                lambda: (
                    WebhookEvent.objects.filter(
                        type="payment_intent.succeeded", processed_at__isnull=False
                    ).count()
                    >= 2
                ),
                timeout_s=30,
                what="localstripe's webhooks",
            )
    assert JournalEntry.objects.filter(key=fare.key).count() == 1

    # Monday's payout run, as the beat job makes it once the week is over.
    bank_account(driver)
    week = week_start_of(trip.completed_at)
    with override_settings(ROCHDALE_ACH=ACH_SETTINGS, ROCHDALE_PAYOUT_FILES_DIR=tmp_path):
        payouts_run(week_start=week, now=week_cut_off(week) + timedelta(hours=1))
    payout = Payout.objects.get(driver_id=driver.id, week_start=week)
    assert (payout.amount_minor, payout.payable_minor, payout.tips_minor) == (
        trip.driver_pay_minor + TIP_MINOR,
        trip.driver_pay_minor,
        TIP_MINOR,
    )
    assert balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency=trip.currency) == 0
    assert balance_minor(kind=AccountKind.TIPS_HELD, owner_id=driver.id, currency=trip.currency) == 0
    assert payouts_reconcile(week_start=week).ok

    # The fare entry credits each fee to its own account; the driver's pay is the fare's, fees aside.
    fare_entry = JournalEntry.objects.get(key=f"trip:{trip_id}:fare")
    fee_credits = {
        posting.account.code: posting.credit_minor
        for posting in fare_entry.postings.select_related("account")
        if posting.account.kind == AccountKind.PASS_THROUGH
    }
    assert fee_credits == fees
    assert trip.driver_pay_minor == trip.fare_breakdown["share"] or trip.fare_breakdown["floor_applied"]
    charged = Posting.objects.filter(
        entry__trip_id=trip_id,
        entry__kind__in=["trip_fare", "tip"],
        account__kind=AccountKind.RIDER_RECEIVABLE,
    ).values_list("debit_minor", flat=True)
    assert sum(charged) == total + TIP_MINOR
    report = ledger_verify()
    assert report.ok, report.problems()

    # The rider's receipt, built from the ledger, agrees with it and with what Stripe took.
    receipt = auth_client_for(rider).get(f"/api/v1/trips/{trip_id}/receipt").json()
    amount = lambda money: money["amount"]  # noqa: E731
    assert amount(receipt["fare"]["total"]) == trip.fare_minor
    assert {fee["code"]: amount(fee["amount"]) for fee in receipt["fees"]} == fees
    assert [amount(tip["amount"]) for tip in receipt["tips"]] == [TIP_MINOR]
    assert [amount(refund["amount"]) for refund in receipt["refunds"]] == [REFUND_MINOR]
    assert amount(receipt["charged"]) == total + TIP_MINOR
    assert amount(receipt["refunded"]) == REFUND_MINOR
    taken_by_stripe = localstripe_process.captured_minor(
        hold.payment_intent_id
    ) + localstripe_process.captured_minor(tip.provider_reference)
    assert amount(receipt["total"]) == total + TIP_MINOR - REFUND_MINOR == taken_by_stripe
    assert receipt["payment"] == {
        "provider": "stripe",
        "status": "succeeded",
        "card": {"brand": "visa", "last4": "4242"},
    }
    pdf = auth_client_for(rider).get(f"/api/v1/trips/{trip_id}/receipt", HTTP_ACCEPT="application/pdf")
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")

    # The driver's statement for the year: the same fare, commission, tip, fees and payout.
    statement = auth_client_for(driver).get(f"/api/v1/driver/statements/{trip.completed_at.year}").json()
    assert amount(statement["gross_fares"]) == trip.fare_minor
    assert amount(statement["commission"]) == trip.commission_minor
    assert amount(statement["pay"]) == trip.driver_pay_minor
    assert amount(statement["tips"]) == TIP_MINOR
    assert amount(statement["fees_passed_through"]) == sum(fees.values())
    assert amount(statement["payouts"]) == payout.amount_minor
    assert amount(statement["net_earnings"]) == payout.amount_minor
