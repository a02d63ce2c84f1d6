"""The board's fairness rule: window of near-best ETAs, longest idle first, explained."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching.ranking import Candidate, FairnessRule, filtered_out, rank_candidates


def driver(driver_id: str, eta_s: int, idle_s: float, *, wav: bool = False, distance_m: float | None = None):
    return Candidate(
        driver_id=driver_id,
        distance_m=eta_s * 5.0 if distance_m is None else distance_m,
        eta_s=eta_s,
        idle_s=idle_s,
        wheelchair_accessible=wav,
    )


def order(ranked) -> list[str]:
    return [entry.driver_id for entry in ranked]


def test_longest_idle_within_the_window_beats_the_nearest() -> None:
    candidates = [
        driver("nearest", 200, idle_s=60),
        driver("idle-long", 300, idle_s=3_600),  # 100 s slower: inside the 120 s window
        driver("idle-longest-but-far", 400, idle_s=7_200),  # 200 s slower: outside
    ]
    ranked = rank_candidates(candidates, FairnessRule(), wheelchair_required=False, excluded_driver_ids=())
    assert order(ranked) == ["idle-long", "nearest", "idle-longest-but-far"]
    first = ranked[0]
    assert first.rank == 1
    assert first.details["basis"] == "idle"
    assert first.details["best_eta_s"] == 200
    assert first.details["candidates_considered"] == 3
    assert set(first.details["within_window_of"]) == {"nearest", "idle-long"}
    assert "idle longest" in first.reason and "rank 1 of 3" in first.reason and "5 min" in first.reason


def test_rank_order_equals_re_ranking_after_each_decline() -> None:
    candidates = [
        driver("a", 100, idle_s=10),
        driver("b", 210, idle_s=50),
        driver("c", 300, idle_s=900),  # outside a's window, inside b's
        driver("d", 330, idle_s=20),
    ]
    rule = FairnessRule(eta_window_s=120)
    ranked = order(rank_candidates(candidates, rule, wheelchair_required=False, excluded_driver_ids=()))
    declined: list[str] = []
    replayed = []
    while len(declined) < len(candidates):
        winner = rank_candidates(candidates, rule, wheelchair_required=False, excluded_driver_ids=declined)[0]
        replayed.append(winner.driver_id)
        declined.append(winner.driver_id)
    assert ranked == replayed == ["b", "a", "c", "d"]


def test_zero_window_is_nearest_first_with_deterministic_ties() -> None:
    candidates = [
        driver("z", 100, idle_s=999, distance_m=400),
        driver("y", 100, idle_s=999, distance_m=300),
        driver("x", 100, idle_s=999, distance_m=300),
        driver("w", 50, idle_s=0),
    ]
    ranked = rank_candidates(candidates, FairnessRule(eta_window_s=0), wheelchair_required=False)
    assert order(ranked) == ["w", "x", "y", "z"]
    assert ranked[1].details["basis"] == "tie_break"
    assert ranked[0].details["basis"] == "eta"


def test_wheelchair_excluded_and_eta_limit_filters() -> None:
    candidates = [
        driver("car", 60, idle_s=100),
        driver("van", 200, idle_s=5, wav=True),
        driver("declined-van", 100, idle_s=500, wav=True),
        driver("slow-van", 1_500, idle_s=10_000, wav=True),
    ]
    rule = FairnessRule(eta_window_s=120, max_pickup_eta_s=1_200)
    ranked = rank_candidates(candidates, rule, wheelchair_required=True, excluded_driver_ids={"declined-van"})
    assert order(ranked) == ["van"]
    assert ranked[0].details["candidates_considered"] == 1
    reasons = filtered_out(candidates, rule, wheelchair_required=True, excluded_driver_ids={"declined-van"})
    assert set(reasons) == {"car", "declined-van", "slow-van"}
    assert "wheelchair" in reasons["car"]
    assert "declined" in reasons["declined-van"]
    assert "20 min" in reasons["slow-van"]
    without_wav_need = rank_candidates(
        candidates, FairnessRule(max_pickup_eta_s=None), wheelchair_required=False
    )
    assert set(order(without_wav_need)) == {"car", "van", "declined-van", "slow-van"}


def test_no_candidates_and_invalid_input() -> None:
    assert rank_candidates([], FairnessRule(), wheelchair_required=False) == []
    with pytest.raises(ValueError):
        rank_candidates([driver("a", 1, 1), driver("a", 2, 2)], FairnessRule(), wheelchair_required=False)
    with pytest.raises(ValueError):
        FairnessRule(eta_window_s=-1)
    with pytest.raises(ValueError):
        FairnessRule(max_pickup_eta_s=-5)


candidate_lists = st.lists(
    st.builds(
        Candidate,
        driver_id=st.text("abcdef", min_size=1, max_size=3),
        distance_m=st.floats(0, 10_000),
        eta_s=st.integers(0, 1_500),
        idle_s=st.floats(0, 20_000),
        wheelchair_accessible=st.booleans(),
    ),
    max_size=12,
    unique_by=lambda candidate: candidate.driver_id,
)


@settings(max_examples=100)
@given(candidate_lists, st.integers(0, 600), st.booleans(), st.data())
def test_ranking_properties(candidates, window, wav, data) -> None:
    excluded = data.draw(st.sets(st.sampled_from([c.driver_id for c in candidates]))) if candidates else set()
    rule = FairnessRule(eta_window_s=window, max_pickup_eta_s=1_200)
    ranked = rank_candidates(candidates, rule, wheelchair_required=wav, excluded_driver_ids=excluded)
    eligible = [
        c
        for c in candidates
        if c.driver_id not in excluded and (c.wheelchair_accessible or not wav) and c.eta_s <= 1_200
    ]
    assert sorted(order(ranked)) == sorted(c.driver_id for c in eligible)
    assert [entry.rank for entry in ranked] == list(range(1, len(ranked) + 1))
    remaining = list(eligible)
    for entry in ranked:
        best = min(c.eta_s for c in remaining)
        # The winner is close enough to the best ETA and idle at least as long as anyone else close enough.
        assert entry.candidate.eta_s <= best + window
        assert all(entry.candidate.idle_s >= c.idle_s for c in remaining if c.eta_s <= best + window)
        assert entry.details["best_eta_s"] == best
        remaining.remove(entry.candidate)
    # Deterministic: the input order does not matter.
    shuffled = data.draw(st.permutations(candidates))
    assert order(
        rank_candidates(shuffled, rule, wheelchair_required=wav, excluded_driver_ids=excluded)
    ) == order(ranked)
