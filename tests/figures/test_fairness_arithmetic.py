"""The pure arithmetic of the fairness figures (dispatch/matching/fairness_figures.py): the Gini coefficient,
the comparable-hours band, offer shares by decile, and the percentiles the response times use; by
properties (hypothesis) and by examples worked by hand."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.matching.fairness_figures import (
    DriverTime,
    HoursBand,
    comparable_hours_band,
    decile_shares,
    gini,
    hourly_earnings_gini,
    rounded,
)
from dispatch.simulation.metrics import percentile

amounts = st.integers(min_value=0, max_value=10**9)
some_amounts = st.lists(amounts, min_size=1, max_size=60)


@given(value=amounts, n=st.integers(min_value=1, max_value=60))
def test_equal_values_have_a_gini_of_zero(value, n):
    assert gini([value] * n) == 0


@given(value=st.integers(min_value=1, max_value=10**9), n=st.integers(min_value=1, max_value=60))
def test_one_holding_everything_has_a_gini_of_n_minus_one_over_n(value, n):
    assert gini([value] + [0] * (n - 1)) == Fraction(n - 1, n)


@given(values=some_amounts, scale=st.integers(min_value=1, max_value=10**6))
def test_the_gini_does_not_change_with_the_unit(values, scale):
    assert gini([value * scale for value in values]) == gini(values)
    assert gini([Fraction(value, scale) for value in values]) == gini(values)


@given(values=some_amounts, data=st.data())
def test_the_gini_is_the_mean_difference_over_twice_the_mean_in_any_order(values, data):
    shuffled = data.draw(st.permutations(values))
    n, total = len(values), sum(values)
    by_definition = (
        Fraction(sum(abs(a - b) for a in values for b in values), 2 * n * total) if total else Fraction(0)
    )
    assert gini(shuffled) == gini(values) == by_definition
    assert 0 <= gini(values) <= Fraction(n - 1, n)


def test_a_gini_worked_by_hand():
    # 1, 2, 3, 4: the differences between the six pairs are 1, 2, 3, 1, 2, 1 (sum 10, 20 over ordered
    # pairs); n^2 = 16, the mean 2.5: G = 20 / (2 x 16 x 2.5) = 0.25.
    assert gini([4, 1, 3, 2]) == Fraction(1, 4)
    # Floats are taken at their exact value: 0.5 and 1.5 are exact in binary. |0.5 - 1.5| twice over
    # (2 x 2^2 x 1) = 2 / 8.
    assert gini([0.5, 1.5]) == Fraction(1, 4)


def test_the_gini_refuses_nothing_and_negative_values():
    with pytest.raises(ValueError):
        gini([])
    with pytest.raises(ValueError):
        gini([3, -1])
    with pytest.raises(ValueError):
        gini([float("nan")])
    with pytest.raises(TypeError):
        gini([True])


def test_the_band_runs_from_half_to_one_and_a_half_times_the_median_driver():
    # The lower middle of four is a real driver's time: 60.
    band = comparable_hours_band([0, 200, 60, 10, 100, 0])
    assert band == HoursBand(median_s=Fraction(60), low_s=Fraction(30), high_s=Fraction(90))
    assert band.contains(30) and band.contains(90) and not band.contains(91)
    assert comparable_hours_band([0, 0]) is None


def test_hourly_earnings_gini_worked_by_hand():
    hour = 3600
    drivers = [
        DriverTime(online_s=100 * hour, earnings_minor=2520),  # 25.2 an hour
        DriverTime(online_s=100 * hour, earnings_minor=960),  # 9.6
        DriverTime(online_s=80 * hour, earnings_minor=1200),  # 15
        DriverTime(online_s=120 * hour, earnings_minor=2880),  # 24
        DriverTime(online_s=60 * hour, earnings_minor=600),  # 10
        DriverTime(online_s=200 * hour, earnings_minor=1920),  # outside the band (over 150 hours)
        DriverTime(online_s=10 * hour, earnings_minor=0),  # outside the band (under 50 hours)
        DriverTime(online_s=0, earnings_minor=400),  # never online: no hourly rate at all
    ]
    result = hourly_earnings_gini(drivers)
    # Online: 10, 60, 80, 100, 100, 120, 200 hours; the median 100, the band 50 to 150 hours.
    assert result.band == HoursBand(
        median_s=Fraction(100 * hour), low_s=Fraction(50 * hour), high_s=Fraction(150 * hour)
    )
    assert (result.drivers_online, result.drivers_included) == (7, 5)
    # Sorted 9.6, 10, 15, 24, 25.2 (sum 83.8, mean 16.76). The differences of the ten pairs:
    # 0.4 + 5.4 + 14.4 + 15.6 + 5 + 14 + 15.2 + 9 + 10.2 + 1.2 = 90.4, so over the ordered pairs 180.8;
    # G = 180.8 / (2 x 25 x 16.76) = 90.4 / 419 = 452 / 2095 = 0.21575...
    assert result.gini == Fraction(452, 2095)
    assert rounded(result.gini) == 0.216
    assert hourly_earnings_gini([]).gini is None


@given(counts=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=80))
def test_decile_shares_add_up_to_one_and_fall_from_the_busiest_tenth(counts):
    if sum(counts) == 0:
        with pytest.raises(ValueError):
            decile_shares(counts)
        return
    shares = decile_shares(counts)
    assert len(shares) == 10 and sum(shares) == 1
    assert all(a >= b for a, b in pairwise(shares))
    assert decile_shares(sorted(counts)) == shares  # the order drivers come in does not matter


@given(count=st.integers(min_value=1, max_value=1000), tenths=st.integers(min_value=1, max_value=8))
def test_equal_offers_give_every_tenth_a_tenth(count, tenths):
    assert decile_shares([count] * (10 * tenths)) == [Fraction(1, 10)] * 10
    assert decile_shares([count] * 7) == [Fraction(1, 10)] * 10  # drivers straddling tenths, split evenly


def test_decile_shares_worked_by_hand():
    # Seven drivers received 6, 4, 4, 4, 2, 1 and 0 offers (21). On a scale of 70 units, each driver holds
    # 10 units (a tenth of their offers each) and each tenth of the drivers 7 units:
    # tenth 1: units 0-6, the first driver's: 7 x 0.6 = 4.2; tenth 2: 3 x 0.6 + 4 x 0.4 = 3.4;
    # tenths 3, 4, 5: 7 x 0.4 = 2.8 each; tenth 6: 5 x 0.4 + 2 x 0.2 = 2.4; tenth 7: 7 x 0.2 = 1.4;
    # tenth 8: 0.2 + 6 x 0.1 = 0.8; tenth 9: 4 x 0.1 = 0.4; tenth 10: 0.
    shares = decile_shares([0, 4, 6, 2, 4, 1, 4])
    expected = [Fraction(tenths, 210) for tenths in (42, 34, 28, 28, 28, 24, 14, 8, 4, 0)]
    assert shares == expected
    assert [rounded(share) for share in shares] == [
        0.2,
        0.162,
        0.133,
        0.133,
        0.133,
        0.114,
        0.067,
        0.038,
        0.019,
        0.0,
    ]
    # Five drivers, one with every offer: that driver is the first two tenths.
    assert decile_shares([0, 0, 9, 0, 0])[:3] == [Fraction(1, 2), Fraction(1, 2), 0]
    with pytest.raises(ValueError):
        decile_shares([])
    with pytest.raises(ValueError):
        decile_shares([3, -1])


@given(
    values=st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50),
    q1=st.floats(min_value=0, max_value=100),
    q2=st.floats(min_value=0, max_value=100),
)
def test_percentiles_stay_within_the_values_and_grow_with_q(values, q1, q2):
    low, high = sorted((q1, q2))
    assert min(values) <= percentile(values, low) <= percentile(values, high) <= max(values) * (1 + 1e-12)


def test_percentiles_worked_by_hand():
    # Five times: the median is the third; the 90th percentile sits 0.6 of the way from the fourth to the
    # fifth (rank 0.9 x 4 = 3.6): 240 + 0.6 x 360 = 456.
    assert percentile([600, 60, 180, 120, 240], 50) == 180
    assert percentile([600, 60, 180, 120, 240], 90) == pytest.approx(456)


def test_rounding_is_half_up():
    assert rounded(Fraction(2165, 10000)) == 0.217
    assert rounded(Fraction(2, 3)) == 0.667
    assert rounded(Fraction(1, 8), 2) == 0.13
