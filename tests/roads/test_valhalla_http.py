"""The HTTP adapter against the real `valhalla_service` from the pyvalhalla wheel, on the Helsinki tiles:
the same answers as Valhalla in-process, the same reasons when the engine says no, and the model behind it
when the server is down or too slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.roads.engine import RoutingError, TileSet
from dispatch.roads.routers import (
    MODEL,
    VALHALLA_HTTP,
    ModelRouter,
    ResilientRouter,
    ValhallaHttpRouter,
    ValhallaRouter,
    fallback_counts,
    reset_fallback_counts,
)
from tests.roads.conftest import ValhallaService, running_valhalla_service
from tests.roads.helsinki import (
    AT,
    CROW_NEARER,
    NORTH,
    RANK_TARGET,
    ROAD_NEARER,
    SOUTH,
    beyond_north,
    jittered,
    sampled_every,
)
from tests.roads_fixtures import use_router

# Generous: the answers here take milliseconds; only the timeout test wants a short one.
TIMEOUT_S = 10.0


@pytest.fixture
def over_http(valhalla_service: ValhallaService, snap_radius_m: float) -> ValhallaHttpRouter:
    return ValhallaHttpRouter(valhalla_service.base_url, snap_radius_m=snap_radius_m, timeout_s=TIMEOUT_S)


def test_a_route_over_http_is_the_in_process_route(
    over_http: ValhallaHttpRouter, in_process: ValhallaRouter
) -> None:
    for origin, destination in ((SOUTH, NORTH), (NORTH, SOUTH), (CROW_NEARER, RANK_TARGET)):
        by_http = over_http.route(origin, destination, AT)
        here = in_process.route(origin, destination, AT)

        assert by_http.router == VALHALLA_HTTP
        assert (by_http.distance_m, by_http.duration_s, by_http.geometry) == (
            here.distance_m,
            here.duration_s,
            here.geometry,
        )


def test_a_matrix_over_http_is_the_in_process_matrix(
    over_http: ValhallaHttpRouter, in_process: ValhallaRouter
) -> None:
    sources = [CROW_NEARER, ROAD_NEARER, SOUTH, NORTH]

    by_http = over_http.legs_to(sources, RANK_TARGET, AT)
    here = in_process.legs_to(sources, RANK_TARGET, AT)

    assert [leg and (leg.distance_m, leg.duration_s, leg.router) for leg in by_http] == [
        leg and (leg.distance_m, leg.duration_s, VALHALLA_HTTP) for leg in here
    ]
    assert all(leg is not None for leg in by_http)


def test_a_trail_matched_over_http_is_matched_alike(
    over_http: ValhallaHttpRouter, in_process: ValhallaRouter
) -> None:
    route = in_process.route(SOUTH, NORTH, AT)
    trail = jittered(sampled_every(route.geometry, 20.0), sigma_m=8.0, seed=13)

    assert over_http.matched_length_m(trail) == in_process.matched_length_m(trail)


def test_the_servers_refusals_carry_the_same_reasons(
    over_http: ValhallaHttpRouter, in_process: ValhallaRouter, helsinki_tiles: TileSet
) -> None:
    far_north = beyond_north(helsinki_tiles, 2000)
    asks = {
        "route from the map to off it": lambda router: router.route(SOUTH, far_north, AT),
        "route from off the map": lambda router: router.route(far_north, SOUTH, AT),
        "matrix with a source off the map": lambda router: router.legs_to([SOUTH, far_north], NORTH, AT),
        "a trail off the map": lambda router: router.matched_length_m(
            [far_north, (far_north[0] + 0.001, far_north[1])]
        ),
    }
    for what, ask in asks.items():
        with pytest.raises(RoutingError) as by_http:
            ask(over_http)
        with pytest.raises(RoutingError) as here:
            ask(in_process)
        assert by_http.value.reason == here.value.reason, what
    with pytest.raises(RoutingError) as off:
        over_http.route(SOUTH, far_north, AT)
    assert off.value.reason == "off_graph"  # the server's error 171, "No suitable edges near location"


def test_the_resilient_http_router_falls_back_per_source(
    over_http: ValhallaHttpRouter, in_process: ValhallaRouter, model: ModelRouter, helsinki_tiles: TileSet
) -> None:
    far_north = beyond_north(helsinki_tiles, 2000)
    sources = [CROW_NEARER, far_north, ROAD_NEARER]

    reset_fallback_counts()
    by_http = ResilientRouter(over_http, model).legs_to(sources, RANK_TARGET, AT)
    http_counts = fallback_counts()
    reset_fallback_counts()
    here = ResilientRouter(in_process, model).legs_to(sources, RANK_TARGET, AT)

    assert [leg and (leg.distance_m, leg.duration_s, leg.fallback_reason) for leg in by_http] == [
        leg and (leg.distance_m, leg.duration_s, leg.fallback_reason) for leg in here
    ]
    assert [leg and leg.router for leg in by_http] == [VALHALLA_HTTP, MODEL, VALHALLA_HTTP]
    assert http_counts == {"valhalla-http:matrix:off_graph": 1}


def test_settings_choose_the_http_router(settings, valhalla_service: ValhallaService) -> None:
    from dispatch.roads.choice import _router, road_router

    use_router(settings, "valhalla-http", ROCHDALE_VALHALLA_URL=valhalla_service.base_url)
    try:
        route = road_router().route(SOUTH, NORTH, AT)
    finally:
        _router.cache_clear()

    assert route.router == VALHALLA_HTTP and route.fallback_reason is None


def test_a_stopped_server_leaves_the_model_answering(
    helsinki_tiles: TileSet, tmp_path: Path, model: ModelRouter, snap_radius_m: float
) -> None:
    reset_fallback_counts()
    with running_valhalla_service(helsinki_tiles, tmp_path) as service:
        router = ResilientRouter(
            ValhallaHttpRouter(service.base_url, snap_radius_m=snap_radius_m, timeout_s=TIMEOUT_S), model
        )
        assert router.route(SOUTH, NORTH, AT).router == VALHALLA_HTTP
        service.process.kill()
        service.process.wait(timeout=10)

        route = router.route(SOUTH, NORTH, AT)
        legs = router.legs_to([CROW_NEARER, ROAD_NEARER], RANK_TARGET, AT)

    assert (route.router, route.fallback_reason) == (MODEL, "unavailable")
    assert route.distance_m == model.route(SOUTH, NORTH, AT).distance_m
    assert [(leg.router, leg.fallback_reason) for leg in legs if leg] == [(MODEL, "unavailable")] * 2
    assert fallback_counts() == {"valhalla-http:matrix:unavailable": 2, "valhalla-http:route:unavailable": 1}


def test_a_server_slower_than_the_timeout_leaves_the_model_answering(
    valhalla_service: ValhallaService, in_process: ValhallaRouter, model: ModelRouter, snap_radius_m: float
) -> None:
    # A real timeout, honestly provoked: a microsecond is far less than the server needs to rank 55 cars
    # (tens of milliseconds), so the read gives up before the answer can exist.
    impatient = ValhallaHttpRouter(valhalla_service.base_url, snap_radius_m=snap_radius_m, timeout_s=1e-6)
    sources = sampled_every(in_process.route(SOUTH, NORTH, AT).geometry, 40.0)
    reset_fallback_counts()

    legs = ResilientRouter(impatient, model).legs_to(sources, RANK_TARGET, AT)

    assert {(leg.router, leg.fallback_reason) for leg in legs if leg} == {(MODEL, "timeout")}
    assert len(legs) == len(sources)
    assert fallback_counts() == {"valhalla-http:matrix:timeout": len(sources)}
