"""The pure fee, authorisation and refund-split rules of backend/fares/pricing.py, worked by hand."""

from __future__ import annotations

import copy

import pytest

from backend.fares.policy import DEFAULT_POLICY_DOCUMENT, FarePolicy, default_policy
from backend.fares.pricing import (
    FeeLine,
    TripFeeFacts,
    authorization_amount,
    refund_split,
    rider_charge,
    trip_fees,
)

ZONE = "Manhattan south of 96th St"
AIRPORTS = "JFK and LaGuardia"


def policy(*, fees=(), payments=None, refunds=None, currency="USD") -> FarePolicy:
    doc = copy.deepcopy(DEFAULT_POLICY_DOCUMENT)
    doc["currency"] = currency
    doc["fees"] = list(fees)
    if payments is not None:
        doc["payments"] = payments
    if refunds is not None:
        doc["refunds"] = refunds
    return FarePolicy.from_document(doc)


def flat(code: str, amount: str, **when) -> dict:
    fee = {"code": code, "label": code.replace("_", " ").title(), "kind": "flat", "amount": amount}
    if when:
        fee["when"] = when
    return fee


def percentage(code: str, rate: str, *of: str) -> dict:
    return {
        "code": code,
        "label": code.replace("_", " ").title(),
        "kind": "percentage",
        "rate": rate,
        "of": list(of or ["fare"]),
    }


def test_a_policy_without_fees_charges_the_fare_alone():
    charge = rider_charge(default_policy(), fare_minor=3850)
    assert charge.fees == () and charge.total == 3850 and charge.fees_document() == []


def test_each_fee_is_rounded_once_half_up_from_its_exact_value():
    # 8.875% of $20.00 is exactly $1.775: 177.5 cents, half-up to 178. 2.5% of $20.00 is 50 cents.
    rules = policy(fees=[percentage("black_car_fund", "0.025"), percentage("sales_tax", "0.08875")])
    charge = rider_charge(rules, fare_minor=2000)
    assert charge.fees == (
        FeeLine("black_car_fund", "Black Car Fund", 50),
        FeeLine("sales_tax", "Sales Tax", 178),
    )
    assert charge.fees_total == 228 and charge.total == 2228


def test_a_percentage_of_an_earlier_fee_uses_that_fee_as_charged():
    # A tax on fare + fund: 4.5% of (2000 + 50) = 92.25 -> 92. A fee that did not apply adds 0 to the base.
    rules = policy(
        fees=[
            percentage("black_car_fund", "0.025"),
            flat("airport", "2.50", zone={"area": AIRPORTS}),
            {**percentage("tax", "0.045"), "of": ["fare", "black_car_fund", "airport"]},
        ]
    )
    assert [line.amount for line in trip_fees(rules, fare_minor=2000)] == [50, 92]


@pytest.mark.parametrize(
    ("touch", "facts", "applies"),
    [
        ("pickup", TripFeeFacts(pickup_zones=frozenset({ZONE})), True),
        ("pickup", TripFeeFacts(dropoff_zones=frozenset({ZONE})), False),
        ("dropoff", TripFeeFacts(dropoff_zones=frozenset({ZONE})), True),
        ("dropoff", TripFeeFacts(route_zones=frozenset({ZONE})), False),
        ("pickup_or_dropoff", TripFeeFacts(dropoff_zones=frozenset({ZONE})), True),
        ("pickup_or_dropoff", TripFeeFacts(route_zones=frozenset({ZONE})), False),
        ("route", TripFeeFacts(route_zones=frozenset({ZONE})), True),
        ("route", TripFeeFacts(pickup_zones=frozenset({ZONE})), True),
        ("route", TripFeeFacts(route_zones=frozenset({"Brooklyn"})), False),
        ("route", TripFeeFacts(), False),
    ],
)
def test_zone_conditions(touch, facts, applies):
    rules = policy(fees=[flat("nys_congestion", "2.75", zone={"area": ZONE, "touch": touch})])
    assert trip_fees(rules, fare_minor=2000, facts=facts) == (
        (FeeLine("nys_congestion", "Nys Congestion", 275),) if applies else ()
    )


def test_a_wheelchair_condition_and_a_zone_must_both_hold():
    rules = policy(fees=[flat("wav", "0.50", zone={"area": ZONE}, wheelchair_accessible=False)])
    inside = frozenset({ZONE})
    assert trip_fees(rules, fare_minor=1000, facts=TripFeeFacts(pickup_zones=inside))[0].amount == 50
    wav_inside = TripFeeFacts(pickup_zones=inside, wheelchair_accessible=True)
    assert trip_fees(rules, fare_minor=1000, facts=wav_inside) == ()


def test_a_trip_amount_is_passed_through_unchanged_and_left_out_when_nothing():
    rules = policy(fees=[{"code": "tolls", "label": "Tolls", "kind": "trip_amount"}])
    assert trip_fees(rules, fare_minor=1000, facts=TripFeeFacts(trip_amounts={"tolls": 694})) == (
        FeeLine("tolls", "Tolls", 694),
    )
    assert trip_fees(rules, fare_minor=1000) == ()
    with pytest.raises(ValueError, match="must not be negative"):
        trip_fees(rules, fare_minor=1000, facts=TripFeeFacts(trip_amounts={"tolls": -1}))


def test_fees_in_a_currency_without_cents_round_to_whole_units():
    rules = policy(fees=[percentage("consumption_tax", "0.1")], currency="JPY")
    assert trip_fees(rules, fare_minor=1235)[0].amount == 124  # 123.5 yen, half-up


def test_the_authorisation_hold_is_the_quoted_total_plus_the_margin_rounded_once():
    assert authorization_amount(default_policy(), 2503) == 2503  # default margin 0: hold the quote
    margin = policy(payments={"authorization_margin_rate": "0.25"})
    assert authorization_amount(margin, 2503) == 3129  # 25.03 x 1.25 = 31.2875 -> 31.29
    assert authorization_amount(margin, 0) == 0
    with pytest.raises(TypeError):
        authorization_amount(margin, 25.03)  # type: ignore[arg-type]


def test_by_default_the_coop_bears_a_refund_and_the_driver_keeps_the_pay():
    split = refund_split(
        default_policy(),
        refund_minor=1000,
        fare_minor=3850,
        pay_minor=3273,
        share_minor=3273,
        floor_minor=3046,
    )
    assert (split.coop, split.driver) == (1000, 0)


def test_shared_above_floor_takes_the_drivers_share_only_from_pay_above_the_floor():
    rules = policy(refunds={"driver_pay": "shared_above_floor"})
    trip = {"fare_minor": 3850, "pay_minor": 3273, "share_minor": 3273, "floor_minor": 3046}
    # A small refund: 200 x 3273 / 3850 = 170.03 -> 170, within the 227 above the floor.
    small = refund_split(rules, refund_minor=200, **trip)
    assert (small.coop, small.driver) == (30, 170)
    # A large one: 1000 x 3273 / 3850 = 850.13, but only 3273 - 3046 = 227 lies above the floor.
    large = refund_split(rules, refund_minor=1000, **trip)
    assert (large.coop, large.driver) == (773, 227)
    # Once earlier refunds took the 227, nothing more comes from the driver.
    again = refund_split(rules, refund_minor=500, driver_refunded_minor=227, **trip)
    assert (again.coop, again.driver) == (500, 0)


def test_shared_above_floor_never_touches_a_trip_paid_at_its_floor():
    rules = policy(refunds={"driver_pay": "shared_above_floor"})
    split = refund_split(
        rules, refund_minor=800, fare_minor=800, pay_minor=900, share_minor=680, floor_minor=900
    )
    assert (split.coop, split.driver) == (800, 0)
