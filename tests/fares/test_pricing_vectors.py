"""Public reference numbers, worked by hand from the published rates, checked against the rules."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from backend.fares.money import minor_to_decimal, money, to_minor_units
from backend.fares.policy import DEFAULT_POLICY_DOCUMENT, FarePolicy, default_policy
from backend.fares.pricing import (
    EngagedTimeFloor,
    PeriodTrip,
    cancellation_split,
    driver_pay,
    fare_with_quote_tolerance,
    period_top_up,
    quote_fare,
    rider_cancellation_fee_due,
    trip_floor,
)

METRES_PER_MILE = Decimal("1609.344")
REFERENCE_TRIP_M = Decimal("7.5") * METRES_PER_MILE  # 12070.080 m, exactly 7.5 miles
REFERENCE_TRIP_S = 30 * 60


def policy_with(
    *,
    driver_minimum: dict | None = None,
    rider: dict | None = None,
    commission_rate: str | None = None,
    currency: str | None = None,
    distance_unit: str | None = None,
) -> FarePolicy:
    doc = copy.deepcopy(DEFAULT_POLICY_DOCUMENT)
    doc["driver_minimum"].update(driver_minimum or {})
    doc["rider"].update(rider or {})
    if commission_rate is not None:
        doc["commission_rate"] = commission_rate
    if currency is not None:
        doc["currency"] = currency
    if distance_unit is not None:
        doc["distance_unit"] = distance_unit
    return FarePolicy.from_document(doc)


def nyc_tlc_minimum(per_mile: str, per_minute: str, wav_per_mile: str) -> FarePolicy:
    return policy_with(
        driver_minimum={
            "per_distance": per_mile,
            "per_minute": per_minute,
            "wav_per_distance": wav_per_mile,
            "per_trip": "0.00",
        }
    )


NYC_TLC_VECTORS = [
    # (period, $/mile, $/minute, WAV $/mile, standard floor, WAV floor) for 7.5 miles and 30 minutes.
    pytest.param("1.088", "0.495", "1.088", 2301, 2301, id="nyc-tlc-2019"),
    pytest.param("1.234", "0.564", "1.600", 2618, 2892, id="nyc-tlc-2023-02"),
    pytest.param("1.360", "0.583", "1.760", 2769, 3069, id="nyc-tlc-2024-03"),
]


@pytest.mark.parametrize(("per_mile", "per_minute", "wav_per_mile", "standard", "wav"), NYC_TLC_VECTORS)
def test_nyc_tlc_floor_for_seven_and_a_half_miles_and_thirty_minutes(
    per_mile, per_minute, wav_per_mile, standard, wav
):
    policy = nyc_tlc_minimum(per_mile, per_minute, wav_per_mile)

    assert (
        trip_floor(
            policy, distance_m=REFERENCE_TRIP_M, duration_s=REFERENCE_TRIP_S, wheelchair_accessible=False
        )
        == standard
    )
    assert (
        trip_floor(
            policy, distance_m=REFERENCE_TRIP_M, duration_s=REFERENCE_TRIP_S, wheelchair_accessible=True
        )
        == wav
    )


def test_feb_2023_floor_is_rounded_once_from_the_exact_26_175():
    # 1.234 x 7.5 = 9.255 and 0.564 x 30 = 16.92: the exact 26.175 rounds half-up to 26.18.
    policy = nyc_tlc_minimum("1.234", "0.564", "1.600")
    assert (
        trip_floor(policy, distance_m=REFERENCE_TRIP_M, duration_s=1800, wheelchair_accessible=False) == 2618
    )
    # 12070 whole metres is 0.08 m short of 7.5 miles: exactly 26.17493..., which rounds to 26.17.
    assert trip_floor(policy, distance_m=12070, duration_s=1800, wheelchair_accessible=False) == 2617


@pytest.mark.parametrize(("per_mile", "per_minute", "wav_per_mile", "standard", "wav"), NYC_TLC_VECTORS)
def test_nyc_tlc_floor_tops_up_a_low_fare_share(per_mile, per_minute, wav_per_mile, standard, wav):
    policy = nyc_tlc_minimum(per_mile, per_minute, wav_per_mile)
    fare = 2000  # 85% of it, 17.00, is below every floor above

    standard_pay = driver_pay(
        policy, fare_minor=fare, distance_m=REFERENCE_TRIP_M, duration_s=1800, wheelchair_accessible=False
    )
    wav_pay = driver_pay(
        policy, fare_minor=fare, distance_m=REFERENCE_TRIP_M, duration_s=1800, wheelchair_accessible=True
    )

    assert (standard_pay.pay, standard_pay.share, standard_pay.floor_applied) == (standard, 1700, True)
    assert standard_pay.floor_top_up == standard - 1700
    assert standard_pay.commission == max(fare - standard, 0)
    assert wav_pay.pay == wav
    assert wav_pay.coop_subsidy == wav - fare


def test_default_policy_derives_from_nyc_march_2024_plus_ten_percent():
    minimum = default_policy().driver_minimum
    assert minimum.per_distance == Decimal("1.360") * Decimal("1.1")
    assert minimum.per_minute == Decimal("0.583") * Decimal("1.1")
    assert minimum.wav_per_distance == Decimal("1.760") * Decimal("1.1")
    assert default_policy().commission_rate == Decimal("0.15")


def test_default_policy_reference_trip():
    policy = default_policy()
    quote = quote_fare(policy, distance_m=REFERENCE_TRIP_M, duration_s=REFERENCE_TRIP_S)
    # 2.50 + 1.76 x 7.5 + 0.76 x 30 = 2.50 + 13.20 + 22.80
    assert quote.fare == 3850
    assert quote.breakdown_document() == [
        {"label": "Base fare", "amount": 250},
        {"label": "Distance", "amount": 1320},
        {"label": "Time", "amount": 2280},
    ]

    standard = driver_pay(
        policy, fare_minor=3850, distance_m=REFERENCE_TRIP_M, duration_s=1800, wheelchair_accessible=False
    )
    # 85% share 32.725 -> 32.73 is above the floor 1.496 x 7.5 + 0.6413 x 30 = 30.459 -> 30.46.
    assert (standard.pay, standard.floor, standard.commission, standard.floor_applied) == (
        3273,
        3046,
        577,
        False,
    )

    wav = driver_pay(
        policy, fare_minor=3850, distance_m=REFERENCE_TRIP_M, duration_s=1800, wheelchair_accessible=True
    )
    # WAV floor 1.936 x 7.5 + 19.239 = 33.759 -> 33.76: topped up by 1.03 out of the commission.
    assert (wav.pay, wav.floor_top_up, wav.commission, wav.floor_applied) == (3376, 103, 474, True)


@pytest.mark.parametrize(
    ("miles", "minutes"),
    [("0.1", 1), ("1", 6), ("2.5", 12), ("7.5", 30), ("18", 45), ("40", 70), ("3", 55), ("12", 15)],
)
def test_default_share_meets_the_standard_floor_on_typical_trips(miles, minutes):
    policy = default_policy()
    distance_m = Decimal(miles) * METRES_PER_MILE
    fare = quote_fare(policy, distance_m=distance_m, duration_s=minutes * 60).fare
    pay = driver_pay(
        policy, fare_minor=fare, distance_m=distance_m, duration_s=minutes * 60, wheelchair_accessible=False
    )
    assert not pay.floor_applied
    assert pay.share >= pay.floor


def minnesota_policy() -> FarePolicy:
    # Minnesota, from 1 December 2024: $1.28 a mile and $0.31 a minute with a rider aboard, at least
    # $5.00 a ride, compliance assessed over the pay period.
    return policy_with(
        driver_minimum={
            "per_distance": "1.28",
            "per_minute": "0.31",
            "per_trip": "5.00",
            "wav_per_distance": "1.28",
            "period": "week",
        }
    )


def test_minnesota_weekly_floor_tops_up_a_short_trip_under_five_dollars():
    policy = minnesota_policy()
    long_trip = {"distance_m": 10 * METRES_PER_MILE, "duration_s": 20 * 60}  # 12.80 + 6.20 = 19.00
    short_trip = {"distance_m": METRES_PER_MILE, "duration_s": 4 * 60}  # 1.28 + 1.24 = 2.52 -> 5.00
    trips = [
        PeriodTrip(**long_trip, pay=1900),
        PeriodTrip(**long_trip, pay=1900),
        PeriodTrip(**short_trip, pay=340),
    ]

    result = period_top_up(policy, trips)

    assert result.floor == 1900 + 1900 + 500
    assert result.received == 4140
    assert result.top_up == 160
    assert result.total_pay == 4300
    assert result.trip_count == 3


def test_minnesota_weekly_floor_counts_the_whole_week_not_each_trip():
    policy = minnesota_policy()
    trips = [
        PeriodTrip(distance_m=10 * METRES_PER_MILE, duration_s=1200, pay=2100),  # 2.00 over its 19.00
        PeriodTrip(distance_m=METRES_PER_MILE, duration_s=240, pay=340),  # 1.60 under its 5.00
    ]
    result = period_top_up(policy, trips)
    assert (result.floor, result.received, result.top_up) == (2400, 2440, 0)


def test_minnesota_per_trip_pay_is_the_share_until_the_week_is_settled():
    policy = minnesota_policy()
    pay = driver_pay(
        policy, fare_minor=400, distance_m=METRES_PER_MILE, duration_s=240, wheelchair_accessible=False
    )
    assert (pay.pay, pay.share, pay.floor, pay.floor_applied, pay.floor_top_up) == (340, 340, 500, False, 0)
    assert pay.pay + pay.commission == 400


def test_week_floor_uses_the_wav_rate_per_trip():
    minimum = policy_with(
        driver_minimum={
            "per_distance": "1.00",
            "per_minute": "0.00",
            "wav_per_distance": "2.00",
            "period": "week",
        }
    ).driver_minimum
    trips = [
        PeriodTrip(distance_m=5 * METRES_PER_MILE, duration_s=600, pay=0, wheelchair_accessible=True),
        PeriodTrip(distance_m=5 * METRES_PER_MILE, duration_s=600, pay=0),
    ]
    result = period_top_up(minimum, trips, distance_unit="mile", currency="USD")
    assert result.floor == 1000 + 500


def test_prop_22_style_engaged_time_floor_over_a_week():
    # 120% of a $16.00 minimum wage per engaged hour plus $0.35 per engaged mile (illustrative figures).
    rule = EngagedTimeFloor(hourly_wage=Decimal("16.00"), per_distance=Decimal("0.35"))
    trips = [
        # 40 minutes engaged (8 to the pickup, 32 aboard), 20 engaged miles
        PeriodTrip(
            distance_m=17 * METRES_PER_MILE,
            duration_s=32 * 60,
            engaged_distance_m=20 * METRES_PER_MILE,
            engaged_s=40 * 60,
            pay=2500,
        ),
        PeriodTrip(
            distance_m=25 * METRES_PER_MILE,
            duration_s=70 * 60,
            engaged_distance_m=28 * METRES_PER_MILE,
            engaged_s=80 * 60,
            pay=3000,
        ),
        # without engaged figures the aboard ones count: 60 minutes, 12 miles
        PeriodTrip(distance_m=12 * METRES_PER_MILE, duration_s=60 * 60, pay=1460),
    ]

    result = period_top_up(rule, trips)

    # 3 engaged hours x 19.20 = 57.60, plus 60 miles x 0.35 = 21.00
    assert result.floor == 7860
    assert result.received == 6960
    assert result.top_up == 900


def test_engaged_time_floor_rounds_once():
    rule = EngagedTimeFloor(hourly_wage=Decimal("16.00"), per_distance=Decimal("0.35"))
    # Three trips of 1 second and 1 metre, each worth 0.555 cents exactly: rounded trip by trip they would
    # make 3 cents, but the period's exact 1.665 cents is rounded once, to 2.
    trips = [PeriodTrip(distance_m=1, duration_s=1, pay=0)] * 3
    assert period_top_up(rule, trips).floor == 2


def test_late_cancellation_split():
    policy = default_policy()
    split = cancellation_split(policy)
    assert (split.fee, split.driver, split.coop) == (500, 425, 75)
    assert not rider_cancellation_fee_due(policy, seconds_since_assigned=120)
    assert rider_cancellation_fee_due(policy, seconds_since_assigned=121)


def test_cancellation_split_rounds_the_driver_share_half_up():
    policy = policy_with(rider={"cancellation_fee": "3.30"}, commission_rate="0.15")
    split = cancellation_split(policy)
    # 3.30 x 0.85 = 2.805 -> 2.81
    assert (split.fee, split.driver, split.coop) == (330, 281, 49)


def test_minimum_fare_applies_before_the_booking_fee():
    policy = policy_with(rider={"booking_fee": "1.25"})
    quote = quote_fare(policy, distance_m=1000, duration_s=120)
    # metered 2.50 + 1.76 x 0.621371 + 0.76 x 2 = 5.11...; minimum 10.00; plus the booking fee 1.25
    assert quote.fare == 1125
    assert quote.minimum_fare_applied
    lines = {line["label"]: line["amount"] for line in quote.breakdown_document()}
    assert lines["Booking fee"] == 125
    assert sum(lines.values()) == 1125
    assert lines["Minimum fare adjustment"] == 1000 - lines["Base fare"] - lines["Distance"] - lines["Time"]


def test_surge_is_clamped_to_the_cap_and_never_below_one():
    policy = policy_with(rider={"surge_cap": "1.50"})
    plain = quote_fare(policy, distance_m=REFERENCE_TRIP_M, duration_s=1800).fare
    capped = quote_fare(policy, distance_m=REFERENCE_TRIP_M, duration_s=1800, surge=Decimal("3"))
    below = quote_fare(policy, distance_m=REFERENCE_TRIP_M, duration_s=1800, surge=Decimal("0.5"))
    assert plain == 3850
    assert capped.fare == 5775 and capped.surge == Decimal("1.50")
    assert {"label": "Surge", "amount": 1925} in capped.breakdown_document()
    assert below.fare == 3850 and below.surge == 1


def test_default_policy_has_no_surge():
    quote = quote_fare(default_policy(), distance_m=5000, duration_s=900, surge=Decimal("2.0"))
    assert quote.surge == 1


def test_kilometre_policy_in_a_zero_decimal_currency():
    policy = policy_with(
        currency="JPY",
        distance_unit="km",
        rider={"base": "500", "per_distance": "300", "per_minute": "40", "minimum_fare": "700"},
        driver_minimum={"per_distance": "200", "per_minute": "30", "wav_per_distance": "250"},
    )
    quote = quote_fare(policy, distance_m=3250, duration_s=610)
    # 500 + 300 x 3.25 + 40 x 10.1666... = 1881.666... -> 1882 yen
    assert quote.fare == 1882
    assert sum(line.amount for line in quote.breakdown) == 1882
    assert money(quote.fare, quote.currency) == {"amount": 1882, "currency": "JPY"}


def test_money_helpers():
    assert to_minor_units(Decimal("23.005"), "USD") == 2301
    assert to_minor_units(Decimal("23.0049"), "USD") == 2300
    assert to_minor_units(Decimal("-0.005"), "USD") == -1
    assert to_minor_units(Decimal("1.5"), "JPY") == 2
    assert to_minor_units(Decimal("1.0005"), "KWD") == 1001
    assert minor_to_decimal(2301, "USD") == Decimal("23.01")
    assert str(minor_to_decimal(2301, "USD")) == "23.01"
    assert minor_to_decimal(2301, "JPY") == Decimal(2301)
    assert money(2307, "USD") == {"amount": 2307, "currency": "USD"}
    with pytest.raises(ValueError, match="ISO 4217"):
        money(1, "XXX")
    with pytest.raises(TypeError):
        money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_minor_units(1.5, "USD")  # type: ignore[arg-type]


class TestQuoteTolerance:
    policy = default_policy()
    quoted_m = REFERENCE_TRIP_M
    quoted = quote_fare(default_policy(), distance_m=REFERENCE_TRIP_M, duration_s=1800).fare  # 38.50

    def decide(self, *, miles: str, minutes: int):
        return fare_with_quote_tolerance(
            self.policy,
            quoted_fare=self.quoted,
            quoted_distance_m=self.quoted_m,
            distance_m=Decimal(miles) * METRES_PER_MILE,
            duration_s=minutes * 60,
        )

    def test_small_drift_either_way_charges_the_quote(self):
        for miles, minutes in [("7.5", 34), ("7.0", 27), ("8.2", 30)]:
            decision = self.decide(miles=miles, minutes=minutes)
            assert (decision.fare, decision.reason) == (3850, "quote_honoured")

    def test_traffic_alone_never_raises_the_price(self):
        decision = self.decide(miles="7.5", minutes=60)  # measured 61.30: 59% more, but not a longer trip
        assert decision.measured_fare == 6130
        assert (decision.fare, decision.reason) == (3850, "quote_honoured")

    def test_a_materially_shorter_trip_charges_the_measured_fare(self):
        decision = self.decide(miles="3", minutes=12)  # 2.50 + 5.28 + 9.12 = 16.90
        assert (decision.fare, decision.reason) == (1690, "shorter_than_quoted")

    def test_shorter_by_more_than_25_percent_but_less_than_5_dollars_keeps_the_quote(self):
        short_quote = quote_fare(self.policy, distance_m=2 * METRES_PER_MILE, duration_s=600).fare  # 13.62
        decision = fare_with_quote_tolerance(
            self.policy,
            quoted_fare=short_quote,
            quoted_distance_m=2 * METRES_PER_MILE,
            distance_m=METRES_PER_MILE,
            duration_s=360,
        )
        assert decision.measured_fare == 1000  # the minimum fare
        assert (decision.fare, decision.reason) == (short_quote, "quote_honoured")

    def test_a_materially_longer_trip_charges_the_measured_fare(self):
        decision = self.decide(miles="12", minutes=40)  # 2.50 + 21.12 + 30.40 = 54.02
        assert (decision.fare, decision.reason) == (5402, "materially_longer_than_quoted")

    def test_longer_but_within_the_fare_tolerance_keeps_the_quote(self):
        decision = self.decide(miles="9.5", minutes=30)  # 27% longer, fare 42.02: +9%
        assert (decision.fare, decision.reason) == (3850, "quote_honoured")
