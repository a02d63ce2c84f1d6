"""The ETA model shared by fare estimates and dispatch.

One model, so the price a rider is quoted and the pickup time dispatch ranks by never disagree:

    distance_m = great-circle distance x ``circuity``
    duration_s = distance_m / speed(hour of local time)

* ``circuity`` (default 1.3) is the ratio of road distance to straight-line distance. Studies of
  street grids put it between about 1.2 and 1.4 for dense cities (Manhattan's grid is near 1.3 for
  trips of a few kilometres); 1.3 errs a little long, so quotes and ETAs are rarely optimistic.
* ``speed_profile_kmh`` holds 24 average door-to-door speeds, one per hour of *local* time, for a dense
  city: about 35 km/h in the small hours, 14 km/h in the morning peak (08:00) and the evening peak
  (17:00), high teens through the working day. These are the values published for Manhattan taxi trips
  in round numbers; a cooperative in another city changes them in settings.
* ``pickup_overhead_s`` (default 30 s) is added to a *pickup* ETA only: the time to accept the offer,
  pull out and find the rider at the kerb. A trip's own duration does not include it.
* ``timezone`` (default ``America/New_York``) says which local hour an aware datetime falls in; naive
  datetimes are taken as local already.

Durations are rounded up to whole seconds (a promise should not be early) and distances to the nearest
metre.

A road router (OSRM, a local graph) can replace the straight-line model later: anything with the
``RouteEstimator`` protocol's ``estimate`` method plugs into the same place, and the matcher never needs
to know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from dispatch.matching.geo import coerce_lat_lng, haversine_m, haversine_m_many

# Average door-to-door speed (km/h) for each local hour 00..23 in a dense city.
DENSE_CITY_SPEED_PROFILE_KMH: tuple[float, ...] = (
    33.0, 35.0, 35.0, 35.0, 34.0, 30.0,  # 00-05: empty streets
    24.0, 17.0, 14.0, 16.0, 19.0, 19.0,  # 06-11: morning peak at 08
    18.0, 18.0, 17.0, 16.0, 15.0, 14.0,  # 12-17: midday, building to the evening peak at 17
    15.0, 18.0, 22.0, 26.0, 29.0, 31.0,  # 18-23: evening, thinning out
)  # fmt: skip


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class EtaParameters:
    """Tunable numbers of the ETA model; the defaults describe a dense city (see the module docstring)."""

    circuity: float = 1.3
    speed_profile_kmh: tuple[float, ...] = DENSE_CITY_SPEED_PROFILE_KMH
    pickup_overhead_s: float = 30.0
    timezone: str = "America/New_York"
    _speeds_mps: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.circuity) and self.circuity >= 1.0):
            raise ValueError(f"circuity must be a finite number >= 1, got {self.circuity!r}")
        speeds = tuple(float(speed) for speed in self.speed_profile_kmh)
        if len(speeds) != 24:
            raise ValueError(f"speed_profile_kmh needs 24 hourly speeds, got {len(speeds)}")
        if not all(math.isfinite(speed) and speed > 0 for speed in speeds):
            raise ValueError("every hourly speed must be a finite number above 0 km/h")
        if not (math.isfinite(self.pickup_overhead_s) and self.pickup_overhead_s >= 0):
            raise ValueError(f"pickup_overhead_s must be >= 0, got {self.pickup_overhead_s!r}")
        try:
            _zone(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error
        object.__setattr__(self, "speed_profile_kmh", speeds)
        object.__setattr__(self, "_speeds_mps", tuple(speed / 3.6 for speed in speeds))

    def local_hour(self, at: datetime) -> int:
        """The hour of local time (0..23) that ``at`` falls in."""
        if at.tzinfo is None:
            return at.hour
        return at.astimezone(_zone(self.timezone)).hour

    def speed_mps(self, at: datetime) -> float:
        """The model's average speed in metres per second at ``at``."""
        return self._speeds_mps[self.local_hour(at)]


DEFAULT_ETA_PARAMETERS = EtaParameters()


@dataclass(frozen=True, slots=True)
class RouteEstimate:
    """How far and how long a drive is expected to be."""

    distance_m: int
    duration_s: int


@runtime_checkable
class RouteEstimator(Protocol):
    """Anything that can estimate a drive: the great-circle model here, or a road router later."""

    def estimate(
        self, origin: tuple[float, float], destination: tuple[float, float], at: datetime
    ) -> RouteEstimate: ...


class GreatCircleEstimator:
    """The straight-line model: great circle x circuity at the hour's speed."""

    def __init__(self, parameters: EtaParameters = DEFAULT_ETA_PARAMETERS) -> None:
        self.parameters = parameters

    def estimate(
        self, origin: tuple[float, float], destination: tuple[float, float], at: datetime
    ) -> RouteEstimate:
        """Road distance and driving time from ``origin`` to ``destination`` (lat, lng) leaving at ``at``."""
        origin_lat, origin_lng = coerce_lat_lng(*origin)
        destination_lat, destination_lng = coerce_lat_lng(*destination)
        road_m = (
            haversine_m(origin_lat, origin_lng, destination_lat, destination_lng) * self.parameters.circuity
        )
        return RouteEstimate(
            distance_m=round(road_m),
            duration_s=_whole_seconds(road_m / self.parameters.speed_mps(at)),
        )

    def pickup_eta_s(self, great_circle_m: float, at: datetime) -> int:
        """Seconds for a driver ``great_circle_m`` away in a straight line to reach the rider."""
        return pickup_eta_s(great_circle_m, at=at, parameters=self.parameters)

    def pickup_eta_s_many(
        self,
        driver_lats: npt.ArrayLike,
        driver_lngs: npt.ArrayLike,
        pickup: tuple[float, float],
        at: datetime,
    ) -> npt.NDArray[np.int64]:
        """Pickup ETAs (seconds) of many drivers to one pickup, in one vectorised pass."""
        pickup_lat, pickup_lng = coerce_lat_lng(*pickup)
        distances = haversine_m_many(pickup_lat, pickup_lng, driver_lats, driver_lngs)
        return pickup_eta_s_many(distances, at=at, parameters=self.parameters)


def pickup_eta_s(
    great_circle_m: float, *, at: datetime, parameters: EtaParameters = DEFAULT_ETA_PARAMETERS
) -> int:
    """Seconds for a driver ``great_circle_m`` away (straight line) to reach a pickup at ``at``."""
    great_circle_m = float(great_circle_m)
    if not (math.isfinite(great_circle_m) and great_circle_m >= 0):
        raise ValueError(f"great_circle_m must be a finite distance >= 0, got {great_circle_m!r}")
    # Same operations in the same order as pickup_eta_s_many, so both round alike to the last bit.
    return _whole_seconds(
        parameters.pickup_overhead_s + great_circle_m * (parameters.circuity / parameters.speed_mps(at))
    )


def pickup_eta_s_many(
    great_circle_m: npt.ArrayLike, *, at: datetime, parameters: EtaParameters = DEFAULT_ETA_PARAMETERS
) -> npt.NDArray[np.int64]:
    """``pickup_eta_s`` for an array of straight-line distances (one speed lookup for the lot)."""
    distances = np.asarray(great_circle_m, dtype=np.float64)
    if distances.size and not (np.all(np.isfinite(distances)) and distances.min() >= 0):
        raise ValueError("every distance must be finite and >= 0")
    seconds = parameters.pickup_overhead_s + distances * (parameters.circuity / parameters.speed_mps(at))
    # The same rounding as _whole_seconds, element-wise.
    return np.ceil(seconds - 1e-9).astype(np.int64)


def _whole_seconds(seconds: float) -> int:
    # Round up, but do not let float noise (12.000000001) cost a whole second.
    return math.ceil(seconds - 1e-9)
