"""Card holds of rides booked ahead, placed when the pickup comes within `RESERVATION_HOLD_AHEAD`.

A ride booked further ahead than that is booked on a card on file without a hold (trip_request checks the
card is there): an authorisation made days before would lapse before the fare is captured after the ride
(docs/payments.md). This sweep (beat, every 15 minutes) authorises each such reservation's quoted total plus
the board's margin once its pickup is close enough, exactly as a ride requested now is authorised:

- Stripe is called outside any transaction; the hold is then attached under the trip's row lock, and only
  while the trip is still a reservation without one (a cancellation meanwhile voids the new hold at once).
- A refused card cancels the reservation as the system, with the refusal's code as the reason, and tells
  the rider (`reservation_payment_declined`): three days ahead they have time to book again with another
  card, and no driver is sent to a ride nobody will pay for.
- A Stripe that does not answer leaves the hold `authorizing`, attached: the card sweep asks again
  (backend/cards/holds.py), as for any ride.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from backend.cards.holds import (
    RESERVATION_HOLD_AHEAD,
    cards_in_use,
    hold_attach,
    hold_for_trip_request,
    hold_void,
)
from backend.cards.models import CardHold
from backend.errors import DomainError, PaymentRequired
from backend.notifications.services import notify
from dispatch.models import Trip, TripCancelledBy, TripPayer
from dispatch.services.booking_notices import reservation_context
from dispatch.services.trips import trip_cancel, trip_hold_amount
from dispatch.state import TripStatus

logger = logging.getLogger(__name__)


def reservation_holds_place(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Authorise the cards of rider-paid reservations whose pickup is within RESERVATION_HOLD_AHEAD and that
    have no hold yet. Returns counts by outcome (`held`, `declined`, `gone`)."""
    outcomes = {"held": 0, "declined": 0, "gone": 0}
    if not cards_in_use():
        return outcomes
    moment = now or timezone.now()
    due = list(
        Trip.objects.filter(
            status=TripStatus.SCHEDULED,
            payer=TripPayer.RIDER,
            scheduled_for__lte=moment + RESERVATION_HOLD_AHEAD,
        )
        .exclude(id__in=CardHold.objects.filter(trip__isnull=False).values("trip_id"))
        .select_related("policy_version")
        .order_by("scheduled_for")[:limit]
    )
    for trip in due:
        outcomes[_hold_place(trip)] += 1
    return outcomes


def _hold_place(trip: Trip) -> str:
    try:
        hold = hold_for_trip_request(
            rider_id=trip.rider_id, amount_minor=trip_hold_amount(trip), currency=trip.currency
        )
    except PaymentRequired as refusal:
        return _declined(trip, refusal)
    with transaction.atomic():
        still = Trip.objects.select_for_update().filter(id=trip.id, status=TripStatus.SCHEDULED).first()
        if still is None or CardHold.objects.filter(trip_id=trip.id).exists():
            attached = False
        else:
            hold_attach(hold=hold, trip_id=trip.id)
            attached = True
    if not attached:
        # Cancelled meanwhile, or another pass held it first: let go of this one at once.
        if hold is not None:
            hold_void(hold=hold)
        return "gone"
    return "held"


def _declined(trip: Trip, refusal: PaymentRequired) -> str:
    logger.info("reservation %s: card refused (%s); cancelled", trip.id, refusal.code)
    try:
        with transaction.atomic():
            cancelled = trip_cancel(
                trip_id=trip.id,
                actor_id=None,
                cancelled_by=TripCancelledBy.SYSTEM,
                reason=f"{refusal.code}: the card could not be authorised for this ride",
            )
            notify(
                user_id=cancelled.rider_id,
                event="reservation_payment_declined",
                context={**reservation_context(cancelled), "code": refusal.code},
                dedup_key=f"reservation_payment_declined:{cancelled.id}",
            )
    except DomainError as exc:  # cancelled or released meanwhile: nothing to do
        logger.info("reservation %s: not cancelled after the refusal (%s)", trip.id, exc.code)
        return "gone"
    return "declined"
