"""Spherical helpers and the shared ETA model."""

from __future__ import annotations

import ast
import math
import pathlib
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching import geo
from dispatch.matching.eta import (
    DEFAULT_ETA_PARAMETERS,
    EtaParameters,
    GreatCircleEstimator,
    RouteEstimate,
    RouteEstimator,
    pickup_eta_s,
    pickup_eta_s_many,
)

latitudes = st.floats(-89.9, 89.9)
longitudes = st.floats(-180.0, 180.0)


def test_matching_package_never_imports_django() -> None:
    package = pathlib.Path(geo.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(
                name.split(".")[0] in {"django", "rest_framework", "channels"} for name in names
            ), source


def test_haversine_known_distances() -> None:
    # One degree of a great circle on the mean-radius sphere.
    assert geo.haversine_m(0, 0, 0, 1) == pytest.approx(math.pi * 6_371_008.8 / 180, rel=1e-12)
    assert geo.haversine_m(0, 0, 1, 0) == pytest.approx(math.pi * 6_371_008.8 / 180, rel=1e-12)
    assert geo.haversine_m(90, 0, -90, 0) == pytest.approx(math.pi * 6_371_008.8, rel=1e-12)
    # JFK to Times Square, about 21.6 km as the crow flies.
    assert geo.haversine_m(40.6413, -73.7781, 40.7580, -73.9855) == pytest.approx(21_680, rel=0.01)
    assert geo.haversine_m(-16.5, 179.9999, -16.5, -179.9999) < 25


@given(latitudes, longitudes, latitudes, longitudes)
def test_chord_and_vectorised_forms_agree_with_haversine(lat1, lng1, lat2, lng2) -> None:
    reference = geo.haversine_m(lat1, lng1, lat2, lng2)
    chord = geo.chord_sq(geo.unit_vector(lat1, lng1), geo.unit_vector(lat2, lng2))
    assert geo.chord_sq_to_metres(chord) == pytest.approx(reference, abs=1e-6 + 1e-7 * reference)
    assert geo.metres_to_chord_sq(reference) == pytest.approx(chord, rel=1e-12, abs=1e-15)
    many = geo.haversine_m_many(lat1, lng1, np.array([lat2]), np.array([lng2]))[0]
    assert many == pytest.approx(reference, abs=1e-6 + 1e-9 * reference)
    assert reference == pytest.approx(geo.haversine_m(lat2, lng2, lat1, lng1), abs=1e-6)


@given(latitudes, longitudes, st.floats(0, 360), st.floats(0, 50_000))
def test_destination_point_lands_at_the_distance_inside_the_bounding_box(lat, lng, bearing, metres) -> None:
    end_lat, end_lng = geo.destination_point(lat, lng, bearing, metres)
    assert -180 <= end_lng < 180
    assert geo.haversine_m(lat, lng, end_lat, end_lng) == pytest.approx(metres, abs=1e-3)
    box = geo.bounding_box(lat, lng, metres * (1 + 1e-9) + 1e-6)
    assert box.contains(end_lat, end_lng)


def test_bounding_box_crossing_the_antimeridian_and_reaching_a_pole() -> None:
    box = geo.bounding_box(0.0, 179.99, 5_000)
    assert box.crosses_antimeridian and box.contains(0.0, -179.99) and not box.contains(0.0, 0.0)
    polar = geo.bounding_box(89.99, 0.0, 5_000)
    assert polar.spans_all_longitudes and polar.max_lat == 90.0
    with pytest.raises(ValueError):
        geo.bounding_box(0, 0, -1)


def test_equirectangular_is_close_to_haversine_in_a_city() -> None:
    exact = geo.haversine_m(40.70, -74.01, 40.78, -73.95)
    assert geo.equirectangular_m(40.70, -74.01, 40.78, -73.95) == pytest.approx(exact, rel=1e-3)


def test_default_parameters_describe_a_dense_city() -> None:
    params = DEFAULT_ETA_PARAMETERS
    assert params.circuity == 1.3
    assert len(params.speed_profile_kmh) == 24
    assert max(params.speed_profile_kmh) == pytest.approx(35, abs=1)
    rush = [params.speed_profile_kmh[hour] for hour in (8, 17)]
    assert all(14 <= speed <= 18 for speed in rush)
    assert params.speed_profile_kmh[3] > 2 * params.speed_profile_kmh[8]


def test_route_estimate_is_great_circle_times_circuity_at_the_local_hour() -> None:
    estimator = GreatCircleEstimator()
    assert isinstance(estimator, RouteEstimator)
    origin, destination = (40.7580, -73.9855), (40.7061, -74.0087)
    straight = geo.haversine_m(*origin, *destination)
    # 08:30 in New York is 13:30 UTC in November: morning peak at 14 km/h.
    rush = estimator.estimate(origin, destination, datetime(2026, 11, 20, 13, 30, tzinfo=UTC))
    assert rush == RouteEstimate(
        distance_m=round(straight * 1.3), duration_s=math.ceil(straight * 1.3 / (14 / 3.6))
    )
    night = estimator.estimate(origin, destination, datetime(2026, 11, 20, 3, 10))  # naive: local already
    assert night.distance_m == rush.distance_m
    assert night.duration_s == math.ceil(straight * 1.3 / (35 / 3.6))
    assert night.duration_s < rush.duration_s / 2
    same_instant = datetime(2026, 11, 20, 8, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert estimator.estimate(origin, destination, same_instant) == rush


def test_zero_length_route_and_custom_parameters() -> None:
    estimator = GreatCircleEstimator(
        EtaParameters(circuity=1.0, speed_profile_kmh=(36.0,) * 24, timezone="UTC")
    )
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert estimator.estimate((1.0, 1.0), (1.0, 1.0), at) == RouteEstimate(0, 0)
    one_km_east = geo.destination_point(1.0, 1.0, 90, 1_000)
    assert estimator.estimate((1.0, 1.0), one_km_east, at) == RouteEstimate(1_000, 100)


def test_pickup_eta_adds_the_overhead_and_the_bulk_path_agrees() -> None:
    at = datetime(2026, 11, 20, 17, 15)  # local evening peak, 14 km/h
    assert pickup_eta_s(0.0, at=at) == 30
    single = [pickup_eta_s(metres, at=at) for metres in (0.0, 10.0, 999.5, 4_321.0)]
    assert single[2] == math.ceil(30 + 999.5 * 1.3 / (14 / 3.6))
    assert pickup_eta_s_many([0.0, 10.0, 999.5, 4_321.0], at=at).tolist() == single
    estimator = GreatCircleEstimator()
    lats = np.array([40.75, 40.76, 40.70])
    lngs = np.array([-73.98, -73.99, -74.0])
    bulk = estimator.pickup_eta_s_many(lats, lngs, (40.7580, -73.9855), at)
    expected = [
        estimator.pickup_eta_s(geo.haversine_m(40.7580, -73.9855, a, b), at)
        for a, b in zip(lats, lngs, strict=True)
    ]
    assert bulk.tolist() == expected
    assert pickup_eta_s_many([], at=at).tolist() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"circuity": 0.9},
        {"circuity": math.nan},
        {"speed_profile_kmh": (20.0,) * 23},
        {"speed_profile_kmh": (20.0,) * 23 + (0.0,)},
        {"pickup_overhead_s": -1.0},
        {"timezone": "Mars/Olympus_Mons"},
    ],
)
def test_parameters_are_validated(kwargs) -> None:
    with pytest.raises(ValueError):
        EtaParameters(**kwargs)


def test_bad_inputs_are_rejected() -> None:
    at = datetime(2026, 1, 1)
    with pytest.raises(ValueError):
        GreatCircleEstimator().estimate((91.0, 0.0), (0.0, 0.0), at)
    with pytest.raises(ValueError):
        pickup_eta_s(-1.0, at=at)
    with pytest.raises(ValueError):
        pickup_eta_s_many([1.0, math.inf], at=at)


@settings(max_examples=50)
@given(st.floats(0, 30_000), st.floats(0, 30_000), st.integers(0, 23))
def test_eta_grows_with_distance(a, b, hour) -> None:
    at = datetime(2026, 6, 1, hour)
    near, far = sorted((a, b))
    assert pickup_eta_s(near, at=at) <= pickup_eta_s(far, at=at)


@settings(max_examples=50)
@given(st.lists(st.floats(0, 50_000), max_size=20), st.integers(0, 23))
def test_bulk_and_single_pickup_etas_agree_exactly(distances, hour) -> None:
    at = datetime(2026, 6, 1, hour)
    assert pickup_eta_s_many(distances, at=at).tolist() == [pickup_eta_s(d, at=at) for d in distances]
