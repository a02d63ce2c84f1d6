"""DriverIndex against a brute-force haversine scan: properties, a state machine, and edge cases."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import dispatch.matching.index as index_module
from dispatch.matching.geo import destination_point, haversine_m, haversine_m_many
from dispatch.matching.index import DriverIndex


@pytest.fixture(autouse=True)
def _fast_password_hashing():
    """Stands in for tests/dispatch/conftest.py's Django-only autouse fixture: these tests are pure."""


def tolerance(metres: float) -> float:
    # asin near the antipode loses about sqrt(machine epsilon) of relative precision.
    return 1e-6 + 1e-7 * metres


def brute_force(positions: dict[str, tuple[float, float]], lat: float, lng: float, radius: float):
    distances = [
        (haversine_m(lat, lng, p_lat, p_lng), driver_id) for driver_id, (p_lat, p_lng) in positions.items()
    ]
    return sorted((d, driver_id) for d, driver_id in distances if d <= radius + tolerance(radius))


def assert_exact(index: DriverIndex, positions, lat: float, lng: float, k: int, radius: float) -> None:
    got = index.nearest(lat, lng, k, radius)
    loose = brute_force(positions, lat, lng, radius)
    strict = [(d, i) for d, i in loose if d <= radius - tolerance(radius)]
    assert min(k, len(strict)) <= len(got) <= min(k, len(loose)), (got, loose[:k])
    assert len({driver_id for driver_id, _ in got}) == len(got)
    assert got == sorted(got, key=lambda pair: (pair[1], pair[0]))
    for rank, (driver_id, metres) in enumerate(got):
        p_lat, p_lng = positions[driver_id]
        truth = haversine_m(lat, lng, p_lat, p_lng)
        assert metres <= radius
        assert abs(metres - truth) <= tolerance(truth)
        expected_metres, expected_id = loose[rank]
        assert abs(metres - expected_metres) <= tolerance(metres)
        if driver_id != expected_id:
            # Only a (near-)tie may swap two drivers.
            assert abs(truth - expected_metres) <= tolerance(truth)


def check_structure(index: DriverIndex) -> None:
    """Counts add up, every driver sits in the leaf the index thinks, inside that leaf's box."""
    seen = 0
    for key, base in index._base.items():
        assert base.key == key and base.parent is None and base.count > 0
        stack = [base]
        while stack:
            cell = stack.pop()
            if cell.children is not None:
                assert cell.ids is None
                assert cell.count == sum(child.count for child in cell.children)
                for child in cell.children:
                    assert child.parent is cell
                    stack.append(child)
                continue
            assert cell.count == len(cell.ids) == len(cell.refs) == len(cell.coords) // 5
            for slot, driver_id in enumerate(cell.ids):
                seen += 1
                placement = index._placement[driver_id]
                assert cell.refs[slot] is placement
                assert placement.leaf is cell and placement.slot == slot
                lat, lng = cell.coords[5 * slot + 3], cell.coords[5 * slot + 4]
                lng = -180.0 if lng == 180.0 else lng
                assert cell.lat_lo <= lat <= cell.lat_hi and cell.lng_lo <= lng <= cell.lng_hi
    assert seen == len(index)
    assert sum(group.count for group in index._coarse.values()) == len(index._base)


HOT_SPOTS = [
    (40.6413, -73.7781),  # an airport
    (40.7580, -73.9855),  # midtown
    (0.0, 179.99995),  # on the antimeridian
    (89.99995, 12.0),  # at the North Pole
    (-33.8688, 151.2093),
]


@st.composite
def places(draw) -> tuple[float, float]:
    if draw(st.booleans()):
        lat, lng = draw(st.sampled_from(HOT_SPOTS))
        # Offsets on a coarse lattice make exact duplicates common.
        d_lat = draw(st.integers(-20, 20)) * 2e-5
        d_lng = draw(st.integers(-20, 20)) * 2e-5
        lat = min(90.0, max(-90.0, lat + d_lat))
        lng = lng + d_lng
        if lng > 180.0:
            lng -= 360.0
        if lng < -180.0:
            lng += 360.0
        return lat, lng
    lat = draw(st.floats(-90.0, 90.0, allow_nan=False))
    lng = draw(st.floats(-180.0, 180.0, allow_nan=False))
    return lat, lng


radii = st.sampled_from([0.0, 1.0, 50.0, 500.0, 5_000.0, 300_000.0, 2.1e7]) | st.floats(0.0, 20_000.0)
driver_ids = st.sampled_from([f"d{n:02d}" for n in range(40)])


class IndexMachine(RuleBasedStateMachine):
    """Random inserts, moves, removals and queries; a dict of positions is the model."""

    leaf_capacity = index_module._LEAF_CAPACITY
    merge_at = index_module._MERGE_AT_OR_BELOW

    def __init__(self) -> None:
        super().__init__()
        self.saved = (index_module._LEAF_CAPACITY, index_module._MERGE_AT_OR_BELOW)
        index_module._LEAF_CAPACITY = self.leaf_capacity
        index_module._MERGE_AT_OR_BELOW = self.merge_at
        self.index = DriverIndex()
        self.positions: dict[str, tuple[float, float]] = {}

    def teardown(self) -> None:
        index_module._LEAF_CAPACITY, index_module._MERGE_AT_OR_BELOW = self.saved

    @initialize(crowd=st.integers(0, 12), spot=st.sampled_from(HOT_SPOTS))
    def crowd_a_spot(self, crowd: int, spot: tuple[float, float]) -> None:
        for n in range(crowd):
            self.update(f"c{n:02d}", spot)

    @rule(driver_id=driver_ids, place=places())
    def update(self, driver_id: str, place: tuple[float, float]) -> None:
        self.index.update(driver_id, *place)
        self.positions[driver_id] = place

    @precondition(lambda self: self.positions)
    @rule(data=st.data(), metres=st.floats(0.0, 80.0), bearing=st.floats(0.0, 360.0))
    def drive_a_little(self, data, metres: float, bearing: float) -> None:
        driver_id = data.draw(st.sampled_from(sorted(self.positions)))
        lat, lng = destination_point(*self.positions[driver_id], bearing, metres)
        self.update(driver_id, (lat, lng))

    @rule(driver_id=driver_ids)
    def remove(self, driver_id: str) -> None:
        self.index.remove(driver_id)
        self.positions.pop(driver_id, None)

    @rule(place=places(), k=st.integers(1, 12), radius=radii)
    def query(self, place: tuple[float, float], k: int, radius: float) -> None:
        assert_exact(self.index, self.positions, place[0], place[1], k, radius)

    @precondition(lambda self: self.positions)
    @rule(data=st.data(), k=st.integers(1, 12), radius=radii)
    def query_at_a_driver(self, data, k: int, radius: float) -> None:
        lat, lng = self.positions[data.draw(st.sampled_from(sorted(self.positions)))]
        assert_exact(self.index, self.positions, lat, lng, k, radius)

    @invariant()
    def same_population(self) -> None:
        assert len(self.index) == len(self.positions)
        for driver_id, place in self.positions.items():
            assert driver_id in self.index
            assert self.index.position(driver_id) == place

    @invariant()
    def consistent_structure(self) -> None:
        check_structure(self.index)


class TinyLeavesMachine(IndexMachine):
    """The same, with leaves of three drivers so splits and merges happen all the time."""

    leaf_capacity = 3
    merge_at = 1


machine_settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = machine_settings
TestTinyLeavesMachine = TinyLeavesMachine.TestCase
TestTinyLeavesMachine.settings = machine_settings


def city_points(rng: np.random.Generator, count: int, clustered: bool) -> tuple[np.ndarray, np.ndarray]:
    lats = 40.73 + rng.uniform(-0.135, 0.135, count)
    lngs = -73.95 + rng.uniform(-0.18, 0.18, count)
    if clustered:
        hot = count * 3 // 5
        centres = rng.integers(0, 2, hot)
        lats[:hot] = np.where(centres == 0, 40.6413, 40.7580) + rng.normal(0, 0.002, hot)
        lngs[:hot] = np.where(centres == 0, -73.7781, -73.9855) + rng.normal(0, 0.003, hot)
    return lats, lngs


@pytest.mark.parametrize("clustered", [False, True], ids=["spread", "clustered"])
def test_matches_numpy_brute_force_on_a_city(clustered: bool) -> None:
    rng = np.random.default_rng(7)
    lats, lngs = city_points(rng, 8_000, clustered)
    ids = [f"drv{n:05d}" for n in range(len(lats))]
    index = DriverIndex()
    for driver_id, lat, lng in zip(ids, lats.tolist(), lngs.tolist(), strict=True):
        index.update(driver_id, lat, lng)
    check_structure(index)
    q_lats, q_lngs = city_points(rng, 120, clustered)
    for lat, lng, k, radius in zip(
        q_lats.tolist(),
        q_lngs.tolist(),
        rng.integers(1, 20, 120).tolist(),
        [5_000.0, 300.0, 40.0] * 40,
        strict=True,
    ):
        distances = haversine_m_many(lat, lng, lats, lngs)
        order = np.lexsort((np.array(ids), distances))
        expected = [(ids[j], float(distances[j])) for j in order[:k] if distances[j] <= radius]
        got = index.nearest(lat, lng, k, radius)
        assert [driver_id for driver_id, _ in got] == [driver_id for driver_id, _ in expected]
        assert np.allclose([m for _, m in got], [m for _, m in expected], rtol=0, atol=1e-6)


def test_crowd_that_forms_and_disperses_splits_and_merges() -> None:
    index = DriverIndex()
    rng = random.Random(3)
    spot = (40.6413, -73.7781)
    positions = {}
    for n in range(2_000):
        place = (spot[0] + rng.gauss(0, 2e-4), spot[1] + rng.gauss(0, 2e-4))
        index.update(f"d{n}", *place)
        positions[f"d{n}"] = place
    check_structure(index)
    deepest = max(leaf.depth for leaf in (placement.leaf for placement in index._placement.values()))
    assert deepest >= 3  # the hot spot got small cells
    assert (
        max(len(leaf.ids) for leaf in (placement.leaf for placement in index._placement.values()))
        <= index_module._LEAF_CAPACITY
    )
    assert_exact(index, positions, *spot, 8, 5_000)
    for n in range(2_000):  # everyone drives off across the city
        place = (40.73 + rng.uniform(-0.1, 0.1), -73.95 + rng.uniform(-0.1, 0.1))
        index.update(f"d{n}", *place)
        positions[f"d{n}"] = place
    check_structure(index)
    assert (
        max(leaf.depth for leaf in (placement.leaf for placement in index._placement.values())) <= 1
    )  # the crowd's quadtree collapsed
    assert_exact(index, positions, *spot, 8, 50_000)
    for n in range(0, 2_000, 2):
        index.remove(f"d{n}")
        del positions[f"d{n}"]
    check_structure(index)
    assert_exact(index, positions, 40.73, -73.95, 20, 5_000)


def test_empty_index_and_k_larger_than_population() -> None:
    index = DriverIndex()
    assert index.nearest(40.7, -74.0, 5, 1_000) == []
    index.update("a", 40.7, -74.0)
    index.update("b", 40.701, -74.0)
    index.update("far", 41.7, -74.0)
    got = index.nearest(40.7, -74.0, 50, 5_000)
    assert [driver_id for driver_id, _ in got] == ["a", "b"]
    assert got[0][1] == 0.0
    assert got[1][1] == pytest.approx(haversine_m(40.7, -74.0, 40.701, -74.0), abs=1e-6)


def test_radius_zero_finds_only_drivers_exactly_there_in_id_order() -> None:
    index = DriverIndex()
    for driver_id in ["z", "m", "a", "q"]:
        index.update(driver_id, 51.5, -0.12)
    index.update("next door", 51.50001, -0.12)
    assert index.nearest(51.5, -0.12, 10, 0) == [("a", 0.0), ("m", 0.0), ("q", 0.0), ("z", 0.0)]
    assert index.nearest(51.5, -0.12, 2, 0) == [("a", 0.0), ("m", 0.0)]


def test_many_drivers_at_one_point_and_ties_by_id() -> None:
    index = DriverIndex()
    names = [f"d{n:03d}" for n in range(200)]
    for driver_id in reversed(names):
        index.update(driver_id, -33.8688, 151.2093)
    check_structure(index)
    got = index.nearest(-33.8688, 151.2094, 7, 100)
    assert [driver_id for driver_id, _ in got] == names[:7]
    assert len({metres for _, metres in got}) == 1


def test_remove_and_move() -> None:
    index = DriverIndex()
    index.remove("ghost")  # unknown id: no-op
    index.update("a", 40.0, -74.0)
    index.update("b", 40.001, -74.0)
    index.update("a", 41.0, -74.0)  # moved away
    assert index.position("a") == (41.0, -74.0)
    assert [driver_id for driver_id, _ in index.nearest(40.0, -74.0, 1, 10_000)] == ["b"]
    index.remove("b")
    index.remove("b")
    assert "b" not in index and len(index) == 1
    assert index.position("b") is None
    assert index.nearest(40.0, -74.0, 3, 10_000) == []
    assert [driver_id for driver_id, _ in index.nearest(40.0, -74.0, 3, 200_000)] == ["a"]


def test_antimeridian_and_lng_180() -> None:
    index = DriverIndex()
    index.update("east", -16.5, 179.9999)
    index.update("west", -16.5, -179.9999)
    index.update("dateline", -16.5, 180.0)
    got = dict(index.nearest(-16.5, -179.99995, 3, 100))
    assert set(got) == {"east", "west", "dateline"}
    assert got["east"] == pytest.approx(haversine_m(-16.5, -179.99995, -16.5, 179.9999), abs=1e-6)
    assert got["east"] < 20
    assert index.position("dateline") == (-16.5, 180.0)
    assert [driver_id for driver_id, _ in index.nearest(-16.5, 180.0, 1, 1)] == ["dateline"]


def test_poles() -> None:
    index = DriverIndex()
    positions = {f"n{lng}": (89.9999, float(lng)) for lng in range(-180, 180, 15)}
    positions["pole"] = (90.0, 0.0)
    positions["south"] = (-90.0, 45.0)
    for driver_id, place in positions.items():
        index.update(driver_id, *place)
    check_structure(index)
    for lng in (-180.0, -90.0, 0.0, 33.0, 180.0):
        assert_exact(index, positions, 90.0, lng, 30, 50)
        assert_exact(index, positions, 89.99995, lng, 5, 30)
    assert [driver_id for driver_id, _ in index.nearest(-89.9, 0.0, 3, 20_000)] == ["south"]


def test_huge_radius_reaches_the_antipode() -> None:
    index = DriverIndex()
    index.update("here", 10.0, 10.0)
    index.update("antipode", -10.0, -170.0)
    got = index.nearest(10.0, 10.0, 5, 2.1e7)
    assert [driver_id for driver_id, _ in got] == ["here", "antipode"]
    assert got[1][1] == pytest.approx(math.pi * 6_371_008.8, rel=1e-6)


@pytest.mark.parametrize(
    ("lat", "lng"),
    [(90.5, 0.0), (-91.0, 0.0), (0.0, 180.01), (0.0, -181.0), (math.nan, 0.0), (0.0, math.inf), ("1", 0.0)],
)
def test_rejects_bad_coordinates(lat, lng) -> None:
    index = DriverIndex()
    with pytest.raises(ValueError):
        index.update("a", lat, lng)
    with pytest.raises(ValueError):
        index.nearest(lat, lng, 1, 100)
    assert len(index) == 0


@pytest.mark.parametrize(
    ("k", "radius"), [(0, 100.0), (-1, 100.0), (1.5, 100.0), (True, 100.0), (1, -0.1), (1, math.nan)]
)
def test_rejects_bad_k_and_radius(k, radius) -> None:
    index = DriverIndex()
    index.update("a", 0.0, 0.0)
    with pytest.raises(ValueError):
        index.nearest(0.0, 0.0, k, radius)


def test_accepts_any_real_number_type() -> None:
    from decimal import Decimal

    index = DriverIndex()
    index.update("decimal", Decimal("40.75"), Decimal("-73.98"))
    index.update("numpy", np.float64(40.7501), np.float32(-73.98))
    index.update("int", 40, -74)
    assert index.position("decimal") == (40.75, -73.98)
    got = index.nearest(Decimal("40.75"), np.float64(-73.98), np.int64(2), Decimal("500"))
    assert [driver_id for driver_id, _ in got] == ["decimal", "numpy"]
    with pytest.raises(ValueError):
        index.nearest(40.75, -73.98, 1, Decimal("NaN"))


def test_rejects_non_string_ids() -> None:
    with pytest.raises(ValueError):
        DriverIndex().update(7, 0.0, 0.0)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    points=st.lists(places(), min_size=0, max_size=60),
    query=places(),
    k=st.integers(1, 70),
    radius=radii,
)
def test_bulk_loaded_index_is_exact(points, query, k, radius) -> None:
    index = DriverIndex()
    positions = {}
    for n, place in enumerate(points):
        index.update(f"p{n}", *place)
        positions[f"p{n}"] = place
    assert_exact(index, positions, query[0], query[1], k, radius)
