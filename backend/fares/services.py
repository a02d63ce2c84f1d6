"""Writes that are not a trip's own settlement: new fare policy versions and staff refunds.

A fare policy version is created only here (called by governance when a board proposal passes, and by
`manage.py fare_policy_adopt` for the founding board) or by the seed migration. Refunds are new journal
entries, never edits of the fare's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from backend.errors import InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import (
    AccountKind,
    CapturePurpose,
    CaptureStatus,
    FarePolicyVersion,
    JournalEntry,
    PaymentCapture,
    PolicySource,
    Posting,
)
from backend.fares.policy import FarePolicy, PolicyValidationError

# One advisory lock serialises version numbering (max + 1) across processes; the primary key backs it up.
_POLICY_NUMBERING_LOCK = 0x5F415245  # "_ARE": any constant unique to this use
_WRITABLE_SOURCES = (PolicySource.GOVERNANCE, PolicySource.FOUNDING)


def policy_version_create(
    *,
    document: dict,
    effective_at: datetime | None,
    source: str,
    proposal_id: uuid.UUID | None = None,
) -> FarePolicyVersion:
    """Validate a fare policy and store it as the next version.

    `effective_at` (else the document's own `effective_at`, else now) is never earlier than now: a policy
    takes effect at once or later, so the history of what was in force is never rewritten. The stored
    document is the normalised contract object without `version` and `effective_at`, which the server sets.
    A proposal produces at most one version: calling again with the same `proposal_id` returns it.

    Raises InvalidInput (`invalid_fare_policy`, details keyed by field path) for a document that is not a
    valid policy, and InvalidInput for a bad source or a naive `effective_at`.
    """
    if source not in _WRITABLE_SOURCES:
        raise InvalidInput(
            "A fare policy version comes from a passed proposal or the founding board.",
            details={"source": [f"must be one of {', '.join(s.value for s in _WRITABLE_SOURCES)}"]},
        )
    if effective_at is not None and timezone.is_naive(effective_at):
        raise InvalidInput(details={"effective_at": ["must carry a time zone"]})
    if source == PolicySource.GOVERNANCE and proposal_id is None:
        raise InvalidInput(details={"proposal_id": ["a governance version names its proposal"]})
    try:
        policy = FarePolicy.from_document(document)
    except PolicyValidationError as exc:
        raise InvalidInput(str(exc), code=exc.code, details=exc.details) from exc

    stored = policy.to_document()
    stored.pop("version")
    stored.pop("effective_at")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POLICY_NUMBERING_LOCK])
        if proposal_id is not None:
            existing = FarePolicyVersion.objects.filter(proposal_id=proposal_id).first()
            if existing is not None:
                return existing
        now = timezone.now()
        requested = effective_at or policy.effective_at or now
        latest = FarePolicyVersion.objects.aggregate(latest=Max("version"))["latest"] or 0
        return FarePolicyVersion.objects.create(
            version=latest + 1,
            effective_at=max(requested, now),
            document=stored,
            source=source,
            proposal_id=proposal_id,
            created_at=now,
        )


# --- Refunds -----------------------------------------------------------------------------------------------

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
    from backend.accounts.models import User
    from backend.fares.payments import capture_create
    from dispatch.models import Trip

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
                trip=trip,
                entry=entry,
                amount_minor=amount_minor,
                uncaptured=uncaptured,
                create=capture_create,
            )
    return entry


def _rider_charged_minor(trip: Any) -> int:
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


def _refunded_minor(trip: Any) -> int:
    total = Posting.objects.filter(
        entry__trip_id=trip.id, entry__kind="refund", account__kind=AccountKind.REFUNDS
    ).aggregate(total=Sum("debit_minor"))["total"]
    return total or 0


def _lock_uncaptured_charge(trip: Any) -> PaymentCapture | None:
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
    *,
    trip: Any,
    entry: JournalEntry,
    amount_minor: int,
    uncaptured: PaymentCapture | None,
    create: Callable[..., PaymentCapture],
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
    create(
        key=f"refund-payout:{entry.id}",
        purpose=CapturePurpose.REFUND,
        rider_id=trip.rider_id,
        amount_minor=amount_minor,
        currency=trip.currency,
        trip_id=trip.id,
        source_entry_id=entry.id,
    )
