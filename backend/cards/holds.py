"""Card holds: a trip's quoted total (plus the board's margin) authorised at request, released when the trip
ends without a charge.

At request (`hold_for_trip_request`, called by dispatch before the trip exists) a `CardHold` row is written
first, then Stripe is asked for a manual-capture PaymentIntent under the row's idempotency key, off-session
on the rider's default card. A refusal refuses the request (402 `payment_declined`, or
`payment_authentication_required` for a card that wants 3-D Secure, which an off-session charge cannot
give). An unknown outcome (Stripe unreachable, a timeout) does not fail the ride: the hold stays
`authorizing`, the trip goes ahead, and the fare is charged off-session at completion if no hold is there
by then; the sweep asks Stripe again with the same key, so an authorisation that did happen is found,
not doubled.

The capture takes from the hold (backend/cards/provider.py). A hold with nothing left to capture is released
(the PaymentIntent cancelled) by `trip_hold_release` when the trip ends without a fare or a fee, and by the
sweep (`holds_release_due`) for holds whose trip never got created or whose trip ended and owes nothing
through them. A hold found captured at release although a refund voided its trip's capture (the capture's
answer was lost, so the capture looked uncollected) is given back in full (`provider.overcharge_give_back`).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import stripe
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.cards.models import CardHold, HoldStatus, StripeCustomer
from backend.cards.provider import overcharge_give_back
from backend.cards.stripe_api import amount_taken, rochdale_id, stripe_client, stripe_failure
from backend.errors import PaymentRequired
from backend.fares.models import CapturePurpose, CaptureStatus, PaymentCapture
from backend.fares.payments import configured_provider_name

logger = logging.getLogger(__name__)

STRIPE_PROVIDER_NAME = "stripe"
# A hold with no trip this long after it was made belongs to a request that died between the two.
ORPHAN_AFTER = timedelta(minutes=15)
# A trip that ended this long ago and owes nothing through its hold gets the hold released by the sweep
# (the release after the trip's last move normally did it already).
ENDED_GRACE = timedelta(minutes=2)
_OPEN_CAPTURE_STATUSES = (CaptureStatus.PENDING, CaptureStatus.PROCESSING, CaptureStatus.FAILED)


def cards_in_use() -> bool:
    """True when the co-op takes cards (`ROCHDALE_PAYMENT_PROVIDER=stripe`)."""
    return configured_provider_name() == STRIPE_PROVIDER_NAME


def hold_for_trip_request(*, rider_id: uuid.UUID, amount_minor: int, currency: str) -> CardHold | None:
    """Authorise `amount_minor` on the rider's default card for a trip about to be requested.

    Returns the hold (authorised, or `authorizing` when Stripe's answer is unknown), or None when the co-op
    does not take cards. Raises PaymentRequired `payment_method_required` (no card saved),
    `payment_declined`, `payment_authentication_required`."""
    if not cards_in_use():
        return None
    customer = StripeCustomer.objects.filter(rider_id=rider_id).first()
    try:
        method_id = _charge_method(customer)
    except stripe.StripeError as exc:
        failure = stripe_failure(exc)
        if failure.definitive:
            raise PaymentRequired(
                _("Save a card before requesting a trip."), code="payment_method_required", details={}
            ) from exc
        # Stripe cannot say which card to hold: the ride goes ahead like any whose hold is unanswered, and
        # the sweep looks the card up when it asks again.
        logger.warning("card hold for rider %s: no card list from Stripe (%s)", rider_id, failure.message)
        return CardHold.objects.create(
            rider_id=rider_id, amount_minor=amount_minor, currency=currency, last_error=failure.message
        )
    if customer is None or not method_id:
        raise PaymentRequired(
            _("Save a card before requesting a trip."), code="payment_method_required", details={}
        )
    hold = CardHold.objects.create(
        rider_id=rider_id, amount_minor=amount_minor, currency=currency, payment_method_id=method_id
    )
    hold = _authorize(hold, customer=customer)
    if hold.status == HoldStatus.DECLINED:
        code = (
            "payment_authentication_required"
            if hold.last_error.startswith("authentication_required")
            else "payment_declined"
        )
        raise PaymentRequired(
            _("Your card was declined for this trip; use another card."),
            code=code,
            details={"amount": amount_minor, "currency": currency},
        )
    return hold


# A ride booked ahead has its card authorised when its pickup comes within this (at booking when it already
# is): an authorisation made off-session lasts about five days at Visa (seven at most elsewhere), and the fare
# is captured after the ride, so three days leaves room for the ride and the capture's retries.
RESERVATION_HOLD_AHEAD = timedelta(days=3)


def card_on_file_require(*, rider_id: uuid.UUID) -> None:
    """Refuse (PaymentRequired `payment_method_required`) a rider who has no card to hold later; a Stripe
    that cannot answer lets the booking go ahead (the hold, when it is placed, decides)."""
    if not cards_in_use():
        return
    customer = StripeCustomer.objects.filter(rider_id=rider_id).first()
    try:
        method_id = _charge_method(customer)
    except stripe.StripeError as exc:
        if not stripe_failure(exc).definitive:
            logger.warning("card check for rider %s: Stripe did not answer; the hold decides later", rider_id)
            return
        method_id = ""
    if not method_id:
        raise PaymentRequired(
            _("Save a card before booking a ride."), code="payment_method_required", details={}
        )


def hold_attach(*, hold: CardHold | None, trip_id: uuid.UUID) -> None:
    """Tie a hold to the trip it was made for (inside the transaction that creates the trip)."""
    if hold is not None:
        CardHold.objects.filter(id=hold.id, trip_id__isnull=True).update(
            trip_id=trip_id, updated_at=timezone.now()
        )


def hold_release(*, hold_id: uuid.UUID) -> CardHold:
    """Cancel the hold's PaymentIntent (nothing is taken). A hold already captured or gone is left as it is;
    an unknown outcome leaves it for the sweep."""
    hold = CardHold.objects.get(id=hold_id)
    if hold.status not in (HoldStatus.AUTHORIZED, HoldStatus.AUTHORIZING):
        return hold
    if hold.status == HoldStatus.AUTHORIZING:
        hold = _authorize(hold, customer=StripeCustomer.objects.filter(rider_id=hold.rider_id).first())
        if hold.status != HoldStatus.AUTHORIZED:
            return hold
    client = stripe_client()
    try:
        intent = client.v1.payment_intents.retrieve(hold.payment_intent_id)
        if intent.status in ("requires_capture", "requires_confirmation", "requires_action"):
            intent = client.v1.payment_intents.cancel(
                hold.payment_intent_id,
                options={"idempotency_key": f"{hold.idempotency_key}:release"},
            )
    except stripe.StripeError as exc:
        failure = stripe_failure(exc)
        CardHold.objects.filter(id=hold.id).update(last_error=failure.message, updated_at=timezone.now())
        logger.warning("card hold %s: release failed (%s); the sweep retries", hold.id, failure.message)
        return CardHold.objects.get(id=hold.id)
    if intent.status == "succeeded" and _capture_voided_after_the_fact(hold):
        return _give_back_voided(client, hold, intent)
    status = {"canceled": HoldStatus.RELEASED, "succeeded": HoldStatus.CAPTURED}.get(intent.status)
    if status is not None:
        CardHold.objects.filter(id=hold.id, status=HoldStatus.AUTHORIZED).update(
            status=status, updated_at=timezone.now()
        )
    return CardHold.objects.get(id=hold.id)


def hold_void(*, hold: CardHold) -> None:
    """Let go of a hold whose trip request failed after the card was authorised, now and from the copy in
    hand: the row may be about to roll back with the request's transaction. Stripe's own list is the
    backstop (`orphaned_holds_release`) if this cannot reach it."""
    if not hold.payment_intent_id:
        return
    try:
        stripe_client().v1.payment_intents.cancel(
            hold.payment_intent_id, options={"idempotency_key": f"{hold.idempotency_key}:release"}
        )
    except stripe.StripeError as exc:
        logger.warning(
            "card hold %s: void failed (%s); the Stripe sweep retries", hold.id, stripe_failure(exc).message
        )
        return
    CardHold.objects.filter(id=hold.id, status=HoldStatus.AUTHORIZED).update(
        status=HoldStatus.RELEASED, updated_at=timezone.now()
    )


def orphaned_holds_release(*, now: datetime | None = None) -> int:
    """The backstop against Stripe's own records: an authorisation Rochdale made (metadata `rochdale_hold`)
    that is still uncaptured after ORPHAN_AFTER, and whose hold row does not exist (its request's
    transaction rolled back after Stripe held the money), is cancelled. Walks the intents of the last eight
    days (an authorisation lapses after seven), newest first as Stripe lists them. Returns how many it
    cancelled (0 where the co-op does not take cards: there is no Stripe account to ask)."""
    if not cards_in_use():
        return 0
    moment = now or timezone.now()
    oldest = (moment - timedelta(days=8)).timestamp()
    newest = (moment - ORPHAN_AFTER).timestamp()
    client = stripe_client()
    cancelled = 0
    for intent in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
        if intent.created < oldest:
            break
        hold_id = rochdale_id(intent.metadata.to_dict() if intent.metadata else {}, "rochdale_hold")
        if intent.status != "requires_capture" or hold_id is None or intent.created > newest:
            continue
        if CardHold.objects.filter(id=hold_id).exists():
            continue
        try:
            client.v1.payment_intents.cancel(
                intent.id, options={"idempotency_key": f"rochdale:hold:{hold_id}:release"}
            )
        except stripe.StripeError as exc:
            logger.warning(
                "orphaned authorisation %s: cancel failed (%s)", intent.id, stripe_failure(exc).message
            )
            continue
        logger.warning("cancelled authorisation %s: its hold %s was never recorded", intent.id, hold_id)
        cancelled += 1
    return cancelled


def trip_hold_release(*, trip_id: uuid.UUID) -> CardHold | None:
    """Release the trip's hold unless a fare or fee still has to be captured from it (dispatch calls this
    after a trip ends; a cancellation fee's capture takes from the hold and Stripe releases the rest)."""
    hold = CardHold.objects.filter(trip_id=trip_id).first()
    if hold is None or _owes_through_hold(trip_id):
        return hold
    return hold_release(hold_id=hold.id)


def holds_release_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """The sweep: ask Stripe again about holds whose answer was lost, and release holds of requests that
    died before their trip existed and of trips that ended owing nothing through them. Returns how many
    holds it looked at."""
    moment = now or timezone.now()
    due = CardHold.objects.filter(
        Q(status=HoldStatus.AUTHORIZING, created_at__lt=moment - timedelta(minutes=1))
        | Q(status=HoldStatus.AUTHORIZED, trip__isnull=True, created_at__lt=moment - ORPHAN_AFTER)
        | Q(status=HoldStatus.AUTHORIZED, trip__ended_at__lt=moment - ENDED_GRACE)
    ).order_by("created_at")[:limit]
    seen = 0
    for hold in due:
        seen += 1
        if hold.trip_id is None and hold.created_at >= moment - ORPHAN_AFTER:
            _authorize(hold, customer=StripeCustomer.objects.filter(rider_id=hold.rider_id).first())
            continue
        if hold.trip_id is not None and _owes_through_hold(hold.trip_id):
            if hold.status == HoldStatus.AUTHORIZING:
                _authorize(hold, customer=StripeCustomer.objects.filter(rider_id=hold.rider_id).first())
            continue
        if hold.trip_id is not None and hold.status == HoldStatus.AUTHORIZING and not _trip_ended(hold):
            _authorize(hold, customer=StripeCustomer.objects.filter(rider_id=hold.rider_id).first())
            continue
        hold_release(hold_id=hold.id)
    return seen


def _capture_voided_after_the_fact(hold: CardHold) -> bool:
    """The hold was captured (by an attempt whose answer was lost) while the ledger says nothing is to be
    collected through it: a refund voided the trip's capture, which looked uncollected."""
    captures = PaymentCapture.objects.filter(
        trip_id=hold.trip_id, purpose__in=[CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE]
    )
    return (
        hold.trip_id is not None
        and captures.filter(status=CaptureStatus.VOIDED).exists()
        and not captures.filter(status=CaptureStatus.SUCCEEDED).exists()
    )


def _give_back_voided(client: stripe.StripeClient, hold: CardHold, intent: stripe.PaymentIntent) -> CardHold:
    """Refund all that a hold's intent took when its capture was voided (tagged `rochdale_return`: the
    `charge.refunded` webhook posts nothing for it), then the hold counts as released."""
    taken = amount_taken(intent.to_dict())
    returned = overcharge_give_back(
        client, payment_intent_id=intent.id, over_minor=taken, returned_for=str(hold.id)
    )
    if not returned.ok:
        _set(hold, last_error=returned.error)
        logger.warning("card hold %s: giving back failed (%s); the sweep retries", hold.id, returned.error)
        return CardHold.objects.get(id=hold.id)
    logger.error(
        "card hold %s was captured for %s although its trip's capture was voided; gave it back",
        hold.id,
        taken,
    )
    CardHold.objects.filter(id=hold.id, status=HoldStatus.AUTHORIZED).update(
        status=HoldStatus.RELEASED,
        last_error=f"captured {taken} after its capture was voided; given back",
        updated_at=timezone.now(),
    )
    return CardHold.objects.get(id=hold.id)


def _trip_ended(hold: CardHold) -> bool:
    return CardHold.objects.filter(id=hold.id, trip__ended_at__isnull=False).exists()


def _owes_through_hold(trip_id: uuid.UUID) -> bool:
    return PaymentCapture.objects.filter(
        trip_id=trip_id,
        purpose__in=[CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE],
        status__in=_OPEN_CAPTURE_STATUSES,
    ).exists()


def _charge_method(customer: StripeCustomer | None) -> str:
    if customer is None:
        return ""
    if customer.default_payment_method_id:
        return customer.default_payment_method_id
    methods = stripe_client().v1.payment_methods.list(
        params={"customer": customer.customer_id, "type": "card", "limit": 1}
    )
    return methods.data[0].id if methods.data else ""


def _with_charge_method(hold: CardHold, *, customer: StripeCustomer) -> CardHold:
    """The hold with the card it is to be made on: declined when the rider has none, left `authorizing`
    while Stripe cannot say."""
    try:
        method_id = _charge_method(customer)
    except stripe.StripeError as exc:
        failure = stripe_failure(exc)
        if not failure.definitive:
            _set(hold, last_error=failure.message)
            return CardHold.objects.get(id=hold.id)
        method_id = ""
    if not method_id:
        _set(hold, status=HoldStatus.DECLINED, last_error="declined: the rider has no card saved")
    else:
        _set(hold, payment_method_id=method_id)
    return CardHold.objects.get(id=hold.id)


def _authorize(hold: CardHold, *, customer: StripeCustomer | None) -> CardHold:
    """Ask Stripe for the hold's PaymentIntent under the hold's key and record what it answered."""
    if customer is None:
        CardHold.objects.filter(id=hold.id).update(
            status=HoldStatus.DECLINED, last_error="no Stripe customer", updated_at=timezone.now()
        )
        return CardHold.objects.get(id=hold.id)
    if not hold.payment_method_id:
        # The request could not learn which card to hold (Stripe was unreachable); find it now.
        hold = _with_charge_method(hold, customer=customer)
        if hold.status != HoldStatus.AUTHORIZING or not hold.payment_method_id:
            return hold
    try:
        intent = stripe_client().v1.payment_intents.create(
            params={
                "amount": hold.amount_minor,
                "currency": hold.currency.lower(),
                "customer": customer.customer_id,
                "payment_method": hold.payment_method_id,
                "capture_method": "manual",
                "confirm": True,
                "off_session": True,
                "metadata": {"rochdale_hold": str(hold.id), "rochdale_rider": str(hold.rider_id)},
            },
            options={"idempotency_key": hold.idempotency_key},
        )
    except stripe.StripeError as exc:
        failure = stripe_failure(exc)
        if failure.definitive:
            reason = "authentication_required" if failure.code == "authentication_required" else failure.code
            _set(hold, status=HoldStatus.DECLINED, last_error=f"{reason}: {failure.message}")
        else:
            logger.warning(
                "card hold %s: Stripe's answer is unknown (%s); the trip goes ahead, the sweep asks again",
                hold.id,
                failure.message,
            )
            _set(hold, last_error=failure.message)
        return CardHold.objects.get(id=hold.id)
    if intent.status == "requires_capture":
        _set(hold, status=HoldStatus.AUTHORIZED, payment_intent_id=intent.id, last_error="")
    elif intent.status == "requires_action":
        _cancel_quietly(intent.id, key=f"{hold.idempotency_key}:release")
        _set(
            hold,
            status=HoldStatus.DECLINED,
            payment_intent_id=intent.id,
            last_error="authentication_required: the card asks for 3-D Secure, which no off-session hold has",
        )
    else:
        _set(
            hold,
            status=HoldStatus.DECLINED,
            payment_intent_id=intent.id,
            last_error=f"declined: the authorisation ended {intent.status}",
        )
    return CardHold.objects.get(id=hold.id)


def _cancel_quietly(payment_intent_id: str, *, key: str) -> None:
    """Cancel an intent that can never be used; a failure only leaves it to expire at Stripe."""
    try:
        stripe_client().v1.payment_intents.cancel(payment_intent_id, options={"idempotency_key": key})
    except stripe.StripeError:
        logger.warning("could not cancel unusable PaymentIntent %s; Stripe expires it", payment_intent_id)


def _set(hold: CardHold, **fields: object) -> None:
    with transaction.atomic():
        CardHold.objects.filter(id=hold.id).update(**fields, updated_at=timezone.now())
