"""A short simulation whose cars follow Valhalla's routes on their city's tiles, against a real server:
every drive is the engine's route, and each trip's quoted and lived pickup is recorded for comparison."""

from __future__ import annotations

import asyncio

import pytest

from tests.simulation.city_roads import build_city_tiles
from tests.simulation.conftest import SPEEDUP, seed_service_area

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_simulated_cars_drive_valhallas_routes_and_their_pickups_are_timed(live_stack, tmp_path):
    from dispatch.simulation.road_routing import RoadFollowingRouter
    from dispatch.simulation.runner import Simulation, SimulationConfig

    config = SimulationConfig(
        base_url=live_stack.base_url,
        drivers=6,
        riders=5,
        duration_s=25.0,
        drain_s=25.0,
        speedup=SPEEDUP,
        accept_rate=1.0,
        requests_per_minute=20.0,
        seed=4,
        city_width_m=2_000.0,
        city_height_m=3_000.0,
        token_cache=None,
        progress=False,
        router="valhalla",
    )
    tiles = build_city_tiles(config.city(), tmp_path / "roads", "sim")
    config.roads_dir, config.roads_city = tiles.root.parent, tiles.name
    simulation = Simulation(config)
    assert isinstance(simulation.router, RoadFollowingRouter)
    assert "not built from this city" not in simulation.router_note
    seed_service_area(simulation.city)

    result = asyncio.run(simulation.run())

    counters = result.metrics.counters
    assert result.summary.trips_completed >= 1, live_stack.logs()
    assert counters.get("sim_routes.valhalla", 0) >= 2 * result.summary.trips_completed
    assert not [name for name in counters if name.startswith("sim_routes.fallback")], counters

    arrived = [t for t in simulation.context.pickups.values() if t.arrived]
    assert arrived
    for timing in arrived:
        assert timing.offers >= 1 and timing.offered_eta_s is not None
        assert timing.drive_s is not None and timing.drive_s >= 0
        lived = timing.lived_wait_s(config.speedup)
        assert lived is not None and lived >= timing.drive_s
    quoted = [t for t in arrived if t.quoted_eta_s is not None]
    assert len(quoted) == len(
        [t for t in simulation.context.pickups.values() if t.quoted_eta_s and t.arrived]
    )
