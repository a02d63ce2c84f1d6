"""Batched matching: several trips that arrived in one window are assigned together so the total pickup
time is least (a linear assignment), instead of first come, first served.

The pure solver is dispatch/matching/batching.py; this adapter turns dispatch candidates into its ETA
matrix and back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dispatch.matching.batching import assign_batch as solve
from dispatch.services.dispatching import Candidate

_NO_LIMIT_S = 1e9


def assign_batch(
    candidate_lists: Sequence[Sequence[Candidate]], *, max_eta_s: float | None = None
) -> list[str | None]:
    """For each trip, the driver the minimum-total-ETA assignment gives it (None when none is left)."""
    drivers = sorted({c.driver_id for candidates in candidate_lists for c in candidates})
    if not drivers:
        return [None] * len(candidate_lists)
    requests = [str(i) for i in range(len(candidate_lists))]
    column = {driver: j for j, driver in enumerate(drivers)}
    matrix = [[math.inf] * len(drivers) for _ in candidate_lists]
    for i, candidates in enumerate(candidate_lists):
        for candidate in candidates:
            matrix[i][column[candidate.driver_id]] = float(candidate.eta_s)
    # A finite limit: the solver counts an infinite ETA as feasible when the limit is infinite too.
    result = solve(requests, drivers, matrix, max_eta_s if max_eta_s is not None else _NO_LIMIT_S)
    return [result.driver_for(request) for request in requests]
