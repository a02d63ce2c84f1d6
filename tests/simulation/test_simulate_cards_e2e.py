"""A short simulation paid by card: the stack of `make run` (uvicorn, the dispatch worker, Celery with beat)
configured as run.sh configures it for ROCHDALE_PAYMENT_PROVIDER=stripe, against the localstripe the
Procfile starts (infra/bin/demo_localstripe.py) with our webhook registered. The simulated riders learn
from the server's 402 that it takes cards, save one at localstripe as an app does, and ride; every
completed trip must be paid by card, from its hold, and the ledger must verify. One rider already saved a
card that is declined when charged: each of their requests answers 402 `payment_declined`, which the
simulator counts without stopping."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from dispatch.simulation.client import DEFAULT_PASSWORD
from tests.cards.localstripe import (
    API_KEY,
    DECLINED_WHEN_CHARGED,
    PUBLISHABLE_KEY,
    WEBHOOK_SECRET,
    LocalStripe,
)
from tests.simulation.conftest import SPEEDUP, seed_service_area
from tests.simulation.test_sim_cards import _free_port, demo_localstripe

# The database is the stack's: a transactional test, so the server processes see what the test wrote.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def card_localstripe(tmp_path):
    with demo_localstripe(tmp_path / "localstripe.pickle", port=_free_port()) as stripe:
        yield stripe


@pytest.fixture
def card_stack(card_localstripe: LocalStripe, monkeypatch, request):
    """The live stack (tests/simulation/conftest.py) with the environment run.sh exports for localstripe,
    and the webhook registered at localstripe the way docs/payments.md registers it by hand."""
    environment = {
        "ROCHDALE_PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_BASE": card_localstripe.url,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # live_stack hands its processes this process's environment
    stack = request.getfixturevalue("live_stack")
    httpx.post(
        f"{card_localstripe.url}/_config/webhooks/demo",
        data={"url": f"{stack.base_url}/api/v1/payments/stripe/webhook", "secret": WEBHOOK_SECRET},
        timeout=5,
    ).raise_for_status()
    return stack


def _rider_with_a_declining_card(base_url: str, stripe: LocalStripe, phone: str) -> None:
    """The first simulated rider signs up beforehand and saves a card that attaches but is declined."""
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=20) as api:
        api.post(
            "/auth/register",
            json={"phone": phone, "password": DEFAULT_PASSWORD, "name": "Declined Rider", "role": "rider"},
        ).raise_for_status()
        token = api.post("/auth/token", json={"phone": phone, "password": DEFAULT_PASSWORD}).json()["access"]
        api.headers["Authorization"] = f"Bearer {token}"
        setup = api.post("/payment-methods/setup").json()
        stripe.confirm_setup(
            setup_intent_id=setup["setup_intent_id"],
            client_secret=setup["client_secret"],
            number=DECLINED_WHEN_CHARGED,
        ).raise_for_status()
        api.post("/payment-methods", json={"setup_intent_id": setup["setup_intent_id"]}).raise_for_status()


def _wait_for(condition, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_a_short_simulation_saves_cards_and_pays_every_completed_trip_by_card(card_stack, card_localstripe):
    from backend.accounts.models import User
    from backend.cards.models import CardHold, HoldStatus, StripeCustomer, WebhookEvent
    from backend.fares.ledger import ledger_verify
    from backend.fares.models import CapturePurpose, CaptureStatus, PaymentCapture
    from dispatch.models import Trip
    from dispatch.simulation.runner import Simulation, SimulationConfig

    config = SimulationConfig(
        base_url=card_stack.base_url,
        drivers=5,
        riders=4,
        duration_s=20.0,
        drain_s=30.0,
        speedup=SPEEDUP,
        accept_rate=1.0,
        requests_per_minute=24.0,
        opening_requests=4,  # every rider asks at once, the declined one included
        seed=5,
        city_width_m=2_000.0,
        city_height_m=3_000.0,
        token_cache=None,
        progress=False,
        stripe_api_base=card_localstripe.url,
    )
    simulation = Simulation(config)
    seed_service_area(simulation.city)
    declined_phone = f"{config.rider_phone_prefix}0000"
    _rider_with_a_declining_card(card_stack.base_url, card_localstripe, declined_phone)

    result = asyncio.run(simulation.run())
    summary = result.summary
    completed = list(Trip.objects.filter(status="completed"))
    assert completed, card_stack.logs()

    # The declined rider's requests were refused and counted, one per authorisation localstripe declined
    # (the refused request kept no hold row and no trip).
    declined_rider = User.objects.get(phone=declined_phone)
    with card_localstripe.api() as stripe_api:
        intents = stripe_api.get("/v1/payment_intents", params={"limit": 100}).json()["data"]
    declined = [i for i in intents if i["metadata"].get("rochdale_rider") == str(declined_rider.id)]
    assert declined
    assert {intent["status"] for intent in declined}.isdisjoint({"requires_capture", "succeeded"})
    assert summary.payment_refusals == {"payment_declined": len(declined)}
    assert len(summary.riders_refused_payment) == 1
    assert not Trip.objects.filter(rider=declined_rider).exists()

    # Every other rider who asked for a trip was told to save a card first (402), saved one at localstripe
    # through the app's steps, and was never refused afterwards.
    riders = set(Trip.objects.values_list("rider_id", flat=True))
    assert summary.cards_saved == len(riders) >= 1
    assert result.metrics.counters["http.402"] == len(riders) + len(declined)
    cards = StripeCustomer.objects.filter(rider_id__in=riders).exclude(default_payment_method_id="")
    assert cards.count() == len(riders)
    steps = {s.step: s for s in result.metrics.summaries()}
    for step in ("card_setup", "card_confirm", "card_save"):
        assert (steps[step].count, steps[step].errors) == (len(riders), 0), step

    def fares_collected() -> bool:
        return PaymentCapture.objects.filter(
            trip__in=completed, purpose=CapturePurpose.FARE, status=CaptureStatus.SUCCEEDED
        ).count() == len(completed)

    _wait_for(fares_collected, timeout_s=60, what=f"every completed fare captured\n{card_stack.logs()}")
    for trip in completed:
        fare = PaymentCapture.objects.get(trip=trip, purpose=CapturePurpose.FARE)
        assert fare.provider == "stripe"
        hold = CardHold.objects.get(trip=trip)
        assert hold.status == HoldStatus.CAPTURED
        assert hold.captured_minor + hold.over_authorization_minor == fare.amount_minor
        # The money moved at (local)Stripe: the hold's intent kept what the ledger says was captured.
        assert card_localstripe.captured_minor(hold.payment_intent_id) == hold.captured_minor
    tips = PaymentCapture.objects.filter(purpose=CapturePurpose.TIP)
    _wait_for(
        lambda: not tips.exclude(status=CaptureStatus.SUCCEEDED).exists(), timeout_s=30, what="tips captured"
    )
    assert set(tips.values_list("provider", flat=True)) <= {"stripe"}
    assert not PaymentCapture.objects.filter(status=CaptureStatus.FAILED).exists()

    # localstripe told our webhook about the captures; applying them changed nothing twice.
    _wait_for(
        lambda: WebhookEvent.objects.filter(type="payment_intent.succeeded").exists(),
        timeout_s=20,
        what="a payment_intent.succeeded delivered to the webhook",
    )
    verification = ledger_verify()
    assert verification.ok, verification.problems()
