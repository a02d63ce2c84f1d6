"""A completed trip's money as the ledger posts it, as a plain value the kernel and governance can type.

Dispatch builds a `TripCharge` from its Trip when the trip completes (dispatch/money/settlement.py
`trip_charge`); settlement posts the fare entry from it and governance withholds the share instalment from
it. Nothing below dispatch imports the Trip model: this value carries what they need. Field names follow
the Trip's columns (`id` is the trip's id), so a reader of either sees the same names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from backend.fares.pricing import FeeLine


@dataclass(frozen=True, slots=True)
class TripCharge:
    """What a completed trip charges its rider and pays its driver (integer minor units, one currency).

    `share_minor` is the driver's standard share of the fare before any per-trip floor top-up, so the
    top-up is `driver_pay_minor - share_minor`; `floor_minor` the trip's floor (None when not recorded).
    `engaged_s` is `pricing.engaged_seconds` of the trip, computed once here and carried in the fare entry.
    `fees` are the pass-through fees charged on top of the fare (their own accounts, never driver pay);
    the rider's total is `total_minor` = fare + fees."""

    id: uuid.UUID
    rider_id: uuid.UUID
    driver_id: uuid.UUID
    currency: str
    fare_minor: int
    driver_pay_minor: int
    share_minor: int
    floor_minor: int | None
    floor_applied: bool
    policy_version_id: int
    completed_at: datetime
    engaged_s: int
    fees: tuple[FeeLine, ...] = ()

    @property
    def total_minor(self) -> int:
        return self.fare_minor + sum(fee.amount for fee in self.fees)
