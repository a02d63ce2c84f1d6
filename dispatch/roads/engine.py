"""Valhalla, the road engine: a city's tile set on disk, and the JSON that both adapters speak.

The in-process router (`ValhallaRouter`) and the HTTP one (`ValhallaHttpRouter`) send the same request
documents and read the same answers, so they are built and parsed here once. Nothing in this module
touches Django: the tile set's place comes from the caller.

A tile set lives in one folder (`var/roads/<name>/` by default):

    tiles/            Valhalla's graph tiles, built by `valhalla_build_tiles` (dispatch/roads/build.py)
    valhalla.json     the engine configuration those tiles were built with
    manifest.json     what was built: source file and its SHA-256, nodes, edges, bounding box, seconds
    streets.geojson   the drivable streets as LineStrings, for the live map (no tile server needed)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import polyline
import valhalla

from dispatch.matching.geo import coerce_lat_lng

LatLng = tuple[float, float]

# The wheel ships the engine's programs beside the bindings (`python -m valhalla ...` cannot find them).
VALHALLA_BIN = Path(valhalla.__file__).resolve().parent / "bin"
ENGINE_VERSION: str = valhalla.__version__
# Valhalla's costing for a car; the co-op's cars (and its wheelchair-accessible vans) drive as cars.
COSTING = "auto"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks (an extract can be gigabytes): what tells builds apart."""
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


class RoutingError(Exception):
    """The road engine could not answer. `reason` says why, in one of a few words the counters use:

    off_graph (a point is farther than the snap radius from any road), no_route (no legal way by road),
    no_tiles (the city's tiles are not built), timeout, unavailable (an HTTP engine does not answer),
    engine_error (anything else the engine said)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TileSet:
    """One city's tiles and what was built with them."""

    name: str
    root: Path

    @property
    def tile_dir(self) -> Path:
        return self.root / "tiles"

    @property
    def config_path(self) -> Path:
        return self.root / "valhalla.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def streets_path(self) -> Path:
        return self.root / "streets.geojson"

    def exists(self) -> bool:
        """True once a build has finished here (the manifest is written last)."""
        return self.manifest_path.is_file() and self.tile_dir.is_dir()

    def manifest(self) -> BuildManifest:
        document: BuildManifest = json.loads(self.manifest_path.read_text())
        return document

    def build_stamp(self) -> float:
        """Changes whenever the tiles are rebuilt, so a long-lived process reloads them."""
        try:
            return self.manifest_path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def engine_config(self) -> dict[str, object]:
        config: dict[str, object] = json.loads(self.config_path.read_text())
        return config


class BuildManifest(TypedDict):
    name: str
    source: str
    source_sha256: str
    engine_version: str
    nodes: int
    edges: int
    ways: int
    one_way_ways: int
    bbox: list[float]  # [west, south, east, north]
    tiles: int
    seconds: float
    built_at: str


def engine_config(tile_dir: Path, *, listen: str | None = None) -> dict[str, object]:
    """Valhalla's configuration for tiles in `tile_dir` (no tar extract), quiet logs, and optionally the
    address `valhalla_service` listens on (`tcp://127.0.0.1:8002`)."""
    config: dict[str, object] = valhalla.get_config(tile_dir=str(tile_dir), tile_extract="", verbose=False)
    if listen is not None:
        httpd = config.setdefault("httpd", {})
        assert isinstance(httpd, dict)
        httpd.setdefault("service", {})["listen"] = listen
    return config


# -- requests -------------------------------------------------------------------------------------------


def _coordinates(point: LatLng) -> tuple[float, float]:
    # The model's own check (dispatch/matching/geo.py), so every router takes what the model takes (any
    # real number, Decimal and numpy scalars too, as plain floats: the engine's JSON takes neither) and
    # refuses what it refuses (NaN, strings, bools, out of range) with the same ValueError. Such a point is
    # the caller's mistake, not a routing failure: the model could not answer it either.
    return coerce_lat_lng(*point)


def _location(point: LatLng, snap_radius_m: float) -> dict[str, float]:
    lat, lng = _coordinates(point)
    # search_cutoff bounds how far the engine looks for a road; beyond it the point is off the graph
    # (without it Valhalla snaps a point kilometres away to the nearest road and routes from there).
    return {"lat": lat, "lon": lng, "search_cutoff": float(snap_radius_m)}


def route_request(origin: LatLng, destination: LatLng, *, snap_radius_m: float) -> dict[str, object]:
    return {
        "locations": [_location(origin, snap_radius_m), _location(destination, snap_radius_m)],
        "costing": COSTING,
        "units": "kilometers",
        "directions_type": "none",
    }


def matrix_request(sources: Sequence[LatLng], target: LatLng, *, snap_radius_m: float) -> dict[str, object]:
    return {
        "sources": [_location(point, snap_radius_m) for point in sources],
        "targets": [_location(target, snap_radius_m)],
        "costing": COSTING,
        "units": "kilometers",
    }


# Valhalla's own default: fixes farther apart than this are not joined by the matcher (the match breaks).
DEFAULT_BREAKAGE_M = 2000.0


def trace_request(points: Sequence[LatLng], *, breakage_m: float = DEFAULT_BREAKAGE_M) -> dict[str, object]:
    return {
        "shape": [{"lat": lat, "lon": lng} for lat, lng in map(_coordinates, points)],
        "costing": COSTING,
        "shape_match": "map_snap",
        "units": "kilometers",
        "trace_options": {"breakage_distance": float(breakage_m)},
        "filters": {
            "attributes": [
                "edge.length",
                "edge.id",
                "matched.type",
                "matched.begin_route_discontinuity",
                "matched.end_route_discontinuity",
            ],
            "action": "include",
        },
    }


# -- answers --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineRoute:
    distance_m: int
    duration_s: int
    geometry: tuple[LatLng, ...]


@dataclass(frozen=True, slots=True)
class EngineLeg:
    distance_m: int
    duration_s: int


def parse_route(body: dict[str, object]) -> EngineRoute:
    trip = body.get("trip")
    if not isinstance(trip, dict):
        raise RoutingError("engine_error", "the engine's route answer has no trip")
    summary = trip["summary"]
    points: list[LatLng] = []
    for leg in trip.get("legs", []):
        decoded = [(round(lat, 6), round(lng, 6)) for lat, lng in polyline.decode(leg["shape"], 6)]
        # Consecutive legs share their joining point.
        points.extend(decoded[1:] if points and decoded and decoded[0] == points[-1] else decoded)
    return EngineRoute(
        distance_m=round(float(summary["length"]) * 1000),
        duration_s=math.ceil(float(summary["time"]) - 1e-9),
        geometry=tuple(points),
    )


def parse_matrix(body: dict[str, object], count: int) -> list[EngineLeg | None]:
    """One leg per source to the single target; None where the engine found no way by road."""
    rows = body.get("sources_to_targets")
    if not isinstance(rows, list) or len(rows) != count:
        raise RoutingError("engine_error", "the engine's matrix answer does not match the request")
    legs: list[EngineLeg | None] = []
    for row in rows:
        cell = row[0] if row else {}
        time, distance = cell.get("time"), cell.get("distance")
        if time is None or distance is None:
            legs.append(None)
        else:
            legs.append(EngineLeg(round(float(distance) * 1000), math.ceil(float(time) - 1e-9)))
    return legs


def parse_trace_length_m(body: dict[str, object]) -> int:
    """The driven length of a map-matched trail: the sum of its edges' lengths. Valhalla already gives the
    first and last edges as the parts driven (from the first fix, up to the last), so nothing is trimmed.

    A match that breaks (a gap in the trail wider than the breakage distance: a tunnel, the app asleep)
    counts nothing across the gap, so it is refused (`discontinuous_match`) rather than under-measured."""
    edges = body.get("edges")
    if not isinstance(edges, list) or not edges:
        raise RoutingError("no_route", "the trail matched no road")
    points = body.get("matched_points")
    if isinstance(points, list) and any(
        isinstance(point, dict)
        and (point.get("begin_route_discontinuity") or point.get("end_route_discontinuity"))
        for point in points
    ):
        raise RoutingError("discontinuous_match", "the trail has a gap the match does not join")
    try:
        total_km = sum(float(edge["length"]) for edge in edges)
    except (KeyError, TypeError, ValueError) as error:
        raise RoutingError("engine_error", f"the engine's match answer is malformed: {error!r}") from error
    return round(total_km * 1000)


# Valhalla's words for the answers that are not engine faults, and the error codes its HTTP server gives
# them. The in-process engine says only the words, so the words decide; a code is matched as a code, never
# as digits inside a message ("... 1710 meters" is not error 171).
_OFF_GRAPH_WORDS = ("No suitable edges near location",)
_OFF_GRAPH_CODES = frozenset({171})
# 170 unconnected regions, 442 no path, 443 exact route match failed, 444 map match failed.
_NO_ROUTE_WORDS = ("No path could be found", "unconnected regions", "failed to find path")
_NO_ROUTE_CODES = frozenset({170, 442, 443, 444})


def classify(message: str, code: int | None = None) -> str:
    """The reason word for one of the engine's error messages (and the HTTP server's error code)."""
    if code in _OFF_GRAPH_CODES or any(words in message for words in _OFF_GRAPH_WORDS):
        return "off_graph"
    if code in _NO_ROUTE_CODES or any(words in message for words in _NO_ROUTE_WORDS):
        return "no_route"
    return "engine_error"
