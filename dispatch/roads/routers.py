"""Routers: how far and how long by road, for quotes, dispatch, fares and the simulator.

Three engines sit behind one protocol (`Router`), chosen by ROCHDALE_ROUTER (docs/roads.md):

* `ValhallaRouter`     Valhalla in-process (`valhalla.Actor`) on the city's tiles; the default once built.
* `ValhallaHttpRouter` the same requests to a `valhalla_service` (or compatible) server over HTTP.
* `ModelRouter`        the great-circle ETA model (dispatch/matching/eta.py); the fallback.

`ResilientRouter` wraps a road engine so that routing never fails a request: when the engine cannot answer
(a point off the graph, no road between two places, tiles missing, the server down) the model answers
instead, the answer says so (`router="model"`, `fallback_reason`), and the reason is counted
(`fallback_counts`). A map match that fails is the caller's to replace (the geodesic trail).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
import valhalla

from dispatch.matching.eta import GreatCircleEstimator, RouteEstimate
from dispatch.matching.geo import coerce_lat_lng
from dispatch.roads.engine import (
    EngineLeg,
    EngineRoute,
    LatLng,
    RoutingError,
    TileSet,
    classify,
    matrix_request,
    parse_matrix,
    parse_route,
    parse_trace_length_m,
    route_request,
    trace_request,
)

logger = logging.getLogger(__name__)

MODEL = "model"
VALHALLA = "valhalla"
VALHALLA_HTTP = "valhalla-http"


@dataclass(frozen=True, slots=True)
class RoadRoute:
    """A drive from one place to another. `geometry` is the path as (lat, lng) points (the straight line
    for the model); `router` names who answered and `fallback_reason` why the model did, if it did."""

    distance_m: int
    duration_s: int
    geometry: tuple[LatLng, ...]
    router: str
    fallback_reason: str | None = None

    def as_estimate(self) -> RouteEstimate:
        return RouteEstimate(distance_m=self.distance_m, duration_s=self.duration_s)


@dataclass(frozen=True, slots=True)
class RoadLeg:
    """One source's drive to a shared target, as a matrix answers it."""

    distance_m: int
    duration_s: int
    router: str
    fallback_reason: str | None = None


class Router(Protocol):
    """What quotes, dispatch and fares ask of a router. Every method may raise RoutingError, and ValueError
    for a coordinate that is no place on Earth (as the model does: dispatch/matching/geo.py)."""

    name: str

    def route(self, origin: LatLng, destination: LatLng, at: datetime) -> RoadRoute: ...

    def legs_to(self, sources: Sequence[LatLng], target: LatLng, at: datetime) -> list[RoadLeg | None]:
        """Each source's drive to `target`, in order; None where no road leads there."""
        ...

    def matched_length_m(self, trail: Sequence[LatLng]) -> int:
        """The road length of a GPS trail, map-matched."""
        ...

    def estimate(self, origin: LatLng, destination: LatLng, at: datetime) -> RouteEstimate:
        """The RouteEstimator seam (dispatch/matching/eta.py): distance and duration only."""
        ...


# -- counters -------------------------------------------------------------------------------------------

_fallbacks: Counter[tuple[str, str, str]] = Counter()
_fallbacks_lock = threading.Lock()


def count_fallback(engine: str, operation: str, reason: str) -> None:
    with _fallbacks_lock:
        _fallbacks[(engine, operation, reason)] += 1


def fallback_counts() -> dict[str, int]:
    """How often this process answered with the model instead of the road engine, by
    `engine:operation:reason` (for example `valhalla:route:off_graph`)."""
    with _fallbacks_lock:
        return {":".join(key): count for key, count in sorted(_fallbacks.items())}


def reset_fallback_counts() -> None:
    with _fallbacks_lock:
        _fallbacks.clear()


# -- the model ------------------------------------------------------------------------------------------


class ModelRouter:
    """The ETA model as a router: straight lines, great circle x circuity at the hour's speed."""

    name = MODEL

    def __init__(self, estimator: GreatCircleEstimator) -> None:
        self.estimator = estimator

    def route(self, origin: LatLng, destination: LatLng, at: datetime) -> RoadRoute:
        estimate = self.estimator.estimate(origin, destination, at)
        return RoadRoute(estimate.distance_m, estimate.duration_s, (origin, destination), MODEL)

    def legs_to(self, sources: Sequence[LatLng], target: LatLng, at: datetime) -> list[RoadLeg | None]:
        legs: list[RoadLeg | None] = []
        for source in sources:
            estimate = self.estimator.estimate(source, target, at)
            legs.append(RoadLeg(estimate.distance_m, estimate.duration_s, MODEL))
        return legs

    def matched_length_m(self, trail: Sequence[LatLng]) -> int:
        raise RoutingError("no_road_graph", "the model has no roads to match a trail to")

    def estimate(self, origin: LatLng, destination: LatLng, at: datetime) -> RouteEstimate:
        return self.estimator.estimate(origin, destination, at)


# -- Valhalla, in-process and over HTTP --------------------------------------------------------------------


class _EngineRouter(abc.ABC):
    """What both Valhalla adapters share: the requests, and turning answers into roads."""

    name: str

    def __init__(self, *, snap_radius_m: float) -> None:
        self.snap_radius_m = snap_radius_m

    @abc.abstractmethod
    def _call(self, action: str, request: dict[str, object]) -> dict[str, object]:
        """Send one request document to the engine's `action`; raise RoutingError when it refuses."""

    def _answer[T](
        self, action: str, request: dict[str, object], parse: Callable[[dict[str, object]], T]
    ) -> T:
        """Ask the engine and read its answer; an answer of an unexpected shape is the engine's fault."""
        body = self._call(action, request)
        try:
            return parse(body)
        except RoutingError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise RoutingError(
                "engine_error", f"the engine's {action} answer is malformed: {error!r}"
            ) from error

    def route(self, origin: LatLng, destination: LatLng, at: datetime) -> RoadRoute:
        request = route_request(origin, destination, snap_radius_m=self.snap_radius_m)
        found: EngineRoute = self._answer("route", request, parse_route)
        return RoadRoute(found.distance_m, found.duration_s, found.geometry, self.name)

    def legs_to(self, sources: Sequence[LatLng], target: LatLng, at: datetime) -> list[RoadLeg | None]:
        if not sources:
            return []
        request = matrix_request(sources, target, snap_radius_m=self.snap_radius_m)
        legs: list[EngineLeg | None] = self._answer(
            "sources_to_targets", request, lambda body: parse_matrix(body, len(sources))
        )
        return [None if leg is None else RoadLeg(leg.distance_m, leg.duration_s, self.name) for leg in legs]

    def matched_length_m(self, trail: Sequence[LatLng]) -> int:
        if len(trail) < 2:
            raise RoutingError("no_route", "a trail needs two points")
        return self._answer("trace_attributes", trace_request(trail), parse_trace_length_m)

    def estimate(self, origin: LatLng, destination: LatLng, at: datetime) -> RouteEstimate:
        return self.route(origin, destination, at).as_estimate()


class ValhallaRouter(_EngineRouter):
    """Valhalla in this process, on one city's tiles.

    An actor is not safe to share between threads, and creating one costs milliseconds (it reads its
    configuration and builds its tile cache), so actors are pooled: a call takes an idle actor (or creates
    one), uses it alone and gives it back. Django runs each request's sync code in a thread of its own, so a
    thread-local actor would be created anew on every request. A rebuild of the tiles (a new build stamp)
    retires the pool: the next call creates actors on the new tiles."""

    name = VALHALLA

    def __init__(self, tiles: TileSet, *, snap_radius_m: float) -> None:
        super().__init__(snap_radius_m=snap_radius_m)
        self.tiles = tiles
        self._lock = threading.Lock()
        self._idle: list[valhalla.Actor] = []
        self._stamp = 0.0
        self.actors_created = 0

    def _new_actor(self) -> valhalla.Actor:
        try:
            # The tiles are wherever this tile set is now (a folder copied or mounted elsewhere than it was
            # built still works), not where the stored configuration says they were built.
            config = self.tiles.engine_config()
            mjolnir = config["mjolnir"]
            assert isinstance(mjolnir, dict)
            config["mjolnir"] = {**mjolnir, "tile_dir": str(self.tiles.tile_dir)}
            actor = valhalla.Actor(config)
        except (OSError, ValueError, KeyError, TypeError, AssertionError, RuntimeError) as error:
            raise RoutingError(
                "no_tiles", f"the tiles of {self.tiles.name!r} cannot be loaded: {error}"
            ) from error
        self.actors_created += 1
        return actor

    @contextlib.contextmanager
    def _actor(self) -> Iterator[valhalla.Actor]:
        stamp = self.tiles.build_stamp()
        if not stamp:
            raise RoutingError("no_tiles", f"no road tiles are built for {self.tiles.name!r}")
        with self._lock:
            if stamp != self._stamp:
                self._idle.clear()
                self._stamp = stamp
            actor = self._idle.pop() if self._idle else None
        if actor is None:
            actor = self._new_actor()
        try:
            yield actor
        finally:
            with self._lock:
                if self._stamp == stamp:
                    self._idle.append(actor)

    def _call(self, action: str, request: dict[str, object]) -> dict[str, object]:
        with self._actor() as actor:
            method = {
                "route": actor.route,
                "sources_to_targets": actor.matrix,
                "trace_attributes": actor.trace_attributes,
            }[action]
            try:
                answer: dict[str, object] = method(request)
            except RuntimeError as error:  # _valhalla.ValhallaError derives from RuntimeError
                raise RoutingError(classify(str(error)), str(error)) from error
        return answer


class ValhallaHttpRouter(_EngineRouter):
    """Valhalla's HTTP API (`valhalla_service`, or a compatible server) at `base_url`."""

    name = VALHALLA_HTTP

    def __init__(self, base_url: str, *, snap_radius_m: float, timeout_s: float) -> None:
        super().__init__(snap_radius_m=snap_radius_m)
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def _call(self, action: str, request: dict[str, object]) -> dict[str, object]:
        try:
            response = self._client.post(f"/{action}", json=request)
        except httpx.TimeoutException as error:
            raise RoutingError("timeout", f"{self.base_url} did not answer in time") from error
        except httpx.TransportError as error:
            raise RoutingError("unavailable", f"{self.base_url} is unreachable: {error}") from error
        except httpx.HTTPError as error:  # redirects, bad encodings: not an answer we can read
            raise RoutingError("engine_error", f"{self.base_url}: {error!r}") from error
        try:
            body = response.json()
        except ValueError as error:
            raise RoutingError("engine_error", f"{self.base_url} answered {response.status_code}") from error
        if response.status_code != 200:
            # Valhalla answers {"error_code": 171, "error": "No suitable edges near location", ...}.
            document = body if isinstance(body, dict) else {}
            said = str(document.get("error", response.text))
            given = document.get("error_code")
            code = given if isinstance(given, int) else None
            raise RoutingError(classify(said, code), f"{code} {said}" if code is not None else said)
        answer: dict[str, object] = body
        return answer


# -- never failing a request -------------------------------------------------------------------------------

# The engine is not answering at all: asking it again for each source would only add timeouts.
ENGINE_DOWN = frozenset({"no_tiles", "unavailable", "timeout"})


class ResilientRouter:
    """A road engine with the model behind it: every route and leg gets an answer."""

    def __init__(self, engine: ValhallaRouter | ValhallaHttpRouter, model: ModelRouter) -> None:
        self.engine = engine
        self.model = model
        self.name = engine.name

    def _guarded[T](self, call: Callable[[], T]) -> T:
        """Run an engine call; any fault other than a RoutingError (a native error, a bug in an adapter) is
        logged and becomes `engine_error`, so it degrades to the model like any other refusal."""
        try:
            return call()
        except RoutingError:
            raise
        except Exception as error:
            logger.exception("road engine %s failed", self.engine.name)
            raise RoutingError("engine_error", repr(error)) from error

    def route(self, origin: LatLng, destination: LatLng, at: datetime) -> RoadRoute:
        # Bad coordinates are the caller's error: refused as the model refuses them, never counted.
        coerce_lat_lng(*origin), coerce_lat_lng(*destination)
        try:
            return self._guarded(lambda: self.engine.route(origin, destination, at))
        except RoutingError as error:
            count_fallback(self.engine.name, "route", error.reason)
            logger.info("route by the model (%s): %s", error.reason, error)
            fallback = self.model.route(origin, destination, at)
            return RoadRoute(
                fallback.distance_m,
                fallback.duration_s,
                fallback.geometry,
                MODEL,
                fallback_reason=error.reason,
            )

    def legs_to(self, sources: Sequence[LatLng], target: LatLng, at: datetime) -> list[RoadLeg | None]:
        """Every source gets a leg. One matrix call; if the engine refuses it as a whole (one source off the
        graph fails the lot), each source is asked alone. A source the road cannot take to the target, or
        that is off the graph, is estimated by the model and marked so."""
        for point in (*sources, target):
            coerce_lat_lng(*point)
        try:
            legs = self._guarded(lambda: self.engine.legs_to(sources, target, at))
            reasons: list[str | None] = [None if leg else "no_route" for leg in legs]
        except RoutingError as error:
            if error.reason in ENGINE_DOWN or len(sources) == 1:
                legs, reasons = [None] * len(sources), [error.reason] * len(sources)
            else:
                legs, reasons = [], []
                for index, source in enumerate(sources):
                    try:
                        legs.extend(
                            self._guarded(lambda source=source: self.engine.legs_to([source], target, at))
                        )
                        reasons.append(None if legs[-1] else "no_route")
                    except RoutingError as alone:
                        legs.append(None)
                        reasons.append(alone.reason)
                        if alone.reason in ENGINE_DOWN:  # no use asking again, one by one, for seconds
                            remaining = len(sources) - index - 1
                            legs.extend([None] * remaining)
                            reasons.extend([alone.reason] * remaining)
                            break
        answered: list[RoadLeg | None] = []
        for source, leg, reason in zip(sources, legs, reasons, strict=True):
            if leg is None and reason == "no_route":
                # The matrix search gives up on some pairs that a route search joins (Valhalla's cost matrix
                # bounds its expansion); ask once more, one route, before calling them unreachable.
                leg, reason = self._leg_by_route(source, target, at)
            if leg is not None:
                answered.append(leg)
                continue
            assert reason is not None
            count_fallback(self.engine.name, "matrix", reason)
            model_leg = self.model.legs_to([source], target, at)[0]
            assert model_leg is not None
            answered.append(
                RoadLeg(model_leg.distance_m, model_leg.duration_s, MODEL, fallback_reason=reason)
            )
        return answered

    def _leg_by_route(self, source: LatLng, target: LatLng, at: datetime) -> tuple[RoadLeg | None, str]:
        try:
            found = self._guarded(lambda: self.engine.route(source, target, at))
        except RoutingError as error:
            return None, error.reason
        return RoadLeg(found.distance_m, found.duration_s, self.engine.name), ""

    def matched_length_m(self, trail: Sequence[LatLng]) -> int:
        for point in trail:
            coerce_lat_lng(*point)
        try:
            return self._guarded(lambda: self.engine.matched_length_m(trail))
        except RoutingError as error:
            count_fallback(self.engine.name, "match", error.reason)
            raise

    def estimate(self, origin: LatLng, destination: LatLng, at: datetime) -> RouteEstimate:
        return self.route(origin, destination, at).as_estimate()
