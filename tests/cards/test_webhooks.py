"""Stripe's webhook over real HTTP into the endpoint: signatures checked, each event applied once, in any
order and however often it is delivered."""

from __future__ import annotations

import itertools
import time

import pytest
from rest_framework.test import APIClient

from backend.cards.models import CardHold, WebhookEvent
from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind, CapturePurpose, CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import captures_retry_due
from dispatch.money.refunds import refund_post
from tests.cards.localstripe import LocalStripe, signed_event
from tests.cards.test_card_payments import save_card
from tests.factories import RiderFactory, StaffFactory
from tests.fares.builders import assert_ledger_consistent
from tests.mobile_api.builders import drive_to_completion, requested_trip

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/payments/stripe/webhook"


def deliver(event: dict, **signing) -> tuple[int, dict]:
    body, signature = signed_event(event, **signing)
    response = APIClient().post(
        WEBHOOK, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    return response.status_code, response.json()


def fare_capture_amount(trip) -> int:
    return PaymentCapture.objects.get(key=f"capture:{trip.id}").amount_minor


def event(event_id: str, kind: str, obj: dict) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def test_a_body_the_secret_did_not_sign_or_a_stale_one_is_refused(localstripe, settings):
    ping = event("evt_ping", "customer.created", {"id": "cus_x", "object": "customer"})
    status, body = deliver(ping, secret="whsec_someone_else")
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    status, body = deliver(ping, at=int(time.time()) - 3600)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    assert not WebhookEvent.objects.exists()
    status, body = deliver(ping)
    assert (status, body) == (200, {"event_id": "evt_ping", "processed": True})
    settings.STRIPE_WEBHOOK_SECRET = ""
    status, body = deliver(ping)
    assert (status, body["error"]["code"]) == (503, "webhooks_not_configured")
    settings.ROCHDALE_PAYMENT_PROVIDER = "test"
    status, body = deliver(ping)
    assert (status, body["error"]["code"]) == (404, "cards_not_accepted")
    assert WebhookEvent.objects.get().outcome.startswith("ignored")


def test_replayed_and_reordered_events_change_nothing_twice(
    localstripe: LocalStripe, django_capture_on_commit_callbacks, celery_eager
):
    rider = RiderFactory()
    save_card(localstripe, rider)
    with django_capture_on_commit_callbacks(execute=True):
        paid = drive_to_completion(requested_trip(rider))
    with django_capture_on_commit_callbacks(execute=True):
        refund_post(trip_id=paid.id, amount_minor=150, reason="Wrong turn", staff_id=StaffFactory().id)
    our_refund = PaymentCapture.objects.get(trip_id=paid.id, purpose=CapturePurpose.REFUND)
    paid_intent = CardHold.objects.get(trip_id=paid.id).payment_intent_id

    # A second trip whose capture went through at Stripe while our worker died before hearing back: the
    # fare's capture is still pending here, and Stripe's event is how we learn it was taken.
    other_rider = RiderFactory()
    save_card(localstripe, other_rider)
    lost = drive_to_completion(requested_trip(other_rider))  # on-commit work not run: nobody attempted it
    lost_capture = PaymentCapture.objects.get(trip_id=lost.id, purpose=CapturePurpose.FARE)
    lost_intent = CardHold.objects.get(trip_id=lost.id).payment_intent_id
    with localstripe.api() as stripe_api:
        stripe_api.post(
            f"/v1/payment_intents/{lost_intent}/capture",
            data={"amount_to_capture": lost_capture.amount_minor},
        ).raise_for_status()

    succeeded = event(
        "evt_succeeded",
        "payment_intent.succeeded",
        {**localstripe.payment_intent(lost_intent), "metadata": {"rochdale_hold": "not-a-uuid"}},
    )
    refunded = event(
        "evt_refunded",
        "charge.refunded",
        {
            "id": "ch_paid",
            "object": "charge",
            "payment_intent": paid_intent,
            "currency": "usd",
            "refunds": {
                "data": [
                    {"id": "re_dashboard", "amount": 200, "status": "succeeded", "metadata": {}},
                    {
                        "id": our_refund.provider_reference,
                        "amount": 150,
                        "status": "succeeded",
                        "metadata": {"rochdale_capture": str(our_refund.id)},
                    },
                ]
            },
        },
    )
    disputed = event(
        "evt_disputed",
        "charge.dispute.created",
        {
            "id": "dp_paid",
            "object": "dispute",
            "amount": 500,
            "currency": "usd",
            "charge": "ch_paid",
            "payment_intent": paid_intent,
            "reason": "fraudulent",
        },
    )
    # Every event twice, in an order that is neither Stripe's nor its reverse.
    for delivery in itertools.chain([disputed, succeeded, refunded], [refunded, disputed, succeeded]):
        status, _ = deliver(delivery)
        assert status == 200
    captures_retry_due()  # the sweep comes round too: nothing left to attempt

    assert {e.event_id: e.deliveries for e in WebhookEvent.objects.all()} == {
        "evt_succeeded": 2,
        "evt_refunded": 2,
        "evt_disputed": 2,
    }
    lost_capture.refresh_from_db()
    assert lost_capture.status == CaptureStatus.SUCCEEDED
    assert lost_capture.provider_reference == lost_intent
    assert JournalEntry.objects.filter(key=lost_capture.key).count() == 1
    assert JournalEntry.objects.filter(key="refund:stripe:re_dashboard").count() == 1
    assert JournalEntry.objects.filter(key="dispute:dp_paid").count() == 1
    assert JournalEntry.objects.filter(kind="refund", trip_id=paid.id).count() == 2
    assert balance_minor(kind=AccountKind.REFUNDS, owner_id=None, currency="USD") == 150 + 200
    assert balance_minor(kind=AccountKind.CHARGEBACKS, owner_id=None, currency="USD") == 500
    collected = fare_capture_amount(paid) + lost_capture.amount_minor
    assert balance_minor(kind=AccountKind.CASH_CLEARING, owner_id=None, currency="USD") == (
        collected - 150 - 200 - 500
    )
    assert_ledger_consistent()
