"""Properties of the fare and pay rules, checked against an independent exact (Fraction) oracle."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.fares.money import minor_unit_exponent, to_minor_units
from backend.fares.policy import FarePolicy, default_policy
from backend.fares.pricing import (
    EngagedTimeFloor,
    PeriodTrip,
    cancellation_split,
    driver_pay,
    fare_with_quote_tolerance,
    period_top_up,
    quote_fare,
    trip_floor,
)

FAST = settings(max_examples=80, deadline=None, database=None)
METRES = {"mile": Fraction("1609.344"), "km": Fraction(1000)}


def decimal_strings(max_units: int, *, min_units: int = 0) -> st.SearchStrategy[str]:
    """Decimal strings with 0 to 4 places, between min_units and max_units major units."""
    return st.integers(0, 4).flatmap(
        lambda places: st.integers(min_units * 10**places, max_units * 10**places).map(
            lambda n: str(Decimal(n).scaleb(-places))
        )
    )


policy_documents = st.fixed_dictionaries(
    {
        "currency": st.sampled_from(["USD", "EUR", "GBP", "CAD", "JPY", "KWD"]),
        "distance_unit": st.sampled_from(["mile", "km"]),
        "rider": st.fixed_dictionaries(
            {
                "base": decimal_strings(10),
                "per_distance": decimal_strings(5),
                "per_minute": decimal_strings(2),
                "booking_fee": decimal_strings(5),
                "minimum_fare": decimal_strings(30),
                "surge_cap": decimal_strings(4, min_units=1),
                "cancellation_fee": decimal_strings(20),
                "free_cancellation_s": st.integers(0, 3600),
            }
        ),
        "commission_rate": st.integers(0, 5000).map(lambda n: str(Decimal(n).scaleb(-4))),
        "driver_minimum": st.fixed_dictionaries(
            {
                "per_distance": decimal_strings(4),
                "per_minute": decimal_strings(2),
                "per_trip": decimal_strings(10),
                "wav_per_distance": decimal_strings(5),
                "period": st.sampled_from(["trip", "week"]),
            }
        ),
    }
)
policies = policy_documents.map(FarePolicy.from_document)
trip_policies = policy_documents.map(
    lambda doc: FarePolicy.from_document(
        {**doc, "driver_minimum": {**doc["driver_minimum"], "period": "trip"}}
    )
)
distances = st.one_of(
    st.integers(0, 150_000),
    st.integers(0, 150_000_000).map(lambda n: Decimal(n).scaleb(-3)),
)
durations = st.integers(0, 4 * 3600)
surges = st.integers(0, 50_000).map(lambda n: Decimal(n).scaleb(-4))


def rounded_once(exact: Fraction, currency: str) -> int:
    """The oracle's one rounding: half-up of a non-negative exact amount to minor units."""
    assert exact >= 0
    return math.floor(exact * 10 ** minor_unit_exponent(currency) + Fraction(1, 2))


def exact_fare(policy: FarePolicy, distance_m, duration_s: int, surge: Decimal) -> Fraction:
    r = policy.rider
    distance = Fraction(distance_m) / METRES[policy.distance_unit]
    minutes = Fraction(duration_s, 60)
    applied = min(max(Fraction(surge), Fraction(1)), Fraction(r.surge_cap))
    metered = Fraction(r.base) + Fraction(r.per_distance) * distance + Fraction(r.per_minute) * minutes
    return max(Fraction(r.minimum_fare), metered * applied) + Fraction(r.booking_fee)


def exact_floor(policy: FarePolicy, distance_m, duration_s: int, wav: bool) -> Fraction:
    m = policy.driver_minimum
    per_distance = m.wav_per_distance if wav else m.per_distance
    distance = Fraction(distance_m) / METRES[policy.distance_unit]
    return max(
        Fraction(per_distance) * distance + Fraction(m.per_minute) * Fraction(duration_s, 60),
        Fraction(m.per_trip),
    )


@FAST
@given(policy=policies, distance_m=distances, duration_s=durations, surge=surges)
def test_fare_is_the_exact_formula_rounded_once(policy, distance_m, duration_s, surge):
    quote = quote_fare(policy, distance_m=distance_m, duration_s=duration_s, surge=surge)
    assert quote.fare == rounded_once(exact_fare(policy, distance_m, duration_s, surge), policy.currency)


@FAST
@given(policy=policies, distance_m=distances, duration_s=durations, surge=surges)
def test_fare_is_at_least_the_minimum_fare(policy, distance_m, duration_s, surge):
    quote = quote_fare(policy, distance_m=distance_m, duration_s=duration_s, surge=surge)
    assert quote.fare >= to_minor_units(policy.rider.minimum_fare, policy.currency)
    assert 1 <= quote.surge <= policy.rider.surge_cap


@FAST
@given(policy=policies, distance_m=distances, duration_s=durations, surge=surges)
def test_breakdown_lines_sum_exactly_to_the_fare(policy, distance_m, duration_s, surge):
    quote = quote_fare(policy, distance_m=distance_m, duration_s=duration_s, surge=surge)
    lines = quote.breakdown_document()
    assert sum(line["amount"] for line in lines) == quote.fare
    assert all(isinstance(line["amount"], int) and line["amount"] > 0 for line in lines)
    assert len({line["label"] for line in lines}) == len(lines)


@FAST
@given(
    policy=trip_policies,
    fare_minor=st.integers(0, 50_000),
    distance_m=distances,
    duration_s=durations,
    wav=st.booleans(),
)
def test_per_trip_pay_is_at_least_the_floor_and_rounded_once(policy, fare_minor, distance_m, duration_s, wav):
    pay = driver_pay(
        policy, fare_minor=fare_minor, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=wav
    )
    floor = trip_floor(policy, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=wav)
    scale = 10 ** minor_unit_exponent(policy.currency)
    exact_share = Fraction(fare_minor, scale) * (1 - Fraction(policy.commission_rate))

    assert pay.floor == floor
    assert pay.pay >= floor
    assert pay.pay >= pay.share
    assert pay.pay == rounded_once(
        max(exact_share, exact_floor(policy, distance_m, duration_s, wav)), policy.currency
    )
    assert pay.floor_top_up == pay.pay - pay.share
    assert pay.commission == max(fare_minor - pay.pay, 0)
    if pay.pay <= fare_minor:
        assert pay.pay + pay.commission == fare_minor
    else:
        assert pay.coop_subsidy == pay.pay - fare_minor and pay.commission == 0


@FAST
@given(
    policy=policies,
    fare_minor=st.integers(0, 50_000),
    distance_m=distances,
    duration_s=durations,
    wav=st.booleans(),
)
def test_above_the_floor_pay_and_commission_make_the_fare(policy, fare_minor, distance_m, duration_s, wav):
    pay = driver_pay(
        policy, fare_minor=fare_minor, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=wav
    )
    if not pay.floor_applied:
        assert pay.pay == pay.share
        assert pay.floor_top_up == 0
        assert pay.pay + pay.commission == fare_minor
    if policy.driver_minimum.period == "week":
        assert not pay.floor_applied


@FAST
@given(policy=policies)
def test_cancellation_split_sums_to_the_fee(policy):
    split = cancellation_split(policy)
    assert split.fee == rounded_once(Fraction(policy.rider.cancellation_fee), policy.currency)
    assert split.driver + split.coop == split.fee
    assert split.driver == rounded_once(
        Fraction(split.fee, 10 ** minor_unit_exponent(policy.currency))
        * (1 - Fraction(policy.commission_rate)),
        policy.currency,
    )
    assert 0 <= split.coop <= split.fee


period_trips = st.builds(
    PeriodTrip,
    distance_m=distances,
    duration_s=durations,
    pay=st.integers(0, 20_000),
    wheelchair_accessible=st.booleans(),
)


@FAST
@given(policy=policies, trips=st.lists(period_trips, max_size=12))
def test_period_top_up_makes_the_period_whole(policy, trips):
    result = period_top_up(policy, trips)
    exact = sum(
        (exact_floor(policy, t.distance_m, t.duration_s, t.wheelchair_accessible) for t in trips), Fraction(0)
    )
    assert result.floor == rounded_once(exact, policy.currency)
    assert result.received == sum(t.pay for t in trips)
    assert result.total_pay >= result.floor
    assert result.top_up == max(result.floor - result.received, 0)


@FAST
@given(
    wage=decimal_strings(40),
    per_distance=decimal_strings(2),
    trips=st.lists(
        st.builds(
            PeriodTrip,
            distance_m=distances,
            duration_s=durations,
            pay=st.integers(0, 20_000),
            engaged_distance_m=st.one_of(st.none(), distances),
            engaged_s=st.one_of(st.none(), durations),
        ),
        max_size=12,
    ),
)
def test_engaged_time_floor_is_rounded_once(wage, per_distance, trips):
    rule = EngagedTimeFloor(hourly_wage=Decimal(wage), per_distance=Decimal(per_distance))
    hours = sum(
        (Fraction(t.engaged_s if t.engaged_s is not None else t.duration_s, 3600) for t in trips), Fraction(0)
    )
    miles = sum(
        (
            Fraction(t.engaged_distance_m if t.engaged_distance_m is not None else t.distance_m)
            / METRES["mile"]
            for t in trips
        ),
        Fraction(0),
    )
    exact = Fraction("1.2") * Fraction(Decimal(wage)) * hours + Fraction(Decimal(per_distance)) * miles
    result = period_top_up(rule, trips)
    assert result.floor == rounded_once(exact, "USD")
    assert result.total_pay >= result.floor


@FAST
@given(
    policy=policies,
    quoted_distance_m=distances,
    quoted_duration_s=durations,
    distance_m=distances,
    duration_s=durations,
)
def test_quote_tolerance_never_charges_more_unless_the_trip_was_materially_longer(
    policy, quoted_distance_m, quoted_duration_s, distance_m, duration_s
):
    quoted = quote_fare(policy, distance_m=quoted_distance_m, duration_s=quoted_duration_s).fare
    decision = fare_with_quote_tolerance(
        policy,
        quoted_fare=quoted,
        quoted_distance_m=quoted_distance_m,
        distance_m=distance_m,
        duration_s=duration_s,
    )
    assert decision.fare in (quoted, decision.measured_fare)
    if decision.fare > quoted:
        assert decision.reason == "materially_longer_than_quoted"
        assert Fraction(distance_m) > Fraction(quoted_distance_m) * Fraction(5, 4)
        assert decision.measured_fare - quoted > Fraction(quoted, 4)
    if distance_m == quoted_distance_m and duration_s == quoted_duration_s:
        assert decision.fare == quoted


@FAST
@given(policy=policies)
def test_policy_round_trips_through_its_document(policy):
    document = policy.to_document()
    assert FarePolicy.from_document(document) == policy
    assert FarePolicy.from_document(document).to_document() == document


@FAST
@given(document=policy_documents)
def test_document_round_trips_to_the_same_values(document):
    again = FarePolicy.from_document(document).to_document()
    for section in ("rider", "driver_minimum"):
        for name, value in document[section].items():
            if isinstance(value, str) and name != "period":
                assert Decimal(again[section][name]) == Decimal(value)
                assert len(again[section][name].partition(".")[2]) >= 2
            else:
                assert again[section][name] == value


@FAST
@given(st.integers(-(10**9), 10**9), st.integers(0, 6), st.sampled_from(["USD", "JPY", "KWD"]))
def test_to_minor_units_is_decimal_round_half_up(units, places, currency):
    amount = Decimal(units).scaleb(-places)
    expected = int(amount.scaleb(minor_unit_exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert to_minor_units(amount, currency) == expected


@FAST
@given(distance_m=distances, duration_s=durations)
def test_default_rider_rates_meet_the_standard_floor_on_every_trip(distance_m, duration_s):
    policy = default_policy()
    fare = quote_fare(policy, distance_m=distance_m, duration_s=duration_s).fare
    pay = driver_pay(
        policy, fare_minor=fare, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=False
    )
    assert not pay.floor_applied
    assert pay.share >= pay.floor
