import itertools
import math
import random
import statistics

import pytest

from dispatch.simulation.city import City
from dispatch.simulation.demand import (
    SECONDS_PER_DAY,
    DemandCurve,
    DemandModel,
    DriverBehaviour,
    RiderBehaviour,
    SimClock,
    default_hot_spots,
)


@pytest.fixture(scope="module")
def city() -> City:
    return City.generate(seed=3, width_m=1500, height_m=2000)


def test_curve_integrates_to_the_daily_total():
    curve = DemandCurve(daily_total=5_000)
    assert curve.expected_between(0, SECONDS_PER_DAY) == pytest.approx(5_000, rel=1e-9)
    # Fine numerical integration agrees (the curve is continuous and piecewise linear).
    steps = 24 * 3600
    riemann = sum(curve.rate_per_second((k + 0.5) * SECONDS_PER_DAY / steps) for k in range(steps))
    assert riemann * SECONDS_PER_DAY / steps == pytest.approx(5_000, rel=1e-6)


def test_curve_has_rush_hours_and_a_night_trough():
    curve = DemandCurve(daily_total=2_400)
    at = lambda hour: curve.rate_per_hour(hour * 3600)  # noqa: E731
    assert at(4.5) < at(8.5) and at(4.5) < at(18.5)
    assert at(8.5) > at(11.0) < at(18.5)
    assert max(at(h / 4) for h in range(96)) == pytest.approx(at(19.5))
    assert at(12.5) == pytest.approx(at(12.5 + 24))  # the curve repeats daily
    assert all(at(h / 10) >= 0 for h in range(240))


def test_curve_is_continuous():
    curve = DemandCurve(daily_total=3_000)
    for hour in range(24):
        t = hour * 3600.0
        assert curve.rate_per_hour(t - 1e-6) == pytest.approx(curve.rate_per_hour(t + 1e-6), abs=1e-3)


def test_arrivals_are_a_plausible_poisson_process():
    curve = DemandCurve(daily_total=4_800)
    rng = random.Random(2024)
    counts_per_day = []
    per_hour = [0] * 24
    gaps_at_peak = []
    for _day in range(20):
        t, n = 0.0, 0
        while True:
            previous = t
            t = curve.next_arrival(t, rng)
            if t >= SECONDS_PER_DAY:
                break
            n += 1
            per_hour[int(t // 3600)] += 1
            if previous > 18.9 * 3600 and t < 20.1 * 3600:
                gaps_at_peak.append(t - previous)
        counts_per_day.append(n)
    mean = statistics.fmean(counts_per_day)
    # 20 days of Poisson(4800): the mean is within 4 standard errors, the variance about the mean.
    assert abs(mean - 4_800) < 4 * math.sqrt(4_800 / 20)
    assert 0.3 < statistics.variance(counts_per_day) / 4_800 < 2.2
    # Each hour's share follows the curve.
    for hour in range(24):
        expected = 20 * curve.expected_between(hour * 3600, (hour + 1) * 3600)
        assert abs(per_hour[hour] - expected) < 5 * math.sqrt(expected)
    # Near the evening peak the gaps are exponential: mean ~ 1/rate, coefficient of variation ~ 1.
    rate = curve.rate_per_second(19.5 * 3600)
    assert statistics.fmean(gaps_at_peak) == pytest.approx(1 / rate, rel=0.1)
    assert statistics.stdev(gaps_at_peak) / statistics.fmean(gaps_at_peak) == pytest.approx(1.0, abs=0.12)


def test_arrivals_are_reproducible_from_a_seed(city):
    model = DemandModel.default(city, daily_total=3_000)
    first = model.arrivals(8 * 3600, 9 * 3600, random.Random(1))
    again = model.arrivals(8 * 3600, 9 * 3600, random.Random(1))
    assert first == again and len(first) > 50
    assert all(a.requested_at_s < b.requested_at_s for a, b in itertools.pairwise(first))


def test_trips_favour_hot_spots_and_are_not_trivially_short(city):
    model = DemandModel.default(city)
    rng = random.Random(6)
    trips = [model.choose_trip(0.0, rng) for _ in range(3_000)]
    assert all(city.distance_m(t.pickup, t.dropoff) >= model.min_trip_m for t in trips)
    hub = next(s for s in default_hot_spots(city) if s.name == "Transit hub")
    near_hub = set(city.nodes_within(hub.lat, hub.lng, hub.radius_m))
    share_near_hub = sum(t.origin_node in near_hub for t in trips) / len(trips)
    area_share = len(near_hub) / len(city.nodes)
    assert share_near_hub > 2 * area_share
    assert trips[0].pickup_place() == {
        "lat": round(trips[0].pickup[0], 7),
        "lng": round(trips[0].pickup[1], 7),
    }


def test_rider_behaviour_probabilities_are_respected():
    behaviour = RiderBehaviour(
        cancel_before_assignment_probability=0.2, cancel_after_assignment_probability=0.1
    )
    rng = random.Random(3)
    plans = [behaviour.plan(rng) for _ in range(5_000)]
    before = [
        p.cancel_before_assignment_after_s for p in plans if p.cancel_before_assignment_after_s is not None
    ]
    after = [p for p in plans if p.cancel_after_assignment_after_s is not None]
    assert len(before) / 5_000 == pytest.approx(0.2, abs=0.02)
    assert len(after) / 5_000 == pytest.approx(0.1, abs=0.015)
    assert all(10 <= s <= 90 for s in before)
    tipped = [p for p in plans if p.tip_share_of_fare > 0]
    assert tipped and tipped[0].tip_cents(2000) == round(2000 * tipped[0].tip_share_of_fare)
    assert {p.rating_stars for p in plans} == {None, 1, 2, 3, 4, 5}


def test_driver_behaviour_answers():
    behaviour = DriverBehaviour(decline_probability=0.25, ignore_offer_probability=0.05)
    rng = random.Random(1)
    answers = [behaviour.answer(rng) for _ in range(4_000)]
    shares = {k: sum(a == k for a, _ in answers) / 4_000 for k in ("accept", "decline", "ignore")}
    assert shares["decline"] == pytest.approx(0.25, abs=0.025)
    assert shares["ignore"] == pytest.approx(0.05, abs=0.012)
    assert all(0.5 <= delay <= 6.0 for answer, delay in answers if answer != "ignore")


def test_clock_compresses_a_day_into_minutes():
    wall = [100.0]
    clock = SimClock.for_day_in_minutes(10, start_s=6 * 3600, wall_clock=lambda: wall[0])
    assert clock.compression == pytest.approx(144)
    wall[0] += 60  # one wall minute is 2.4 simulated hours
    assert clock.hour_of_day() == pytest.approx(8.4)
    assert clock.wall_seconds_until(clock.now() + 144) == pytest.approx(1.0)
    assert clock.wall_seconds_until(0) == 0
