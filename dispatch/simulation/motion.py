"""Vehicles that drive along streets: positions, headings and speeds over time, with optional GPS noise.

A `RouteMotion` is one drive along a `Route`, planned when it starts: every block gets its own speed (the
edge's free-flow speed times a random congestion factor) and some intersections a red light. Its
`position_at(t)` is a pure function of time, always on a street segment of the route, never through a
block. A `Vehicle` keeps a clock and a current drive and is what a simulated driver app holds: it
`follow`s a route, is `advance`d by the seconds since the last tick, and reports a `Fix` (with GPS
jitter if asked) that maps straight onto the websocket `location` frame.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from dispatch.simulation.city import City
from dispatch.simulation.routing import Route, Router


class Fix(NamedTuple):
    """A position report: what the driver app sends about every 4 s."""

    lat: float
    lng: float
    heading_deg: float
    speed_mps: float

    def to_location_frame(self, recorded_at: datetime, accuracy_m: float | None = None) -> dict[str, Any]:
        """The contract's driver `location` frame for this fix."""
        frame: dict[str, Any] = {
            "type": "location",
            "lat": round(self.lat, 7),
            "lng": round(self.lng, 7),
            "heading": round(self.heading_deg, 1),
            "speed_mps": round(self.speed_mps, 2),
            "recorded_at": recorded_at.isoformat(),
        }
        if accuracy_m is not None:
            frame["accuracy_m"] = round(accuracy_m, 1)
        return frame


def compass_heading_deg(dx: float, dy: float) -> float:
    """Heading of a move east `dx`, north `dy` metres: 0 is north, 90 east, in [0, 360)."""
    return math.degrees(math.atan2(dx, dy)) % 360.0


@dataclass(frozen=True, slots=True)
class _Leg:
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    start_s: float  # leaves the start node
    arrive_s: float  # reaches the end node
    depart_s: float  # leaves the end node (after a red light, if any)
    speed_mps: float
    heading_deg: float


class RouteMotion:
    """One planned drive along a route, starting at time 0 (seconds, relative)."""

    def __init__(
        self,
        city: City,
        route: Route,
        rng: random.Random | None = None,
        *,
        speed_noise: float = 0.15,
        red_light_probability: float = 0.2,
        red_light_s: tuple[float, float] = (5.0, 30.0),
        start_offset_s: float = 0.0,
    ) -> None:
        rng = rng or random.Random(0)
        self.city = city
        self.route = route
        self._legs: list[_Leg] = []
        clock = start_offset_s
        for index, edge in enumerate(route.edges):
            a, b = route.nodes[index], route.nodes[index + 1]
            ax, ay = city.node_xy(a)
            bx, by = city.node_xy(b)
            congestion = min(1.4, max(0.5, rng.gauss(1.0, speed_noise)))
            speed = edge.free_flow_speed_mps * congestion
            arrive = clock + edge.length_m / speed
            is_last = index == len(route.edges) - 1
            wait = rng.uniform(*red_light_s) if not is_last and rng.random() < red_light_probability else 0.0
            self._legs.append(
                _Leg(
                    (ax, ay),
                    (bx, by),
                    clock,
                    arrive,
                    arrive + wait,
                    speed,
                    compass_heading_deg(bx - ax, by - ay),
                )
            )
            clock = arrive + wait
        self._starts = [leg.start_s for leg in self._legs]
        self.start_offset_s = start_offset_s
        self.duration_s = clock

    def leg_index_at(self, t: float) -> int | None:
        """The leg driven (or waited at the end of) at time t, None before the start or after the end."""
        if not self._legs or t < self._legs[0].start_s or t >= self.duration_s:
            return None
        return bisect.bisect_right(self._starts, t) - 1

    def xy_at(self, t: float) -> tuple[float, float]:
        index = self.leg_index_at(t)
        if index is None:
            node = (
                self.route.nodes[0] if not self._legs or t < self._legs[0].start_s else self.route.nodes[-1]
            )
            return self.city.node_xy(node)
        leg = self._legs[index]
        fraction = 1.0 if t >= leg.arrive_s else (t - leg.start_s) / (leg.arrive_s - leg.start_s)
        return (
            leg.start_xy[0] + (leg.end_xy[0] - leg.start_xy[0]) * fraction,
            leg.start_xy[1] + (leg.end_xy[1] - leg.start_xy[1]) * fraction,
        )

    def position_at(self, t: float) -> Fix:
        """Where the vehicle is at time t: on the route, heading along it, moving or stopped."""
        lat, lng = self.city.to_latlng(*self.xy_at(t))
        index = self.leg_index_at(t)
        if index is None:
            heading = self._legs[-1].heading_deg if self._legs and t >= self.duration_s else 0.0
            if self._legs and t < self._legs[0].start_s:
                heading = self._legs[0].heading_deg
            return Fix(lat, lng, heading, 0.0)
        leg = self._legs[index]
        speed = leg.speed_mps if t < leg.arrive_s else 0.0
        return Fix(lat, lng, leg.heading_deg, speed)

    def last_node_passed(self, t: float) -> int:
        index = self.leg_index_at(t)
        if index is None:
            return self.route.nodes[0] if self._legs and t < self._legs[0].start_s else self.route.nodes[-1]
        return self.route.nodes[index + 1] if t >= self._legs[index].arrive_s else self.route.nodes[index]

    def next_node(self, t: float) -> int:
        """The intersection the vehicle reaches next (where it is, if stopped at one)."""
        index = self.leg_index_at(t)
        if index is None:
            return self.route.nodes[0] if self._legs and t < self._legs[0].start_s else self.route.nodes[-1]
        return self.route.nodes[index + 1]

    def fraction_of_leg_done(self, t: float) -> float:
        index = self.leg_index_at(t)
        if index is None:
            return 0.0
        leg = self._legs[index]
        return min(1.0, (t - leg.start_s) / (leg.arrive_s - leg.start_s))


class Vehicle:
    """A car in the simulated city. Parked at a node until told to `follow` a route."""

    def __init__(
        self,
        city: City,
        node: int,
        rng: random.Random | None = None,
        *,
        gps_jitter_m: float = 0.0,
        speed_noise: float = 0.15,
        red_light_probability: float = 0.2,
    ) -> None:
        self.city = city
        self.rng = rng or random.Random(0)
        self.gps_jitter_m = gps_jitter_m
        self.speed_noise = speed_noise
        self.red_light_probability = red_light_probability
        self._parked_at = node
        self._motion: RouteMotion | None = None
        self._elapsed = 0.0
        self._heading = 0.0
        self._odometer_settled_m = 0.0
        self._odometer_base_m = 0.0

    # -- state --------------------------------------------------------------------------------------------

    @property
    def motion(self) -> RouteMotion | None:
        return self._motion

    @property
    def arrived(self) -> bool:
        """True when parked or at the end of the current drive."""
        return self._motion is None or self._elapsed >= self._motion.duration_s

    @property
    def odometer_m(self) -> float:
        """Metres driven since the car was created."""
        return self._odometer_settled_m + self._distance_along() - self._odometer_base_m

    @property
    def remaining_s(self) -> float:
        return 0.0 if self._motion is None else max(0.0, self._motion.duration_s - self._elapsed)

    @property
    def next_node(self) -> int:
        """Where a new route must start: the next intersection ahead (or the one the car stands at)."""
        return self._parked_at if self._motion is None else self._motion.next_node(self._elapsed)

    @property
    def node(self) -> int:
        """The last intersection reached."""
        return self._parked_at if self._motion is None else self._motion.last_node_passed(self._elapsed)

    @property
    def true_fix(self) -> Fix:
        """Where the car really is (no GPS noise)."""
        if self._motion is None:
            lat, lng = self.city.nodes[self._parked_at]
            return Fix(lat, lng, self._heading, 0.0)
        return self._motion.position_at(self._elapsed)

    @property
    def position(self) -> tuple[float, float]:
        fix = self.true_fix
        return (fix.lat, fix.lng)

    # -- driving ------------------------------------------------------------------------------------------

    def follow(self, route: Route) -> None:
        """Drive `route`, which must start at `next_node`. A car mid-block first finishes that block."""
        if route.origin != self.next_node:
            raise ValueError(
                f"route starts at node {route.origin}, but the car's next node is {self.next_node}"
            )
        self._settle_odometer()
        if self._motion is not None and not self.arrived and self.node != self.next_node:
            done = self._motion.fraction_of_leg_done(self._elapsed)
            joined = Route.from_nodes(self.city, (self.node, *route.nodes))
            motion = self._plan(joined)
            first_leg = motion._legs[0]
            self._motion = motion
            self._elapsed = first_leg.start_s + done * (first_leg.arrive_s - first_leg.start_s)
        else:
            self._motion = self._plan(route)
            self._elapsed = 0.0
        self._odometer_base_m = self._distance_along()

    def drive_to(self, router: Router, destination: int) -> Route:
        """Plan the fastest route from `next_node` to `destination` and follow it."""
        route = router.route(self.next_node, destination)
        self.follow(route)
        return route

    def stop(self) -> None:
        """Halt at the next intersection: a car mid-block drives the rest of it first (cars never park
        mid-block here, so positions stay continuous)."""
        if self._motion is not None and not self.arrived:
            self.follow(Route.from_nodes(self.city, [self.next_node]))

    def _park(self) -> None:
        self._settle_odometer()
        self._heading = self.true_fix.heading_deg
        self._parked_at = self.next_node
        self._motion = None
        self._elapsed = 0.0
        self._odometer_base_m = 0.0

    def advance(self, dt_s: float) -> Fix:
        """Let `dt_s` seconds pass and report the position, with GPS jitter if the car has it."""
        if dt_s < 0:
            raise ValueError("time only moves forward")
        if self._motion is not None:
            self._elapsed = min(self._elapsed + dt_s, self._motion.duration_s)
            if self.arrived:
                self._park()
        return self.observe()

    def observe(self) -> Fix:
        """The current position as a GPS would report it (gaussian error of `gps_jitter_m` per axis)."""
        fix = self.true_fix
        if self.gps_jitter_m <= 0:
            return fix
        x, y = self.city.to_xy(fix.lat, fix.lng)
        lat, lng = self.city.to_latlng(
            x + self.rng.gauss(0.0, self.gps_jitter_m), y + self.rng.gauss(0.0, self.gps_jitter_m)
        )
        return Fix(lat, lng, fix.heading_deg, fix.speed_mps)

    # -- internals ----------------------------------------------------------------------------------------

    def _plan(self, route: Route) -> RouteMotion:
        return RouteMotion(
            self.city,
            route,
            self.rng,
            speed_noise=self.speed_noise,
            red_light_probability=self.red_light_probability,
        )

    def _distance_along(self) -> float:
        if self._motion is None:
            return 0.0
        motion = self._motion
        index = motion.leg_index_at(self._elapsed)
        if index is None:
            return motion.route.length_m if self._elapsed >= motion.duration_s else 0.0
        done = sum(edge.length_m for edge in motion.route.edges[:index])
        return done + motion.route.edges[index].length_m * motion.fraction_of_leg_done(self._elapsed)

    def _settle_odometer(self) -> None:
        self._odometer_settled_m = self.odometer_m
        self._odometer_base_m = 0.0
