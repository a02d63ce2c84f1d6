"""Spherical geometry for dispatch: distances in metres, bounding boxes, a fast local metric.

Everything here works on WGS 84 latitude/longitude in degrees and treats the Earth as a sphere of mean
radius ``EARTH_RADIUS_M`` (IUGG mean radius R1). For pickup distances of a few kilometres the spherical
error against the ellipsoid is a fraction of a percent, far below the error of "straight line vs road".

Two equivalent exact metrics are provided:

* ``haversine_m`` is the reference great-circle distance, used by tests and by the ETA model.
* the *chord* between unit vectors (``unit_vector`` / ``chord_sq``) is monotonic in the great-circle
  angle (``chord = 2 sin(angle / 2)``) and costs no trigonometry per comparison, so the spatial index
  ranks by squared chord and only converts the winners to metres (``chord_sq_to_metres``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8
HALF_CIRCUMFERENCE_M = math.pi * EARTH_RADIUS_M


def validate_lat_lng(lat: object, lng: object) -> None:
    """Raise ``ValueError`` unless ``lat`` is in [-90, 90] and ``lng`` in [-180, 180], both real numbers."""
    coerce_lat_lng(lat, lng)


def coerce_lat_lng(lat: object, lng: object) -> tuple[float, float]:
    """``(lat, lng)`` as floats after the checks of ``validate_lat_lng``.

    Any real number is accepted (int, float, Decimal, numpy scalars); bools, strings and NaN are not.
    """
    return _as_float(lat, "latitude", 90.0), _as_float(lng, "longitude", 180.0)


def _as_float(value: object, name: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    # NaN fails the comparison, so it is rejected here too.
    if not -limit <= number <= limit:
        raise ValueError(f"{name} must be within [{-limit:g}, {limit:g}], got {value!r}")
    return number


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = (phi2 - phi1) * 0.5
    half_dlambda = math.radians(lng2 - lng1) * 0.5
    sin_dphi = math.sin(half_dphi)
    sin_dlambda = math.sin(half_dlambda)
    h = sin_dphi * sin_dphi + math.cos(phi1) * math.cos(phi2) * sin_dlambda * sin_dlambda
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def haversine_m_many(
    lat: float, lng: float, lats: npt.ArrayLike, lngs: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Vectorised ``haversine_m`` from one point to arrays of points (degrees in, metres out)."""
    lats_rad = np.radians(np.asarray(lats, dtype=np.float64))
    lngs_rad = np.radians(np.asarray(lngs, dtype=np.float64))
    phi = math.radians(lat)
    sin_dphi = np.sin((lats_rad - phi) * 0.5)
    sin_dlambda = np.sin((lngs_rad - math.radians(lng)) * 0.5)
    h = sin_dphi * sin_dphi + math.cos(phi) * np.cos(lats_rad) * sin_dlambda * sin_dlambda
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, h)))


def equirectangular_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Fast local approximation of the distance in metres (flat projection at the mean latitude).

    Good to well under 0.1 % for points a few kilometres apart away from the poles; use it for
    heuristics only (never where exactness matters: the index uses exact bounds).
    """
    dlng = (lng2 - lng1 + 180.0) % 360.0 - 180.0
    x = math.radians(dlng) * math.cos(math.radians((lat1 + lat2) * 0.5))
    y = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(x, y)


def destination_point(lat: float, lng: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point reached from (lat, lng) after ``distance_m`` along the initial ``bearing_deg`` (0 = north).

    Longitude is normalised to [-180, 180).
    """
    delta = distance_m / EARTH_RADIUS_M
    theta = math.radians(bearing_deg)
    phi1 = math.radians(lat)
    lambda1 = math.radians(lng)
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * sin_phi2,
    )
    lng2 = (math.degrees(lambda2) + 180.0) % 360.0 - 180.0
    return math.degrees(phi2), lng2


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A latitude/longitude box in degrees. ``min_lng > max_lng`` means it crosses the antimeridian."""

    min_lat: float
    min_lng: float
    max_lat: float
    max_lng: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.min_lng > self.max_lng

    @property
    def spans_all_longitudes(self) -> bool:
        return self.min_lng == -180.0 and self.max_lng == 180.0

    def contains(self, lat: float, lng: float) -> bool:
        if not self.min_lat <= lat <= self.max_lat:
            return False
        if self.crosses_antimeridian:
            return lng >= self.min_lng or lng <= self.max_lng
        return self.min_lng <= lng <= self.max_lng


def bounding_box(lat: float, lng: float, radius_m: float) -> BoundingBox:
    """The smallest lat/lng box (degrees) holding every point within ``radius_m`` of (lat, lng).

    Exact on the sphere: the longitude half-width is ``asin(sin(r) / cos(lat))``, which is wider than the
    naive ``r / cos(lat)`` away from the equator. A circle that reaches a pole spans all longitudes.
    """
    if radius_m < 0:
        raise ValueError("radius_m must not be negative")
    angular = radius_m / EARTH_RADIUS_M
    phi = math.radians(lat)
    min_phi = phi - angular
    max_phi = phi + angular
    if min_phi <= -math.pi / 2 or max_phi >= math.pi / 2 or angular >= math.pi / 2:
        return BoundingBox(max(-90.0, math.degrees(min_phi)), -180.0, min(90.0, math.degrees(max_phi)), 180.0)
    ratio = math.sin(angular) / math.cos(phi)
    if ratio >= 1.0:
        return BoundingBox(math.degrees(min_phi), -180.0, math.degrees(max_phi), 180.0)
    half_width = math.degrees(math.asin(ratio))
    min_lng = lng - half_width
    max_lng = lng + half_width
    if min_lng < -180.0:
        min_lng += 360.0
    if max_lng > 180.0:
        max_lng -= 360.0
    return BoundingBox(math.degrees(min_phi), min_lng, math.degrees(max_phi), max_lng)


def unit_vector(lat: float, lng: float) -> tuple[float, float, float]:
    """The point as a unit vector in Earth-centred coordinates."""
    phi = math.radians(lat)
    lam = math.radians(lng)
    cos_phi = math.cos(phi)
    return cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)


def chord_sq(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Squared straight-line distance between two unit vectors (0 to 4), monotonic in great-circle angle."""
    dx = a[0] - b[0]
    dy = a[1] - b[1]
    dz = a[2] - b[2]
    return dx * dx + dy * dy + dz * dz


def chord_sq_to_metres(squared_chord: float) -> float:
    """Great-circle metres for a squared chord between unit vectors."""
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(squared_chord) * 0.5))


def metres_to_chord_sq(distance_m: float) -> float:
    """Squared chord between unit vectors that are ``distance_m`` apart along the great circle."""
    if distance_m >= HALF_CIRCUMFERENCE_M:
        return 4.0
    chord = 2.0 * math.sin(distance_m / (2.0 * EARTH_RADIUS_M))
    return chord * chord
