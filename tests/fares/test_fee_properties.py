"""Properties of the pass-through fees, the card hold and the refund split, for any valid policy:
fees never change driver pay or commission, a charge's lines sum to its total, each fee is its exact value
rounded once, the hold never falls short of the quote, a refund split never takes pay below the floor."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.fares.money import minor_unit_exponent
from backend.fares.policy import FarePolicy
from backend.fares.pricing import (
    TripFeeFacts,
    authorization_amount,
    driver_pay,
    fee_applies,
    quote_fare,
    refund_split,
    trip_settlement,
)
from tests.fares.test_pricing_properties import decimal_strings, distances, durations, policy_documents

FAST = settings(max_examples=80, deadline=None, database=None)
ZONES = ["Zone A", "Zone B", "Zone C"]
zone_sets = st.frozensets(st.sampled_from(ZONES))


@st.composite
def fee_lists(draw: st.DrawFn) -> list[dict]:
    fees: list[dict] = []
    for index in range(draw(st.integers(0, 6))):
        code = f"fee_{index}"
        kind = draw(st.sampled_from(["flat", "percentage", "trip_amount"]))
        fee: dict = {"code": code, "label": f"Fee {index}", "kind": kind}
        if kind == "flat":
            fee["amount"] = draw(decimal_strings(20))
        elif kind == "percentage":
            fee["rate"] = str(Decimal(draw(st.integers(0, 1_000_000))).scaleb(-6))
            earlier = [other["code"] for other in fees]
            fee["of"] = draw(
                st.lists(st.sampled_from(["fare", *earlier]), min_size=1, max_size=3, unique=True)
            )
        when: dict = {}
        if draw(st.booleans()):
            when["zone"] = {
                "area": draw(st.sampled_from(ZONES)),
                "touch": draw(st.sampled_from(["pickup", "dropoff", "pickup_or_dropoff", "route"])),
            }
        if draw(st.booleans()):
            when["wheelchair_accessible"] = draw(st.booleans())
        if when:
            fee["when"] = when
        fees.append(fee)
    return fees


@st.composite
def policies_with_fees(draw: st.DrawFn) -> FarePolicy:
    document = draw(policy_documents)
    document["fees"] = draw(fee_lists())
    document["payments"] = {
        "authorization_margin_rate": str(Decimal(draw(st.integers(0, 10_000))).scaleb(-4))
    }
    document["refunds"] = {"driver_pay": draw(st.sampled_from(["kept", "shared_above_floor"]))}
    return FarePolicy.from_document(document)


@st.composite
def fee_facts(draw: st.DrawFn) -> TripFeeFacts:
    return TripFeeFacts(
        pickup_zones=draw(zone_sets),
        dropoff_zones=draw(zone_sets),
        route_zones=draw(zone_sets),
        wheelchair_accessible=draw(st.booleans()),
        trip_amounts={f"fee_{index}": draw(st.integers(0, 5000)) for index in range(6)},
    )


@FAST
@given(
    policy=policies_with_fees(),
    facts=fee_facts(),
    distance_m=distances,
    duration_s=durations,
    wav=st.booleans(),
)
def test_fees_never_change_driver_pay_or_commission(policy, facts, distance_m, duration_s, wav):
    fare = quote_fare(policy, distance_m=distance_m, duration_s=duration_s).fare
    settled = trip_settlement(
        policy,
        fare_minor=fare,
        distance_m=distance_m,
        duration_s=duration_s,
        wheelchair_accessible=wav,
        facts=facts,
    )
    without_fees = driver_pay(
        replace(policy, fees=()),
        fare_minor=fare,
        distance_m=distance_m,
        duration_s=duration_s,
        wheelchair_accessible=wav,
    )
    assert settled.pay == without_fees
    assert settled.pay.commission == max(fare - settled.pay.pay, 0)
    assert settled.charge.fare == fare


@FAST
@given(policy=policies_with_fees(), facts=fee_facts(), distance_m=distances, duration_s=durations)
def test_the_lines_sum_to_the_total(policy, facts, distance_m, duration_s):
    quote = quote_fare(policy, distance_m=distance_m, duration_s=duration_s)
    charge = trip_settlement(
        policy,
        fare_minor=quote.fare,
        distance_m=distance_m,
        duration_s=duration_s,
        wheelchair_accessible=facts.wheelchair_accessible,
        facts=facts,
    ).charge
    fare_lines = sum(line.amount for line in quote.breakdown)
    fee_lines = sum(line["amount"] for line in charge.fees_document())
    assert fare_lines == quote.fare
    assert fare_lines + fee_lines == charge.total == quote.fare + charge.fees_total
    assert all(line.amount > 0 for line in charge.fees)
    assert len({line.code for line in charge.fees}) == len(charge.fees)


@FAST
@given(policy=policies_with_fees(), facts=fee_facts(), fare=st.integers(0, 500_000))
def test_each_fee_is_its_exact_value_rounded_once(policy, facts, fare):
    """An independent oracle: walk the policy's fees, computing each from the amounts before it."""
    charged = {line.code: line.amount for line in trip_settlement(
        policy, fare_minor=fare, distance_m=0, duration_s=0, wheelchair_accessible=False, facts=facts
    ).charge.fees}  # fmt: skip
    scale = 10 ** minor_unit_exponent(policy.currency)
    amounts = {"fare": fare}
    for fee in policy.fees:
        if not fee_applies(fee, facts):
            expected = 0
        elif fee.kind == "flat":
            expected = math.floor(Fraction(fee.amount) * scale + Fraction(1, 2))
        elif fee.kind == "percentage":
            base = sum(amounts.get(code, 0) for code in fee.of)
            expected = math.floor(Fraction(fee.rate) * base + Fraction(1, 2))
        else:
            expected = facts.trip_amounts.get(fee.code, 0)
        amounts[fee.code] = expected
        assert charged.get(fee.code, 0) == expected


@FAST
@given(policy=policies_with_fees(), total=st.integers(0, 10_000_000))
def test_the_hold_covers_the_quote_and_is_the_margin_rounded_once(policy, total):
    hold = authorization_amount(policy, total)
    assert hold >= total
    assert hold == math.floor(
        total * (1 + Fraction(policy.payments.authorization_margin_rate)) + Fraction(1, 2)
    )
    assert authorization_amount(policy, total + 1) >= hold


@FAST
@given(
    policy=policies_with_fees(),
    fare=st.integers(0, 100_000),
    share_rate=st.fractions(0, 1),
    floor=st.integers(0, 100_000),
    refund_part=st.fractions(0, 1),
    already=st.integers(0, 20_000),
)
def test_a_refund_split_never_takes_pay_below_the_floor(
    policy, fare, share_rate, floor, refund_part, already
):
    share = math.floor(fare * share_rate)
    pay = max(share, floor) if policy.driver_minimum.period == "trip" else share
    refund = math.floor(fare * refund_part)
    split = refund_split(
        policy,
        refund_minor=refund,
        fare_minor=fare,
        pay_minor=pay,
        share_minor=share,
        floor_minor=floor,
        driver_refunded_minor=already,
    )
    assert split.coop + split.driver == refund
    assert 0 <= split.driver <= refund
    assert split.driver <= max(pay - floor - already, 0)
    if policy.refunds.driver_pay == "kept":
        assert split.driver == 0
    else:
        # Never more than the driver's proportional share of what was refunded (rounded once).
        assert split.driver <= math.floor(Fraction(refund * share, max(fare, 1)) + Fraction(1, 2))
