import itertools
import json
import math
import random

import pytest
from scipy.sparse.csgraph import connected_components

from dispatch.simulation.city import City, SpeedClass, path_length_m
from dispatch.simulation.routing import Router


@pytest.fixture(scope="module")
def city() -> City:
    return City.generate(seed=3, width_m=1500, height_m=2000)


def test_default_city_is_manhattan_sized_around_times_square():
    city = City.generate()
    south, west, north, east = city.bounds
    assert south < 40.7580 < north and west < -73.9855 < east
    assert 5_500 < city.width_m <= 6_000 and 9_900 < city.height_m <= 10_000
    assert 2_500 < len(city.nodes) < 4_000
    classes = {road.speed_class for road in city.roads}
    assert classes == {SpeedClass.AVENUE, SpeedClass.STREET, SpeedClass.BROAD_STREET, SpeedClass.DIAGONAL}


def test_generation_is_deterministic_and_seeded():
    first = City.generate(seed=11, width_m=1500, height_m=2000)
    again = City.generate(seed=11, width_m=1500, height_m=2000)
    other = City.generate(seed=12, width_m=1500, height_m=2000)
    assert first.nodes == again.nodes and first.edges == again.edges
    assert first.nodes != other.nodes


def test_graph_is_strongly_connected_respecting_one_way_streets(city):
    router = Router(city)
    components, _ = connected_components(router._graph, directed=True, connection="strong")
    assert components == 1
    assert any(edge.one_way for edge in city.edges) and any(not edge.one_way for edge in city.edges)


def test_one_way_edges_are_directed(city):
    one_way = next(edge for edge in city.edges if edge.one_way)
    assert city.arc(one_way.source, one_way.target) is one_way
    assert city.arc(one_way.target, one_way.source) is None
    two_way = next(edge for edge in city.edges if not edge.one_way)
    assert city.arc(two_way.target, two_way.source) is two_way


def test_block_lengths_follow_the_grid(city):
    streets = [e.length_m for e in city.edges if e.speed_class == SpeedClass.STREET]
    avenues = [e.length_m for e in city.edges if e.speed_class == SpeedClass.AVENUE]
    assert all(e == pytest.approx(80.0, abs=1e-6) for e in avenues)
    # Street blocks are about 275 m, or shorter where Broadway splits them.
    assert max(streets) < 275 * 1.16 and sum(streets) / len(streets) > 150
    assert all(e.length_m > 0 for e in city.edges)


def test_edge_lengths_match_the_lat_lng_positions(city):
    for edge in city.edges[:: max(1, len(city.edges) // 50)]:
        assert city.distance_m(city.nodes[edge.source], city.nodes[edge.target]) == pytest.approx(
            edge.length_m
        )
        assert path_length_m(city, [edge.source, edge.target]) == pytest.approx(edge.length_m)


def test_grid_is_rotated_like_manhattan(city):
    avenue = next(road for road in city.roads if road.speed_class == SpeedClass.AVENUE)
    (x0, y0), (x1, y1) = city.node_xy(avenue.nodes[0]), city.node_xy(avenue.nodes[-1])
    bearing = math.degrees(math.atan2(x1 - x0, y1 - y0)) % 180
    assert bearing == pytest.approx(29.0, abs=0.01)


def test_broadway_meets_the_streets_it_crosses(city):
    broadway = next(road for road in city.roads if road.speed_class == SpeedClass.DIAGONAL)
    street_nodes = {
        n
        for road in city.roads
        if road.speed_class != SpeedClass.AVENUE and road is not broadway
        for n in road.nodes
    }
    assert len(broadway.nodes) > 10
    assert set(broadway.nodes) <= street_nodes


def test_nearest_and_random_nodes(city):
    rng = random.Random(5)
    for _ in range(20):
        node = city.random_node(rng)
        lat, lng = city.nodes[node]
        assert city.nearest_node(lat + 0.00001, lng - 0.00001) == node
    assert node in city.nodes_within(lat, lng, 1.0)


def test_service_area_is_a_closed_lng_lat_ring_around_every_node(city):
    from matplotlib.path import Path

    ring = city.service_area_polygon()
    assert ring[0] == ring[-1] and len(ring) == 5
    outline = Path(ring)
    assert all(outline.contains_point((lng, lat)) for lat, lng in city.nodes)
    # Counter-clockwise (positive shoelace area), as GeoJSON recommends for outer rings.
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    assert area > 0


def test_geojson_and_polylines_are_json_with_every_road(city):
    collection = json.loads(json.dumps(city.to_geojson()))
    lines = [f for f in collection["features"] if f["geometry"]["type"] == "LineString"]
    assert len(lines) == len(city.roads)
    lng, lat = lines[0]["geometry"]["coordinates"][0]
    south, west, north, east = city.bounds
    assert south - 1e-6 <= lat <= north + 1e-6 and west - 1e-6 <= lng <= east + 1e-6
    polylines = json.loads(json.dumps(city.street_polylines()))
    assert {p["name"] for p in polylines} == {road.name for road in city.roads}
    assert all(len(p["points"]) >= 2 for p in polylines)
