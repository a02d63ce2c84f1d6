"""A short simulation against a real server: trips complete, and the simulator's summary matches the
database row for row."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.simulation.conftest import SPEEDUP, seed_service_area

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_short_simulation_completes_trips_and_its_summary_matches_the_database(live_stack):
    from django.db.models import Sum

    from dispatch.matching.fairness_figures import DriverTime, hourly_earnings_gini, rounded
    from dispatch.models import Offer, Rating, Tip, Trip
    from dispatch.simulation.runner import Simulation, SimulationConfig

    config = SimulationConfig(
        base_url=live_stack.base_url,
        drivers=8,
        riders=6,
        duration_s=25.0,
        drain_s=30.0,
        speedup=SPEEDUP,
        accept_rate=0.9,
        requests_per_minute=24.0,
        seed=11,
        city_width_m=2_000.0,
        city_height_m=3_000.0,
        token_cache=None,
        progress=False,
    )
    simulation = Simulation(config)
    seed_service_area(simulation.city)

    result = asyncio.run(simulation.run())
    summary = result.summary
    trips = Trip.objects.all()

    assert summary.trips_completed >= 1, live_stack.logs()
    assert summary.trips_requested == trips.count()
    assert summary.trips_completed == trips.filter(status="completed").count()
    assert summary.trips_unfulfilled == trips.filter(status="unfulfilled").count()
    assert summary.trips_cancelled_by_rider == trips.filter(status="cancelled", cancelled_by="rider").count()
    assert (
        summary.trips_cancelled_by_driver == trips.filter(status="cancelled", cancelled_by="driver").count()
    )
    assert (
        result.trips_open_at_end
        == trips.filter(status__in=["requested", "assigned", "arrived", "in_progress"]).count()
    )

    # Every completed trip was paid at least the board's floor, and the pay the riders saw is the ledger's.
    assert len(summary.pay) == summary.trips_completed
    assert summary.trips_below_floor == 0
    completed = trips.filter(status="completed")
    assert sum(r.driver_pay_cents for r in summary.pay) == completed.aggregate(s=Sum("driver_pay_minor"))["s"]
    assert sum(r.fare_cents for r in summary.pay) == completed.aggregate(s=Sum("fare_minor"))["s"]
    assert sum(r.tip_cents for r in summary.pay) == (Tip.objects.aggregate(s=Sum("amount_minor"))["s"] or 0)
    assert Rating.objects.filter(trip__status="completed").count() <= summary.trips_completed

    # The summary's Gini is the monthly figures' (docs/figures.md), over every simulated driver: the pay the
    # database holds for each, over the online time their app lived.
    pay_by_driver = dict(completed.values_list("driver_id").annotate(pay=Sum("driver_pay_minor")))
    assert len(summary.driver_online_s_by_id) == config.drivers
    gini = hourly_earnings_gini(
        [
            DriverTime(online_s=online_s, earnings_minor=pay_by_driver.get(uuid.UUID(driver_id), 0))
            for driver_id, online_s in summary.driver_online_s_by_id.items()
        ]
    )
    assert gini.gini is not None and summary.hourly_earnings_gini() == gini
    assert summary.to_dict()["fairness"]["hourly_earnings_gini"] == rounded(gini.gini)

    # The offers the drivers counted are the offers the server made.
    counters = result.metrics.counters
    assert counters.get("offers.received", 0) == Offer.objects.count()
    assert counters.get("offers.accepted", 0) == Offer.objects.filter(status="accepted").count()

    steps = {s.step: s for s in result.metrics.summaries()}
    for step in ("estimate", "request", "request_to_offer", "offer_accept", "accept_to_rider_notified"):
        assert steps[step].count >= 1, step
    assert steps["trip_complete"].count == summary.trips_completed
    assert 0 < summary.utilisation <= 1
