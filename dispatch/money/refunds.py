"""Staff refunds of what a trip charged its rider: new journal entries, never edits of the fare's.

A refund of `amount` (at most what the trip charged, fare + fees or a late-cancellation fee, less earlier
refunds; tips are the driver's and are not refunded here) is split over what is left to refund of each
part of the charge, in proportion (largest remainders, `governance.dividends.largest_remainder_split`), so a
full refund gives back every part exactly and a partial one gives back tax in step with the fare:

- a pass-through fee's part comes back out of that fee's own account (`Dr pass_through[code]`): the co-op
  no longer owes it on, and it never touches driver pay;
- the fare's part is split between the co-op and the driver by the trip's fare policy,
  `refunds.driver_pay` (`backend/fares/pricing.py` `refund_split`): `kept` (the default) leaves the pay
  whole and the co-op bears it all (`Dr refunds`); `shared_above_floor` has the driver bear their share of
  it (`Dr driver_payable`), but only out of pay above the trip's floor, so no refund ever takes a trip
  below the floor the board guarantees;
- a late-cancellation fee's refund is the co-op's (`Dr refunds`);
- and the rider is credited the whole amount (`Cr rider_receivable`).

A trip an organisation pays for (docs/billing.md) is refunded to the organisation: the same split, with
`Cr organisation_receivable(code=its id)` instead of the rider's receivable, and nothing goes through the
payment provider (no card was charged). The credit reduces what the organisation owes: its next invoice
that has not been issued yet carries the refund as a negative line (the same invoice as the charge when
that one has not been issued either).

Settling it with the rider's money: while nothing can have been charged yet (the capture is pending, or
every attempt was refused), the capture is reduced (voided when nothing is left); otherwise (captured, or
an attempt whose outcome is unknown: it may have been charged under its key, and a new amount would be a
new key) a refund payout goes back through the payment provider (`refund-payout:{entry}`), retried like any
capture until the charge has settled. After commit the rider's updated receipt is emailed
(dispatch/money/receipt_mail.py).

Entries: `refund:{trip_id}:{n}` (the n-th refund of the trip) or `refund:{trip_id}:{idempotency key}`, kind
`refund`, metadata `{"staff_id", "reason", "fare_part", "driver_part", "fees": [{"code", "label",
"amount"}]}`. Staff only (`staff_only`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from backend.accounts.models import User
from backend.errors import InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares import ledger
from backend.fares.captures import capture_create
from backend.fares.ledger import debit
from backend.fares.models import (
    AccountKind,
    CapturePurpose,
    CaptureStatus,
    JournalEntry,
    PaymentCapture,
    Posting,
)
from backend.fares.pricing import refund_split
from backend.fares.selectors import policy_of
from dispatch.models import Trip
from dispatch.money.payer import (
    PAYER_RECEIVABLE_KINDS,
    billed_organisation_id,
    payer_credit,
    payer_metadata,
)
from dispatch.money.receipt_mail import ReceiptOccasion, receipt_email_enqueue
from dispatch.money.receipts import refund_reason
from governance.dividends import largest_remainder_split

REFUND_REASON_MAX_LENGTH = 300
IDEMPOTENCY_KEY_MAX_LENGTH = 64
_CHARGE_KINDS = ("trip_fare", "cancellation_fee")
# The parts a charge is made of, as refund allocation keys: the fare, the cancellation fee, each fee by code.
_FARE = "fare"
_CANCELLATION = "cancellation"
_FEE_PREFIX = "fee:"


@dataclass(frozen=True)
class Refund:
    """One refund as staff and the receipt see it (amounts in minor units of `currency`)."""

    id: uuid.UUID
    key: str
    trip_id: uuid.UUID
    currency: str
    amount: int
    driver_part: int
    fee_part: int
    reason: str
    staff_id: uuid.UUID | None
    created_at: datetime
    payout_status: str | None  # the refund payout's capture status; None when the capture was reduced


@dataclass(frozen=True)
class TripRefunds:
    """A trip's refunds (newest first), what they gave back, and what may still be refunded."""

    currency: str
    refunds: list[Refund]
    refundable: int

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds)


@dataclass(frozen=True)
class _ChargePart:
    key: str
    label: str
    charged: int
    refunded: int

    @property
    def left(self) -> int:
        return self.charged - self.refunded


def refund_post(
    *,
    trip_id: uuid.UUID,
    amount_minor: int,
    reason: str,
    staff_id: uuid.UUID,
    idempotency_key: str | None = None,
    currency: str | None = None,
) -> JournalEntry:
    """A staff refund of (part of) what a trip charged the rider, as a new entry (see the module docstring
    for who bears it). With an `idempotency_key` the same refund is recorded once however often it is
    asked for; with a `currency` it must be the trip's. Raises InvalidInput (bad amount, reason or key),
    PermissionDenied (`staff_only`), NotFound (`trip_not_found`) and Unprocessable (`currency_mismatch`,
    `refund_exceeds_charge` with `details.refundable`)."""
    problems: dict[str, list[str]] = {}
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        problems["amount"] = [gettext("must be a positive whole number of minor units")]
    if not isinstance(reason, str) or not reason.strip() or len(reason.strip()) > REFUND_REASON_MAX_LENGTH:
        problems["reason"] = [
            gettext("must be a sentence of 1 to %(refund_reason_max_length)s characters")
            % {"refund_reason_max_length": REFUND_REASON_MAX_LENGTH}
        ]
    if idempotency_key is not None and not (0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX_LENGTH):
        problems["idempotency_key"] = [
            gettext("must be 1 to %(idempotency_key_max_length)s characters")
            % {"idempotency_key_max_length": IDEMPOTENCY_KEY_MAX_LENGTH}
        ]
    if problems:
        raise InvalidInput(details=problems)
    if not User.objects.filter(id=staff_id, is_staff=True, is_active=True).exists():
        raise PermissionDenied(gettext("Only staff may refund."), code="staff_only")

    with transaction.atomic():
        trip = Trip.objects.select_for_update().filter(id=trip_id).first()
        if trip is None:
            raise NotFound(gettext("No such trip."), code="trip_not_found")
        if currency is not None and currency != trip.currency:
            raise Unprocessable(
                gettext("A refund is in the trip's currency."),
                code="currency_mismatch",
                details={"currency": trip.currency},
            )
        if idempotency_key is not None:
            key = f"refund:{trip.id}:{idempotency_key}"
            existing = JournalEntry.objects.filter(key=key).first()
            if existing is not None:
                return existing
        parts = _charge_parts(trip)
        refundable = sum(part.left for part in parts)
        if amount_minor > refundable:
            raise Unprocessable(
                gettext("A refund cannot exceed what the trip charged, less earlier refunds."),
                code="refund_exceeds_charge",
                details={"refundable": refundable, "currency": trip.currency},
            )
        if idempotency_key is None:
            key = _next_numbered_key(trip)
        shares = largest_remainder_split(amount_minor, {part.key: part.left for part in parts if part.left})
        fare_part = shares.get(_FARE, 0)
        driver_part = _driver_part(trip, fare_part=fare_part) if fare_part else 0
        fee_lines = [
            (part.key.removeprefix(_FEE_PREFIX), part.label, shares[part.key])
            for part in parts
            if part.key.startswith(_FEE_PREFIX) and shares.get(part.key)
        ]
        coop_part = amount_minor - driver_part - sum(amount for _, _, amount in fee_lines)
        organisation_id = billed_organisation_id(trip)
        # The ledger's lock order: the trip (above), then the charge's capture row, then ledger rows.
        uncaptured = _lock_uncaptured_charge(trip) if organisation_id is None else None
        entry, created = ledger.post_entry(
            key=key,
            kind="refund",
            currency=trip.currency,
            trip_id=trip.id,
            memo=f"Refund on trip {trip.id}: {reason.strip()}"[:300],
            lines=[
                debit(AccountKind.REFUNDS, None, coop_part),
                debit(AccountKind.DRIVER_PAYABLE, trip.driver_id, driver_part),
                *(debit(AccountKind.PASS_THROUGH, None, amount, code=code) for code, _, amount in fee_lines),
                payer_credit(
                    rider_id=trip.rider_id, organisation_id=organisation_id, amount_minor=amount_minor
                ),
            ],
            metadata={
                **payer_metadata(organisation_id),
                "staff_id": str(staff_id),
                "reason": reason.strip(),
                "fare_part": fare_part,
                "driver_part": driver_part,
                "fees": [
                    {"code": code, "label": label, "amount": amount} for code, label, amount in fee_lines
                ],
            },
        )
        if created:
            if organisation_id is None:  # an organisation's refund is a credit on its account, not a payout
                _settle_refund_with_provider(
                    trip=trip, entry=entry, amount_minor=amount_minor, uncaptured=uncaptured
                )
            receipt_email_enqueue(trip_id=trip.id, occasion=ReceiptOccasion.REFUNDED)
    return entry


def trip_refunds(*, trip_id: uuid.UUID) -> TripRefunds:
    """The trip's refunds, newest first, and what may still be refunded (NotFound `trip_not_found`)."""
    trip = Trip.objects.filter(id=trip_id).first()
    if trip is None:
        raise NotFound(gettext("No such trip."), code="trip_not_found")
    entries = list(JournalEntry.objects.filter(trip_id=trip.id, kind="refund").order_by("-created_at", "-id"))
    # What each refund gave back is the money its entry moved (its credits): to the rider's receivable for
    # ours, out of the co-op's balance for one made at the card processor (refund:stripe:{id}).
    moved: dict[uuid.UUID, int] = {entry.id: 0 for entry in entries}
    driver_debit: dict[uuid.UUID, int] = {entry.id: 0 for entry in entries}
    fee_debit: dict[uuid.UUID, int] = {entry.id: 0 for entry in entries}
    for entry_id, kind, debit_minor, credit_minor in Posting.objects.filter(entry__in=entries).values_list(
        "entry_id", "account__kind", "debit_minor", "credit_minor"
    ):
        moved[entry_id] += credit_minor
        if kind == AccountKind.DRIVER_PAYABLE:
            driver_debit[entry_id] += debit_minor - credit_minor
        elif kind == AccountKind.PASS_THROUGH:
            fee_debit[entry_id] += debit_minor - credit_minor
    payouts = dict(
        PaymentCapture.objects.filter(
            source_entry_id__in=[entry.id for entry in entries], purpose=CapturePurpose.REFUND
        ).values_list("source_entry_id", "status")
    )
    refunds = []
    for entry in entries:
        metadata = entry.metadata or {}
        staff = metadata.get("staff_id")
        refunds.append(
            Refund(
                id=entry.id,
                key=entry.key,
                trip_id=trip.id,
                currency=trip.currency,
                amount=moved[entry.id],
                driver_part=driver_debit[entry.id],
                fee_part=fee_debit[entry.id],
                reason=refund_reason(metadata),
                staff_id=uuid.UUID(staff) if staff else None,
                created_at=entry.created_at,
                payout_status=payouts.get(entry.id),
            )
        )
    refundable = sum(part.left for part in _charge_parts(trip))
    return TripRefunds(currency=trip.currency, refunds=refunds, refundable=refundable)


def _charge_parts(trip: Trip) -> list[_ChargePart]:
    """What the trip charged its payer (the rider, or the organisation that pays for it), part by part (the
    fare, each pass-through fee, a cancellation fee), each net of reversals, with what earlier refunds gave
    back of it."""
    entries = list(
        JournalEntry.objects.filter(trip_id=trip.id)
        .filter(Q(kind__in=(*_CHARGE_KINDS, "refund")) | Q(kind="reversal", reverses__kind__in=_CHARGE_KINDS))
        .select_related("reverses")
    )
    rider_net: dict[uuid.UUID, int] = {entry.id: 0 for entry in entries}
    moved: dict[uuid.UUID, int] = {entry.id: 0 for entry in entries}
    for entry_id, kind, debit_minor, credit_minor in Posting.objects.filter(entry__in=entries).values_list(
        "entry_id", "account__kind", "debit_minor", "credit_minor"
    ):
        moved[entry_id] += credit_minor
        if kind in PAYER_RECEIVABLE_KINDS:
            rider_net[entry_id] += debit_minor - credit_minor

    charged: dict[str, int] = {}
    labels: dict[str, str] = {_FARE: "Fare", _CANCELLATION: "Late cancellation fee"}
    refunded: dict[str, int] = {}
    for entry in entries:
        source = entry.reverses if entry.kind == "reversal" and entry.reverses else entry
        metadata, kind = source.metadata or {}, source.kind
        sign = -1 if entry.kind == "reversal" else 1
        if kind == "refund":
            refunded[_FARE] = refunded.get(_FARE, 0) + _refunded_fare(entry, moved[entry.id])
            for fee in metadata.get("fees") or []:
                fee_key = _FEE_PREFIX + str(fee["code"])
                refunded[fee_key] = refunded.get(fee_key, 0) + int(fee["amount"])
            continue
        if kind == "cancellation_fee":
            charged[_CANCELLATION] = charged.get(_CANCELLATION, 0) + rider_net[entry.id]
            continue
        fees_total = 0
        for fee in metadata.get("fees") or []:
            fee_key = _FEE_PREFIX + str(fee["code"])
            labels[fee_key] = str(fee.get("label") or fee["code"])
            charged[fee_key] = charged.get(fee_key, 0) + sign * int(fee["amount"])
            fees_total += int(fee["amount"])
        charged[_FARE] = charged.get(_FARE, 0) + rider_net[entry.id] - sign * fees_total

    # A refund's non-fee part is the fare's on a completed trip and the cancellation fee's on a cancelled one.
    if _CANCELLATION in charged and _FARE not in charged:
        refunded[_CANCELLATION] = refunded.pop(_FARE, 0)
    return [
        _ChargePart(key=key, label=labels.get(key, key), charged=amount, refunded=refunded.get(key, 0))
        for key, amount in charged.items()
    ]


def _next_numbered_key(trip: Trip) -> str:
    """`refund:{trip}:{n}` for the trip's next refund: n counts its refunds, and skips a number a refund
    asked for with an idempotency key that looks like one took already (the trip row is locked, so two
    refunds never pick the same n)."""
    taken = set(JournalEntry.objects.filter(trip_id=trip.id, kind="refund").values_list("key", flat=True))
    number = len(taken) + 1
    while f"refund:{trip.id}:{number}" in taken:
        number += 1
    return f"refund:{trip.id}:{number}"


def _refunded_fare(entry: JournalEntry, amount: int) -> int:
    """What a refund entry gave back of the fare (or cancellation fee): all it gave back, less its fees'
    parts (a refund posted before fees existed, or made at the card processor, is all fare)."""
    fees = sum(int(fee["amount"]) for fee in (entry.metadata or {}).get("fees") or [])
    return amount - fees


def _driver_part(trip: Trip, *, fare_part: int) -> int:
    """What the driver bears of `fare_part` under the trip's policy (`refunds.driver_pay`), never taking
    the trip's pay below its floor (earlier refunds' driver parts count)."""
    if trip.driver_id is None:
        return 0
    fare_entry = JournalEntry.objects.filter(key=f"trip:{trip.id}:fare").first()
    if fare_entry is None:
        return 0  # a late-cancellation fee: the co-op bears its refund
    metadata = fare_entry.metadata or {}
    pay = int(metadata.get("pay", 0))
    floor = metadata.get("floor")
    earlier = sum(
        Posting.objects.filter(
            entry__trip_id=trip.id,
            entry__kind="refund",
            account__kind=AccountKind.DRIVER_PAYABLE,
            account__owner_id=trip.driver_id,
        ).values_list("debit_minor", flat=True)
    )
    # The fare earlier staff refunds gave back (a refund made at the card processor is the co-op's alone
    # and records no fare_part): the driver's share is rounded once over all of it and this one.
    fare_refunded = sum(
        int(metadata_of_refund.get("fare_part") or 0)
        for metadata_of_refund in JournalEntry.objects.filter(trip_id=trip.id, kind="refund").values_list(
            "metadata", flat=True
        )
        if metadata_of_refund
    )
    split = refund_split(
        policy_of(trip.policy_version),
        refund_minor=fare_part,
        fare_minor=int(metadata.get("fare", 0)),
        pay_minor=pay,
        share_minor=int(metadata.get("share", pay)),
        # A trip whose entry recorded no floor is treated as paid at its floor: nothing above it to take.
        floor_minor=int(floor) if floor is not None else pay,
        driver_refunded_minor=earlier,
        fare_refunded_minor=fare_refunded,
    )
    return split.driver


def _lock_uncaptured_charge(trip: Trip) -> PaymentCapture | None:
    """The trip's fare or fee capture if nothing can have been charged for it yet, locked: pending, or
    failed with every attempt refused by the provider. A capture with an attempt whose outcome is unknown
    (a timeout, a lost answer) may have been charged under its key; reducing it would change the key and
    charge again, so its refund is paid back instead once the charge settles."""
    return (
        PaymentCapture.objects.select_for_update()
        .filter(
            trip_id=trip.id,
            purpose__in=[CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE],
            status__in=[CaptureStatus.PENDING, CaptureStatus.FAILED],
            attempts=F("provider_refusals"),
        )
        .first()
    )


def _settle_refund_with_provider(
    *, trip: Trip, entry: JournalEntry, amount_minor: int, uncaptured: PaymentCapture | None
) -> None:
    if uncaptured is not None:
        # Not charged yet: collect less instead of collecting and paying back (a new amount is a new
        # idempotency key at the provider, so the smaller charge is never mistaken for the first). What it
        # cannot cover (the rest of a split fare was refused, its first part taken) is paid back.
        reduced = min(uncaptured.amount_minor, amount_minor)
        remaining = uncaptured.amount_minor - reduced
        PaymentCapture.objects.filter(id=uncaptured.id).update(
            amount_minor=remaining,
            status=CaptureStatus.VOIDED if remaining == 0 else uncaptured.status,
            next_attempt_at=None if remaining == 0 else uncaptured.next_attempt_at,
            updated_at=timezone.now(),
        )
        amount_minor -= reduced
        if amount_minor == 0:
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
