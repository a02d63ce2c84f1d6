"""The demo city as OpenStreetMap: what the export writes, that Valhalla builds tiles from it, and that the
engine then drives the city's one-way avenues and streets only the way they run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import osmium
import pytest

from dispatch.roads.build import roads_build
from dispatch.roads.routers import ValhallaRouter
from dispatch.simulation.city import City, Road, SpeedClass
from dispatch.simulation.osm_export import (
    HIGHWAY_BY_CLASS,
    city_node,
    export_digest,
    export_osm,
    maxspeed_kmh,
)
from dispatch.simulation.routing import Route
from tests.simulation import city_roads

# The shared road fixtures (tests/simulation/city_roads.py), made this module's.
demo_city = city_roads.demo_city
demo_city_tiles = city_roads.demo_city_tiles

NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def read_osm(path) -> tuple[dict[int, tuple[float, float]], dict[int, tuple[list[int], dict[str, str]]]]:
    """Every node's (lat, lng) and every way's node ids and tags, as osmium reads the file back."""
    nodes: dict[int, tuple[float, float]] = {}
    ways: dict[int, tuple[list[int], dict[str, str]]] = {}
    for thing in osmium.FileProcessor(str(path)):
        if thing.is_node():
            nodes[thing.id] = (thing.location.lat, thing.location.lon)
        elif thing.is_way():
            ways[thing.id] = ([ref.ref for ref in thing.nodes], dict(thing.tags))
    return nodes, ways


def test_the_export_reads_back_as_the_city(demo_city, tmp_path):
    export = export_osm(demo_city, tmp_path / "demo.osm.pbf")
    nodes, ways = read_osm(export.path)

    assert (export.nodes, export.ways) == (len(demo_city.nodes), len(demo_city.roads))
    assert len(nodes) == len(demo_city.nodes) == 3006
    assert len(ways) == len(demo_city.roads) == 150
    for osm_id, (lat, lng) in nodes.items():
        city_lat, city_lng = demo_city.nodes[city_node(osm_id)]
        # OSM stores coordinates in 1e-7 degree steps (about a centimetre).
        assert lat == pytest.approx(city_lat, abs=1e-7) and lng == pytest.approx(city_lng, abs=1e-7)

    one_way = 0
    for index, road in enumerate(demo_city.roads):
        refs, tags = ways[index + 1]
        # The node order is the road's, which for a one-way road is its direction of travel.
        assert [city_node(ref) for ref in refs] == list(road.nodes)
        assert tags["name"] == road.name
        assert tags["highway"] == HIGHWAY_BY_CLASS[road.speed_class]
        assert tags["maxspeed"] == str(maxspeed_kmh(road.speed_class))
        assert tags.get("oneway") == ("yes" if road.one_way else None)
        one_way += road.one_way
    assert export.one_way_ways == one_way == 130
    assert {tags["highway"] for _, tags in ways.values()} == {"primary", "secondary", "residential"}
    # The simulator's free-flow speeds, in km/h: avenues 36, broad streets and Broadway 29, streets 22.
    assert {c: maxspeed_kmh(c) for c in SpeedClass} == {
        SpeedClass.AVENUE: 36,
        SpeedClass.BROAD_STREET: 29,
        SpeedClass.DIAGONAL: 29,
        SpeedClass.STREET: 22,
    }


def test_the_same_city_gives_the_same_bytes_and_an_unchanged_file_is_left_alone(demo_city, tmp_path):
    path = tmp_path / "demo.osm.pbf"
    first = export_osm(demo_city, path)
    modified = path.stat().st_mtime_ns
    again = export_osm(City.generate(7), path)

    assert first.written and not again.written
    assert again.sha256 == first.sha256 == export_digest(demo_city)
    assert path.stat().st_mtime_ns == modified
    assert export_digest(City.generate(8)) != first.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.osm.pbf"]  # no staging file left


def test_tiles_build_from_the_export_once(demo_city, demo_city_tiles):
    manifest = demo_city_tiles.manifest()
    assert manifest["nodes"] == len(demo_city.nodes)
    assert manifest["edges"] == len(demo_city.edges)
    assert (manifest["ways"], manifest["one_way_ways"]) == (150, 130)
    assert manifest["source_sha256"] == export_digest(demo_city)
    west, south, east, north = manifest["bbox"]
    bounds = demo_city.bounds
    assert (south, west, north, east) == pytest.approx(tuple(bounds), abs=1e-6)

    again = roads_build(demo_city_tiles.root.parent / "demo.osm.pbf", demo_city_tiles)
    assert not again.built  # same extract, same engine: roads_build skips it


def _first_one_way(city: City, speed_class: SpeedClass) -> Road:
    return next(road for road in city.roads if road.speed_class == speed_class and road.one_way)


@pytest.mark.parametrize("speed_class", [SpeedClass.AVENUE, SpeedClass.STREET])
def test_valhalla_drives_one_way_roads_only_the_way_they_run(demo_city, demo_city_tiles, speed_class):
    engine = ValhallaRouter(demo_city_tiles, snap_radius_m=25)
    road = _first_one_way(demo_city, speed_class)
    start, end = road.nodes[10], road.nodes[16]
    along_the_road = Route.from_nodes(demo_city, road.nodes[10:17])

    along = engine.route(demo_city.nodes[start], demo_city.nodes[end], NOW)
    against = engine.route(demo_city.nodes[end], demo_city.nodes[start], NOW)

    # With the flow: straight down the road, in the simulator's free-flow time (maxspeed is its speed).
    assert along.distance_m == pytest.approx(along_the_road.length_m, abs=2)
    assert along.duration_s == pytest.approx(along_the_road.duration_s, rel=0.1)
    # Against it: round the block by other roads, never back down this one.
    assert against.distance_m > along.distance_m + 150
    assert against.duration_s > along.duration_s
    backwards = set(zip(road.nodes[1:], road.nodes, strict=False))
    driven = [demo_city.nearest_node(lat, lng) for lat, lng in against.geometry]
    assert not backwards & set(itertools.pairwise(driven))
