"""The road benchmark's measurements (infra/benchmarks/bench_roads.py) on a tiny sample of the Helsinki
extract: each gives numbers of the right kind and size, so `make bench-roads` cannot print nonsense
unnoticed. The figures themselves are the benchmark's to print; nothing here is timed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatch.roads.engine import TileSet
from dispatch.roads.routers import ModelRouter, ResilientRouter, ValhallaRouter
from infra.benchmarks import bench_roads
from tests.roads.helsinki import AT
from tests.roads_fixtures import helsinki_pbf


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2026)


@pytest.fixture
def points(helsinki_tiles: TileSet) -> bench_roads.RoadPoints:
    return bench_roads.road_points(helsinki_tiles)


@pytest.fixture
def road(in_process: ValhallaRouter, model: ModelRouter) -> ResilientRouter:
    return ResilientRouter(in_process, model)


def test_road_points_are_the_extracts_street_vertices(helsinki_tiles, points):
    west, south, east, north = helsinki_tiles.manifest()["bbox"]
    assert len(points) > 1000  # 2,158 nodes on the extract's drivable ways
    assert south <= points.lats.min() and points.lats.max() <= north
    assert west <= points.lngs.min() and points.lngs.max() <= east
    assert len(set(zip(points.lats, points.lngs, strict=True))) == len(points)


def test_pair_accuracy_compares_the_model_with_valhallas_routes(points, model, in_process, rng):
    pairs = bench_roads.sample_pairs(points, 20, rng)
    assert all(bench_roads.haversine_m(*a, *b) >= bench_roads.MIN_PAIR_M for a, b in pairs)

    accuracy = bench_roads.pair_accuracy(pairs, model, in_process, AT)

    assert accuracy.routed + sum(accuracy.unroutable.values()) == 20
    assert accuracy.routed >= 15  # about one pair in fifteen starts in the extract's clipped dead ends
    for summary in (accuracy.distance, accuracy.time):
        assert 0 <= summary.median_abs <= summary.p95_abs < 10
        assert -1 < summary.median_signed < 10
    # A road is never shorter than the straight line between its ends.
    assert accuracy.road_circuity_median >= 1.0
    assert 5 < accuracy.road_speed_kmh_median < 80
    assert sum(count for _, count, _, _ in accuracy.by_band) == accuracy.routed


def test_first_choice_and_k_table_rank_the_same_pools(points, model, road, rng):
    pickups = bench_roads.sample_pickups(points, 8, 12, rng, radius_m=bench_roads.CANDIDATE_RADIUS_M)
    for pickup in pickups:
        assert len(set(pickup.drivers)) == 12
        assert all(
            bench_roads.MIN_CANDIDATE_M
            <= bench_roads.haversine_m(*pickup.at, *driver)
            <= bench_roads.CANDIDATE_RADIUS_M
            for driver in pickup.drivers
        )
    pools, unanswered = bench_roads.road_pools(pickups, road, AT)
    assert sum(len(pool.drivers) for pool in pools) + unanswered == 8 * 12
    assert all(math.isfinite(eta) and eta > 0 for pool in pools for eta in pool.road_eta_s)

    choice = bench_roads.first_choice(pools, model, AT)
    assert 0 < choice.pickups <= 8
    assert 0 <= choice.share <= 1
    assert len(choice.lost_s) == choice.disagreements
    assert all(lost > 0 for lost in choice.lost_s)

    rows = bench_roads.k_table(pools, road, AT, (2, 6, 12), cost_samples=3)
    assert [row.k for row in rows] == [2, 6, 12]
    misses = [row.misses for row in rows]
    assert misses == sorted(misses, reverse=True)  # a wider k never hides the best driver more often
    assert rows[-1].misses == 0  # every driver of the pool is among the 12 nearest
    for row in rows:
        assert row.cost.calls == 3 and 0 < row.cost.wall_p50_ms <= row.cost.wall_p99_ms
        assert row.cost.cpu_mean_ms > 0
        assert all(lost > 0 for lost in row.lost_s) and row.lost_per_request_s >= 0
    assert bench_roads.recommend_k(rows) in rows

    requests = bench_roads.requests_from_pools(pools, 5, 4, rng)
    assert len(requests) == 5 and all(len(request.drivers) == 4 for request in requests)
    cost = bench_roads.ranking_cost(requests, road, AT)
    assert cost.calls == 5 and 0 < cost.wall_p50_ms <= cost.wall_p99_ms and cost.cpu_p50_ms > 0


def test_a_chained_trail_map_matches_to_about_the_length_driven(points, in_process, road, rng):
    trail = bench_roads.chained_trail(points, in_process, rng, AT, minutes=2)

    assert len(trail.fixes) == 2 * 60 // 4 + 1
    # Consecutive fixes 4 s apart: no jump a car could not make (plus the noise of both fixes).
    steps = [bench_roads.haversine_m(*a, *b) for a, b in zip(trail.fixes, trail.fixes[1:], strict=False)]
    assert max(steps) < 4 * 40 + 6 * bench_roads.TRAIL_NOISE_M
    assert trail.driven_m > 300

    result = bench_roads.match_cost([trail], road, repeats=2)
    assert result.cost.calls == 2 and result.fixes == len(trail.fixes)
    assert abs(result.relative_errors[0]) < 0.15


def test_build_times_time_a_forced_build(tmp_path):
    builds = bench_roads.build_times(helsinki_pbf(), TileSet("helsinki", tmp_path / "helsinki"), runs=1)

    assert len(builds.seconds) == 1 and builds.seconds[0] > 0
    assert builds.nodes > 1000 and builds.edges > 1000 and builds.tiles >= 1


def test_the_demo_city_is_exported_for_its_build(tmp_path):
    demo = bench_roads.export_demo_city(tmp_path / "demo.osm.pbf")

    assert demo.pbf.is_file() and demo.kilobytes >= 1
    assert demo.nodes > 100 and 0 < demo.one_way_ways <= demo.ways
    assert demo.export_s > 0
