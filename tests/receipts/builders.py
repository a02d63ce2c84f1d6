"""Trips with money for the receipts tests, made through the real services (tests/fares/builders.py)."""

from __future__ import annotations

import copy
from datetime import datetime

from backend.fares.models import AccountKind, FarePolicyVersion, JournalEntry, Posting
from backend.fares.policy import DEFAULT_POLICY_DOCUMENT
from backend.fares.services import policy_version_create
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import complete_trip, ensure_seed_policy, in_progress_trip, policy_document

# The docs/fares.md reference trip: 7.5 miles, 30 minutes: fare 38.50, share 32.73, floor 30.46.
REFERENCE_DISTANCE_M, REFERENCE_DURATION_S = 12070, 1800
# Two of docs/examples/fare-policy-new-york.json's fees, on every trip: on the reference fare 0.025 x 3850
# = 96.25 -> 96 and 0.08875 x 3850 = 341.6875 -> 342 cents, so the rider pays 3850 + 438 = 4288.
NEW_YORK_FEES = [
    {
        "code": "black_car_fund",
        "label": "NY Black Car Fund",
        "kind": "percentage",
        "rate": "0.025",
        "of": ["fare"],
    },
    {"code": "sales_tax", "label": "NY sales tax", "kind": "percentage", "rate": "0.08875", "of": ["fare"]},
]


def policy_with(
    *, driver_pay: str = "kept", fees: list[dict] | None = None, floor_binds: bool = False
) -> FarePolicyVersion:
    """The default policy with a refund rule (and pass-through fees), adopted now; `floor_binds` takes
    docs/contract.md's example rates instead, under which the pay floor binds on slow trips."""
    ensure_seed_policy()
    document = policy_document("trip") if floor_binds else copy.deepcopy(DEFAULT_POLICY_DOCUMENT)
    document["refunds"] = {"driver_pay": driver_pay}
    if fees:
        document["fees"] = fees
    return policy_version_create(document=document, effective_at=None, source="founding")


def reference_trip(
    *,
    policy: FarePolicyVersion,
    rider=None,
    driver=None,
    at: datetime | None = None,
    distance_m: int = REFERENCE_DISTANCE_M,
    duration_s: int = REFERENCE_DURATION_S,
):
    """A completed trip under `policy` (default: the reference trip), settled as the services settle it."""
    trip = in_progress_trip(
        rider=rider or RiderFactory(),
        driver=driver or DriverFactory(),
        policy_version=policy,
        estimated_distance_m=distance_m,
        estimated_duration_s=duration_s,
        started_at=at,
    )
    return complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=at)


def rider_receivable_net(trip_id, kinds=("trip_fare", "cancellation_fee", "tip", "refund")) -> int:
    """Debits minus credits on the rider's receivable for the trip's charge, tip and refund entries and
    their reversals: what the rider owes for the trip in the end, straight from the postings."""
    entries = JournalEntry.objects.filter(trip_id=trip_id, kind__in=kinds) | JournalEntry.objects.filter(
        trip_id=trip_id, kind="reversal", reverses__kind__in=kinds
    )
    postings = Posting.objects.filter(entry__in=entries, account__kind=AccountKind.RIDER_RECEIVABLE)
    return sum(p.debit_minor - p.credit_minor for p in postings)


def postings_of(entry) -> dict[tuple[str, str], tuple[int, int]]:
    """An entry's postings as {(account kind, code or owner): (debit, credit)}."""
    return {
        (p.account.kind, p.account.code or str(p.account.owner_id or "")): (p.debit_minor, p.credit_minor)
        for p in entry.postings.select_related("account")
    }
