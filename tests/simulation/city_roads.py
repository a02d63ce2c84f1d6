"""Road tiles of generated cities, for the tests of the OSM export and the road-following router.

Each is exported (dispatch/simulation/osm_export.py) and built by the project's own `roads_build` into a
fresh folder for the session, so the tests exercise the whole path `make run` takes. No Django needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.roads.build import roads_build
from dispatch.roads.engine import TileSet
from dispatch.simulation.city import City
from dispatch.simulation.osm_export import export_osm


def build_city_tiles(city: City, root: Path, name: str) -> TileSet:
    """Export `city` to root/name.osm.pbf and build its tiles into root/name/."""
    tiles = TileSet(name, root / name)
    roads_build(export_osm(city, root / f"{name}.osm.pbf").path, tiles)
    return tiles


@pytest.fixture(scope="session")
def demo_city() -> City:
    """The demo's city, built the way `manage.py simulate` and `city_export_osm` build it."""
    from dispatch.simulation.runner import SimulationConfig

    return SimulationConfig().city()


@pytest.fixture(scope="session")
def demo_city_tiles(demo_city, tmp_path_factory) -> TileSet:
    return build_city_tiles(demo_city, tmp_path_factory.mktemp("demo-roads"), "demo")


@pytest.fixture(scope="session")
def other_city_tiles(tmp_path_factory) -> TileSet:
    """Tiles of a different (smaller, other seed) city in the same place: not the demo's streets."""
    city = City.generate(seed=3, width_m=1_500.0, height_m=2_000.0)
    return build_city_tiles(city, tmp_path_factory.mktemp("other-roads"), "other")
