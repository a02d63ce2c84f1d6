"""A generated, Manhattan-like street network for the simulator.

No package on the registries we can reach ships a street network we may use offline, so the city is
generated: avenues run the long way (about 275 m apart), numbered streets cross them every 80 m, every
tenth-or-so street is a broad two-way crosstown street, and one diagonal ("Broadway") cuts across the
grid, meeting every street and avenue it crosses at a real intersection. Most streets and avenues are
one-way, alternating in direction, like Manhattan's. The whole grid is rotated (29 degrees by default)
so the avenues point the way Manhattan's do.

Geometry is done in a local tangent plane (metres east and north of the centre) and converted to WGS 84
with an equirectangular projection; over a 10 km city that is accurate to a few metres, which is plenty
for dispatch and far below GPS error. Everything here is plain Python plus numpy/scipy: no Django.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
from scipy.spatial import cKDTree

DEFAULT_CENTRE: tuple[float, float] = (40.7580, -73.9855)


class SpeedClass(StrEnum):
    AVENUE = "avenue"
    BROAD_STREET = "broad_street"
    DIAGONAL = "diagonal"
    STREET = "street"


# Free-flow speeds in the city (about 36, 29, 29 and 22 km/h); congestion is the motion model's noise.
FREE_FLOW_SPEED_MPS: dict[SpeedClass, float] = {
    SpeedClass.AVENUE: 10.0,
    SpeedClass.BROAD_STREET: 8.0,
    SpeedClass.DIAGONAL: 8.0,
    SpeedClass.STREET: 6.0,
}


class Bounds(NamedTuple):
    south: float
    west: float
    north: float
    east: float


@dataclass(frozen=True, slots=True)
class Edge:
    """One block of one road, between two intersections. A one-way edge runs from source to target."""

    id: int
    source: int
    target: int
    length_m: float
    speed_class: SpeedClass
    one_way: bool
    road: str

    @property
    def free_flow_speed_mps(self) -> float:
        return FREE_FLOW_SPEED_MPS[self.speed_class]

    @property
    def travel_time_s(self) -> float:
        return self.length_m / self.free_flow_speed_mps


@dataclass(frozen=True, slots=True)
class Road:
    """A named road as drawn on a map: its intersections in order (the direction of travel if one-way)."""

    name: str
    speed_class: SpeedClass
    one_way: bool
    nodes: tuple[int, ...]


class LocalProjection:
    """Equirectangular projection around a centre: metres east (x) and north (y) <-> (lat, lng)."""

    def __init__(self, centre_lat: float, centre_lng: float) -> None:
        phi = math.radians(centre_lat)
        self.centre_lat = centre_lat
        self.centre_lng = centre_lng
        # Series for the WGS 84 ellipsoid's metres per degree at this latitude.
        self.m_per_deg_lat = 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        self.m_per_deg_lng = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)

    def to_latlng(self, x: float, y: float) -> tuple[float, float]:
        return (self.centre_lat + y / self.m_per_deg_lat, self.centre_lng + x / self.m_per_deg_lng)

    def to_xy(self, lat: float, lng: float) -> tuple[float, float]:
        return ((lng - self.centre_lng) * self.m_per_deg_lng, (lat - self.centre_lat) * self.m_per_deg_lat)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass
class City:
    """A directed street graph. Node ids are indexes into `nodes`; edge ids are indexes into `edges`."""

    projection: LocalProjection
    nodes: list[tuple[float, float]]
    edges: list[Edge]
    roads: list[Road]
    rotation_deg: float
    width_m: float
    height_m: float
    seed: int
    _xy: np.ndarray = field(repr=False)
    _out: list[list[tuple[int, int]]] = field(repr=False)
    _arc: dict[tuple[int, int], int] = field(repr=False)
    _tree: cKDTree = field(repr=False)

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        seed: int = 7,
        *,
        centre: tuple[float, float] = DEFAULT_CENTRE,
        width_m: float = 6_000.0,
        height_m: float = 10_000.0,
        avenue_spacing_m: float = 275.0,
        street_spacing_m: float = 80.0,
        rotation_deg: float = 29.0,
        with_diagonal: bool = True,
    ) -> City:
        """Build the city. The same arguments always give the same city, node for node.

        `width_m` is measured across the avenues, `height_m` along them; `rotation_deg` turns the avenues
        clockwise from true north.
        """
        if width_m < 2 * avenue_spacing_m or height_m < 4 * street_spacing_m:
            raise ValueError("the city must be at least 3 avenues wide and 5 streets tall")
        rng = random.Random(seed)
        avenue_u = [0.0]
        while True:
            gap = avenue_spacing_m * rng.uniform(0.85, 1.15)  # Manhattan's avenues are not evenly spaced.
            if avenue_u[-1] + gap > width_m:
                break
            avenue_u.append(avenue_u[-1] + gap)
        street_count = int(height_m // street_spacing_m) + 1
        street_v = [j * street_spacing_m for j in range(street_count)]
        avenue_count = len(avenue_u)

        broad_streets: set[int] = set()
        j = rng.randint(3, 8)
        while j < street_count - 1:
            broad_streets.add(j)
            j += rng.randint(8, 12)
        two_way_offset = rng.randrange(4)
        two_way_avenues = {0, avenue_count - 1} | {i for i in range(avenue_count) if i % 4 == two_way_offset}
        northbound_parity = rng.randrange(2)

        # Grid frame (u across the avenues, v along them) -> local plane, centred on the city's centre.
        theta = math.radians(rotation_deg)
        along_avenue = (math.sin(theta), math.cos(theta))
        across_avenue = (math.cos(theta), -math.sin(theta))
        u_mid, v_mid = avenue_u[-1] / 2, street_v[-1] / 2

        def plane(u: float, v: float) -> tuple[float, float]:
            du, dv = u - u_mid, v - v_mid
            return (
                du * across_avenue[0] + dv * along_avenue[0],
                du * across_avenue[1] + dv * along_avenue[1],
            )

        node_ids: dict[Any, int] = {}
        node_uv: list[tuple[float, float]] = []

        def node(key: Any, u: float, v: float) -> int:
            if key not in node_ids:
                node_ids[key] = len(node_uv)
                node_uv.append((u, v))
            return node_ids[key]

        for j in range(street_count):
            for i in range(avenue_count):
                node(("grid", i, j), avenue_u[i], street_v[j])

        # Broadway: starts near the south-east corner and moves one avenue west every ten streets. Where
        # it crosses a street between two avenues, that street gets an extra intersection.
        street_extra: dict[int, list[int]] = {}
        diagonal_nodes: list[int] = []
        if with_diagonal and avenue_count >= 3:
            streets_per_avenue = 10
            i = avenue_count - 1 - rng.randint(0, min(2, avenue_count - 2))
            j = rng.randint(0, 3)
            diagonal_nodes.append(node_ids[("grid", i, j)])
            while i - 1 >= 0 and j + streets_per_avenue < street_count:
                u_from, u_to = avenue_u[i], avenue_u[i - 1]
                for m in range(1, streets_per_avenue):
                    u = u_from + (u_to - u_from) * m / streets_per_avenue
                    crossing = node(("broadway", j + m), u, street_v[j + m])
                    street_extra.setdefault(j + m, []).append(crossing)
                    diagonal_nodes.append(crossing)
                i, j = i - 1, j + streets_per_avenue
                diagonal_nodes.append(node_ids[("grid", i, j)])

        roads: list[Road] = []
        for i in range(avenue_count):
            column = [node_ids[("grid", i, j)] for j in range(street_count)]
            name = f"{_ordinal(avenue_count - i)} Avenue"
            if i in two_way_avenues:
                roads.append(Road(name, SpeedClass.AVENUE, False, tuple(column)))
            else:
                northbound = i % 2 == northbound_parity
                roads.append(
                    Road(name, SpeedClass.AVENUE, True, tuple(column if northbound else column[::-1]))
                )
        for j in range(street_count):
            row = [node_ids[("grid", i, j)] for i in range(avenue_count)] + street_extra.get(j, [])
            row.sort(key=lambda n: node_uv[n][0])
            name = f"{_ordinal(j + 1)} Street"
            if j in broad_streets:
                roads.append(Road(name, SpeedClass.BROAD_STREET, False, tuple(row)))
            else:
                eastbound = j % 2 == 0  # As in Manhattan: even-numbered streets run east.
                roads.append(Road(name, SpeedClass.STREET, True, tuple(row if eastbound else row[::-1])))
        if len(diagonal_nodes) > 1:
            roads.append(Road("Broadway", SpeedClass.DIAGONAL, False, tuple(diagonal_nodes)))

        projection = LocalProjection(*centre)
        xy = np.array([plane(u, v) for u, v in node_uv], dtype=float)
        nodes = [projection.to_latlng(float(x), float(y)) for x, y in xy]
        edges: list[Edge] = []
        for road in roads:
            for a, b in zip(road.nodes, road.nodes[1:], strict=False):
                length = float(np.hypot(*(xy[b] - xy[a])))
                edges.append(Edge(len(edges), a, b, length, road.speed_class, road.one_way, road.name))
        return cls._assemble(
            projection, nodes, xy, edges, roads, rotation_deg, avenue_u[-1], street_v[-1], seed
        )

    @classmethod
    def _assemble(
        cls,
        projection: LocalProjection,
        nodes: list[tuple[float, float]],
        xy: np.ndarray,
        edges: list[Edge],
        roads: list[Road],
        rotation_deg: float,
        width_m: float,
        height_m: float,
        seed: int,
    ) -> City:
        out: list[list[tuple[int, int]]] = [[] for _ in nodes]
        arc: dict[tuple[int, int], int] = {}
        for edge in edges:
            out[edge.source].append((edge.target, edge.id))
            arc[(edge.source, edge.target)] = edge.id
            if not edge.one_way:
                out[edge.target].append((edge.source, edge.id))
                arc[(edge.target, edge.source)] = edge.id
        return cls(
            projection=projection,
            nodes=nodes,
            edges=edges,
            roads=roads,
            rotation_deg=rotation_deg,
            width_m=width_m,
            height_m=height_m,
            seed=seed,
            _xy=xy,
            _out=out,
            _arc=arc,
            _tree=cKDTree(xy),
        )

    # -- queries ------------------------------------------------------------------------------------------

    @property
    def centre(self) -> tuple[float, float]:
        return (self.projection.centre_lat, self.projection.centre_lng)

    @property
    def bounds(self) -> Bounds:
        lats = [lat for lat, _ in self.nodes]
        lngs = [lng for _, lng in self.nodes]
        return Bounds(south=min(lats), west=min(lngs), north=max(lats), east=max(lngs))

    def node_xy(self, node: int) -> tuple[float, float]:
        """The node's position in metres east and north of the centre."""
        x, y = self._xy[node]
        return (float(x), float(y))

    def to_xy(self, lat: float, lng: float) -> tuple[float, float]:
        return self.projection.to_xy(lat, lng)

    def to_latlng(self, x: float, y: float) -> tuple[float, float]:
        return self.projection.to_latlng(x, y)

    def neighbours(self, node: int) -> list[tuple[int, Edge]]:
        """Where one may drive from `node` in one block: (next node, edge)."""
        return [(target, self.edges[edge_id]) for target, edge_id in self._out[node]]

    def arc(self, source: int, target: int) -> Edge | None:
        """The edge one drives along from source to target, or None if that move is not allowed."""
        edge_id = self._arc.get((source, target))
        return None if edge_id is None else self.edges[edge_id]

    def random_node(self, rng: random.Random) -> int:
        return rng.randrange(len(self.nodes))

    def nearest_node(self, lat: float, lng: float) -> int:
        _, index = self._tree.query(self.to_xy(lat, lng))
        return int(index)

    def nodes_within(self, lat: float, lng: float, radius_m: float) -> list[int]:
        return sorted(int(n) for n in self._tree.query_ball_point(self.to_xy(lat, lng), radius_m))

    def distance_m(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        """Straight-line distance between two (lat, lng) places, in the city's plane."""
        ax, ay = self.to_xy(*a)
        bx, by = self.to_xy(*b)
        return math.hypot(bx - ax, by - ay)

    def service_area_polygon(self, margin_m: float = 100.0) -> list[tuple[float, float]]:
        """The grid's outline grown by `margin_m`, as a closed ring of (lng, lat) pairs.

        The order is (x, y) = (lng, lat), as GeoJSON and PostGIS want it
        (`Polygon(ring, srid=4326)`), counter-clockwise, and the last pair repeats the first.
        """
        theta = math.radians(self.rotation_deg)
        along = (math.sin(theta), math.cos(theta))
        across = (math.cos(theta), -math.sin(theta))
        half_u = self.width_m / 2 + margin_m
        half_v = self.height_m / 2 + margin_m
        ring: list[tuple[float, float]] = []
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)):
            x = su * half_u * across[0] + sv * half_v * along[0]
            y = su * half_u * across[1] + sv * half_v * along[1]
            lat, lng = self.to_latlng(x, y)
            ring.append((round(lng, 7), round(lat, 7)))
        return ring

    # -- drawing ------------------------------------------------------------------------------------------

    def street_polylines(self, precision: int = 6) -> list[dict[str, Any]]:
        """Compact JSON for a map page: one polyline per road, points as [lat, lng] (Leaflet's order)."""
        return [
            {
                "name": road.name,
                "class": road.speed_class.value,
                "one_way": road.one_way,
                "points": [
                    [round(self.nodes[n][0], precision), round(self.nodes[n][1], precision)]
                    for n in road.nodes
                ],
            }
            for road in self.roads
        ]

    def to_geojson(self, precision: int = 6) -> dict[str, Any]:
        """A GeoJSON FeatureCollection: one LineString per road ([lng, lat] points) and the service area."""
        features: list[dict[str, Any]] = [
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [
                        [round(self.nodes[n][1], precision), round(self.nodes[n][0], precision)]
                        for n in road.nodes
                    ],
                },
                "properties": {"name": road.name, "class": road.speed_class.value, "one_way": road.one_way},
            }
            for road in self.roads
        ]
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[list(p) for p in self.service_area_polygon()]],
                },
                "properties": {"name": "service area"},
            }
        )
        return {"type": "FeatureCollection", "features": features}


def path_length_m(city: City, nodes: Sequence[int]) -> float:
    """Length of a walk through consecutive nodes, each move along an allowed edge."""
    total = 0.0
    for a, b in itertools.pairwise(nodes):
        edge = city.arc(a, b)
        if edge is None:
            raise ValueError(f"no edge from node {a} to node {b}")
        total += edge.length_m
    return total
