"""Card holds of rides booked ahead (dispatch/services/reservation_holds.py), on the real Stripe SDK against
localstripe: a ride booked more than three days ahead needs a card on file but holds nothing yet; once its
pickup is within three days the sweep authorises it like a ride requested now; a refused card cancels the
reservation and tells the rider; a cancelled reservation lets go of its hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from backend.cards.holds import RESERVATION_HOLD_AHEAD
from backend.cards.models import CardHold, HoldStatus
from backend.errors import PaymentRequired
from backend.notifications.models import Notification
from dispatch.models import Trip
from dispatch.services.estimates import Place
from dispatch.services.reservation_holds import reservation_holds_place
from dispatch.services.trips import trip_cancel, trip_hold_amount, trip_request
from tests.cards.localstripe import DECLINED_WHEN_CHARGED
from tests.cards.test_card_payments import save_card
from tests.factories import RiderFactory
from tests.mobile_api.builders import DROPOFF, PICKUP, ensure_service_area

pytestmark = pytest.mark.django_db


def _book(rider, *, ahead: timedelta) -> Trip:
    ensure_service_area()
    return trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        scheduled_for=timezone.now() + ahead,
    )


def test_a_ride_booked_days_ahead_needs_a_card_on_file_and_is_held_once_its_pickup_is_near(localstripe):
    with pytest.raises(PaymentRequired) as refused:
        _book(RiderFactory(), ahead=timedelta(days=5))
    assert refused.value.code == "payment_method_required"

    rider = RiderFactory()
    save_card(localstripe, rider)
    trip = _book(rider, ahead=timedelta(days=5))
    assert not CardHold.objects.filter(rider=rider).exists()
    # Not yet: the pickup is more than three days away.
    assert reservation_holds_place() == {"held": 0, "declined": 0, "gone": 0}
    # Two days later the sweep holds it, for the quoted total and the board's margin.
    later = timezone.now() + timedelta(days=2, hours=1)
    assert trip.scheduled_for - later < RESERVATION_HOLD_AHEAD
    assert reservation_holds_place(now=later) == {"held": 1, "declined": 0, "gone": 0}
    hold = CardHold.objects.get(trip=trip)
    assert (hold.status, hold.amount_minor) == (HoldStatus.AUTHORIZED, trip_hold_amount(trip))
    assert localstripe.payment_intent(hold.payment_intent_id)["status"] == "requires_capture"
    # Once held, a later pass holds nothing more.
    assert reservation_holds_place(now=later) == {"held": 0, "declined": 0, "gone": 0}


def test_a_ride_booked_within_three_days_is_held_at_booking(localstripe):
    rider = RiderFactory()
    save_card(localstripe, rider)
    trip = _book(rider, ahead=timedelta(days=1))
    assert CardHold.objects.get(trip=trip).status == HoldStatus.AUTHORIZED


def test_a_refused_card_cancels_the_reservation_and_tells_the_rider(localstripe):
    rider = RiderFactory()
    save_card(localstripe, rider, number=DECLINED_WHEN_CHARGED)
    trip = _book(rider, ahead=timedelta(days=5))
    assert reservation_holds_place(now=timezone.now() + timedelta(days=3)) == {
        "held": 0,
        "declined": 1,
        "gone": 0,
    }
    trip.refresh_from_db()
    assert (trip.status, trip.cancelled_by) == ("cancelled", "system")
    assert trip.cancel_reason.startswith("payment_declined") and trip.cancellation_fee_minor is None
    [told] = Notification.objects.filter(user=rider, event="reservation_payment_declined")
    assert "could not be authorised" in told.body


def test_a_cancelled_reservation_lets_go_of_its_hold(localstripe, celery_eager):
    rider = RiderFactory()
    save_card(localstripe, rider)
    trip = _book(rider, ahead=timedelta(days=1))
    hold = CardHold.objects.get(trip=trip)
    with TestCase.captureOnCommitCallbacks(execute=True):
        trip_cancel(trip_id=trip.id, actor_id=rider.id)
    hold.refresh_from_db()
    assert hold.status == HoldStatus.RELEASED
    assert localstripe.payment_intent(hold.payment_intent_id)["status"] == "canceled"


def test_the_card_sweeps_do_nothing_where_the_coop_takes_no_cards(settings):
    """`make run` with the test provider runs the same beat: the sweeps must not ask a Stripe that is not
    configured (they raised StripeKeyMissing once their tasks were registered with the worker)."""
    from backend.cards.holds import holds_release_due, orphaned_holds_release

    settings.ROCHDALE_PAYMENT_PROVIDER = "test"
    settings.STRIPE_API_KEY = ""
    assert orphaned_holds_release() == 0
    assert holds_release_due() == 0
    assert reservation_holds_place() == {"held": 0, "declined": 0, "gone": 0}
