"""The routers on the real Helsinki extract: roads, one-way streets, ranking by road, map matching, and the
model answering whenever the engine cannot (tiles missing, a point off the graph, bad input)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from dispatch.roads.engine import RoutingError, TileSet, classify
from dispatch.roads.routers import (
    MODEL,
    VALHALLA,
    ModelRouter,
    ResilientRouter,
    ValhallaRouter,
    fallback_counts,
    reset_fallback_counts,
)
from tests.roads.helsinki import (
    AT,
    CROW_NEARER,
    NORTH,
    ONE_WAY_NAME,
    RANK_TARGET,
    ROAD_NEARER,
    SOUTH,
    beyond_north,
    distance_m,
    jittered,
    path_length_m,
    point_along,
    sampled_every,
    streets,
)


@pytest.fixture
def resilient(in_process: ValhallaRouter, model: ModelRouter) -> ResilientRouter:
    reset_fallback_counts()
    return ResilientRouter(in_process, model)


def test_a_route_follows_the_roads_not_the_straight_line(in_process: ValhallaRouter) -> None:
    route = in_process.route(SOUTH, NORTH, AT)

    straight_m = distance_m(SOUTH, NORTH)
    assert route.router == VALHALLA and route.fallback_reason is None
    # Round the one-way grid and the station: well over the straight line (and over the model's x1.3 too).
    assert route.distance_m > 1.4 * straight_m
    assert route.duration_s > 0
    # The path starts and ends where it was asked (snapped to the nearest street, a few metres away) ...
    assert distance_m(route.geometry[0], SOUTH) < 30
    assert distance_m(route.geometry[-1], NORTH) < 30
    # ... bends along the streets (many vertices), and is as long as the distance the engine reports.
    assert len(route.geometry) > 50
    assert path_length_m(route.geometry) == pytest.approx(route.distance_m, rel=0.02)


def test_a_one_way_street_is_driven_only_its_way(in_process: ValhallaRouter, helsinki_tiles: TileSet) -> None:
    [street] = [
        street
        for street in streets(helsinki_tiles.streets_path)
        if street.name == ONE_WAY_NAME and street.one_way and path_length_m(street.line) > 120
    ]
    line = street.line
    # Points inside the block (a fifth from each end), away from the junctions where another street could
    # take the snap.
    start, end = point_along(line, 0.2), point_along(line, 0.8)
    block_m = path_length_m(line) * 0.6

    along = in_process.route(start, end, AT)
    against = in_process.route(end, start, AT)

    assert along.distance_m == pytest.approx(block_m, abs=10)
    # Against the arrow the car goes round the blocks to come back in the right direction.
    assert against.distance_m > 5 * along.distance_m
    assert against.duration_s > 5 * along.duration_s


def test_ranking_by_road_puts_the_nearer_by_road_first(
    resilient: ResilientRouter, model: ModelRouter
) -> None:
    candidates = [CROW_NEARER, ROAD_NEARER]
    # The premise: as the crow flies (and so for the model) the Vilhonkatu car is nearer.
    assert distance_m(CROW_NEARER, RANK_TARGET) < 0.7 * distance_m(ROAD_NEARER, RANK_TARGET)
    by_model = model.legs_to(candidates, RANK_TARGET, AT)
    assert by_model[0] is not None and by_model[1] is not None
    assert by_model[0].duration_s < by_model[1].duration_s

    by_road = resilient.legs_to(candidates, RANK_TARGET, AT)

    crow_leg, road_leg = by_road
    assert crow_leg is not None and road_leg is not None
    assert crow_leg.router == road_leg.router == VALHALLA
    # By road the order turns round: the Keskuskatu car arrives first, the Vilhonkatu one drives 3x as far.
    assert road_leg.duration_s < crow_leg.duration_s
    assert crow_leg.distance_m > 3 * road_leg.distance_m
    # Each leg is what a route between the same two places says.
    assert road_leg.distance_m == pytest.approx(
        resilient.route(ROAD_NEARER, RANK_TARGET, AT).distance_m, abs=5
    )
    assert fallback_counts() == {}


def test_a_noisy_trail_matches_to_the_road_length(in_process: ValhallaRouter) -> None:
    route = in_process.route(SOUTH, NORTH, AT)
    # A fix every 20 m (about every 2-3 s in town) with 8 m of GPS error on each.
    trail = jittered(sampled_every(route.geometry, 20.0), sigma_m=8.0, seed=13)

    matched_m = in_process.matched_length_m(trail)
    geodesic_m = path_length_m(trail)

    assert matched_m == pytest.approx(route.distance_m, rel=0.03)
    # Summing the noisy fixes zig-zags: the geodesic trail is off by far more than the match.
    assert abs(geodesic_m - route.distance_m) > 3 * abs(matched_m - route.distance_m)
    assert abs(geodesic_m - route.distance_m) > 0.08 * route.distance_m


def test_a_trail_off_the_roads_is_no_route_and_counted(
    resilient: ResilientRouter, helsinki_tiles: TileSet
) -> None:
    far_north = beyond_north(helsinki_tiles, 2000)
    trail = [far_north, (far_north[0] + 0.001, far_north[1])]

    with pytest.raises(RoutingError) as raised:
        resilient.matched_length_m(trail)

    # Valhalla's 444 "Map Match algorithm failed to find path": no road to match, not an engine fault (the
    # HTTP server says so with its code, the in-process engine only in words; both must read alike).
    assert raised.value.reason == "no_route"
    assert fallback_counts() == {"valhalla:match:no_route": 1}


def test_the_engines_messages_are_read_by_their_words_and_codes() -> None:
    # Words as the in-process engine says them, code and words as the HTTP server does.
    assert classify("No suitable edges near location") == "off_graph"
    assert classify("No suitable edges near location", code=171) == "off_graph"
    assert classify("Locations are in unconnected regions. Go check/edit the map at osm.org") == "no_route"
    assert classify("No path could be found for input", code=442) == "no_route"
    assert classify("Map Match algorithm failed to find path: map_snap algorithm failed") == "no_route"
    assert classify("Exact route match algorithm failed to find path", code=443) == "no_route"
    # A number inside a message is not an error code.
    assert classify("Exceeded breakage distance for all pairs: 1710 meters") == "engine_error"
    assert classify("Path distance exceeds the max distance limit: 4420 meters", code=154) == "engine_error"


def test_missing_tiles_fall_back_to_the_model_and_are_counted(tmp_path: Path, model: ModelRouter) -> None:
    reset_fallback_counts()
    nothing_built = TileSet("helsinki", tmp_path / "helsinki")
    resilient = ResilientRouter(ValhallaRouter(nothing_built, snap_radius_m=250), model)

    route = resilient.route(SOUTH, NORTH, AT)
    legs = resilient.legs_to([CROW_NEARER, ROAD_NEARER], RANK_TARGET, AT)

    expected = model.route(SOUTH, NORTH, AT)
    assert (route.router, route.fallback_reason) == (MODEL, "no_tiles")
    assert (route.distance_m, route.duration_s, route.geometry) == (
        expected.distance_m,
        expected.duration_s,
        expected.geometry,
    )
    assert [(leg.router, leg.fallback_reason) for leg in legs if leg] == [(MODEL, "no_tiles")] * 2
    assert fallback_counts() == {"valhalla:matrix:no_tiles": 2, "valhalla:route:no_tiles": 1}
    # A trail cannot be matched without roads; the caller keeps the geodesic length, and it is counted.
    with pytest.raises(RoutingError) as raised:
        resilient.matched_length_m([SOUTH, NORTH])
    assert raised.value.reason == "no_tiles"
    assert fallback_counts()["valhalla:match:no_tiles"] == 1


def test_a_point_off_the_graph_is_routed_by_the_model(
    resilient: ResilientRouter, in_process: ValhallaRouter, helsinki_tiles: TileSet
) -> None:
    far_north = beyond_north(helsinki_tiles, 2000)

    with pytest.raises(RoutingError) as raised:
        in_process.route(SOUTH, far_north, AT)
    assert raised.value.reason == "off_graph"

    route = resilient.route(SOUTH, far_north, AT)
    assert (route.router, route.fallback_reason) == (MODEL, "off_graph")
    assert route.geometry == (SOUTH, far_north)
    assert route.distance_m > distance_m(SOUTH, far_north)  # the model's circuity
    assert fallback_counts() == {"valhalla:route:off_graph": 1}


def test_one_source_off_the_graph_falls_back_alone(
    resilient: ResilientRouter, in_process: ValhallaRouter, model: ModelRouter, helsinki_tiles: TileSet
) -> None:
    far_north = beyond_north(helsinki_tiles, 2000)
    # The engine refuses the whole matrix for one source off the map (Valhalla's matrix calls it "unconnected
    # regions"; the route search, which the resilient router asks next, names it off the graph) ...
    with pytest.raises(RoutingError):
        in_process.legs_to([CROW_NEARER, far_north, ROAD_NEARER], RANK_TARGET, AT)

    legs = resilient.legs_to([CROW_NEARER, far_north, ROAD_NEARER], RANK_TARGET, AT)

    # ... so the router asks for each source alone: the two on the map keep their road legs.
    on_roads = in_process.legs_to([CROW_NEARER, ROAD_NEARER], RANK_TARGET, AT)
    assert [legs[0], legs[2]] == on_roads
    off, model_leg = legs[1], model.legs_to([far_north], RANK_TARGET, AT)[0]
    assert off is not None and model_leg is not None
    assert (off.router, off.fallback_reason) == (MODEL, "off_graph")
    assert (off.distance_m, off.duration_s) == (model_leg.distance_m, model_leg.duration_s)
    assert fallback_counts() == {"valhalla:matrix:off_graph": 1}


def test_a_target_off_the_graph_sends_every_source_to_the_model(
    resilient: ResilientRouter, helsinki_tiles: TileSet
) -> None:
    far_north = beyond_north(helsinki_tiles, 2000)

    legs = resilient.legs_to([CROW_NEARER, ROAD_NEARER], far_north, AT)

    assert [(leg.router, leg.fallback_reason) for leg in legs if leg] == [(MODEL, "off_graph")] * 2
    assert fallback_counts() == {"valhalla:matrix:off_graph": 2}


def test_a_point_just_off_a_road_still_routes(resilient: ResilientRouter, helsinki_tiles: TileSet) -> None:
    # 100 m beyond the last road is within the snap radius: the engine answers from the nearest road.
    near_north = beyond_north(helsinki_tiles, 100)

    route = resilient.route(SOUTH, near_north, AT)

    assert route.router == VALHALLA and route.fallback_reason is None
    assert fallback_counts() == {}


@pytest.mark.parametrize(
    "bad",
    [
        (float("nan"), 24.94),
        (91.0, 24.94),
        (60.17, 181.0),
        (60.17, float("inf")),
        ("60.17", "24.94"),
        (True, 24.94),
    ],
    ids=["nan", "lat-91", "lng-181", "inf", "strings", "bool"],
)
def test_invalid_coordinates_raise_the_models_error_and_count_nothing(
    resilient: ResilientRouter, model: ModelRouter, bad: tuple[object, object]
) -> None:
    # Not a place at all is the caller's mistake, not a routing failure: every router refuses it with the
    # same ValueError the model gives, and no fallback is counted (the model could not answer either).
    with pytest.raises(ValueError) as by_model:
        model.route(bad, NORTH, AT)  # type: ignore[arg-type]
    for ask in (
        lambda: resilient.route(bad, NORTH, AT),  # type: ignore[arg-type]
        lambda: resilient.route(SOUTH, bad, AT),  # type: ignore[arg-type]
        lambda: resilient.legs_to([CROW_NEARER, bad], RANK_TARGET, AT),  # type: ignore[list-item]
        lambda: resilient.matched_length_m([SOUTH, bad, NORTH]),  # type: ignore[list-item]
    ):
        with pytest.raises(ValueError) as by_engine:
            ask()
        assert str(by_engine.value) == str(by_model.value)
    assert fallback_counts() == {}


def test_coordinates_the_model_accepts_route_on_the_roads_too(resilient: ResilientRouter) -> None:
    # The RouteEstimator seam takes any real number (dispatch/matching/geo.py: Decimal, numpy scalars):
    # a Decimal from a DecimalField or a float32 from an array must not crash the engine's JSON.
    as_floats = resilient.route(SOUTH, NORTH, AT)
    as_decimals = resilient.route(
        (Decimal(str(SOUTH[0])), Decimal(str(SOUTH[1]))), (Decimal(str(NORTH[0])), Decimal(str(NORTH[1]))), AT
    )
    as_numpy = resilient.legs_to([(np.float32(SOUTH[0]), np.float32(SOUTH[1]))], NORTH, AT)
    trail = list(as_floats.geometry)
    trail_as_decimals = [(Decimal(str(lat)), Decimal(str(lng))) for lat, lng in trail]

    assert as_decimals == as_floats
    assert as_numpy[0] is not None and as_numpy[0].router == VALHALLA
    assert as_numpy[0].distance_m == pytest.approx(as_floats.distance_m, abs=10)
    assert resilient.matched_length_m(trail_as_decimals) == resilient.matched_length_m(trail)  # type: ignore[arg-type]
    assert fallback_counts() == {}


def test_a_trail_from_mid_block_to_mid_block_matches_the_length_driven(
    in_process: ValhallaRouter, helsinki_tiles: TileSet
) -> None:
    """A ride that starts and ends inside blocks: the matched length must count exactly the parts of the
    first and last edges that were driven (Valhalla already reports those edges' partial lengths)."""
    [annankatu] = [
        street
        for street in streets(helsinki_tiles.streets_path)
        if street.name == "Annankatu"
        and not street.one_way
        and max(path_length_m(pair) for pair in itertools.pairwise(street.line)) > 100
    ]
    block = max(itertools.pairwise(annankatu.line), key=path_length_m)
    start, end = point_along(block, 0.25), point_along(block, 0.75)
    route = in_process.route(start, end, AT)
    assert route.distance_m == pytest.approx(0.5 * path_length_m(block), abs=5)

    matched_m = in_process.matched_length_m(sampled_every(route.geometry, 10.0))

    assert matched_m == pytest.approx(route.distance_m, abs=5)


def test_a_tile_set_moved_elsewhere_still_routes(
    helsinki_tiles: TileSet, tmp_path: Path, snap_radius_m: float
) -> None:
    """A tile set copied or mounted somewhere else than it was built (a container image, a volume) routes
    from where it is now: its stored configuration's absolute path is not trusted."""
    import shutil

    moved = TileSet("helsinki", tmp_path / "helsinki")
    shutil.copytree(helsinki_tiles.root, moved.root)
    router = ValhallaRouter(moved, snap_radius_m=snap_radius_m)

    assert (
        router.route(SOUTH, NORTH, AT).distance_m
        == ValhallaRouter(helsinki_tiles, snap_radius_m=snap_radius_m).route(SOUTH, NORTH, AT).distance_m
    )


def test_a_tile_set_that_cannot_be_loaded_degrades_to_the_model_instead_of_failing(
    helsinki_tiles: TileSet, tmp_path: Path, model: ModelRouter, snap_radius_m: float
) -> None:
    import shutil

    broken = TileSet("helsinki", tmp_path / "helsinki")
    shutil.copytree(helsinki_tiles.root, broken.root)
    broken.config_path.write_text("{ not json")
    resilient = ResilientRouter(ValhallaRouter(broken, snap_radius_m=snap_radius_m), model)
    reset_fallback_counts()

    route = resilient.route(SOUTH, NORTH, AT)

    assert route.router == MODEL and route.fallback_reason == "no_tiles"
    assert fallback_counts() == {"valhalla:route:no_tiles": 1}


def test_actors_are_pooled_across_threads_not_created_per_request(
    helsinki_tiles: TileSet, snap_radius_m: float
) -> None:
    """Django runs each request's sync code in a new thread: the engine's actors must outlive them."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    router = ValhallaRouter(helsinki_tiles, snap_radius_m=snap_radius_m)
    for _ in range(5):  # five requests, each on a fresh thread, one after another
        thread = threading.Thread(target=router.route, args=(SOUTH, NORTH, AT))
        thread.start()
        thread.join()
    assert router.actors_created == 1

    with ThreadPoolExecutor(max_workers=3) as pool:  # at once: one actor per call in flight, never shared
        distances = {
            route.distance_m for route in pool.map(lambda _: router.route(SOUTH, NORTH, AT), range(12))
        }
    assert len(distances) == 1
    assert router.actors_created <= 3
