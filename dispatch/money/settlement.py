"""Where a trip's money is decided and recorded: fare and pay at completion, late-cancellation fees, tips.

Callers (dispatch services) run these inside the transaction that moves the trip, so a trip is never
completed without its journal entry, and a retried completion posts nothing twice (keys are unique). That
transaction has locked the trip row first (step 1 of the ledger's lock order, backend/fares/ledger.py).

Journal entries (amounts in minor units):
- `trip:{id}:fare`: Dr rider_receivable(rider) fare + fees; Cr driver_payable(driver) pay;
  Cr coop_revenue commission; Cr pass_through(code) each pass-through fee (one account per fee code);
  and when the pay floor exceeds the whole fare, Dr floor_top_ups the difference the co-op pays itself.
  Pay and commission are computed on the fare alone: the fees are the rider's, owed on to whoever set
  them, and never touch driver pay. Metadata `fees` lists them (`[{"code", "label", "amount"}]`) and
  `total` is fare + fees, what the fare capture collects.
- `trip:{id}:cancellation`: Dr rider_receivable(rider) fee; Cr driver_payable(driver) driver part;
  Cr coop_revenue the commission on it.
- `tip:{id}`: Dr rider_receivable(rider) tip; Cr tips_held(driver) tip. All of it goes to the driver.

Fare and cancellation entries record when the work ended (`worked_at`) and a fare entry the trip's engaged
time (`engaged_s`): backend/fares/pay.py reads driver pay and engaged time for a period from them.

Each of these also records a `PaymentCapture` (keys `capture:{trip_id}`, `capture:{trip_id}:cancellation`,
`capture:tip:{tip_id}`) whose first attempt is enqueued after commit: the trip never waits on the provider.

A trip an organisation pays for (`Trip.payer == organisation`, docs/billing.md) posts its fare and
cancellation-fee entries with the same lines except the first: `Dr organisation_receivable(code=the
organisation's id)` instead of the rider's receivable, and records no capture (no card is charged; the
organisation's monthly invoice, dispatch/money/invoices.py, bills the entry). Driver pay, commission, the
floor and its top-up, fees and the share instalment are computed and posted exactly as for a rider's trip:
who pays changes only which receivable is debited. Metadata says `payer: organisation` and `organisation`.
A tip is always the rider's own money (their card or cash, captured as usual): the organisation agreed to
pay for rides, not to pay gratuities it never saw.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from backend.fares import ledger
from backend.fares.captures import capture_create
from backend.fares.charges import TripCharge
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, CapturePurpose, JournalEntry
from backend.fares.pricing import (
    FeeLine,
    cancellation_split,
    engaged_seconds,
    fare_with_quote_tolerance,
    rider_cancellation_fee_due,
    trip_settlement,
)
from backend.fares.selectors import policy_of
from dispatch.models import Tip, Trip
from dispatch.money.fees import trip_fee_facts
from dispatch.money.payer import billed_organisation_id, payer_debit, payer_metadata
from dispatch.money.receipt_mail import ReceiptOccasion, receipt_email_enqueue
from governance.services import share_instalment_withhold


def completion_fields(*, trip: Trip, distance_m: int, duration_s: int) -> dict[str, Any]:
    """The trip's money at completion, from the measured route, under the policy in force at request.

    The quote binds under the tolerance rule in backend/fares/pricing.py (docs/fares.md). Pass-through fees
    are computed on the fare charged and listed apart (`fare_breakdown["fees"]`, `["total"]`)."""
    policy = policy_of(trip.policy_version)
    decision = fare_with_quote_tolerance(
        policy,
        quoted_fare=trip.fare_estimate_minor,
        quoted_distance_m=trip.estimated_distance_m,
        distance_m=distance_m,
        duration_s=duration_s,
    )
    settled = trip_settlement(
        policy,
        fare_minor=decision.fare,
        distance_m=distance_m,
        duration_s=duration_s,
        wheelchair_accessible=trip.wheelchair_accessible,
        facts=trip_fee_facts(trip, policy=policy),
    )
    pay, charge = settled.pay, settled.charge
    breakdown = (
        decision.measured.breakdown_document()
        if decision.fare == decision.measured_fare
        else [{"label": "Quoted fare", "amount": decision.fare}]
    )
    return {
        "measured_distance_m": distance_m,
        "measured_duration_s": duration_s,
        "fare_minor": decision.fare,
        "driver_pay_minor": pay.pay,
        "commission_minor": pay.fare - pay.pay,
        "fare_breakdown": {
            "lines": breakdown,
            "quote_rule": decision.reason,
            "quoted_fare": decision.quoted_fare,
            "measured_fare": decision.measured_fare,
            "floor": pay.floor,
            "share": pay.share,
            "floor_top_up": pay.floor_top_up,
            "floor_applied": pay.floor_applied,
            "policy_version": trip.policy_version_id,
            "fees": charge.fees_document(),
            "total": charge.total,
        },
    }


def trip_charge(trip: Trip) -> TripCharge:
    """The completed trip's money as settlement posts it (its engaged time computed here, once).

    Raises ValueError for a trip that has no driver, fare or completion time yet."""
    if (
        trip.driver_id is None
        or trip.fare_minor is None
        or trip.driver_pay_minor is None
        or trip.completed_at is None
    ):
        raise ValueError(f"trip {trip.id} is not completed with a fare")
    breakdown = trip.fare_breakdown or {}
    pay = trip.driver_pay_minor
    return TripCharge(
        id=trip.id,
        rider_id=trip.rider_id,
        driver_id=trip.driver_id,
        currency=trip.currency,
        fare_minor=trip.fare_minor,
        driver_pay_minor=pay,
        share_minor=breakdown.get("share", pay),
        floor_minor=breakdown.get("floor"),
        floor_applied=bool(breakdown.get("floor_applied")),
        policy_version_id=trip.policy_version_id,
        completed_at=trip.completed_at,
        engaged_s=engaged_seconds(
            assigned_at=trip.assigned_at, started_at=trip.started_at, completed_at=trip.completed_at
        ),
        fees=tuple(
            FeeLine(code=line["code"], label=line["label"], amount=line["amount"])
            for line in breakdown.get("fees", ())
        ),
    )


def trip_completion_settle(*, trip: Trip) -> JournalEntry:
    """Settle a trip just completed, in the transaction that completed it: withhold the driver's share
    instalment, then post the fare entry, and email the rider's receipt after commit (the first time only).
    Returns the fare entry (the first one, when called again).

    In that order because withholding locks the driver's member row (step 3 of the lock order in
    backend/fares/ledger.py), and every row lock comes before the transaction's first ledger write."""
    charge = trip_charge(trip)
    share_instalment_withhold(trip=charge)
    first_time = not JournalEntry.objects.filter(key=f"trip:{charge.id}:fare").exists()
    entry = post_trip_fare(charge=charge, organisation_id=billed_organisation_id(trip))
    if first_time:
        receipt_email_enqueue(trip_id=charge.id, occasion=ReceiptOccasion.COMPLETED)
    return entry


def post_trip_fare(*, charge: TripCharge, organisation_id: uuid.UUID | None = None) -> JournalEntry:
    """Post the completed trip's balanced entry (idempotent under `trip:{id}:fare`) and record the capture
    of the rider's total (fare + pass-through fees), attempted after commit. With `organisation_id` the
    total is the organisation's to pay (its receivable, no capture). Returns the entry (the first one, when
    called again)."""
    fare, pay = charge.fare_minor, charge.driver_pay_minor
    commission = max(fare - pay, 0)
    subsidy = max(pay - fare, 0)
    total = charge.total_minor
    return _post_charge(
        key=f"trip:{charge.id}:fare",
        kind="trip_fare",
        currency=charge.currency,
        trip_id=charge.id,
        rider_id=charge.rider_id,
        organisation_id=organisation_id,
        amount_minor=total,
        capture_key=f"capture:{charge.id}",
        purpose=CapturePurpose.FARE,
        memo=f"Fare of trip {charge.id}",
        lines=[
            payer_debit(rider_id=charge.rider_id, organisation_id=organisation_id, amount_minor=total),
            debit(AccountKind.FLOOR_TOP_UPS, None, subsidy),
            credit(AccountKind.DRIVER_PAYABLE, charge.driver_id, pay),
            credit(AccountKind.COOP_REVENUE, None, commission),
            *(credit(AccountKind.PASS_THROUGH, None, fee.amount, code=fee.code) for fee in charge.fees),
        ],
        metadata={
            "floor_applied": charge.floor_applied,
            "fare": fare,
            "pay": pay,
            "share": charge.share_minor,
            "floor": charge.floor_minor,
            "floor_top_up": max(pay - charge.share_minor, 0),
            "policy_version": charge.policy_version_id,
            "worked_at": charge.completed_at.isoformat(),
            "engaged_s": charge.engaged_s,
            "fees": [fee.as_dict() for fee in charge.fees],
            "total": total,
            **payer_metadata(organisation_id),
        },
    )


# A reservation cancelled this soon after it was booked costs nothing, however close its pickup.
RESERVATION_CHANGE_OF_MIND_S = 300


def cancellation_fields(*, trip: Trip, cancelled_by: str, at: datetime) -> dict[str, Any]:
    """The fee a cancellation costs: only a rider (or the organisation that booked for them) cancelling late.

    A ride booked ahead is late to cancel from `reservations.free_cancellation_until_s` before its pickup
    time, whether or not a driver has it yet (docs/scheduling.md), except when the co-op is the one late:
    its window has opened and no driver has it, or it has closed and the driver has not arrived. A booking
    cancelled within RESERVATION_CHANGE_OF_MIND_S of being made is free too (a ride booked an hour ahead
    is inside the notice period from the start). A ride asked for now is late to cancel from the policy's
    free period after assignment."""
    if cancelled_by != "rider":
        return {"cancellation_fee_minor": None}
    policy = policy_of(trip.policy_version)
    if trip.scheduled_for is not None:
        notice_s = (trip.scheduled_for - at).total_seconds()
        coop_late = (trip.driver_id is None and at >= trip.pickup_window_start) or (
            trip.arrived_at is None and at > trip.pickup_window_end
        )
        changed_mind = (at - trip.requested_at).total_seconds() <= RESERVATION_CHANGE_OF_MIND_S
        if notice_s > policy.reservations.free_cancellation_until_s or coop_late or changed_mind:
            return {"cancellation_fee_minor": None}
        return {"cancellation_fee_minor": cancellation_split(policy).fee}
    if trip.assigned_at is None or trip.driver_id is None:
        return {"cancellation_fee_minor": None}
    seconds = int((at - trip.assigned_at).total_seconds())
    if not rider_cancellation_fee_due(policy, seconds_since_assigned=seconds):
        return {"cancellation_fee_minor": None}
    return {"cancellation_fee_minor": cancellation_split(policy).fee}


def post_cancellation_fee(*, trip: Trip) -> JournalEntry | None:
    """Post a late-cancellation fee (if the cancelled trip has one) and record its capture (none when an
    organisation pays: its receivable is debited instead); None when no fee."""
    if not trip.cancellation_fee_minor:
        return None
    split = cancellation_split(policy_of(trip.policy_version))
    organisation_id = billed_organisation_id(trip)
    # The driver who lost the ride gets the driver's part: the assigned one, or the one who had claimed a
    # reservation; with no driver yet, the whole fee is the co-op's.
    driver_id = trip.driver_id or trip.claimed_by_id
    driver_part = split.driver if driver_id is not None else 0
    return _post_charge(
        key=f"trip:{trip.id}:cancellation",
        kind="cancellation_fee",
        currency=trip.currency,
        trip_id=trip.id,
        rider_id=trip.rider_id,
        organisation_id=organisation_id,
        amount_minor=split.fee,
        capture_key=f"capture:{trip.id}:cancellation",
        purpose=CapturePurpose.CANCELLATION_FEE,
        memo=f"Late cancellation of trip {trip.id}",
        lines=[
            payer_debit(rider_id=trip.rider_id, organisation_id=organisation_id, amount_minor=split.fee),
            credit(AccountKind.DRIVER_PAYABLE, driver_id, driver_part),
            credit(AccountKind.COOP_REVENUE, None, split.fee - driver_part),
        ],
        metadata={
            "fee": split.fee,
            "driver": driver_part,
            "coop": split.fee - driver_part,
            "worked_at": trip.ended_at.isoformat() if trip.ended_at else None,
            **payer_metadata(organisation_id),
        },
    )


def post_tip(*, tip: Tip) -> JournalEntry:
    """Post a tip, all of it held for the driver, and record its capture. Always the rider's own money, on
    an organisation's trip too (the module docstring says why)."""
    return _post_charge(
        key=f"tip:{tip.id}",
        kind="tip",
        currency=tip.currency,
        trip_id=tip.trip_id,
        rider_id=tip.rider_id,
        organisation_id=None,
        amount_minor=tip.amount_minor,
        capture_key=f"capture:tip:{tip.id}",
        purpose=CapturePurpose.TIP,
        memo=f"Tip on trip {tip.trip_id}",
        lines=[
            debit(AccountKind.RIDER_RECEIVABLE, tip.rider_id, tip.amount_minor),
            credit(AccountKind.TIPS_HELD, tip.driver_id, tip.amount_minor),
        ],
        metadata={"tip_id": str(tip.id)},
    )


def _post_charge(
    *,
    key: str,
    kind: str,
    currency: str,
    trip_id: uuid.UUID,
    rider_id: uuid.UUID,
    organisation_id: uuid.UUID | None,
    amount_minor: int,
    capture_key: str,
    purpose: CapturePurpose,
    memo: str,
    lines: list[ledger.Line],
    metadata: dict[str, Any],
) -> JournalEntry:
    """Post an entry that charges the trip's payer and, the first time it is posted, record the capture of
    a rider's charge (attempted after commit): a retried call posts nothing twice and captures nothing
    twice. An organisation's charge (`organisation_id`) is captured by nobody: it is invoiced."""
    entry, created = ledger.post_entry(
        key=key, kind=kind, currency=currency, trip_id=trip_id, memo=memo, lines=lines, metadata=metadata
    )
    if created and amount_minor > 0 and organisation_id is None:
        capture_create(
            key=capture_key,
            purpose=purpose,
            rider_id=rider_id,
            amount_minor=amount_minor,
            currency=currency,
            trip_id=trip_id,
            source_entry_id=entry.id,
        )
    return entry
