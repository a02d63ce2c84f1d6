"""Stripe's webhook events: verified, stored by event id, and applied so that order and repetition change
nothing twice.

`webhook_receive` checks the `Stripe-Signature` header against `STRIPE_WEBHOOK_SECRET` (HMAC-SHA256 of the
timestamp and the raw body, within Stripe's five-minute tolerance), stores the event under its id (a repeat
delivery counts itself and is not applied again), then applies it. Every effect is keyed, so applying is
idempotent on its own and an event that arrives before or after the state it talks about does the right
thing:

- `payment_intent.succeeded`: the capture the intent was made for (metadata `rochdale_capture`, or the trip
  of the hold it holds, `rochdale_hold`) is recorded as succeeded if our own attempt's answer never came,
  and what the intent took beyond what the capture asks now (a refund reduced it meanwhile) goes back;
- `payment_intent.payment_failed`: that capture becomes a refusal (retried, and overdue for the rider);
  an authorisation still in flight becomes declined, and a hold's failure never touches a capture (it is
  the authorisation that failed, however late the event comes);
- `charge.refunded`: each refund of ours (metadata `rochdale_capture`) that Stripe made (`succeeded` or
  `pending`, not `failed`) confirms its refund payout, and a return of ours (`rochdale_return`: what a
  charge took beyond its capture) posts nothing; a refund made elsewhere (the Stripe dashboard) is
  posted as a refund entry `refund:stripe:{re_id}` (Dr refunds, Cr cash_clearing: the money left the
  co-op's balance at Stripe);
- `charge.dispute.created`: the disputed amount leaves the balance, `dispute:{dp_id}`
  (Dr chargebacks, Cr cash_clearing), and staff are told in the log; the ledger keeps what the trip charged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.cards.holds import cards_in_use
from backend.cards.models import CardHold, HoldStatus, WebhookEvent
from backend.cards.provider import overcharge_give_back
from backend.cards.stripe_api import amount_taken, object_id, rochdale_id, stripe_client
from backend.errors import InvalidInput, NotFound, ServiceUnavailable
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, CapturePurpose, CaptureStatus, PaymentCapture
from backend.fares.payments import capture_confirm, capture_refused, lock_trip_key_share

logger = logging.getLogger(__name__)

# A refund in these states has left (or is leaving) the co-op's balance; `failed` and `canceled` have not.
_REFUND_MADE = ("succeeded", "pending")


def webhook_receive(*, payload: bytes, signature: str) -> WebhookEvent:
    """Verify, store (once per event id) and apply one delivery. Raises InvalidInput `invalid_signature`
    for a body the secret did not sign (or a stale timestamp), NotFound `cards_not_accepted` where the co-op
    takes no cards (the route is not there for it), ServiceUnavailable when it does but no secret is set."""
    if not cards_in_use():
        raise NotFound(_("This co-op takes no cards."), code="cards_not_accepted")
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise ServiceUnavailable(_("Card webhooks are not configured here."), code="webhooks_not_configured")
    try:
        event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature or "", secret)
    except (ValueError, UnicodeDecodeError, stripe.SignatureVerificationError) as exc:
        raise InvalidInput(
            _("The webhook signature does not match its body."), code="invalid_signature"
        ) from exc
    stored = _store(event)
    if stored.processed_at is None:
        _apply(stored)
    return WebhookEvent.objects.get(event_id=stored.event_id)


def _store(event: stripe.Event) -> WebhookEvent:
    created = datetime.fromtimestamp(int(event.created), tz=UTC)
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(
                event_id=event.id, type=event.type, created=created, payload=event.to_dict()
            )
    except IntegrityError:
        WebhookEvent.objects.filter(event_id=event.id).update(deliveries=F("deliveries") + 1)
        return WebhookEvent.objects.get(event_id=event.id)


def _apply(stored: WebhookEvent) -> None:
    handler = _HANDLERS.get(stored.type)
    obj = (stored.payload.get("data") or {}).get("object") or {}
    outcome = handler(obj) if handler is not None else "ignored: not an event Rochdale acts on"
    # Conditional, so two deliveries applied at once (each idempotent) stamp the event once.
    WebhookEvent.objects.filter(event_id=stored.event_id, processed_at__isnull=True).update(
        processed_at=timezone.now(), outcome=outcome[:300]
    )


def _capture_of_intent(intent: dict) -> PaymentCapture | None:
    """The capture an intent was made for: named in its metadata (off-session charges) or, for a hold,
    the fare or fee capture of the hold's trip."""
    capture_id = rochdale_id(intent.get("metadata"), "rochdale_capture")
    if capture_id is not None:
        return PaymentCapture.objects.filter(id=capture_id).first()
    hold = _hold_of_intent(intent)
    if hold is None or hold.trip_id is None:
        return None
    return (
        PaymentCapture.objects.filter(
            trip_id=hold.trip_id, purpose__in=[CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE]
        )
        .order_by("created_at")
        .first()
    )


def _hold_of_intent(intent: dict) -> CardHold | None:
    hold_id = rochdale_id(intent.get("metadata"), "rochdale_hold")
    query = Q(payment_intent_id=intent.get("id") or "-")
    if hold_id is not None:
        query |= Q(id=hold_id)
    return CardHold.objects.filter(query).first()


def _payment_intent_succeeded(intent: dict) -> str:
    capture = _capture_of_intent(intent)
    if capture is None:
        return "no capture of ours for this intent"
    hold = _hold_of_intent(intent)
    if hold is not None and capture.amount_minor > hold.amount_minor:
        # The hold covered part of it; the excess is a second intent whose own event settles the capture.
        return f"hold part of capture {capture.id} captured; the excess settles it"
    taken, reference = amount_taken(intent), str(intent.get("id"))
    confirmed = capture_confirm(capture_id=capture.id, provider_reference=reference)
    if confirmed is not None and confirmed.status == CaptureStatus.VOIDED and hold is None:
        # A refund voided the capture while this charge's answer was lost: the ledger collects nothing, so
        # all of it goes back (a hold's own capture is given back by the hold sweep instead).
        _give_back(intent, capture=confirmed, over_minor=taken)
        return f"capture {capture.id} voided; its charge given back"
    if confirmed is None or confirmed.status != CaptureStatus.SUCCEEDED:
        return f"capture {capture.id} {confirmed.status if confirmed else 'gone'}"
    # Recorded for what the capture asks now: a refund that reduced it while the charge's answer was lost
    # left Stripe holding more, which goes back (never twice: what was given back already counts).
    over = taken - confirmed.amount_minor
    if confirmed.provider_reference == reference and over > 0:
        _give_back(intent, capture=confirmed, over_minor=min(over, taken))
    return f"capture {capture.id} succeeded"


def _give_back(intent: dict, *, capture: PaymentCapture, over_minor: int) -> None:
    """Give back what `intent` took beyond its capture; an outage answers 503, so Stripe delivers the event
    again (what was given back already counts then)."""
    returned = overcharge_give_back(
        stripe_client(),
        payment_intent_id=str(intent.get("id")),
        over_minor=over_minor,
        returned_for=str(capture.id),
    )
    if not returned.ok:
        raise ServiceUnavailable(
            _("Could not give back what capture %(id)s took beyond its amount.") % {"id": capture.id}
        )


def _payment_intent_failed(intent: dict) -> str:
    hold = _hold_of_intent(intent)
    if hold is not None:
        # A hold's intent fails only when its authorisation does (capturing an authorised intent never
        # fails it): it says nothing of the trip's fare, which is charged off-session without a hold.
        declined = CardHold.objects.filter(id=hold.id, status=HoldStatus.AUTHORIZING).update(
            status=HoldStatus.DECLINED, last_error="declined (webhook)", updated_at=timezone.now()
        )
        return f"hold {hold.id} declined" if declined else f"hold {hold.id} already {hold.status}"
    capture = _capture_of_intent(intent)
    if capture is None:
        return "no capture of ours for this intent"
    error = (intent.get("last_payment_error") or {}).get("message") or "the card was declined"
    refused = capture_refused(capture_id=capture.id, error=f"stripe (webhook): {error}")
    return f"capture {capture.id} {refused.status if refused else 'gone'}"


def _charge_refunded(charge: dict) -> str:
    refunds = ((charge.get("refunds") or {}).get("data")) or []
    trip_id = _trip_of_charge(charge)
    outcomes = []
    for refund in refunds:
        if rochdale_id(refund.get("metadata"), "rochdale_return") is not None:
            # What we gave back of a charge the ledger never recorded as taken (backend/cards/provider.py).
            outcomes.append(f"{refund.get('id')} ours, a return: nothing to post")
            continue
        capture_id = rochdale_id(refund.get("metadata"), "rochdale_capture")
        if capture_id is not None and refund.get("status") not in _REFUND_MADE:
            # Ours, and it failed at Stripe: its payout is still owed, and its next attempt makes another.
            outcomes.append(f"{refund.get('id')} ours, {refund.get('status')} at Stripe: not paid back")
            continue
        if capture_id is not None:
            payout = PaymentCapture.objects.filter(id=capture_id).first()
            listed = sum(
                int(other.get("amount") or 0)
                for other in refunds
                if rochdale_id(other.get("metadata"), "rochdale_capture") == capture_id
                and other.get("status") in _REFUND_MADE
            )
            if payout is not None and listed < payout.amount_minor:
                # Part of a payout given back from several charges: its own attempt records it whole.
                outcomes.append(f"{refund.get('id')} ours, part of {capture_id}: left to its attempt")
                continue
            confirmed = capture_confirm(capture_id=capture_id, provider_reference=str(refund.get("id")))
            outcomes.append(f"{refund.get('id')} ours ({confirmed.status if confirmed else 'unknown'})")
            continue
        if trip_id is None:
            outcomes.append(f"{refund.get('id')} not for a trip of ours")
            continue
        amount = int(refund.get("amount") or 0)
        if amount <= 0 or refund.get("status") not in _REFUND_MADE:
            continue
        _post_with_trip_lock(
            trip_id=trip_id,
            key=f"refund:stripe:{refund.get('id')}",
            kind="refund",
            currency=str(charge.get("currency") or "").upper(),
            lines=[debit(AccountKind.REFUNDS, None, amount), credit(AccountKind.CASH_CLEARING, None, amount)],
            memo=f"Refund made at Stripe on trip {trip_id}",
            metadata={"stripe_refund": refund.get("id"), "charge": charge.get("id"), "made_at_stripe": True},
        )
        logger.warning("refund %s was made at Stripe, not through Rochdale; posted it", refund.get("id"))
        outcomes.append(f"{refund.get('id')} posted")
    return "; ".join(outcomes) or "no refunds"


def _dispute_created(dispute: dict) -> str:
    charge_ref = dispute.get("charge")
    intent_id = object_id(dispute.get("payment_intent") or "")
    trip_id = _trip_of_charge({"id": charge_ref, "payment_intent": intent_id})
    amount = int(dispute.get("amount") or 0)
    if trip_id is None or amount <= 0:
        return "not for a trip of ours"
    _post_with_trip_lock(
        trip_id=trip_id,
        key=f"dispute:{dispute.get('id')}",
        kind="chargeback",
        currency=str(dispute.get("currency") or "").upper(),
        lines=[debit(AccountKind.CHARGEBACKS, None, amount), credit(AccountKind.CASH_CLEARING, None, amount)],
        memo=f"Card dispute on trip {trip_id}: {dispute.get('reason') or 'no reason given'}",
        metadata={"dispute": dispute.get("id"), "reason": dispute.get("reason"), "charge": charge_ref},
    )
    logger.error(
        "card dispute %s on trip %s for %s: staff must answer it at Stripe",
        dispute.get("id"),
        trip_id,
        amount,
    )
    return f"dispute posted for trip {trip_id}"


def _trip_of_charge(charge: dict) -> uuid.UUID | None:
    """The trip a charge belongs to: through its intent (a hold's, or a capture's provider reference)."""
    intent_id = object_id(charge.get("payment_intent") or "")
    if not intent_id:
        return None
    hold = CardHold.objects.filter(payment_intent_id=intent_id).exclude(trip__isnull=True).first()
    if hold is not None:
        return hold.trip_id
    capture = PaymentCapture.objects.filter(provider_reference=intent_id).exclude(trip__isnull=True).first()
    return capture.trip_id if capture is not None else None


def _post_with_trip_lock(
    *,
    trip_id: uuid.UUID,
    key: str,
    kind: str,
    currency: str,
    lines: list[ledger.Line],
    memo: str,
    metadata: dict[str, object],
) -> None:
    """Post an entry for a trip in the ledger's lock order (the trip first, then ledger rows)."""
    with transaction.atomic():
        lock_trip_key_share(trip_id)
        ledger.post_entry(
            key=key, kind=kind, currency=currency, lines=lines, memo=memo, trip_id=trip_id, metadata=metadata
        )


_HANDLERS: dict[str, Callable[[dict], str]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}
