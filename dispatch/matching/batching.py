"""Batched assignment: requests that arrived in one short window are matched to drivers together.

``assign_batch`` solves a linear assignment (``scipy.optimize.linear_sum_assignment``, the
Jonker-Volgenant algorithm) over the pickup-ETA matrix. A pair whose ETA is above ``max_eta_s``, not
finite, or missing is *infeasible*: it gets a cost larger than any set of feasible pickups can add up
to, so the solver first serves as many requests as possible and, among those solutions, picks the
least total pickup time; an infeasible pair the solver was forced into is reported as unassigned,
never assigned.

``assign_greedy`` is the baseline it is measured against: requests in arrival order, each taking the
nearest (smallest-ETA) free driver, which is what dispatching each request on its own does.

Both are deterministic: the same inputs in the same order give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

EtaFunction = Callable[[str, str], float | None]


@dataclass(frozen=True, slots=True)
class Assignment:
    request_id: str
    driver_id: str
    eta_s: float


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Who picks up whom; requests nobody could reach in time are listed as unassigned."""

    assignments: tuple[Assignment, ...]
    unassigned_request_ids: tuple[str, ...]
    idle_driver_ids: tuple[str, ...]

    @property
    def total_eta_s(self) -> float:
        return math.fsum(assignment.eta_s for assignment in self.assignments)

    @property
    def mean_eta_s(self) -> float | None:
        if not self.assignments:
            return None
        return self.total_eta_s / len(self.assignments)

    def driver_for(self, request_id: str) -> str | None:
        for assignment in self.assignments:
            if assignment.request_id == request_id:
                return assignment.driver_id
        return None


def eta_matrix(
    requests: Sequence[str], drivers: Sequence[str], eta: EtaFunction | npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """ETAs as a float matrix (requests x drivers); ``inf`` marks a pair with no ETA."""
    if callable(eta):
        matrix = np.full((len(requests), len(drivers)), np.inf)
        for i, request_id in enumerate(requests):
            for j, driver_id in enumerate(drivers):
                seconds = eta(request_id, driver_id)
                if seconds is not None:
                    matrix[i, j] = seconds
    else:
        matrix = np.array(eta, dtype=np.float64, copy=True)
        shape = (len(requests), len(drivers))
        if matrix.size == 0 and 0 in shape:
            matrix = matrix.reshape(shape)
        elif matrix.shape != shape:
            raise ValueError(f"the ETA matrix must have shape {shape}, got {matrix.shape}")
    matrix[np.isnan(matrix)] = np.inf
    if np.any(matrix < 0):
        raise ValueError("an ETA cannot be negative")
    return matrix


def assign_batch(
    requests: Sequence[str],
    drivers: Sequence[str],
    eta: EtaFunction | npt.ArrayLike,
    max_eta_s: float,
) -> BatchResult:
    """Serve as many requests as possible within ``max_eta_s``, with the least total pickup time.

    ``eta`` is either a function ``(request_id, driver_id) -> seconds or None`` or a matrix of shape
    ``(len(requests), len(drivers))`` (``inf``/``nan`` for no route).
    """
    _check(requests, drivers, max_eta_s)
    matrix = eta_matrix(requests, drivers, eta)
    feasible = matrix <= max_eta_s
    assignments: list[Assignment] = []
    if feasible.any():
        feasible_costs = matrix[feasible]
        # More than the largest possible feasible total, so one more pickup always beats any saving.
        infeasible_cost = (float(feasible_costs.max()) + 1.0) * (min(len(requests), len(drivers)) + 1)
        cost = np.where(feasible, matrix, infeasible_cost)
        rows, columns = linear_sum_assignment(cost)
        for i, j in zip(rows.tolist(), columns.tolist(), strict=True):
            if feasible[i, j]:
                assignments.append(Assignment(requests[i], drivers[j], float(matrix[i, j])))
    return _result(requests, drivers, assignments)


def assign_greedy(
    requests: Sequence[str],
    drivers: Sequence[str],
    eta: EtaFunction | npt.ArrayLike,
    max_eta_s: float,
) -> BatchResult:
    """Nearest-first baseline: each request in order takes the free driver with the smallest ETA."""
    _check(requests, drivers, max_eta_s)
    matrix = eta_matrix(requests, drivers, eta)
    taken = np.zeros(len(drivers), dtype=bool)
    assignments: list[Assignment] = []
    for i, request_id in enumerate(requests):
        row = np.where(taken | (matrix[i] > max_eta_s), np.inf, matrix[i])
        if row.size == 0:
            break
        j = int(np.argmin(row))  # the first of equal ETAs, so ties go to the earlier driver
        if math.isinf(row[j]):
            continue
        taken[j] = True
        assignments.append(Assignment(request_id, drivers[j], float(matrix[i, j])))
    return _result(requests, drivers, assignments)


def _check(requests: Sequence[str], drivers: Sequence[str], max_eta_s: float) -> None:
    if len(set(requests)) != len(requests):
        raise ValueError("request ids must be unique")
    if len(set(drivers)) != len(drivers):
        raise ValueError("driver ids must be unique")
    if not max_eta_s >= 0:
        raise ValueError(f"max_eta_s must be >= 0, got {max_eta_s!r}")


def _result(requests: Sequence[str], drivers: Sequence[str], assignments: list[Assignment]) -> BatchResult:
    order = {request_id: i for i, request_id in enumerate(requests)}
    assignments.sort(key=lambda assignment: order[assignment.request_id])
    served = {assignment.request_id for assignment in assignments}
    busy = {assignment.driver_id for assignment in assignments}
    return BatchResult(
        assignments=tuple(assignments),
        unassigned_request_ids=tuple(request_id for request_id in requests if request_id not in served),
        idle_driver_ids=tuple(driver_id for driver_id in drivers if driver_id not in busy),
    )
