"""Card races on real PostgreSQL transactions in real threads, made deterministic by holding a row lock.

A staff refund holds the trip row (as `refund_post` does first) while Stripe's event of a capture whose
answer was lost is applied in another thread; the test waits until that thread is blocked on the lock, then
lets the refund reduce the capture and commit. The event must record the capture for what it asks after
the refund, read under its lock, and give back the difference Stripe took: not the amount from before.
"""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connections, transaction
from django.utils import timezone

from backend.cards.models import CardHold
from backend.fares.ledger import balance_minor, ledger_verify
from backend.fares.models import AccountKind, CapturePurpose, CaptureStatus, PaymentCapture
from backend.fares.payments import captures_retry_due
from dispatch.models import Trip
from dispatch.money.refunds import refund_post
from tests.cards.recording_proxy import recording_proxy
from tests.cards.test_card_payments import save_card
from tests.cards.test_card_review import kept_at_stripe
from tests.cards.test_webhooks import deliver, event
from tests.db_threads import WAIT_S, blocked_on_a_lock, poll, run_in_thread
from tests.factories import RiderFactory, StaffFactory
from tests.fares.builders import ensure_seed_policy
from tests.mobile_api.builders import drive_to_completion, requested_trip

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seeded(db):
    """What a transactional test's flush removed: the fare policy and the dispatch policy."""
    ensure_seed_policy()
    importlib.import_module("dispatch.migrations.0003_seed_dispatch_policy").seed(apps, None)


def test_a_capture_event_racing_a_refund_never_records_the_amount_from_before_it(
    seeded, localstripe, settings, celery_eager
):
    rider = RiderFactory()
    save_card(localstripe, rider)
    with recording_proxy(localstripe.url) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        trip = requested_trip(rider)
        hold = CardHold.objects.get(trip_id=trip.id)
        proxy.lose_answers(rf"^/v1/payment_intents/{hold.payment_intent_id}/capture$")
        with transaction.atomic():
            done = drive_to_completion(trip)  # the capture runs at commit: Stripe takes it, we never hear
        capture = PaymentCapture.objects.get(trip_id=done.id, purpose=CapturePurpose.FARE)
        assert capture.status == CaptureStatus.FAILED
        total = done.fare_breakdown["total"]
        succeeded = event(
            "evt_captured", "payment_intent.succeeded", localstripe.payment_intent(hold.payment_intent_id)
        )

        let_refund_go = threading.Event()
        staff = StaffFactory()

        def refund_holding_the_trip() -> object:
            with transaction.atomic():
                Trip.objects.select_for_update().get(id=done.id)  # refund_post's first lock, taken early
                assert let_refund_go.wait(WAIT_S)
                return refund_post(trip_id=done.id, amount_minor=250, reason="Detour", staff_id=staff.id)

        refund_thread, refunded = run_in_thread(refund_holding_the_trip)
        poll(lambda: Trip.objects.filter(id=done.id).exists(), "the trip")
        webhook_thread, delivered = run_in_thread(lambda: deliver(succeeded))
        poll(
            lambda: blocked_on_a_lock(delivered.pid) or delivered.done.is_set(),
            "the event to wait for the trip",
        )
        let_refund_go.set()
        for thread in (refund_thread, webhook_thread):
            thread.join(WAIT_S)
            assert not thread.is_alive()
        connections.close_all()
        assert refunded.error is None, repr(refunded.error)
        assert delivered.error is None and delivered.value[0] == 200, delivered

        captures_retry_due(now=timezone.now() + timedelta(hours=1))

    capture.refresh_from_db()
    # The refund never changes a capture whose outcome is unknown: the charge is recorded as Stripe took it
    # and the refund is paid back as its own refund.
    assert (capture.status, capture.amount_minor) == (CaptureStatus.SUCCEEDED, total)
    payback = PaymentCapture.objects.get(trip_id=done.id, purpose=CapturePurpose.REFUND)
    assert (payback.status, payback.amount_minor) == (CaptureStatus.SUCCEEDED, 250)
    # What the co-op's Stripe balance kept is what the ledger says was collected: the refund reached the
    # rider, and no payout of it is left owing.
    assert kept_at_stripe(localstripe) == total - 250
    assert balance_minor(kind=AccountKind.CASH_CLEARING, owner_id=None, currency=done.currency) == total - 250
    assert balance_minor(kind=AccountKind.RIDER_RECEIVABLE, owner_id=rider.id, currency=done.currency) == 0
    assert ledger_verify().ok, ledger_verify().problems()
