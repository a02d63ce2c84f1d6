"""The New York fare of docs/fares.md ("A New York fare, by hand"): congestion surcharge, Black Car Fund
and sales tax itemised on the reference trip, the driver's pay untouched by them. Every number below is
worked out step by step there."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

from backend.fares.policy import DEFAULT_POLICY_DOCUMENT, FarePolicy, default_policy
from backend.fares.pricing import (
    FeeLine,
    TripFeeFacts,
    authorization_amount,
    driver_pay,
    quote_fare,
    refund_split,
    trip_settlement,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fare-policy-new-york.json"
CONGESTION_ZONE = "Manhattan south of 96th St"
SEVEN_AND_A_HALF_MILES_M = Decimal("7.5") * Decimal("1609.344")  # 12,070.08 m
THIRTY_MINUTES_S = 30 * 60


def new_york_policy() -> FarePolicy:
    return FarePolicy.from_document(json.loads(EXAMPLE.read_text()))


def test_the_example_document_is_the_default_policy_plus_the_new_york_sections():
    document = json.loads(EXAMPLE.read_text())
    fare_part = {key: value for key, value in document.items() if key not in ("fees", "payments", "refunds")}
    assert fare_part == DEFAULT_POLICY_DOCUMENT
    assert [fee["code"] for fee in document["fees"]] == [
        "nys_congestion",
        "black_car_fund",
        "sales_tax",
        "airport_access",
    ]


def test_a_new_york_fare_through_the_congestion_zone():
    policy = new_york_policy()
    quote = quote_fare(policy, distance_m=SEVEN_AND_A_HALF_MILES_M, duration_s=THIRTY_MINUTES_S)
    # 2.50 + 1.76 x 7.5 + 0.76 x 30 = 2.50 + 13.20 + 22.80 = 38.50
    assert quote.fare == 3850
    assert quote.breakdown_document() == [
        {"label": "Base fare", "amount": 250},
        {"label": "Distance", "amount": 1320},
        {"label": "Time", "amount": 2280},
    ]

    # Picked up and dropped off outside the zone, the planned route crosses it: enough for "route".
    facts = TripFeeFacts(route_zones=frozenset({CONGESTION_ZONE}))
    settled = trip_settlement(
        policy,
        fare_minor=quote.fare,
        distance_m=SEVEN_AND_A_HALF_MILES_M,
        duration_s=THIRTY_MINUTES_S,
        wheelchair_accessible=False,
        facts=facts,
    )
    charge = settled.charge
    assert charge.fees == (
        FeeLine("nys_congestion", "NYS congestion surcharge", 275),  # flat $2.75
        FeeLine("black_car_fund", "NY Black Car Fund", 96),  # 0.025 x 3850 = 96.25 -> 96
        FeeLine("sales_tax", "NY sales tax", 342),  # 0.08875 x 3850 = 341.6875 -> 342
    )
    assert charge.fees_total == 713
    assert charge.total == 4563

    # Pay on the fare alone: share 0.85 x 3850 = 3272.5 -> 3273; floor 1.496 x 7.5 + 0.6413 x 30 = 30.459
    # -> 3046; pay = max = 3273; commission 3850 - 3273 = 577. The same as with no fees at all.
    pay = settled.pay
    assert (pay.share, pay.floor, pay.pay, pay.commission, pay.floor_applied) == (
        3273,
        3046,
        3273,
        577,
        False,
    )
    assert pay == driver_pay(
        default_policy(),
        fare_minor=3850,
        distance_m=SEVEN_AND_A_HALF_MILES_M,
        duration_s=THIRTY_MINUTES_S,
        wheelchair_accessible=False,
    )

    # The hold at request: 45.63 x 1.25 = 57.0375 -> 57.04.
    assert authorization_amount(policy, charge.total) == 5704
    # A $10.00 refund of the fare is the co-op's: the driver keeps the pay.
    split = refund_split(
        policy, refund_minor=1000, fare_minor=3850, pay_minor=3273, share_minor=3273, floor_minor=3046
    )
    assert (split.coop, split.driver) == (1000, 0)


def test_outside_the_zone_only_the_percentages_apply_and_at_an_airport_its_fee_too():
    policy = new_york_policy()
    assert [line.amount for line in trip_settlement(
        policy, fare_minor=3850, distance_m=0, duration_s=0, wheelchair_accessible=False
    ).charge.fees] == [96, 342]  # fmt: skip
    at_jfk = TripFeeFacts(dropoff_zones=frozenset({"JFK and LaGuardia airports"}))
    charge = trip_settlement(
        policy, fare_minor=3850, distance_m=0, duration_s=0, wheelchair_accessible=False, facts=at_jfk
    ).charge
    assert [(line.code, line.amount) for line in charge.fees] == [
        ("black_car_fund", 96),
        ("sales_tax", 342),
        ("airport_access", 250),
    ]


def test_the_default_policy_stays_fee_free():
    document = copy.deepcopy(DEFAULT_POLICY_DOCUMENT)
    assert "fees" not in document
    assert (
        trip_settlement(
            default_policy(), fare_minor=3850, distance_m=0, duration_s=0, wheelchair_accessible=False
        ).charge.total
        == 3850
    )
