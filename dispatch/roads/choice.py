"""Which router this process uses, read from settings (ROCHDALE_ROUTER and friends, docs/roads.md).

`road_router()` is what quotes, dispatch and fares call. It is rebuilt only when a setting changes, and a
tile rebuild is picked up by the in-process router itself, so the answer can be cached per process.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from dispatch.eta_model import eta_parameters, route_estimator
from dispatch.matching.eta import EtaParameters
from dispatch.roads.engine import TileSet
from dispatch.roads.routers import (
    MODEL,
    VALHALLA,
    VALHALLA_HTTP,
    ModelRouter,
    ResilientRouter,
    Router,
    ValhallaHttpRouter,
    ValhallaRouter,
)

logger = logging.getLogger(__name__)

ROUTER_CHOICES = ("auto", VALHALLA, VALHALLA_HTTP, MODEL)


def city_tiles(name: str | None = None) -> TileSet:
    """The tile set of city `name` (ROCHDALE_ROADS_CITY by default) under ROCHDALE_ROADS_DIR."""
    chosen = name or settings.ROCHDALE_ROADS_CITY
    return TileSet(chosen, Path(settings.ROCHDALE_ROADS_DIR) / chosen)


@lru_cache(maxsize=8)
def _router(
    choice: str,
    roads_dir: str,
    city: str,
    url: str,
    timeout_s: float,
    snap_m: float,
    tiles_built: bool,
    parameters: EtaParameters,
) -> Router:
    model = ModelRouter(route_estimator())
    tiles = TileSet(city, Path(roads_dir) / city)
    if choice == "auto":
        choice = VALHALLA if tiles_built else MODEL
        logger.info("router: %s (%s tiles %s)", choice, city, "found" if tiles.exists() else "not built")
    if choice == MODEL:
        return model
    if choice == VALHALLA:
        if not tiles.exists():
            logger.warning("ROCHDALE_ROUTER=valhalla but %s has no tiles: the model answers", tiles.root)
        return ResilientRouter(ValhallaRouter(tiles, snap_radius_m=snap_m), model)
    if choice == VALHALLA_HTTP:
        return ResilientRouter(ValhallaHttpRouter(url, snap_radius_m=snap_m, timeout_s=timeout_s), model)
    raise ImproperlyConfigured(f"ROCHDALE_ROUTER must be one of {', '.join(ROUTER_CHOICES)}, not {choice!r}")


def road_router() -> Router:
    """The router quotes, dispatch, fares and the simulator share in this process.

    Cached by everything it depends on, so a server started before `roads_build` finished moves onto the
    tiles at the next call (`auto`), and a change of the ETA model's settings reaches the model router."""
    choice = str(settings.ROCHDALE_ROUTER)
    return _router(
        choice,
        str(settings.ROCHDALE_ROADS_DIR),
        str(settings.ROCHDALE_ROADS_CITY),
        str(settings.ROCHDALE_VALHALLA_URL),
        float(settings.ROCHDALE_ROUTER_TIMEOUT_S),
        float(settings.ROCHDALE_ROAD_SNAP_RADIUS_M),
        choice == "auto" and city_tiles().exists(),
        eta_parameters(),
    )
