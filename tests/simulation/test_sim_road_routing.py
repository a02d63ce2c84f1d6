"""Simulated cars follow Valhalla's routes on the demo city's tiles: every route is a chain of legal blocks
of the city, the motion model drives it unchanged, and Dijkstra answers (counted) when the engine cannot."""

from __future__ import annotations

import random

import pytest

from dispatch.roads.engine import TileSet
from dispatch.roads.routers import ValhallaRouter
from dispatch.simulation.city import SpeedClass
from dispatch.simulation.motion import Vehicle
from dispatch.simulation.road_routing import (
    RoadFollowingRouter,
    SimulationRouterError,
    simulation_router,
    tiles_built_from,
)
from dispatch.simulation.routing import Router
from tests.simulation import city_roads

# The shared road fixtures (tests/simulation/city_roads.py), made this module's.
demo_city = city_roads.demo_city
demo_city_tiles = city_roads.demo_city_tiles
other_city_tiles = city_roads.other_city_tiles


@pytest.fixture(scope="module")
def follower(demo_city, demo_city_tiles) -> RoadFollowingRouter:
    return RoadFollowingRouter(demo_city, ValhallaRouter(demo_city_tiles, snap_radius_m=25))


def test_valhalla_routes_become_legal_routes_through_the_citys_intersections(demo_city, follower):
    dijkstra = Router(demo_city)
    rng = random.Random(5)
    pairs = [(demo_city.random_node(rng), demo_city.random_node(rng)) for _ in range(200)]
    pairs = [(a, b) for a, b in pairs if a != b]
    follower.counts.clear()
    for source, target in pairs:
        route = follower.route(source, target)
        assert (route.origin, route.destination) == (source, target)
        for a, b in zip(route.nodes, route.nodes[1:], strict=False):
            edge = demo_city.arc(a, b)
            assert edge is not None, f"{a}->{b} is not a block one may drive"
            assert not edge.one_way or (edge.source, edge.target) == (a, b)
        # Never faster than the city's fastest path; Valhalla's turn costs make it choose a little
        # differently, never wildly so.
        fastest = dijkstra.travel_time_s(source, target)
        assert fastest - 1e-6 <= route.duration_s <= fastest * 1.35 + 30
    # Every one of them was the engine's route: none fell back to Dijkstra.
    assert dict(follower.counts) == {"valhalla": len(pairs)}


def test_a_car_against_a_one_way_avenue_goes_round_the_block(demo_city, follower):
    avenue = next(r for r in demo_city.roads if r.speed_class == SpeedClass.AVENUE and r.one_way)
    with_the_flow = follower.route(avenue.nodes[10], avenue.nodes[16])
    against = follower.route(avenue.nodes[16], avenue.nodes[10])

    assert with_the_flow.nodes == avenue.nodes[10:17]
    assert against.length_m > with_the_flow.length_m + 150
    backwards = set(zip(avenue.nodes[1:], avenue.nodes, strict=False))
    assert not backwards & set(zip(against.nodes, against.nodes[1:], strict=False))


def test_the_motion_model_drives_a_followed_route_to_its_end(demo_city, follower):
    rng = random.Random(2)
    car = Vehicle(demo_city, demo_city.random_node(rng), rng)
    for _ in range(5):
        target = demo_city.random_node(rng)
        route = car.drive_to(follower, target)
        assert car.remaining_s > 0 or route.nodes == (target,)
        while not car.arrived:
            car.advance(7.0)
            assert car.node in route.nodes  # every intersection it passes is one of the route's
        assert car.node == target


def test_without_tiles_or_on_another_citys_tiles_the_cars_fall_back_to_dijkstra(
    demo_city, other_city_tiles, tmp_path
):
    dijkstra = Router(demo_city)
    source, target = 100, 2500

    missing = RoadFollowingRouter(demo_city, ValhallaRouter(TileSet("none", tmp_path), snap_radius_m=25))
    assert missing.route(source, target).nodes == dijkstra.route(source, target).nodes
    assert dict(missing.counts) == {"fallback.no_tiles": 1}

    # The other city's streets are not the demo's: its routes are off the demo's graph or do not run
    # through the demo's intersections, so the car takes Dijkstra's route and says why.
    foreign = RoadFollowingRouter(demo_city, ValhallaRouter(other_city_tiles, snap_radius_m=25))
    route = foreign.route(source, target)
    assert route.nodes == dijkstra.route(source, target).nodes
    assert sum(foreign.counts.values()) == 1 and "valhalla" not in foreign.counts
    assert next(iter(foreign.counts)) in {"fallback.off_graph", "fallback.unmapped", "fallback.no_route"}


def test_the_simulation_router_is_valhalla_only_on_this_citys_tiles(
    demo_city, demo_city_tiles, other_city_tiles, tmp_path
):
    assert tiles_built_from(demo_city_tiles, demo_city)
    assert not tiles_built_from(other_city_tiles, demo_city)
    absent = TileSet("demo", tmp_path / "demo")

    router, note = simulation_router(demo_city, choice="auto", tiles=demo_city_tiles)
    assert isinstance(router, RoadFollowingRouter) and "Valhalla" in note

    for tiles in (other_city_tiles, absent):
        router, note = simulation_router(demo_city, choice="auto", tiles=tiles)
        assert type(router) is Router and "Dijkstra" in note

    router, note = simulation_router(demo_city, choice="dijkstra", tiles=demo_city_tiles)
    assert type(router) is Router

    router, note = simulation_router(demo_city, choice="valhalla", tiles=other_city_tiles)
    assert isinstance(router, RoadFollowingRouter) and "not built from this city" in note
    with pytest.raises(SimulationRouterError, match="no road tiles"):
        simulation_router(demo_city, choice="valhalla", tiles=absent)
    with pytest.raises(SimulationRouterError, match="one of auto, valhalla, dijkstra"):
        simulation_router(demo_city, choice="osrm", tiles=demo_city_tiles)
