"""The map's still layers: the streets it draws under everything, and the active service areas.

Streets come from the road engine's tile set when one is built (`streets.geojson`, written by
`manage.py roads_build`: the same streets the router drives on), and from the generated demo city when
none is. Both become the same compact JSON: one polyline per way, points as [lat, lng], and a drawing
class. That document is built once per tile build and served with an ETag, so a map page revisiting it
costs a 304 (docs/roads.md, "The live map and service areas").
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dispatch.models import ServiceArea
from dispatch.roads.choice import city_tiles
from dispatch.roads.engine import TileSet
from dispatch.simulation.city import City

# About a metre: finer than a line on the screen, and a fifth of the bytes of full precision.
PRECISION = 5

# OpenStreetMap `highway` values by how the map draws them (widest last, on top). The demo city's own
# classes (street, broad_street, avenue, diagonal) keep their names.
HIGHWAY_CLASS = {
    "motorway": "major", "motorway_link": "major", "trunk": "major", "trunk_link": "major",
    "primary": "major", "primary_link": "major",
    "secondary": "secondary", "secondary_link": "secondary", "tertiary": "secondary",
    "tertiary_link": "secondary",
    "residential": "minor", "unclassified": "minor", "living_street": "minor", "road": "minor",
    "service": "service",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EncodedLayer:
    """A JSON document ready to send: its bytes, gzipped bytes and a validator for conditional GETs."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, document: dict[str, Any]) -> EncodedLayer:
        body = json.dumps(document, separators=(",", ":")).encode()
        # Weak: the plain and the gzipped bodies are the same document.
        etag = f'W/"{hashlib.sha256(body).hexdigest()[:20]}"'
        return cls(body=body, gzipped=gzip.compress(body, compresslevel=6, mtime=0), etag=etag)


# -- streets --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def demo_city() -> City:
    return City.generate()


def demo_street_layer() -> dict[str, Any]:
    """The generated demo city's streets: what the map draws when no tiles are built."""
    city = demo_city()
    south, west, north, east = city.bounds
    return {
        "source": "demo",
        "city": "demo (generated)",
        "streets": city.street_polylines(precision=PRECISION),
        "bounds": {"south": south, "west": west, "north": north, "east": east},
    }


def tile_street_layer(tiles: TileSet) -> dict[str, Any]:
    """The streets of a built tile set, from its streets.geojson (LineStrings of [lng, lat])."""
    collection = json.loads(tiles.streets_path.read_text())
    streets: list[dict[str, Any]] = []
    south, west, north, east = 90.0, 180.0, -90.0, -180.0
    for feature in collection.get("features", []):
        geometry = feature.get("geometry") or {}
        if geometry.get("type") != "LineString":
            continue
        points = [[round(lat, PRECISION), round(lng, PRECISION)] for lng, lat, *_ in geometry["coordinates"]]
        if len(points) < 2:
            continue
        for lat, lng in points:
            south, west, north, east = min(south, lat), min(west, lng), max(north, lat), max(east, lng)
        properties = feature.get("properties") or {}
        streets.append(
            {
                "name": properties.get("name", ""),
                "class": HIGHWAY_CLASS.get(properties.get("highway", ""), "minor"),
                "one_way": bool(properties.get("one_way", False)),
                "points": points,
            }
        )
    return {
        "source": "tiles",
        "city": tiles.name,
        "streets": streets,
        "bounds": {"south": south, "west": west, "north": north, "east": east},
    }


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4)
def _encoded_tile_streets(name: str, root: str, stamp: tuple[int, int]) -> EncodedLayer:
    # `stamp` is part of the key so a rebuild (a new file) is read again; the old entry ages out.
    return EncodedLayer.of(tile_street_layer(TileSet(name, Path(root))))


@lru_cache(maxsize=1)
def _encoded_demo_streets() -> EncodedLayer:
    return EncodedLayer.of(demo_street_layer())


def street_layer() -> EncodedLayer:
    """ROCHDALE_ROADS_CITY's streets if its tiles are built (with streets.geojson), else the demo's."""
    tiles = city_tiles()
    stamp = _file_stamp(tiles.streets_path) if tiles.exists() else None
    if stamp is None:
        return _encoded_demo_streets()
    return _encoded_tile_streets(tiles.name, str(tiles.root), stamp)


# -- service areas --------------------------------------------------------------------------------------


def service_area_layer() -> dict[str, Any]:
    """The active service areas: each polygon as rings of [lat, lng], the outer ring first, then holes."""
    areas = []
    for area in ServiceArea.objects.filter(is_active=True).order_by("name"):
        polygons = [
            [[[round(lat, PRECISION), round(lng, PRECISION)] for lng, lat in ring.coords] for ring in polygon]
            for polygon in area.area
        ]
        areas.append({"name": area.name, "polygons": polygons})
    return {"service_areas": areas}
