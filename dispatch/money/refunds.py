"""Staff refunds of what a trip charged its rider: new journal entries, never edits of the fare's."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from backend.accounts.models import User
from backend.errors import InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares import ledger
from backend.fares.captures import capture_create
from backend.fares.ledger import credit, debit
from backend.fares.models import (
    AccountKind,
    CapturePurpose,
    CaptureStatus,
    JournalEntry,
    PaymentCapture,
    Posting,
)
from dispatch.models import Trip

_CHARGE_KINDS = ("trip_fare", "cancellation_fee")


def refund_post(
    *,
    trip_id: uuid.UUID,
    amount_minor: int,
    reason: str,
    staff_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> JournalEntry:
    """A staff refund of (part of) what a trip charged the rider, as a new entry.

    Dr refunds (the co-op's expense), Cr rider_receivable(rider): the driver keeps the pay. If the
    charge has not been captured yet, the capture is reduced (voided when nothing is left); if it has,
    a refund payout goes back to the rider through the payment provider (retried like any capture).
    At most what the trip charged (fare or cancellation fee, tips excluded) can be refunded in total.
    With an `idempotency_key` the same refund is recorded once however often it is asked for.
    """
    problems: dict[str, list[str]] = {}
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        problems["amount"] = ["must be a positive whole number of minor units"]
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
        problems["reason"] = ["must be a sentence of 1 to 300 characters"]
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        problems["idempotency_key"] = ["must be 1 to 64 characters"]
    if problems:
        raise InvalidInput(details=problems)
    if not User.objects.filter(id=staff_id, is_staff=True).exists():
        raise PermissionDenied("Only staff may refund.", code="staff_only")

    with transaction.atomic():
        trip = Trip.objects.select_for_update().filter(id=trip_id).first()
        if trip is None:
            raise NotFound("No such trip.", code="trip_not_found")
        if idempotency_key is not None:
            key = f"refund:{trip.id}:{idempotency_key}"
            existing = JournalEntry.objects.filter(key=key).first()
            if existing is not None:
                return existing
        charged = _rider_charged_minor(trip)
        refunded = _refunded_minor(trip)
        if amount_minor > charged - refunded:
            raise Unprocessable(
                "A refund cannot exceed what the trip charged, less earlier refunds.",
                code="refund_exceeds_charge",
                details={"refundable": charged - refunded, "currency": trip.currency},
            )
        if idempotency_key is None:
            count = JournalEntry.objects.filter(trip_id=trip.id, kind="refund").count()
            key = f"refund:{trip.id}:{count + 1}"
        # The ledger's lock order: the trip (above), then the charge's capture row, then ledger rows.
        uncaptured = _lock_uncaptured_charge(trip)
        entry, created = ledger.post_entry(
            key=key,
            kind="refund",
            currency=trip.currency,
            trip_id=trip.id,
            memo=f"Refund on trip {trip.id}: {reason.strip()}"[:300],
            lines=[
                debit(AccountKind.REFUNDS, None, amount_minor),
                credit(AccountKind.RIDER_RECEIVABLE, trip.rider_id, amount_minor),
            ],
            metadata={"staff_id": str(staff_id), "reason": reason.strip()},
        )
        if created:
            _settle_refund_with_provider(
                trip=trip, entry=entry, amount_minor=amount_minor, uncaptured=uncaptured
            )
    return entry


def _rider_charged_minor(trip: Trip) -> int:
    charged = Posting.objects.filter(
        entry__trip_id=trip.id,
        entry__kind__in=_CHARGE_KINDS,
        account__kind=AccountKind.RIDER_RECEIVABLE,
    ).aggregate(total=Sum("debit_minor"))["total"]
    reversed_ = Posting.objects.filter(
        entry__trip_id=trip.id,
        entry__kind="reversal",
        entry__reverses__kind__in=_CHARGE_KINDS,
        account__kind=AccountKind.RIDER_RECEIVABLE,
    ).aggregate(total=Sum("credit_minor"))["total"]
    return (charged or 0) - (reversed_ or 0)


def _refunded_minor(trip: Trip) -> int:
    total = Posting.objects.filter(
        entry__trip_id=trip.id, entry__kind="refund", account__kind=AccountKind.REFUNDS
    ).aggregate(total=Sum("debit_minor"))["total"]
    return total or 0


def _lock_uncaptured_charge(trip: Trip) -> PaymentCapture | None:
    """The trip's fare or fee capture if it is not captured yet (pending or failed), locked."""
    return (
        PaymentCapture.objects.select_for_update()
        .filter(
            trip_id=trip.id,
            purpose__in=[CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE],
            status__in=[CaptureStatus.PENDING, CaptureStatus.FAILED],
        )
        .first()
    )


def _settle_refund_with_provider(
    *, trip: Trip, entry: JournalEntry, amount_minor: int, uncaptured: PaymentCapture | None
) -> None:
    if uncaptured is not None and uncaptured.amount_minor >= amount_minor:
        # Not captured yet: collect less instead of collecting and paying back (a new amount is a new
        # idempotency key at the provider, so the smaller charge is never mistaken for the first).
        remaining = uncaptured.amount_minor - amount_minor
        PaymentCapture.objects.filter(id=uncaptured.id).update(
            amount_minor=remaining,
            status=CaptureStatus.VOIDED if remaining == 0 else uncaptured.status,
            next_attempt_at=None if remaining == 0 else uncaptured.next_attempt_at,
            updated_at=timezone.now(),
        )
        return
    capture_create(
        key=f"refund-payout:{entry.id}",
        purpose=CapturePurpose.REFUND,
        rider_id=trip.rider_id,
        amount_minor=amount_minor,
        currency=trip.currency,
        trip_id=trip.id,
        source_entry_id=entry.id,
    )
