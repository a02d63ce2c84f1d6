"""Where a trip's money is decided and recorded: fare and pay at completion, late-cancellation fees, tips.

Callers (dispatch services) run these inside the transaction that moves the trip, so a trip is never
completed without its journal entry, and a retried completion posts nothing twice (keys are unique). That
transaction has locked the trip row first (step 1 of the ledger's lock order, backend/fares/ledger.py).

Journal entries (amounts in minor units):
- `trip:{id}:fare`: Dr rider_receivable(rider) fare; Cr driver_payable(driver) pay;
  Cr coop_revenue commission;
  and when the pay floor exceeds the whole fare, Dr floor_top_ups the difference the co-op pays itself.
- `trip:{id}:cancellation`: Dr rider_receivable(rider) fee; Cr driver_payable(driver) driver part;
  Cr coop_revenue the commission on it.
- `tip:{id}`: Dr rider_receivable(rider) tip; Cr tips_held(driver) tip. All of it goes to the driver.

Each of these also records a `PaymentCapture` (keys `capture:{trip_id}`, `capture:{trip_id}:cancellation`,
`capture:tip:{tip_id}`) whose first attempt is enqueued after commit: the trip never waits on the provider.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, CapturePurpose, JournalEntry
from backend.fares.payments import capture_create
from backend.fares.pricing import (
    cancellation_split,
    driver_pay,
    fare_with_quote_tolerance,
    rider_cancellation_fee_due,
)
from backend.fares.selectors import policy_of


def completion_fields(*, trip: Any, distance_m: int, duration_s: int) -> dict[str, Any]:
    """The trip's money at completion, from the measured route, under the policy in force at request.

    The quote binds under the tolerance rule in backend/fares/pricing.py (docs/fares.md)."""
    policy = policy_of(trip.policy_version)
    decision = fare_with_quote_tolerance(
        policy,
        quoted_fare=trip.fare_estimate_minor,
        quoted_distance_m=trip.estimated_distance_m,
        distance_m=distance_m,
        duration_s=duration_s,
    )
    pay = driver_pay(
        policy,
        fare_minor=decision.fare,
        distance_m=distance_m,
        duration_s=duration_s,
        wheelchair_accessible=trip.wheelchair_accessible,
    )
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
        },
    }


def post_trip_fare(*, trip: Any) -> JournalEntry:
    """Post the completed trip's balanced entry (idempotent under `trip:{id}:fare`) and record the capture
    of the fare, attempted after commit. Returns the entry (the first one, when called again).

    The driver's share instalment is withheld first: it locks the driver's member row, and the ledger's
    lock order (backend/fares/ledger.py) takes every row lock before the transaction's first ledger write."""
    from governance.services import share_instalment_withhold  # lazy: governance builds on fares

    share_instalment_withhold(trip=trip)
    fare, pay = trip.fare_minor, trip.driver_pay_minor
    commission = max(fare - pay, 0)
    subsidy = max(pay - fare, 0)
    breakdown = trip.fare_breakdown or {}
    share = breakdown.get("share", pay)
    entry = _post_rider_charge(
        key=f"trip:{trip.id}:fare",
        kind="trip_fare",
        currency=trip.currency,
        trip_id=trip.id,
        rider_id=trip.rider_id,
        amount_minor=fare,
        capture_key=f"capture:{trip.id}",
        purpose=CapturePurpose.FARE,
        memo=f"Fare of trip {trip.id}",
        lines=[
            debit(AccountKind.RIDER_RECEIVABLE, trip.rider_id, fare),
            debit(AccountKind.FLOOR_TOP_UPS, None, subsidy),
            credit(AccountKind.DRIVER_PAYABLE, trip.driver_id, pay),
            credit(AccountKind.COOP_REVENUE, None, commission),
        ],
        metadata={
            "floor_applied": bool(breakdown.get("floor_applied")),
            "fare": fare,
            "pay": pay,
            "share": share,
            "floor": breakdown.get("floor"),
            "floor_top_up": max(pay - share, 0),
            "policy_version": trip.policy_version_id,
        },
    )
    return entry


def cancellation_fields(*, trip: Any, cancelled_by: str, at: datetime) -> dict[str, Any]:
    """The fee a cancellation costs: only a rider cancelling later than the free period after assignment."""
    if cancelled_by != "rider" or trip.assigned_at is None or trip.driver_id is None:
        return {"cancellation_fee_minor": None}
    policy = policy_of(trip.policy_version)
    seconds = int((at - trip.assigned_at).total_seconds())
    if not rider_cancellation_fee_due(policy, seconds_since_assigned=seconds):
        return {"cancellation_fee_minor": None}
    return {"cancellation_fee_minor": cancellation_split(policy).fee}


def post_cancellation_fee(*, trip: Any) -> JournalEntry | None:
    """Post a late-cancellation fee (if the trip has one) and record its capture; None when no fee."""
    if not trip.cancellation_fee_minor:
        return None
    split = cancellation_split(policy_of(trip.policy_version))
    return _post_rider_charge(
        key=f"trip:{trip.id}:cancellation",
        kind="cancellation_fee",
        currency=trip.currency,
        trip_id=trip.id,
        rider_id=trip.rider_id,
        amount_minor=split.fee,
        capture_key=f"capture:{trip.id}:cancellation",
        purpose=CapturePurpose.CANCELLATION_FEE,
        memo=f"Late cancellation of trip {trip.id}",
        lines=[
            debit(AccountKind.RIDER_RECEIVABLE, trip.rider_id, split.fee),
            credit(AccountKind.DRIVER_PAYABLE, trip.driver_id, split.driver),
            credit(AccountKind.COOP_REVENUE, None, split.coop),
        ],
        metadata={"fee": split.fee, "driver": split.driver, "coop": split.coop},
    )


def post_tip(*, tip: Any) -> JournalEntry:
    """Post a tip, all of it held for the driver, and record its capture."""
    return _post_rider_charge(
        key=f"tip:{tip.id}",
        kind="tip",
        currency=tip.currency,
        trip_id=tip.trip_id,
        rider_id=tip.rider_id,
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


def _post_rider_charge(
    *,
    key: str,
    kind: str,
    currency: str,
    trip_id: Any,
    rider_id: Any,
    amount_minor: int,
    capture_key: str,
    purpose: CapturePurpose,
    memo: str,
    lines: list[ledger.Line],
    metadata: dict[str, Any],
) -> JournalEntry:
    """Post an entry that charges the rider and, the first time it is posted, record the capture of that
    charge (attempted after commit): a retried call posts nothing twice and captures nothing twice."""
    entry, created = ledger.post_entry(
        key=key, kind=kind, currency=currency, trip_id=trip_id, memo=memo, lines=lines, metadata=metadata
    )
    if created and amount_minor > 0:
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
