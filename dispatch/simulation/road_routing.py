"""Simulated drivers drive where the road engine says: Valhalla's route, mapped back onto the city's nodes.

The server quotes and dispatches on Valhalla's routes (dispatch/roads/); for quoted and lived ETAs to be
comparable, the simulated cars must drive those routes too, not the simulator's own Dijkstra paths. The
`RoadFollowingRouter` asks the engine for a route between two intersections of the generated city (whose
export, dispatch/simulation/osm_export.py, is what the demo tiles are built from), turns the answer's
shape back into the city's node ids and hands the motion model (motion.py, unchanged) an ordinary
`Route`. Every step of that route is checked to be a legal one-block move in the city's graph; an answer
that is not (or no answer: the engine down, tiles missing) is replaced by the Dijkstra route, and the
reason counted, so a car always has somewhere to go.

Not a pure module: it calls the engine (a native library, through dispatch.roads), so the pure modules
(city, routing, motion, demand) never import it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from dispatch.roads.engine import LatLng, RoutingError, TileSet
from dispatch.roads.routers import VALHALLA, ValhallaRouter
from dispatch.simulation.city import City
from dispatch.simulation.osm_export import export_digest
from dispatch.simulation.routing import NoRouteError, Route, Router

logger = logging.getLogger(__name__)

AUTO = "auto"
DIJKSTRA = "dijkstra"
SIMULATION_ROUTERS = (AUTO, VALHALLA, DIJKSTRA)
# The engine's shape is rounded to 1e-6 degree (about 0.1 m) and the city's nodes are its own vertices;
# anything farther than this from an intersection is not one of the city's points.
NODE_MATCH_TOLERANCE_M = 2.0
# Routes start and end on intersections, so the engine needs to look only a few metres for a road.
SNAP_RADIUS_M = 25.0


class SimulationRouterError(ValueError):
    """The simulation router asked for cannot be had (an unknown name, or Valhalla without tiles)."""


class UnmappedRouteError(LookupError):
    """The engine's route does not run through the city's intersections one block at a time."""


class RoadFollowingRouter(Router):
    """The city's router whose `route` is the road engine's. Still a `Router`: its Dijkstra (free-flow
    travel times, `travel_time_s`) stays as it was and answers whenever the engine's route cannot be used.

    `counts` says how each route was made: `valhalla`, or `fallback.<reason>` (the engine's reason word,
    or `unmapped` when the answer could not be laid onto the city's blocks)."""

    def __init__(self, city: City, engine: ValhallaRouter, *, cache_size: int = 256) -> None:
        super().__init__(city, cache_size=cache_size)
        self.engine = engine
        self.counts: Counter[str] = Counter()

    def route(self, source: int, target: int) -> Route:
        if source == target:
            return Route.from_nodes(self.city, [source])
        try:
            found = self.engine.route(self.city.nodes[source], self.city.nodes[target], datetime.now(UTC))
            route = Route.from_nodes(self.city, self.nodes_along(found.geometry))
            if route.origin != source or route.destination != target:
                raise UnmappedRouteError(
                    f"the engine drove {route.origin}->{route.destination}, not {source}->{target}"
                )
        except RoutingError as error:
            return self._fallback(source, target, error.reason, error)
        except (UnmappedRouteError, NoRouteError) as error:
            # NoRouteError here: two consecutive nodes of the answer are not a legal block (say, against a
            # one-way street), which would mean the tiles are not this city's.
            return self._fallback(source, target, "unmapped", error)
        self.counts[self.engine.name] += 1
        return route

    def _fallback(self, source: int, target: int, reason: str, error: Exception) -> Route:
        self.counts[f"fallback.{reason}"] += 1
        logger.info("simulated car routed by Dijkstra (%s): %s", reason, error)
        return super().route(source, target)

    def nodes_along(self, geometry: Sequence[LatLng]) -> list[int]:
        """The city's intersections the shape passes through, in order (each once where it lingers).

        Raises UnmappedRouteError for a point that is not an intersection: the city's roads are straight
        between intersections, so an export of this city gives shapes made of intersections only."""
        nodes: list[int] = []
        for lat, lng in geometry:
            node = self.city.nearest_node(lat, lng)
            if self.city.distance_m((lat, lng), self.city.nodes[node]) > NODE_MATCH_TOLERANCE_M:
                raise UnmappedRouteError(f"({lat}, {lng}) is not one of the city's intersections")
            if not nodes or nodes[-1] != node:
                nodes.append(node)
        if not nodes:
            raise UnmappedRouteError("the engine's route has no shape")
        return nodes


def tiles_built_from(tiles: TileSet, city: City) -> bool:
    """True when `tiles` exist and were built from this very city's export (same bytes, by SHA-256)."""
    return tiles.exists() and tiles.manifest().get("source_sha256") == export_digest(city)


def simulation_router(
    city: City, *, choice: str, tiles: TileSet, snap_radius_m: float = SNAP_RADIUS_M
) -> tuple[Router, str]:
    """The router simulated cars drive on, and a line saying which one and why.

    `auto`: Valhalla when `tiles` were built from this city (`make run` builds them), else Dijkstra.
    `valhalla`: Valhalla, or SimulationRouterError when the tiles are missing; tiles of another city are
    used but said to be (most routes then fall back, counted). `dijkstra`: the city's own shortest paths."""
    if choice not in SIMULATION_ROUTERS:
        raise SimulationRouterError(
            f"the simulation router is one of {', '.join(SIMULATION_ROUTERS)}, not {choice!r}"
        )
    if choice == DIJKSTRA:
        return Router(city), "simulated cars drive on Dijkstra (asked for)"
    if not tiles.exists():
        if choice == VALHALLA:
            raise SimulationRouterError(
                f"no road tiles at {tiles.root}: run `manage.py city_export_osm` and roads_build"
            )
        return Router(city), f"simulated cars drive on Dijkstra (no road tiles at {tiles.root})"
    same_city = tiles_built_from(tiles, city)
    if choice == AUTO and not same_city:
        return Router(city), f"simulated cars drive on Dijkstra ({tiles.root} is not this city's export)"
    engine = ValhallaRouter(tiles, snap_radius_m=snap_radius_m)
    note = "" if same_city else "; warning: the tiles were not built from this city"
    return RoadFollowingRouter(city, engine), f"simulated cars drive on Valhalla ({tiles.root}){note}"
