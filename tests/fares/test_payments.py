"""Payment capture: recorded with the entry, attempted after commit, retried with backoff, shown to staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.errors import PermissionDenied, Unprocessable
from backend.fares import ledger
from backend.fares.models import AccountKind, CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import (
    LEASE_MARGIN_S,
    CashProvider,
    PaymentRequest,
    TestModeProvider,
    capture_attempt,
    captures_retry_due,
    payment_provider,
    processing_lease,
)
from dispatch.money.refunds import refund_post
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import (
    adopt_policy,
    assert_ledger_consistent,
    complete_trip,
    in_progress_trip,
    tip_trip,
)


@pytest.fixture
def finished_trip(seeded_policy):
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    return complete_trip(trip, distance_m=5000, duration_s=900)


def _receivable(rider_id) -> int:
    return ledger.balance_minor(kind=AccountKind.RIDER_RECEIVABLE, owner_id=rider_id, currency="USD")


def test_completion_records_a_pending_capture_and_enqueues_it_after_commit(
    seeded_policy, django_capture_on_commit_callbacks
):
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = complete_trip(trip, distance_m=5000, duration_s=900)
    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    assert (capture.status, capture.amount_minor, capture.attempts) == (
        CaptureStatus.PENDING,
        done.fare_minor,
        0,
    )
    assert capture.provider == "test"
    assert any(getattr(cb, "__qualname__", "").startswith("capture_create") for cb in callbacks)
    assert _receivable(trip.rider_id) == done.fare_minor


def test_capture_task_runs_after_commit(seeded_policy, django_capture_on_commit_callbacks, celery_eager):
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    with django_capture_on_commit_callbacks(execute=True):
        complete_trip(trip, distance_m=5000, duration_s=900)
    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    assert capture.status == CaptureStatus.SUCCEEDED
    entry = JournalEntry.objects.get(key=f"capture:{trip.id}")
    assert entry.kind == "payment_capture"
    assert _receivable(trip.rider_id) == 0
    assert (
        ledger.balance_minor(kind=AccountKind.CASH_CLEARING, owner_id=None, currency="USD")
        == capture.amount_minor
    )


def test_a_failed_capture_is_retried_with_backoff_until_it_succeeds(finished_trip):
    TestModeProvider.fail_for(rider_id=finished_trip.rider_id, amount_minor=finished_trip.fare_minor, times=2)
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    now = timezone.now()

    first = capture_attempt(capture_id=capture.id, now=now)
    assert (first.status, first.attempts) == (CaptureStatus.FAILED, 1)
    assert "declined" in first.last_error
    assert first.next_attempt_at == now + timedelta(seconds=30)
    assert not JournalEntry.objects.filter(key=f"capture:{finished_trip.id}").exists()
    # Not due yet: the sweep leaves it alone.
    assert captures_retry_due(now=now + timedelta(seconds=10)) == 0

    assert captures_retry_due(now=now + timedelta(seconds=31)) == 1
    second = PaymentCapture.objects.get(id=capture.id)
    assert (second.status, second.attempts) == (CaptureStatus.FAILED, 2)
    assert second.next_attempt_at == now + timedelta(seconds=31) + timedelta(seconds=60)

    assert captures_retry_due(now=now + timedelta(seconds=100)) == 1
    third = PaymentCapture.objects.get(id=capture.id)
    assert (third.status, third.attempts, third.last_error) == (CaptureStatus.SUCCEEDED, 3, "")
    assert _receivable(finished_trip.rider_id) == 0
    # A success is final: more sweeps and attempts change nothing.
    assert captures_retry_due(now=now + timedelta(days=1)) == 0
    assert capture_attempt(capture_id=capture.id).attempts == 3
    assert JournalEntry.objects.filter(key=f"capture:{finished_trip.id}").count() == 1
    assert_ledger_consistent()


def test_gives_up_after_max_attempts_and_staff_see_it(finished_trip, settings):
    settings.ROCHDALE_PAYMENT_MAX_ATTEMPTS = 2
    TestModeProvider.fail_for(rider_id=finished_trip.rider_id)
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    now = timezone.now()
    capture_attempt(capture_id=capture.id, now=now)
    captures_retry_due(now=now + timedelta(minutes=5))
    given_up = PaymentCapture.objects.get(id=capture.id)
    assert (given_up.status, given_up.attempts, given_up.next_attempt_at) == (CaptureStatus.FAILED, 2, None)
    assert captures_retry_due(now=now + timedelta(days=1)) == 0

    staff = auth_client_for(StaffFactory())
    body = staff.get("/api/v1/staff/payments/failed").json()
    assert body["next"] is None
    [row] = body["results"]
    assert row["id"] == str(capture.id)
    assert row["trip_id"] == str(finished_trip.id)
    assert row["amount"] == {"amount": finished_trip.fare_minor, "currency": "USD"}
    assert (row["attempts"], row["will_retry"], row["status"]) == (2, False, "failed")

    rider_view = auth_client_for(RiderFactory()).get("/api/v1/staff/payments/failed")
    assert rider_view.status_code == 403
    assert rider_view.json()["error"]["code"] == "permission_denied"


def test_a_provider_that_raises_is_a_failed_attempt(finished_trip, monkeypatch):
    def broken(self, request):
        raise ConnectionError("provider unreachable")

    monkeypatch.setattr(TestModeProvider, "capture", broken)
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    failed = capture_attempt(capture_id=capture.id)
    assert failed.status == CaptureStatus.FAILED and "unreachable" in failed.last_error
    assert failed.next_attempt_at is not None


def test_cash_provider_always_collects(seeded_policy, settings):
    settings.ROCHDALE_PAYMENT_PROVIDER = "cash"
    assert isinstance(payment_provider(), CashProvider)
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    complete_trip(trip, distance_m=5000, duration_s=900)
    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    assert capture.provider == "cash"
    assert capture_attempt(capture_id=capture.id).status == CaptureStatus.SUCCEEDED
    with pytest.raises(LookupError):
        payment_provider("nonexistent")


def test_tips_are_captured_too(finished_trip):
    tip = tip_trip(finished_trip, 300)
    capture = PaymentCapture.objects.get(key=f"capture:tip:{tip.id}")
    assert capture_attempt(capture_id=capture.id).status == CaptureStatus.SUCCEEDED
    assert (
        ledger.balance_minor(kind=AccountKind.TIPS_HELD, owner_id=finished_trip.driver_id, currency="USD")
        == 300
    )


# --- Refunds -----------------------------------------------------------------------------------------------


def test_refund_before_capture_reduces_what_is_collected(finished_trip):
    staff = StaffFactory()
    entry = refund_post(trip_id=finished_trip.id, amount_minor=200, reason="detour", staff_id=staff.id)
    assert entry.kind == "refund" and entry.key == f"refund:{finished_trip.id}:1"
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    assert capture.amount_minor == finished_trip.fare_minor - 200
    capture_attempt(capture_id=capture.id)
    assert _receivable(finished_trip.rider_id) == 0
    # The driver keeps the pay; the co-op bears the refund.
    assert ledger.balance_minor(kind=AccountKind.REFUNDS, owner_id=None, currency="USD") == 200
    assert (
        ledger.balance_minor(
            kind=AccountKind.DRIVER_PAYABLE, owner_id=finished_trip.driver_id, currency="USD"
        )
        == finished_trip.driver_pay_minor
    )
    assert_ledger_consistent()


def test_refund_after_capture_pays_back_through_the_provider(finished_trip):
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    capture_attempt(capture_id=capture.id)
    staff = StaffFactory()
    entry = refund_post(
        trip_id=finished_trip.id,
        amount_minor=finished_trip.fare_minor,
        reason="no-show",
        staff_id=staff.id,
        idempotency_key="ticket-42",
    )
    again = refund_post(
        trip_id=finished_trip.id,
        amount_minor=finished_trip.fare_minor,
        reason="no-show",
        staff_id=staff.id,
        idempotency_key="ticket-42",
    )
    assert again.id == entry.id
    payout = PaymentCapture.objects.get(key=f"refund-payout:{entry.id}")
    assert payout.purpose == "refund"
    assert _receivable(finished_trip.rider_id) == -finished_trip.fare_minor  # owed back to the rider
    assert capture_attempt(capture_id=payout.id).status == CaptureStatus.SUCCEEDED
    assert _receivable(finished_trip.rider_id) == 0
    assert ledger.balance_minor(kind=AccountKind.CASH_CLEARING, owner_id=None, currency="USD") == 0
    assert_ledger_consistent()


def test_refunds_are_bounded_and_staff_only(finished_trip):
    staff = StaffFactory()
    with pytest.raises(Unprocessable) as too_much:
        refund_post(
            trip_id=finished_trip.id, amount_minor=finished_trip.fare_minor + 1, reason="x", staff_id=staff.id
        )
    assert too_much.value.details["refundable"] == finished_trip.fare_minor
    refund_post(
        trip_id=finished_trip.id, amount_minor=finished_trip.fare_minor - 1, reason="x", staff_id=staff.id
    )
    with pytest.raises(Unprocessable):
        refund_post(trip_id=finished_trip.id, amount_minor=2, reason="x", staff_id=staff.id)
    with pytest.raises(PermissionDenied):
        refund_post(trip_id=finished_trip.id, amount_minor=1, reason="x", staff_id=finished_trip.rider_id)
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    assert capture.amount_minor == 1
    refund_post(trip_id=finished_trip.id, amount_minor=1, reason="all of it", staff_id=staff.id)
    capture.refresh_from_db()
    assert (capture.status, capture.amount_minor) == (CaptureStatus.VOIDED, 0)
    assert _receivable(finished_trip.rider_id) == 0


def test_admin_shows_money_read_only(finished_trip, client):
    staff = StaffFactory()
    client.force_login(staff)
    entry = JournalEntry.objects.get(key=f"trip:{finished_trip.id}:fare")
    for path in (
        "/admin/fares/farepolicyversion/",
        "/admin/fares/farepolicyversion/1/change/",
        "/admin/fares/journalentry/",
        f"/admin/fares/journalentry/{entry.id}/change/",
        "/admin/fares/ledgeraccount/",
        "/admin/fares/paymentcapture/?status__exact=pending",
    ):
        assert client.get(path).status_code == 200, path
    assert client.get("/admin/fares/farepolicyversion/add/").status_code == 403
    assert client.get("/admin/fares/journalentry/add/").status_code == 403
    page = client.get("/admin/fares/paymentcapture/?status__exact=pending").content.decode()
    assert f"capture:{finished_trip.id}" in page


# --- Provider-side idempotency and prompt retries -----------------------------------------------------------


def _request_for(capture: PaymentCapture, *, timeout_s: float = 5.0) -> PaymentRequest:
    """The request an attempt at `capture` sends now (what a worker that then died would have sent)."""
    return PaymentRequest(
        reference=str(capture.id),
        idempotency_key=capture.idempotency_key,
        purpose=capture.purpose,
        rider_id=capture.rider_id,
        amount_minor=capture.amount_minor,
        currency=capture.currency,
        attempt=capture.attempts,
        timeout_s=timeout_s,
    )


def test_the_test_provider_answers_a_repeated_key_without_charging_again(finished_trip):
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    provider = TestModeProvider()
    first = provider.capture(_request_for(capture))
    again = provider.capture(_request_for(capture))
    assert first.ok and again == first
    history = TestModeProvider.history(reference=capture.id)
    assert history.calls == 2
    assert history.idempotency_keys == {capture.idempotency_key}
    [charge] = history.charges
    assert (charge.amount_minor, charge.kind, charge.charge_id) == (
        finished_trip.fare_minor,
        "capture",
        first.provider_reference,
    )


def test_the_key_names_the_charge_and_changes_with_its_amount_and_after_a_refusal(finished_trip):
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    first_key = capture.idempotency_key
    assert str(capture.id) in first_key and "fare" in first_key and str(capture.amount_minor) in first_key
    tip_capture = PaymentCapture.objects.get(key=f"capture:tip:{tip_trip(finished_trip, 100).id}")
    assert tip_capture.idempotency_key != first_key

    # A refund before the capture lowers the amount: a different charge, a different key.
    refund_post(trip_id=finished_trip.id, amount_minor=50, reason="detour", staff_id=StaffFactory().id)
    capture.refresh_from_db()
    reduced_key = capture.idempotency_key
    assert reduced_key != first_key

    # The provider refuses it: the next attempt is a new charge, with a new key.
    TestModeProvider.fail_for(rider_id=finished_trip.rider_id, times=1)
    now = timezone.now()
    refused = capture_attempt(capture_id=capture.id, now=now)
    assert (refused.status, refused.provider_refusals) == (CaptureStatus.FAILED, 1)
    assert refused.idempotency_key != reduced_key
    captures_retry_due(now=now + timedelta(minutes=5))
    done = PaymentCapture.objects.get(id=capture.id)
    assert done.status == CaptureStatus.SUCCEEDED
    history = TestModeProvider.history(reference=capture.id)
    assert history.idempotency_keys == {reduced_key, refused.idempotency_key}
    assert [c.amount_minor for c in history.charges] == [finished_trip.fare_minor - 50]
    assert_ledger_consistent()


def test_a_capture_whose_worker_died_after_charging_is_retried_with_its_key_and_charged_once(finished_trip):
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    claimed_at = timezone.now()
    # The dead worker: it claimed the capture and its call reached the provider, then nothing came back.
    PaymentCapture.objects.filter(id=capture.id).update(
        status=CaptureStatus.PROCESSING, attempts=1, last_attempt_at=claimed_at
    )
    capture.refresh_from_db()
    assert TestModeProvider().capture(_request_for(capture)).ok

    lease = processing_lease()
    assert captures_retry_due(now=claimed_at + lease - timedelta(seconds=1)) == 0  # it may still be alive
    assert captures_retry_due(now=claimed_at + lease + timedelta(seconds=1)) == 1
    retried = PaymentCapture.objects.get(id=capture.id)
    assert (retried.status, retried.attempts) == (CaptureStatus.SUCCEEDED, 2)
    history = TestModeProvider.history(reference=capture.id)
    assert history.calls == 2 and history.idempotency_keys == {capture.idempotency_key}
    assert len(history.charges) == 1
    assert retried.provider_reference == history.charges[0].charge_id
    assert JournalEntry.objects.filter(key=capture.key).count() == 1
    assert_ledger_consistent()


def test_a_call_held_past_its_timeout_is_retried_with_the_same_key(finished_trip, settings):
    settings.ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S = 0.3
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    TestModeProvider.hold_for(rider_id=finished_trip.rider_id)
    now = timezone.now()
    timed_out = capture_attempt(capture_id=capture.id, now=now)
    assert timed_out.status == CaptureStatus.FAILED and "TimeoutError" in timed_out.last_error
    assert timed_out.provider_refusals == 0  # no answer is not a refusal: the key stays
    assert not TestModeProvider.is_holding(reference=capture.id)

    TestModeProvider.release(rider_id=finished_trip.rider_id)
    captures_retry_due(now=now + timedelta(minutes=1))
    done = PaymentCapture.objects.get(id=capture.id)
    assert done.status == CaptureStatus.SUCCEEDED
    history = TestModeProvider.history(reference=capture.id)
    assert history.idempotency_keys == {capture.idempotency_key} and len(history.charges) == 1
    assert_ledger_consistent()


def test_a_success_answered_twice_is_posted_once(finished_trip):
    """An attempt reclaimed after its lease gets the provider's stored answer for the same key: recording
    that success again posts nothing more and charges nothing more."""
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    now = timezone.now()
    assert capture_attempt(capture_id=capture.id, now=now).status == CaptureStatus.SUCCEEDED
    PaymentCapture.objects.filter(id=capture.id).update(status=CaptureStatus.PROCESSING)  # the reclaim
    again = capture_attempt(capture_id=capture.id, now=now + processing_lease() + timedelta(seconds=1))
    assert again.status == CaptureStatus.SUCCEEDED
    assert JournalEntry.objects.filter(key=capture.key).count() == 1
    assert len(TestModeProvider.history(reference=capture.id).charges) == 1
    assert_ledger_consistent()


def test_the_lease_follows_the_provider_timeout_and_the_sweep_retries_within_a_minute(settings):
    from django.conf import settings as configured

    settings.ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S = 3
    assert processing_lease() == timedelta(seconds=3 + LEASE_MARGIN_S)
    settings.ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S = 20
    sweep_every_s = configured.CELERY_BEAT_SCHEDULE["payment-capture-retry"]["schedule"]
    # Worst case: the worker dies right after its claim; the sweep after the lease ends claims it again.
    assert processing_lease().total_seconds() + sweep_every_s < 60


def test_a_refund_while_a_captures_outcome_is_unknown_pays_back_and_never_charges_twice(
    finished_trip, settings
):
    """The charge may have gone through under the capture's key (its answer timed out): reducing the capture
    would give it a new key and charge again. The refund is paid back instead, once the charge settles."""
    settings.ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S = 0.3
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    fare = capture.amount_minor
    TestModeProvider.hold_for(rider_id=finished_trip.rider_id)
    now = timezone.now()
    assert capture_attempt(capture_id=capture.id, now=now).provider_refusals == 0  # unknown, not refused
    TestModeProvider.release(rider_id=finished_trip.rider_id)

    refund_post(trip_id=finished_trip.id, amount_minor=300, reason="Detour", staff_id=StaffFactory().id)
    assert PaymentCapture.objects.get(id=capture.id).amount_minor == fare  # the charge is left as it was
    captures_retry_due(now=now + timedelta(minutes=5))

    settled = PaymentCapture.objects.get(id=capture.id)
    assert (settled.status, settled.amount_minor) == (CaptureStatus.SUCCEEDED, fare)
    charges = TestModeProvider.history(reference=capture.id).charges
    assert [(charge.kind, charge.amount_minor) for charge in charges] == [("capture", fare)]
    payback = PaymentCapture.objects.get(trip_id=finished_trip.id, purpose="refund")
    assert (payback.status, payback.amount_minor) == (CaptureStatus.SUCCEEDED, 300)
    assert _receivable(finished_trip.rider_id) == 0
    assert_ledger_consistent()


def test_a_refund_of_a_charge_only_ever_refused_collects_less(finished_trip):
    capture = PaymentCapture.objects.get(key=f"capture:{finished_trip.id}")
    TestModeProvider.fail_for(rider_id=finished_trip.rider_id, times=1)
    assert capture_attempt(capture_id=capture.id).provider_refusals == 1  # refused: nothing was taken
    refund_post(trip_id=finished_trip.id, amount_minor=300, reason="Detour", staff_id=StaffFactory().id)
    assert PaymentCapture.objects.get(id=capture.id).amount_minor == capture.amount_minor - 300
    assert not PaymentCapture.objects.filter(trip_id=finished_trip.id, purpose="refund").exists()
