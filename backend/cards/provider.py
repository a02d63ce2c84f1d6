"""The card provider: Stripe behind the capture machinery of backend/fares/payments.py.

Each `PaymentCapture` attempt becomes Stripe calls carrying keys derived from the capture's idempotency key,
so a retry after a lost answer is answered by Stripe with the first result instead of a second charge:

- fare or cancellation fee of a trip with an authorised hold: read the PaymentIntent, then capture
  min(amount, held) from it (`<key>:hold`); Stripe releases the rest. An intent that is already captured
  (the answer to an earlier attempt was lost) is taken as captured, and what it took beyond what the capture
  asks now (a refund reduced the capture meanwhile) is given back (`overcharge_give_back`). An amount above
  the hold is captured in full, recorded as collected, and the excess becomes a capture of its own
  (`{capture key}:rest`, backend/fares/payments.py) charged off-session, flagged on the hold and in the log
  (ERROR, for staff); a hold serves only the capture it was captured for. A hold that expired or was
  cancelled at Stripe (uncaptured intents lapse after seven days) falls back to an off-session charge.
- anything else (a tip, a trip without a usable hold): an off-session PaymentIntent on the rider's default
  card, confirmed and captured at once, under `<key>`.
- a refund: a Stripe Refund of the trip's captured intent (`<key>`), tagged with the capture's id so the
  `charge.refunded` webhook knows it is ours.

Refusals (declined, no card) are definitive: the capture machinery retries them later under a new key (the
rider may have changed card) and the rider's account shows the overdue charge. Unknown outcomes
(network, 5xx, rate limits) are not: the retry repeats the key.
"""

from __future__ import annotations

import logging

import stripe
from django.db.models import Q
from django.utils import timezone

from backend.cards.models import CardHold, HoldStatus, StripeCustomer
from backend.cards.stripe_api import amount_refundable, amount_taken, object_id, stripe_client, stripe_failure
from backend.fares.models import CapturePurpose, CaptureStatus, PaymentCapture
from backend.fares.payments import PaymentProvider, PaymentRequest, PaymentResult

logger = logging.getLogger(__name__)

_FROM_HOLD = (CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE)
# A refund Stripe made or is making (a failed one gave nothing back).
_REFUND_MADE = ("succeeded", "pending")


class StripeProvider(PaymentProvider):
    """Card payments through Stripe (the official SDK; `STRIPE_API_BASE` points it at localstripe)."""

    name = "stripe"

    def capture(self, request: PaymentRequest) -> PaymentResult:
        client = stripe_client(timeout_s=request.timeout_s)
        try:
            if request.purpose in _FROM_HOLD and request.trip_id is not None:
                # A hold serves one capture: the one it is authorised for, or the one it was captured for
                # (whose answer may have been lost). Any other (the rest of a fare above the hold) is
                # charged off-session.
                hold = (
                    CardHold.objects.filter(trip_id=request.trip_id)
                    .filter(
                        Q(status=HoldStatus.AUTHORIZED, captured_by="")
                        | Q(
                            status__in=[HoldStatus.AUTHORIZED, HoldStatus.CAPTURED],
                            captured_by=request.reference,
                        )
                    )
                    .first()
                )
                if hold is not None:
                    return self._capture_from_hold(client, hold, request)
            return self._charge_off_session(
                client, request, amount_minor=request.amount_minor, key=request.idempotency_key
            )
        except stripe.StripeError as exc:
            return _failed(exc)

    def refund(self, request: PaymentRequest) -> PaymentResult:
        """Give `amount_minor` back from the trip's card charges, the first first: a fare above its hold was
        taken by two intents (the hold's and its rest's), and one Stripe refund cannot exceed its intent.
        What refunds of this payout already gave back (a retry after a lost answer) counts first, so nothing
        is given back twice; each part carries a key of its own intent and amount."""
        charges = (
            list(
                dict.fromkeys(
                    PaymentCapture.objects.filter(
                        trip_id=request.trip_id, purpose__in=_FROM_HOLD, status=CaptureStatus.SUCCEEDED
                    )
                    .exclude(provider_reference="")
                    .order_by("created_at")
                    .values_list("provider_reference", flat=True)
                )
            )
            if request.trip_id is not None
            else []
        )
        if not charges:
            return PaymentResult(ok=False, error="stripe: nothing was captured by card for this trip")
        client = stripe_client(timeout_s=request.timeout_s)
        try:
            intents = [client.v1.payment_intents.retrieve(charge).to_dict() for charge in charges]
            given, reference = 0, ""
            for intent in intents:
                for made in client.v1.refunds.list(
                    params={"payment_intent": intent["id"], "limit": 100}
                ).data:
                    metadata = made.metadata.to_dict() if made.metadata else {}
                    if made.status in _REFUND_MADE and metadata.get("rochdale_capture") == request.reference:
                        given, reference = given + made.amount, made.id
            due = request.amount_minor - given
            for intent in intents:
                part = min(due, amount_refundable(intent))
                if part <= 0:
                    continue
                refund = client.v1.refunds.create(
                    params={
                        "payment_intent": intent["id"],
                        "amount": part,
                        "metadata": {"rochdale_capture": request.reference},
                    },
                    options={"idempotency_key": f"{request.idempotency_key}:{intent['id']}:{part}"},
                )
                if refund.status not in _REFUND_MADE:
                    return PaymentResult(ok=False, error=f"stripe: the refund ended {refund.status}")
                due, reference = due - part, refund.id
        except stripe.StripeError as exc:
            return _failed(exc)
        if due > 0:
            return PaymentResult(
                ok=False, error=f"stripe: the trip's card charges cannot give back {due} more"
            )
        return PaymentResult(ok=True, provider_reference=reference)

    def _capture_from_hold(
        self, client: stripe.StripeClient, hold: CardHold, request: PaymentRequest
    ) -> PaymentResult:
        intent = client.v1.payment_intents.retrieve(hold.payment_intent_id)
        from_hold = min(request.amount_minor, hold.amount_minor)
        if intent.status == "requires_capture":
            intent = client.v1.payment_intents.capture(
                hold.payment_intent_id,
                params={"amount_to_capture": from_hold},
                options={"idempotency_key": f"{request.idempotency_key}:hold"},
            )
        elif intent.status == "succeeded":
            # An earlier attempt captured it and its answer was lost. A refund may have reduced the capture
            # since (it looked uncollected): what Stripe took beyond what the capture asks now goes back.
            returned = overcharge_give_back(
                client,
                payment_intent_id=intent.id,
                over_minor=amount_taken(intent.to_dict()) - from_hold,
                returned_for=request.reference,
            )
            if not returned.ok:
                return returned
        if intent.status != "succeeded":
            # Lapsed (Stripe cancels uncaptured intents after seven days) or cancelled: charge the card now.
            _update_hold(hold, status=HoldStatus.EXPIRED, last_error=f"intent {intent.status} at capture")
            logger.warning("card hold %s was %s at capture; charging off-session", hold.id, intent.status)
            return self._charge_off_session(
                client, request, amount_minor=request.amount_minor, key=request.idempotency_key
            )
        _update_hold(
            hold, status=HoldStatus.CAPTURED, captured_minor=from_hold, captured_by=request.reference
        )
        excess = request.amount_minor - from_hold
        if excess > 0:
            logger.error(
                "FLAGGED: trip %s charged %s %s, %s above its hold %s; the excess is a second charge",
                request.trip_id,
                request.amount_minor,
                request.currency,
                excess,
                hold.id,
            )
            _update_hold(hold, over_authorization_minor=excess)
            # The hold's part is taken: recorded as collected, the excess becomes its own capture (charged
            # off-session, retried, owed on its own if the card refuses it).
            return PaymentResult(ok=True, provider_reference=intent.id, collected_minor=from_hold)
        return PaymentResult(ok=True, provider_reference=intent.id)

    def _charge_off_session(
        self, client: stripe.StripeClient, request: PaymentRequest, *, amount_minor: int, key: str
    ) -> PaymentResult:
        customer = StripeCustomer.objects.filter(rider_id=request.rider_id).first()
        method_id = customer.default_payment_method_id if customer else ""
        if customer is not None and not method_id:
            methods = client.v1.payment_methods.list(
                params={"customer": customer.customer_id, "type": "card", "limit": 1}
            )
            method_id = methods.data[0].id if methods.data else ""
        if customer is None or not method_id:
            return PaymentResult(ok=False, error="stripe: the rider has no card saved")
        intent = client.v1.payment_intents.create(
            params={
                "amount": amount_minor,
                "currency": request.currency.lower(),
                "customer": customer.customer_id,
                "payment_method": method_id,
                "confirm": True,
                "off_session": True,
                "metadata": {"rochdale_capture": request.reference, "purpose": request.purpose},
            },
            options={"idempotency_key": key},
        )
        if intent.status == "succeeded":
            return PaymentResult(ok=True, provider_reference=intent.id)
        if intent.status == "processing":
            # The charge is on its way; the retry repeats the key and Stripe answers with this intent.
            return PaymentResult(ok=False, error="stripe: the charge is processing", definitive=False)
        return PaymentResult(
            ok=False, error=f"stripe: the charge ended {intent.status} ({object_id(intent.latest_charge)})"
        )


def overcharge_give_back(
    client: stripe.StripeClient, *, payment_intent_id: str, over_minor: int, returned_for: str
) -> PaymentResult:
    """Refund what an intent took beyond what its capture (or hold) `returned_for` asks, less what was given
    back for it already, so the capture's retry and Stripe's event can both ask without giving back twice.
    Tagged `rochdale_return`: the `charge.refunded` webhook knows it is ours and posts nothing (the ledger
    never recorded it as taken). A failure is never the rider's refusal: it is retried under the same key."""
    if over_minor <= 0:
        return PaymentResult(ok=True)
    try:
        listed = client.v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
        returned = sum(
            refund.amount
            for refund in listed.data
            if refund.status in ("succeeded", "pending")
            and (refund.metadata.to_dict() if refund.metadata else {}).get("rochdale_return") == returned_for
        )
        due = over_minor - returned
        if due <= 0:
            return PaymentResult(ok=True)
        refund = client.v1.refunds.create(
            params={
                "payment_intent": payment_intent_id,
                "amount": due,
                "metadata": {"rochdale_return": returned_for},
            },
            options={"idempotency_key": f"rochdale:return:{returned_for}:{over_minor}"},
        )
    except stripe.StripeError as exc:
        return PaymentResult(ok=False, error=stripe_failure(exc).message, definitive=False)
    if refund.status not in ("succeeded", "pending"):
        return PaymentResult(ok=False, error=f"stripe: giving back ended {refund.status}", definitive=False)
    logger.warning(
        "%s: Stripe had taken %s more than it asks (a refund reduced it while the charge's answer was lost); "
        "gave it back (%s)",
        returned_for,
        due,
        refund.id,
    )
    return PaymentResult(ok=True, provider_reference=refund.id)


def _failed(exc: stripe.StripeError) -> PaymentResult:
    failure = stripe_failure(exc)
    return PaymentResult(ok=False, error=failure.message, definitive=failure.definitive)


def _update_hold(hold: CardHold, **fields: object) -> None:
    CardHold.objects.filter(id=hold.id).update(**fields, updated_at=timezone.now())
