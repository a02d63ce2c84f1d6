"""Batched linear assignment against the nearest-first baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching.batching import assign_batch, assign_greedy


def test_batch_fixes_the_classic_greedy_trap() -> None:
    # Greedy gives r1 its nearest driver (d1), leaving r2 with a far one; swapping saves time overall.
    requests, drivers = ["r1", "r2"], ["d1", "d2"]
    etas = [[100, 150], [110, 900]]
    greedy = assign_greedy(requests, drivers, etas, max_eta_s=1_000)
    batch = assign_batch(requests, drivers, etas, max_eta_s=1_000)
    assert greedy.total_eta_s == 1_000
    assert batch.total_eta_s == 260
    assert batch.driver_for("r1") == "d2" and batch.driver_for("r2") == "d1"
    assert batch.unassigned_request_ids == () and batch.idle_driver_ids == ()
    assert batch.mean_eta_s == 130


def test_infeasible_pairs_are_never_assigned_and_more_riders_are_served() -> None:
    requests, drivers = ["r1", "r2", "r3"], ["d1", "d2"]
    etas = np.array([[100, 200], [90, math.inf], [np.nan, 2_000]])
    batch = assign_batch(requests, drivers, etas, max_eta_s=600)
    assert {(a.request_id, a.driver_id) for a in batch.assignments} == {("r1", "d2"), ("r2", "d1")}
    assert batch.unassigned_request_ids == ("r3",)
    greedy = assign_greedy(requests, drivers, etas, max_eta_s=600)
    assert {(a.request_id, a.driver_id) for a in greedy.assignments} == {("r1", "d1")}
    assert greedy.unassigned_request_ids == ("r2", "r3")


def test_eta_function_and_empty_inputs() -> None:
    positions = {"r1": 0.0, "r2": 10.0, "d1": 1.0, "d2": 9.0, "d3": 50.0}

    def eta(request_id: str, driver_id: str) -> float | None:
        gap = abs(positions[request_id] - positions[driver_id])
        return None if gap > 20 else gap * 60

    batch = assign_batch(["r1", "r2"], ["d1", "d2", "d3"], eta, max_eta_s=3_600)
    assert [(a.request_id, a.driver_id, a.eta_s) for a in batch.assignments] == [
        ("r1", "d1", 60.0),
        ("r2", "d2", 60.0),
    ]
    assert batch.idle_driver_ids == ("d3",)
    assert assign_batch([], ["d1"], eta, 100).assignments == ()
    nobody = assign_batch(["r1"], [], eta, 100)
    assert nobody.unassigned_request_ids == ("r1",) and nobody.mean_eta_s is None
    assert assign_greedy(["r1"], [], np.zeros((1, 0)), 100).unassigned_request_ids == ("r1",)


def test_invalid_input() -> None:
    with pytest.raises(ValueError):
        assign_batch(["r", "r"], ["d"], [[1], [2]], 10)
    with pytest.raises(ValueError):
        assign_batch(["r"], ["d", "d"], [[1, 2]], 10)
    with pytest.raises(ValueError):
        assign_batch(["r1", "r2"], ["d1", "d2", "d3"], np.zeros((3, 2)), 10)
    with pytest.raises(ValueError):
        assign_greedy(["r"], ["d"], [[-1]], 10)
    with pytest.raises(ValueError):
        assign_batch(["r"], ["d"], [[1]], -1)


instances = st.integers(0, 7).flatmap(
    lambda rows: st.integers(0, 7).flatmap(
        lambda columns: st.lists(
            st.lists(st.one_of(st.integers(0, 1_500), st.just(math.inf)), min_size=columns, max_size=columns),
            min_size=rows,
            max_size=rows,
        ).map(lambda matrix, rows=rows, columns=columns: (rows, columns, matrix))
    )
)


@settings(max_examples=120, deadline=None)
@given(instances, st.integers(0, 1_500))
def test_batch_serves_at_least_as_many_and_never_costs_more_than_greedy(instance, max_eta) -> None:
    rows, columns, matrix = instance
    requests = [f"r{i}" for i in range(rows)]
    drivers = [f"d{j}" for j in range(columns)]
    etas = np.array(matrix, dtype=float).reshape(rows, columns)
    batch = assign_batch(requests, drivers, etas, max_eta)
    greedy = assign_greedy(requests, drivers, etas, max_eta)
    for result in (batch, greedy):
        used_requests = [a.request_id for a in result.assignments]
        used_drivers = [a.driver_id for a in result.assignments]
        assert len(set(used_requests)) == len(used_requests) and len(set(used_drivers)) == len(used_drivers)
        for a in result.assignments:
            eta = etas[requests.index(a.request_id), drivers.index(a.driver_id)]
            assert eta <= max_eta and a.eta_s == eta  # infeasible pairs never assigned
        assert set(result.unassigned_request_ids) == set(requests) - set(used_requests)
        assert set(result.idle_driver_ids) == set(drivers) - set(used_drivers)
    assert len(batch.assignments) >= len(greedy.assignments)
    if len(batch.assignments) == len(greedy.assignments):
        assert batch.total_eta_s <= greedy.total_eta_s + 1e-9
    # Deterministic.
    assert assign_batch(requests, drivers, etas, max_eta) == batch


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.randoms(use_true_random=False))
def test_batch_total_is_the_brute_force_optimum(rows, columns, rnd) -> None:
    etas = np.array([[rnd.randint(0, 999) for _ in range(columns)] for _ in range(rows)], dtype=float)
    batch = assign_batch([f"r{i}" for i in range(rows)], [f"d{j}" for j in range(columns)], etas, 10_000)
    from itertools import permutations

    best = min(
        sum(etas[i, j] for i, j in zip(range(rows), perm, strict=False))
        if rows <= columns
        else sum(etas[i, j] for i, j in zip(perm, range(columns), strict=False))
        for perm in permutations(range(max(rows, columns)), min(rows, columns))
    )
    assert len(batch.assignments) == min(rows, columns)
    assert batch.total_eta_s == pytest.approx(best)
