"""Every call to Stripe carries an idempotency key derived from what it is for, and a retry after a lost
answer repeats it: shown on the wire, through a recording proxy in front of localstripe."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.cards.models import CardHold
from backend.fares.models import CapturePurpose, CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import captures_retry_due
from dispatch.services.trips import trip_tip
from tests.cards.recording_proxy import recording_proxy
from tests.cards.test_card_payments import save_card
from tests.factories import RiderFactory
from tests.fares.builders import assert_ledger_consistent
from tests.mobile_api.builders import drive_to_completion, requested_trip

pytestmark = pytest.mark.django_db


@pytest.fixture
def proxy(localstripe, settings):
    with recording_proxy(localstripe.url) as recording:
        settings.STRIPE_API_BASE = recording.url
        yield recording


def test_a_capture_whose_answer_was_lost_is_retried_under_its_key_and_taken_once(
    proxy, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    rider = RiderFactory()
    save_card(localstripe, rider)
    trip = requested_trip(rider)
    hold = CardHold.objects.get(trip_id=trip.id)
    proxy.lose_answers(rf"^/v1/payment_intents/{hold.payment_intent_id}/capture$")
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(trip)
    capture = PaymentCapture.objects.get(trip_id=done.id, purpose=CapturePurpose.FARE)
    assert capture.status == CaptureStatus.FAILED  # no answer: unknown, so not a refusal
    assert capture.provider_refusals == 0

    captures_retry_due(now=timezone.now() + timedelta(hours=1))
    capture.refresh_from_db()
    assert capture.status == CaptureStatus.SUCCEEDED, capture.last_error
    assert localstripe.captured_minor(hold.payment_intent_id) == capture.amount_minor
    capture_posts = proxy.posts(r"/capture$")
    # The retry found the intent captured and did not capture again; had it, the key would be the same.
    assert [(p.idempotency_key, p.answered) for p in capture_posts] == [
        (f"{capture.idempotency_key}:hold", False)
    ]
    assert JournalEntry.objects.filter(key=capture.key).count() == 1
    assert_ledger_consistent()


def test_every_post_to_stripe_carries_a_key_and_a_retried_charge_repeats_it(
    proxy, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    rider = RiderFactory()
    save_card(localstripe, rider)
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(requested_trip(rider))
    proxy.lose_answers(r"^/v1/payment_intents$")
    with django_capture_on_commit_callbacks(execute=True):
        tip = trip_tip(trip_id=done.id, rider_id=rider.id, amount_minor=200, currency=done.currency)
    tip_capture = PaymentCapture.objects.get(key=f"capture:tip:{tip.id}")
    assert tip_capture.status == CaptureStatus.FAILED
    captures_retry_due(now=timezone.now() + timedelta(hours=1))
    tip_capture.refresh_from_db()
    assert tip_capture.status == CaptureStatus.SUCCEEDED

    backend_posts = [
        p for p in proxy.posts() if not p.path.endswith("/confirm") and p.path != "/v1/payment_methods"
    ]
    assert backend_posts and all(p.idempotency_key for p in backend_posts), backend_posts
    tip_charges = [
        p for p in proxy.posts(r"^/v1/payment_intents$") if p.idempotency_key == tip_capture.idempotency_key
    ]
    assert [p.answered for p in tip_charges] == [False, True]
    assert len({p.idempotency_key for p in proxy.posts(r"^/v1/customers$")}) == 1
