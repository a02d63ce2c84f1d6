"""Fastest paths through the simulated city, by free-flow travel time.

One Dijkstra from a source (scipy's, in C) answers every target at once, so the router keeps the
predecessor tree of the last few hundred sources in an LRU cache: a driver heading for a pickup and then
a dropoff, or many riders' estimates from one hub, cost one search each.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from dispatch.simulation.city import City, Edge


class NoRouteError(LookupError):
    """There is no legal way to drive from one node to the other."""


@dataclass(frozen=True, slots=True)
class Route:
    """A drive through consecutive intersections; `edges[k]` joins `nodes[k]` and `nodes[k + 1]`."""

    nodes: tuple[int, ...]
    points: tuple[tuple[float, float], ...]
    edges: tuple[Edge, ...]
    length_m: float
    duration_s: float

    @property
    def origin(self) -> int:
        return self.nodes[0]

    @property
    def destination(self) -> int:
        return self.nodes[-1]

    @classmethod
    def from_nodes(cls, city: City, nodes: Sequence[int]) -> Route:
        """The route through these nodes; every consecutive pair must be a legal one-block move."""
        if not nodes:
            raise ValueError("a route needs at least one node")
        edges: list[Edge] = []
        for a, b in itertools.pairwise(nodes):
            edge = city.arc(a, b)
            if edge is None:
                raise NoRouteError(f"no edge from node {a} to node {b}")
            edges.append(edge)
        return cls(
            nodes=tuple(nodes),
            points=tuple(city.nodes[n] for n in nodes),
            edges=tuple(edges),
            length_m=sum(e.length_m for e in edges),
            duration_s=sum(e.travel_time_s for e in edges),
        )


class Router:
    """Shortest paths by travel time over one city's directed graph."""

    def __init__(self, city: City, cache_size: int = 256) -> None:
        self.city = city
        self.cache_size = cache_size
        self._trees: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.searches = 0
        size = len(city.nodes)
        weights: dict[tuple[int, int], float] = {}
        for source in range(size):
            for target, edge in city.neighbours(source):
                weights[(source, target)] = edge.travel_time_s
        rows = np.fromiter((s for s, _ in weights), dtype=np.int32, count=len(weights))
        cols = np.fromiter((t for _, t in weights), dtype=np.int32, count=len(weights))
        data = np.fromiter(weights.values(), dtype=float, count=len(weights))
        self._graph = csr_matrix((data, (rows, cols)), shape=(size, size))

    def _tree(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        tree = self._trees.get(source)
        if tree is not None:
            self._trees.move_to_end(source)
            return tree
        self.searches += 1
        times, predecessors = dijkstra(self._graph, directed=True, indices=source, return_predecessors=True)
        tree = (times, predecessors)
        self._trees[source] = tree
        if len(self._trees) > self.cache_size:
            self._trees.popitem(last=False)
        return tree

    def travel_time_s(self, source: int, target: int) -> float:
        """Free-flow driving time; raises NoRouteError if the target cannot be reached."""
        times, _ = self._tree(source)
        time = float(times[target])
        if not np.isfinite(time):
            raise NoRouteError(f"node {target} cannot be reached from node {source}")
        return time

    def route(self, source: int, target: int) -> Route:
        times, predecessors = self._tree(source)
        if not np.isfinite(times[target]):
            raise NoRouteError(f"node {target} cannot be reached from node {source}")
        path = [target]
        while path[-1] != source:
            path.append(int(predecessors[path[-1]]))
        path.reverse()
        return Route.from_nodes(self.city, path)

    def route_between(self, origin: tuple[float, float], destination: tuple[float, float]) -> Route:
        """Route between two (lat, lng) places, each snapped to its nearest intersection."""
        return self.route(self.city.nearest_node(*origin), self.city.nearest_node(*destination))
