"""Ranking dispatch candidates by the board's fairness rule, with a reason for every rank.

The rule (``FairnessRule``, set by the board through a dispatch policy version):

1. **Who can take the trip.** Drivers the caller excludes (they declined this trip, are busy, or their
   offer timed out) are removed. When the rider needs a wheelchair-accessible vehicle, only drivers
   with one remain. Drivers whose pickup ETA exceeds ``max_pickup_eta_s`` are removed: no rider waits
   that long because of fairness.
2. **Who gets it first.** Among the drivers left, take the best (smallest) pickup ETA. Every driver
   whose ETA is within ``eta_window_s`` seconds of it is *close enough*; among those the driver **idle
   longest** wins (the cooperative shares work out instead of handing it to whoever happens to sit
   nearest). Ties: smaller ETA, then shorter distance, then driver id, so the order is deterministic.
3. **Who is next.** Rank 2 is the winner of the same rule applied to everyone but rank 1, and so on.
   Offering trips down this list is therefore exactly what re-ranking after each decline would do:
   when the nearest driver declines, the window moves to the next best ETA and can take in drivers
   who were outside it before.

With ``eta_window_s = 0`` this is plain nearest-first; a larger window trades a little pickup time
for an even share of work (the default 120 s costs a rider at most two minutes).

Every ``RankedCandidate`` carries a human sentence and the structured facts behind it (ETA, distance,
idle time, rank, candidates considered, the best ETA, whether the window applied and why), so the
offer record can show a driver why a job went to someone else. ``filtered_out`` explains the drivers
that were removed before ranking.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Candidate:
    """A driver who could take the trip, as seen at ranking time."""

    driver_id: str
    distance_m: float
    eta_s: int
    idle_s: float
    wheelchair_accessible: bool = False


@dataclass(frozen=True, slots=True)
class FairnessRule:
    """The board's dispatch policy (see the module docstring for how it is applied)."""

    eta_window_s: int = 120
    max_pickup_eta_s: int | None = 1_200

    def __post_init__(self) -> None:
        if (
            isinstance(self.eta_window_s, bool)
            or not isinstance(self.eta_window_s, int)
            or self.eta_window_s < 0
        ):
            raise ValueError(
                f"eta_window_s must be a whole number of seconds >= 0, got {self.eta_window_s!r}"
            )
        if self.max_pickup_eta_s is not None and (
            isinstance(self.max_pickup_eta_s, bool)
            or not isinstance(self.max_pickup_eta_s, int)
            or self.max_pickup_eta_s < 0
        ):
            raise ValueError(
                f"max_pickup_eta_s must be None or whole seconds >= 0, got {self.max_pickup_eta_s!r}"
            )


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    """A candidate with its place in the offer order and the reason for it."""

    candidate: Candidate
    rank: int
    reason: str
    details: dict[str, Any]

    @property
    def driver_id(self) -> str:
        return self.candidate.driver_id


def rank_candidates(
    candidates: Iterable[Candidate],
    rule: FairnessRule,
    *,
    wheelchair_required: bool,
    excluded_driver_ids: Collection[str] = (),
) -> list[RankedCandidate]:
    """The eligible candidates in the order to offer them the trip (rank 1 first)."""
    eligible = [
        candidate
        for candidate in _unique(candidates)
        if _exclusion(candidate, rule, wheelchair_required, excluded_driver_ids) is None
    ]
    considered = len(eligible)
    remaining = sorted(eligible, key=_by_eta)
    ranked: list[RankedCandidate] = []
    while remaining:
        best_eta = remaining[0].eta_s
        window_end = best_eta + rule.eta_window_s
        close_enough = [candidate for candidate in remaining if candidate.eta_s <= window_end]
        winner = min(close_enough, key=_by_idle_then_eta)
        rank = len(ranked) + 1
        ranked.append(_explain(winner, rank, considered, best_eta, close_enough, rule))
        remaining.remove(winner)
    return ranked


def filtered_out(
    candidates: Iterable[Candidate],
    rule: FairnessRule,
    *,
    wheelchair_required: bool,
    excluded_driver_ids: Collection[str] = (),
) -> dict[str, str]:
    """Driver id -> why that candidate was not ranked at all (excluded, no WAV, ETA over the limit)."""
    reasons: dict[str, str] = {}
    for candidate in _unique(candidates):
        reason = _exclusion(candidate, rule, wheelchair_required, excluded_driver_ids)
        if reason is not None:
            reasons[candidate.driver_id] = reason
    return reasons


def _unique(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    unique = []
    for candidate in candidates:
        if candidate.driver_id in seen:
            raise ValueError(f"driver {candidate.driver_id!r} appears twice among the candidates")
        if not (math.isfinite(candidate.distance_m) and candidate.distance_m >= 0):
            raise ValueError(
                f"candidate {candidate.driver_id!r} has an invalid distance {candidate.distance_m!r}"
            )
        if candidate.eta_s < 0 or not math.isfinite(candidate.idle_s):
            raise ValueError(f"candidate {candidate.driver_id!r} has an invalid ETA or idle time")
        seen.add(candidate.driver_id)
        unique.append(candidate)
    return unique


def _exclusion(
    candidate: Candidate, rule: FairnessRule, wheelchair_required: bool, excluded_driver_ids: Collection[str]
) -> str | None:
    if candidate.driver_id in excluded_driver_ids:
        return "excluded: declined this trip, busy or already offered"
    if wheelchair_required and not candidate.wheelchair_accessible:
        return "the rider needs a wheelchair-accessible vehicle"
    if rule.max_pickup_eta_s is not None and candidate.eta_s > rule.max_pickup_eta_s:
        return (
            f"pickup ETA {_duration(candidate.eta_s)} is over the policy's limit of "
            f"{_duration(rule.max_pickup_eta_s)}"
        )
    return None


def _by_eta(candidate: Candidate) -> tuple[float, float, str]:
    return candidate.eta_s, candidate.distance_m, candidate.driver_id


def _by_idle_then_eta(candidate: Candidate) -> tuple[float, float, float, str]:
    return -candidate.idle_s, candidate.eta_s, candidate.distance_m, candidate.driver_id


def _explain(
    winner: Candidate,
    rank: int,
    considered: int,
    best_eta: int,
    close_enough: list[Candidate],
    rule: FairnessRule,
) -> RankedCandidate:
    others = [candidate for candidate in close_enough if candidate is not winner]
    if not others:
        why = f"fastest pickup, nobody else within {rule.eta_window_s} s of it"
        basis = "eta"
    elif winner.eta_s == best_eta and all(winner.idle_s > other.idle_s for other in others):
        why = f"fastest pickup and idle longest of {len(close_enough)} within {rule.eta_window_s} s"
        basis = "eta_and_idle"
    elif all(winner.idle_s > other.idle_s for other in others):
        why = (
            f"idle longest ({_duration(winner.idle_s)}) of {len(close_enough)} drivers whose pickup is "
            f"within {rule.eta_window_s} s of the best ({_duration(best_eta)})"
        )
        basis = "idle"
    else:
        why = (
            f"tied on idle time with another driver within {rule.eta_window_s} s of the best pickup; "
            "the faster pickup (then the nearer driver, then the driver id) decides"
        )
        basis = "tie_break"
    reason = (
        f"rank {rank} of {considered}: pickup in {_duration(winner.eta_s)} "
        f"({round(winner.distance_m)} m away), idle {_duration(winner.idle_s)}; {why}"
    )
    details: dict[str, Any] = {
        "rank": rank,
        "candidates_considered": considered,
        "eta_s": winner.eta_s,
        "distance_m": round(winner.distance_m),
        "idle_s": round(winner.idle_s),
        "best_eta_s": best_eta,
        "eta_window_s": rule.eta_window_s,
        "within_window_of": [candidate.driver_id for candidate in close_enough],
        "basis": basis,
    }
    return RankedCandidate(candidate=winner, rank=rank, reason=reason, details=details)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
