import random

import pytest

from dispatch.simulation.city import City
from dispatch.simulation.routing import NoRouteError, Route, Router


@pytest.fixture(scope="module")
def city() -> City:
    return City.generate(seed=3, width_m=1500, height_m=2000)


@pytest.fixture(scope="module")
def router(city) -> Router:
    return Router(city)


def test_routes_follow_legal_edges(city, router):
    rng = random.Random(9)
    for _ in range(100):
        source, target = city.random_node(rng), city.random_node(rng)
        route = router.route(source, target)
        assert route.origin == source and route.destination == target
        for a, b in zip(route.nodes, route.nodes[1:], strict=False):
            assert city.arc(a, b) is not None
        assert route.length_m == pytest.approx(sum(e.length_m for e in route.edges))
        assert route.duration_s == pytest.approx(router.travel_time_s(source, target))
        assert route.length_m >= city.distance_m(city.nodes[source], city.nodes[target]) - 1e-6


def test_route_is_no_slower_than_any_neighbour_detour(city, router):
    # Bellman's optimality: time(s, t) <= edge(s, n) + time(n, t) for every out-neighbour n.
    rng = random.Random(4)
    for _ in range(30):
        source, target = city.random_node(rng), city.random_node(rng)
        best = router.travel_time_s(source, target)
        for neighbour, edge in city.neighbours(source):
            assert best <= edge.travel_time_s + router.travel_time_s(neighbour, target) + 1e-9


def test_one_way_streets_force_detours(city, router):
    edge = next(e for e in city.edges if e.one_way)
    forward = router.route(edge.source, edge.target)
    backward = router.route(edge.target, edge.source)
    assert forward.nodes == (edge.source, edge.target)
    assert len(backward.nodes) > 2


def test_route_to_self_is_empty(router):
    route = router.route(5, 5)
    assert route.nodes == (5,) and route.length_m == 0 and route.duration_s == 0


def test_cache_reuses_searches_from_one_source(city):
    router = Router(city, cache_size=2)
    router.route(0, 10)
    router.route(0, 20)
    assert router.searches == 1
    router.route(1, 10)
    router.route(2, 10)
    router.route(0, 30)  # evicted by the two newer sources
    assert router.searches == 4


def test_route_between_places_snaps_to_intersections(city, router):
    route = router.route_between(city.nodes[3], city.nodes[40])
    assert route.origin == 3 and route.destination == 40


def test_from_nodes_rejects_illegal_moves(city):
    edge = next(e for e in city.edges if e.one_way)
    with pytest.raises(NoRouteError):
        Route.from_nodes(city, [edge.target, edge.source])
