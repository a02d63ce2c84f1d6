"""Building a city's road tiles from an OpenStreetMap extract (`manage.py roads_build`).

The build runs Valhalla's own `valhalla_build_tiles` from the wheel into a fresh folder beside the tile
set, writes the streets for the map and the manifest, and only then swaps the folder into place, so a
running server never reads half-built tiles. A build whose source file (by SHA-256) and engine version match
the manifest already there is skipped: the command is idempotent.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import osmium

from dispatch.roads.engine import (
    ENGINE_VERSION,
    VALHALLA_BIN,
    BuildManifest,
    TileSet,
    engine_config,
    file_sha256,
)

# The OSM highway values a car may drive on (Valhalla's auto costing reads the same tags).
DRIVABLE_HIGHWAYS = frozenset(
    {
        "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
        "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
        "residential", "living_street", "service", "road",
    }
)  # fmt: skip
BUILD_TIMEOUT_S = 1800


class RoadBuildError(Exception):
    """The extract could not be built into tiles; the message says why."""


@dataclass(frozen=True, slots=True)
class BuildReport:
    manifest: BuildManifest
    built: bool  # False: the tiles were already up to date


class _StreetReader(osmium.SimpleHandler):
    """Reads the drivable ways of an extract: counts, bounding box and LineStrings for the map."""

    def __init__(self) -> None:
        super().__init__()
        self.features: list[dict[str, object]] = []
        self.nodes: set[int] = set()
        self.edges = 0
        self.one_way = 0
        self.bbox = [180.0, 90.0, -180.0, -90.0]

    def way(self, way: osmium.osm.Way) -> None:
        highway = way.tags.get("highway")
        if highway not in DRIVABLE_HIGHWAYS:
            return
        coordinates: list[list[float]] = []
        for node in way.nodes:
            if not node.location.valid():
                continue
            lng, lat = node.location.lon, node.location.lat
            coordinates.append([round(lng, 6), round(lat, 6)])
            self.nodes.add(node.ref)
            self.bbox = [
                min(self.bbox[0], lng), min(self.bbox[1], lat), max(self.bbox[2], lng), max(self.bbox[3], lat)
            ]  # fmt: skip
        if len(coordinates) < 2:
            return
        self.edges += len(coordinates) - 1
        one_way = way.tags.get("oneway") in ("yes", "1", "-1") or way.tags.get("junction") == "roundabout"
        self.one_way += int(one_way)
        self.features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coordinates},
                "properties": {"name": way.tags.get("name", ""), "highway": highway, "one_way": one_way},
            }
        )


def up_to_date(tiles: TileSet, source_sha256: str) -> bool:
    if not tiles.exists():
        return False
    manifest = tiles.manifest()
    return manifest.get("source_sha256") == source_sha256 and manifest.get("engine_version") == ENGINE_VERSION


def roads_build(pbf: Path, tiles: TileSet, *, force: bool = False) -> BuildReport:
    """Build (or confirm up to date) the tiles for `tiles.name` from the extract `pbf`.

    Raises RoadBuildError when the file is missing, is not an OSM extract, or holds no drivable road."""
    pbf = pbf.resolve()
    if not pbf.is_file():
        raise RoadBuildError(f"{pbf} does not exist")
    source_sha256 = file_sha256(pbf)
    if not force and up_to_date(tiles, source_sha256):
        return BuildReport(tiles.manifest(), built=False)

    started = time.perf_counter()
    reader = _StreetReader()
    try:
        reader.apply_file(str(pbf), locations=True)
    except RuntimeError as error:
        raise RoadBuildError(f"{pbf} is not an OpenStreetMap extract osmium can read: {error}") from error
    if not reader.features:
        raise RoadBuildError(f"{pbf} holds no road a car may drive on")

    tiles.root.parent.mkdir(parents=True, exist_ok=True)
    # One build of a city at a time: a second one waits, then finds the tiles up to date.
    with tiles.root.with_name(f".{tiles.root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and up_to_date(tiles, source_sha256):
            return BuildReport(tiles.manifest(), built=False)
        return _build(pbf, tiles, reader, source_sha256, started)


def _build(
    pbf: Path, tiles: TileSet, reader: _StreetReader, source_sha256: str, started: float
) -> BuildReport:
    staging = tiles.root.with_name(f".{tiles.root.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "tiles").mkdir(parents=True)
    staged = TileSet(tiles.name, staging)
    config = engine_config(staged.tile_dir)
    staged.config_path.write_text(json.dumps(config, indent=1))
    try:
        result = subprocess.run(
            [str(VALHALLA_BIN / "valhalla_build_tiles"), "-c", str(staged.config_path), str(pbf)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise RoadBuildError(f"valhalla_build_tiles did not finish in {BUILD_TIMEOUT_S} s") from error
    tile_count = sum(1 for _ in staged.tile_dir.rglob("*.gph"))
    if result.returncode != 0 or tile_count == 0:
        shutil.rmtree(staging, ignore_errors=True)
        said = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RoadBuildError(
            f"valhalla_build_tiles failed (exit {result.returncode}, {tile_count} tiles): " + " / ".join(said)
        )
    staged.streets_path.write_text(
        json.dumps({"type": "FeatureCollection", "features": reader.features}, separators=(",", ":"))
    )
    manifest: BuildManifest = {
        "name": tiles.name,
        "source": str(pbf),
        "source_sha256": source_sha256,
        "engine_version": ENGINE_VERSION,
        "nodes": len(reader.nodes),
        "edges": reader.edges,
        "ways": len(reader.features),
        "one_way_ways": reader.one_way,
        "bbox": [round(value, 6) for value in reader.bbox],
        "tiles": tile_count,
        "seconds": round(time.perf_counter() - started, 2),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # The config must name where the tiles will be, not where they were built.
    staged.config_path.write_text(json.dumps(_relocated(config, tiles.tile_dir), indent=1))
    staged.manifest_path.write_text(json.dumps(manifest, indent=1))
    _swap_into_place(staging, tiles.root)
    return BuildReport(manifest, built=True)


def _relocated(config: dict[str, object], tile_dir: Path) -> dict[str, object]:
    mjolnir = config["mjolnir"]
    assert isinstance(mjolnir, dict)
    return {**config, "mjolnir": {**mjolnir, "tile_dir": str(tile_dir.resolve())}}


def _swap_into_place(staging: Path, root: Path) -> None:
    old = root.with_name(f".{root.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    staging.rename(root)
    shutil.rmtree(old, ignore_errors=True)
