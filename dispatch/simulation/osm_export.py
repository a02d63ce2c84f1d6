"""The generated city as an OpenStreetMap extract, so the demo routes on the same engine as production.

`export_osm(city, path)` writes one OSM node per intersection and one way per road, tagged the way
Valhalla's tile builder reads a real city:

    highway   avenue -> primary, broad street and Broadway -> secondary, street -> residential
    name      the road's name ("7th Avenue", "42nd Street", "Broadway")
    oneway    "yes" on one-way roads, whose node order is the direction of travel (as City.roads keeps it)
    maxspeed  the simulator's free-flow speed for the class, in km/h, so the engine's durations are the
              simulator's (FREE_FLOW_SPEED_MPS x 3.6, rounded: 36, 29, 29, 22)

OSM ids are the city's indexes plus one (OSM ids start at 1): node `n` is OSM node `n + 1`, road `k` is OSM
way `k + 1`. The file has no timestamps, so the same city always gives the same bytes: `roads_build`,
which skips an extract whose SHA-256 it has already built, then does nothing, and anyone can tell whether a
tile set was built from a given city by hashing its export (`export_digest`).

This module imports osmium, a native I/O library, so it is not one of the simulator's pure modules
(pyproject's import contracts list those); the pure ones never import it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import osmium
from osmium.osm.mutable import Node, Way

from dispatch.roads.engine import file_sha256
from dispatch.simulation.city import FREE_FLOW_SPEED_MPS, City, Road, SpeedClass

HIGHWAY_BY_CLASS: dict[SpeedClass, str] = {
    SpeedClass.AVENUE: "primary",
    SpeedClass.BROAD_STREET: "secondary",
    SpeedClass.DIAGONAL: "secondary",
    SpeedClass.STREET: "residential",
}
GENERATOR = "rochdale city_export_osm"


def maxspeed_kmh(speed_class: SpeedClass) -> int:
    """The class's free-flow speed as OSM's `maxspeed` (whole km/h)."""
    return round(FREE_FLOW_SPEED_MPS[speed_class] * 3.6)


def osm_node_id(node: int) -> int:
    return node + 1


def city_node(osm_id: int) -> int:
    return osm_id - 1


def way_tags(road: Road) -> dict[str, str]:
    tags = {
        "highway": HIGHWAY_BY_CLASS[road.speed_class],
        "name": road.name,
        "maxspeed": str(maxspeed_kmh(road.speed_class)),
    }
    if road.one_way:
        tags["oneway"] = "yes"
    return tags


@dataclass(frozen=True, slots=True)
class OsmExport:
    """What `export_osm` wrote. `written` is False when the file already held these very bytes."""

    path: Path
    nodes: int
    ways: int
    one_way_ways: int
    sha256: str
    written: bool


def _write(city: City, path: Path) -> None:
    header = osmium.io.Header()
    header.set("generator", GENERATOR)
    south, west, north, east = city.bounds
    header.add_box(osmium.osm.Box(west, south, east, north))
    writer = osmium.SimpleWriter(str(path), header=header, overwrite=True)
    try:
        # version 1 on every object: some OSM tools refuse objects without one; no timestamps, so the
        # bytes depend on the city alone.
        for index, (lat, lng) in enumerate(city.nodes):
            writer.add_node(Node(id=osm_node_id(index), location=(lng, lat), version=1))
        for index, road in enumerate(city.roads):
            writer.add_way(
                Way(
                    id=index + 1,
                    nodes=[osm_node_id(node) for node in road.nodes],
                    tags=way_tags(road),
                    version=1,
                )
            )
    finally:
        writer.close()


def export_osm(city: City, path: Path) -> OsmExport:
    """Write `city` to `path` (.osm.pbf, or .osm for XML: osmium goes by the suffix).

    The file is written beside `path` and renamed into place, so a reader never sees half of it; when
    `path` already holds the same bytes it is left alone (its modification time too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The suffixes must survive in the temporary name: osmium picks the format from them.
    suffix = "".join(path.suffixes) or ".osm.pbf"
    handle, staging_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    staging = Path(staging_name)
    try:
        _write(city, staging)
        digest = file_sha256(staging)
        written = not (path.is_file() and file_sha256(path) == digest)
        if written:
            staging.chmod(0o644)
            staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
    return OsmExport(
        path=path,
        nodes=len(city.nodes),
        ways=len(city.roads),
        one_way_ways=sum(1 for road in city.roads if road.one_way),
        sha256=digest,
        written=written,
    )


def export_digest(city: City) -> str:
    """The SHA-256 of `city`'s export: what a tile set built from this city has in its manifest."""
    with tempfile.TemporaryDirectory(prefix="rochdale-city-") as folder:
        staging = Path(folder) / "city.osm.pbf"
        _write(city, staging)
        return file_sha256(staging)
