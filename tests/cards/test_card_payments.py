"""Card payments end to end in-process, with the real Stripe SDK against localstripe: saving a card, the hold
at request, capture at completion, tips, refunds, cancellations, an expired authorisation, a fare above the
hold, a declined card and the overdue account it leaves."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from backend.cards import customers
from backend.cards.holds import orphaned_holds_release
from backend.cards.models import CardHold, HoldStatus
from backend.errors import NotFound, PaymentRequired
from backend.fares.models import CapturePurpose, CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import overdue_captures, overdue_pay
from backend.fares.pricing import authorization_amount
from backend.fares.selectors import policy_of
from dispatch.models import Trip
from dispatch.money.receipts import trip_receipt
from dispatch.money.refunds import refund_post
from dispatch.selectors import trip_load
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_cancel, trip_tip
from dispatch.state import TripStatus
from tests.cards.localstripe import API_KEY, DECLINED_WHEN_CHARGED, NEEDS_AUTHENTICATION, VISA, LocalStripe
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import assert_ledger_consistent, complete_trip
from tests.mobile_api.builders import assign, drive_to_completion, requested_trip

pytestmark = pytest.mark.django_db


def save_card(localstripe: LocalStripe, rider, number: str = VISA) -> customers.SavedCard:
    """What the rider's app does: ask for a setup, hand the card to Stripe, tell the backend which setup."""
    setup = customers.payment_method_setup(rider_id=rider.id)
    assert setup.client_secret.startswith(setup.setup_intent_id)
    localstripe.confirm_setup(
        setup_intent_id=setup.setup_intent_id, client_secret=setup.client_secret, number=number
    ).raise_for_status()
    return customers.payment_method_save(rider_id=rider.id, setup_intent_id=setup.setup_intent_id)


def total(trip: Trip) -> int:
    """What a completed trip charged its rider: the fare and its pass-through fees."""
    return trip.fare_breakdown["total"]


def fare_capture(trip: Trip) -> PaymentCapture:
    return PaymentCapture.objects.get(key=f"capture:{trip.id}")


@pytest.fixture
def card_rider(localstripe):
    rider = RiderFactory()
    save_card(localstripe, rider)
    return rider


def test_a_saved_card_is_listed_as_the_default_and_only_its_rider_can_remove_it(localstripe):
    rider, stranger = RiderFactory(), RiderFactory()
    card = save_card(localstripe, rider)
    assert (card.brand, card.last4, card.is_default) == ("visa", "4242", True)
    assert customers.payment_methods_list(rider_id=rider.id) == [card]
    assert customers.payment_methods_list(rider_id=stranger.id) == []

    with pytest.raises(NotFound):
        customers.payment_method_detach(rider_id=stranger.id, payment_method_id=card.id)
    second = save_card(localstripe, rider, number="5555555555554444")
    assert second.is_default is False
    assert customers.payment_method_default_set(rider_id=rider.id, payment_method_id=second.id).is_default
    customers.payment_method_detach(rider_id=rider.id, payment_method_id=second.id)
    assert [c.id for c in customers.payment_methods_list(rider_id=rider.id)] == [card.id]


def test_a_request_holds_the_quoted_total_plus_the_boards_margin(card_rider, localstripe):
    trip = requested_trip(card_rider)
    hold = CardHold.objects.get(trip_id=trip.id)
    expected = authorization_amount(
        policy_of(trip.policy_version), quoted_total_minor=trip.fare_estimate_minor
    )
    assert expected >= trip.fare_estimate_minor
    assert (hold.status, hold.amount_minor) == (HoldStatus.AUTHORIZED, expected)
    intent = localstripe.payment_intent(hold.payment_intent_id)
    assert (intent["status"], intent["amount"], intent["capture_method"]) == (
        "requires_capture",
        expected,
        "manual",
    )


def test_a_rider_without_a_card_or_with_a_refused_one_gets_no_trip(localstripe):
    no_card = RiderFactory()
    with pytest.raises(PaymentRequired) as refused:
        requested_trip(no_card)
    assert refused.value.code == "payment_method_required"

    declined = RiderFactory()
    save_card(localstripe, declined, number=DECLINED_WHEN_CHARGED)
    with pytest.raises(PaymentRequired) as refused:
        requested_trip(declined)
    assert refused.value.code == "payment_declined"
    assert CardHold.objects.get(rider_id=declined.id).status == HoldStatus.DECLINED

    # A card the bank wants 3-D Secure for on every charge (saved with it once; Stripe then asks again).
    secure = RiderFactory()
    save_card(localstripe, secure)
    customer_id = customers.stripe_customer_ensure(rider_id=secure.id).customer_id
    strict = localstripe.card_payment_method(NEEDS_AUTHENTICATION)
    with localstripe.api() as stripe_api:
        stripe_api.post(
            f"/v1/payment_methods/{strict}/attach", data={"customer": customer_id}
        ).raise_for_status()
    customers.payment_method_default_set(rider_id=secure.id, payment_method_id=strict)
    with pytest.raises(PaymentRequired) as refused:
        requested_trip(secure)
    assert refused.value.code == "payment_authentication_required"
    assert not Trip.objects.filter(rider__in=[no_card, declined, secure]).exists()


def test_completion_captures_the_exact_fare_from_the_hold(
    card_rider, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    trip = requested_trip(card_rider)
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(trip)
    capture = fare_capture(done)
    hold = CardHold.objects.get(trip_id=trip.id)
    assert capture.status == CaptureStatus.SUCCEEDED, capture.last_error
    assert capture.provider_reference == hold.payment_intent_id
    assert hold.status == HoldStatus.CAPTURED
    assert localstripe.captured_minor(hold.payment_intent_id) == total(done) == capture.amount_minor
    assert_ledger_consistent()


def test_a_tip_is_charged_on_its_own_and_a_partial_refund_goes_back_to_the_card(
    card_rider, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(requested_trip(card_rider))
    with django_capture_on_commit_callbacks(execute=True):
        tip = trip_tip(trip_id=done.id, rider_id=card_rider.id, amount_minor=300, currency=done.currency)
    tip_capture = PaymentCapture.objects.get(key=f"capture:tip:{tip.id}")
    assert tip_capture.status == CaptureStatus.SUCCEEDED, tip_capture.last_error
    assert tip_capture.provider_reference != fare_capture(done).provider_reference
    assert localstripe.captured_minor(tip_capture.provider_reference) == 300

    with django_capture_on_commit_callbacks(execute=True):
        refund_post(trip_id=done.id, amount_minor=250, reason="Detour", staff_id=StaffFactory().id)
    payout = PaymentCapture.objects.get(trip_id=done.id, purpose=CapturePurpose.REFUND)
    assert payout.status == CaptureStatus.SUCCEEDED, payout.last_error
    assert payout.provider_reference.startswith("re_")
    assert localstripe.captured_minor(fare_capture(done).provider_reference) == total(done) - 250
    assert_ledger_consistent()


def test_a_free_cancellation_releases_the_hold_and_a_late_one_captures_the_fee_from_it(
    localstripe, django_capture_on_commit_callbacks, celery_eager
):
    rider = RiderFactory()
    save_card(localstripe, rider)
    with django_capture_on_commit_callbacks(execute=True):
        trip = requested_trip(rider)
        trip_cancel(trip_id=trip.id, actor_id=rider.id)
    hold = CardHold.objects.get(trip_id=trip.id)
    assert hold.status == HoldStatus.RELEASED
    assert localstripe.payment_intent(hold.payment_intent_id)["status"] == "canceled"

    long_ago = timezone.now() - timezone.timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        late = assign(requested_trip(rider), DriverFactory(), assigned_at=long_ago)
        cancelled = trip_cancel(trip_id=late.id, actor_id=rider.id)
    fee = PaymentCapture.objects.get(trip_id=late.id, purpose=CapturePurpose.CANCELLATION_FEE)
    late_hold = CardHold.objects.get(trip_id=late.id)
    assert fee.status == CaptureStatus.SUCCEEDED, fee.last_error
    assert fee.provider_reference == late_hold.payment_intent_id
    assert localstripe.captured_minor(late_hold.payment_intent_id) == cancelled.cancellation_fee_minor
    assert_ledger_consistent()


def test_an_expired_authorisation_is_charged_off_session_at_completion(
    card_rider, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    trip = requested_trip(card_rider)
    hold = CardHold.objects.get(trip_id=trip.id)
    localstripe.cancel(hold.payment_intent_id)  # what Stripe does to an authorisation after seven days
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(trip)
    capture = fare_capture(done)
    assert capture.status == CaptureStatus.SUCCEEDED, capture.last_error
    assert capture.provider_reference != hold.payment_intent_id
    assert CardHold.objects.get(id=hold.id).status == HoldStatus.EXPIRED
    assert localstripe.captured_minor(capture.provider_reference) == total(done)
    assert localstripe.captured_minor(hold.payment_intent_id) == 0


def test_a_fare_above_the_hold_takes_the_hold_and_charges_the_rest_as_a_flagged_second_intent(
    card_rider, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    trip = assign(requested_trip(card_rider), DriverFactory())
    hold = CardHold.objects.get(trip_id=trip.id)
    for status in (TripStatus.ARRIVED, TripStatus.IN_PROGRESS):
        trip_transition(trip_id=trip.id, to=status, actor_id=trip.driver_id)
    # A closure sent the driver far round: the measured fare is past the quote's tolerance and the hold.
    with django_capture_on_commit_callbacks(execute=True):
        done = complete_trip(
            trip_load(trip.id),
            distance_m=trip.estimated_distance_m * 4,
            duration_s=trip.estimated_duration_s * 4,
        )
    assert total(done) > hold.amount_minor
    held = fare_capture(done)
    hold.refresh_from_db()
    assert (held.status, held.amount_minor) == (CaptureStatus.SUCCEEDED, hold.amount_minor), held.last_error
    assert hold.over_authorization_minor == total(done) - hold.amount_minor
    assert localstripe.captured_minor(hold.payment_intent_id) == hold.amount_minor
    # The excess is a capture of its own, charged off-session: the rider owes only it if it is refused.
    rest = PaymentCapture.objects.get(key=f"{held.key}:rest")
    assert (rest.status, rest.amount_minor) == (CaptureStatus.SUCCEEDED, total(done) - hold.amount_minor)
    assert localstripe.captured_minor(rest.provider_reference) == rest.amount_minor
    assert_ledger_consistent()


def test_a_refused_excess_above_the_hold_leaves_the_hold_recorded_and_only_the_excess_owed(
    card_rider, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    trip = assign(requested_trip(card_rider), DriverFactory())
    hold = CardHold.objects.get(trip_id=trip.id)
    bad = save_card(localstripe, card_rider, number=DECLINED_WHEN_CHARGED)
    customers.payment_method_default_set(rider_id=card_rider.id, payment_method_id=bad.id)
    for status in (TripStatus.ARRIVED, TripStatus.IN_PROGRESS):
        trip_transition(trip_id=trip.id, to=status, actor_id=trip.driver_id)
    with django_capture_on_commit_callbacks(execute=True):
        done = complete_trip(
            trip_load(trip.id),
            distance_m=trip.estimated_distance_m * 4,
            duration_s=trip.estimated_duration_s * 4,
        )
    held = fare_capture(done)
    rest = PaymentCapture.objects.get(key=f"{held.key}:rest")
    assert (held.status, held.amount_minor) == (CaptureStatus.SUCCEEDED, hold.amount_minor)
    assert rest.status == CaptureStatus.FAILED and rest.provider_refusals == 1
    assert list(overdue_captures(rider_id=card_rider.id)) == [rest]
    with pytest.raises(PaymentRequired) as refused:
        requested_trip(card_rider)
    assert refused.value.details["amount"] == total(done) - hold.amount_minor
    assert localstripe.captured_minor(hold.payment_intent_id) == hold.amount_minor
    assert_ledger_consistent()


def test_a_declined_charge_makes_the_rider_owe_and_blocks_requests_until_paid(
    card_rider, localstripe, django_capture_on_commit_callbacks, celery_eager
):
    trip = requested_trip(card_rider)
    localstripe.cancel(CardHold.objects.get(trip_id=trip.id).payment_intent_id)
    good = customers.payment_methods_list(rider_id=card_rider.id)[0]
    bad = save_card(localstripe, card_rider, number=DECLINED_WHEN_CHARGED)
    customers.payment_method_default_set(rider_id=card_rider.id, payment_method_id=bad.id)
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(trip)
    capture = fare_capture(done)
    assert capture.status == CaptureStatus.FAILED
    assert list(overdue_captures(rider_id=card_rider.id)) == [capture]
    with pytest.raises(PaymentRequired) as refused:
        requested_trip(card_rider)
    assert refused.value.code == "payment_overdue"
    assert refused.value.details["amount"] == total(done)

    customers.payment_method_default_set(rider_id=card_rider.id, payment_method_id=good.id)
    assert overdue_pay(rider_id=card_rider.id) == []
    capture.refresh_from_db()
    assert capture.status == CaptureStatus.SUCCEEDED
    assert localstripe.captured_minor(capture.provider_reference) == total(done)
    assert requested_trip(card_rider).status == "requested"
    assert JournalEntry.objects.filter(key=capture.key).count() == 1
    assert_ledger_consistent()


def test_a_receipt_names_the_card_and_still_renders_when_stripe_cannot_say(
    card_rider, localstripe, settings, django_capture_on_commit_callbacks, celery_eager
):
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(requested_trip(card_rider))
    settings.STRIPE_API_KEY = ""  # the co-op's key was rotated out: nothing can be asked of Stripe
    assert trip_receipt(trip_id=done.id).payment.card_last4 is None
    settings.STRIPE_API_KEY = API_KEY
    payment = trip_receipt(trip_id=done.id).payment
    assert (payment.provider, payment.card_brand, payment.card_last4) == ("stripe", "visa", "4242")
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # once read, the card is kept with the hold
    assert trip_receipt(trip_id=done.id).payment.card_last4 == "4242"


def test_an_authorisation_whose_request_rolled_back_is_found_at_stripe_and_cancelled(card_rider, localstripe):
    with pytest.raises(RuntimeError), transaction.atomic():
        requested_trip(card_rider)
        raise RuntimeError("the request's transaction failed after Stripe held the money")
    assert not CardHold.objects.exists()
    with localstripe.api() as stripe_api:
        intents = stripe_api.get("/v1/payment_intents").json()["data"]
    held = [intent for intent in intents if intent["status"] == "requires_capture"]
    assert len(held) == 1 and held[0]["metadata"]["rochdale_hold"]

    assert orphaned_holds_release() == 0  # too recent: its request may still be committing
    later = timezone.now() + timezone.timedelta(minutes=16)
    assert orphaned_holds_release(now=later) == 1
    assert localstripe.payment_intent(held[0]["id"])["status"] == "canceled"
    assert orphaned_holds_release(now=later) == 0
    kept = requested_trip(card_rider)  # a hold with its row is never touched
    assert orphaned_holds_release(now=later) == 0
    assert localstripe.payment_intent(CardHold.objects.get(trip_id=kept.id).payment_intent_id)["status"] == (
        "requires_capture"
    )
