"""Proposal decision rules per kind, quorum edges and early decisions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.tally import RULES, DecisionRule, decide, rule_for_kind

FARE = RULES["fare_policy"]
BYLAW = RULES["bylaw"]
GENERAL = RULES["general"]


def status(
    rule: DecisionRule, eligible: int, yes: int, no: int, abstain: int = 0, closed: bool = True
) -> str:
    return decide(rule, eligible=eligible, yes=yes, no=no, abstain=abstain, closed=closed).status


def test_default_rules_per_kind() -> None:
    assert (
        DecisionRule(
            quorum=Fraction(1, 2),
            threshold=Fraction(1, 2),
            voters="board",
            quorum_strict=True,
            threshold_strict=True,
            early="yes_majority_of_all",
        )
        == FARE
    )
    assert (BYLAW.voters, BYLAW.quorum, BYLAW.threshold, BYLAW.threshold_strict) == (
        "members",
        Fraction(1, 4),
        Fraction(2, 3),
        False,
    )
    for kind in ("dividend", "general"):
        rule = rule_for_kind(kind)
        assert (rule.voters, rule.quorum, rule.threshold) == ("members", Fraction(1, 10), Fraction(1, 2))
    with pytest.raises(ValueError, match="unknown proposal kind"):
        rule_for_kind("coup")


# -- fare_policy: the board, docs/contract.md "Fare policy and governance" -----------------------------


def test_fare_policy_exactly_half_the_seats_is_not_a_quorum() -> None:
    result = decide(FARE, eligible=6, yes=3, no=0, abstain=0, closed=True)
    assert result.status == "failed" and not result.quorum_met


def test_fare_policy_more_than_half_the_seats_is_a_quorum_and_abstentions_count() -> None:
    result = decide(FARE, eligible=6, yes=2, no=1, abstain=1, closed=True)
    assert result.quorum_met and result.status == "passed"


def test_fare_policy_needs_more_yes_than_no() -> None:
    assert status(FARE, eligible=7, yes=2, no=2, abstain=1) == "failed"
    assert status(FARE, eligible=7, yes=3, no=2) == "passed"


def test_fare_policy_open_until_closed_unless_yes_alone_is_a_majority_of_seats() -> None:
    # 3 of 6 seats voting yes is exactly half: not yet decided.
    assert status(FARE, eligible=6, yes=3, no=0, closed=False) == "open"
    early = decide(FARE, eligible=6, yes=4, no=0, abstain=0, closed=False)
    assert early.status == "passed" and early.decided_early
    # The outcome is already certain here (4 voted, 3 yes, 1 yet to vote) but the contract only decides
    # early on a majority of all seats voting yes.
    assert status(FARE, eligible=5, yes=2, no=0, abstain=2, closed=False) == "open"
    # And it never fails early, however hopeless.
    assert status(FARE, eligible=5, yes=0, no=5, closed=False) == "open"


def test_fare_policy_odd_board() -> None:
    assert status(FARE, eligible=5, yes=3, no=0, closed=False) == "passed"  # 3 > 2.5
    assert status(FARE, eligible=5, yes=2, no=1, closed=True) == "passed"  # 3 cast > 2.5, 2 > 1
    assert status(FARE, eligible=5, yes=2, no=0, closed=True) == "failed"  # 2 cast is not > 2.5


# -- member kinds ------------------------------------------------------------------------------------------


def test_bylaw_needs_two_thirds_of_yes_plus_no() -> None:
    assert status(BYLAW, eligible=12, yes=2, no=1) == "passed"  # exactly two-thirds is enough
    assert status(BYLAW, eligible=12, yes=5, no=3) == "failed"  # 62.5%
    assert status(BYLAW, eligible=12, yes=4, no=2, abstain=10 - 6) == "passed"  # abstentions don't count


def test_bylaw_quorum_is_at_least_a_quarter() -> None:
    assert decide(BYLAW, eligible=12, yes=3, no=0, abstain=0, closed=True).quorum_met  # 3 of 12
    assert not decide(BYLAW, eligible=13, yes=3, no=0, abstain=0, closed=True).quorum_met  # 3 < 3.25
    assert status(BYLAW, eligible=13, yes=3, no=0) == "failed"


def test_general_quorum_is_a_tenth_and_simple_majority() -> None:
    assert status(GENERAL, eligible=100, yes=6, no=4) == "passed"
    assert status(GENERAL, eligible=100, yes=5, no=4) == "failed"  # 9 < 10: no quorum
    assert status(GENERAL, eligible=100, yes=5, no=5) == "failed"  # a tie is not a majority


def test_no_yes_or_no_votes_never_passes() -> None:
    assert status(GENERAL, eligible=10, yes=0, no=0, abstain=10) == "failed"


def test_member_kind_passes_early_only_when_certain() -> None:
    # 100 members, 51 yes: even if the other 49 vote no, yes wins and the quorum is met.
    result = decide(GENERAL, eligible=100, yes=51, no=0, abstain=0, closed=False)
    assert result.status == "passed" and result.decided_early
    # 50 yes: the other 50 could all vote no and tie it.
    assert status(GENERAL, eligible=100, yes=50, no=0, closed=False) == "open"
    # Bylaw: 67 of 100 yes; 33 no at most: 67/100 >= 2/3.
    assert status(BYLAW, eligible=100, yes=67, no=0, closed=False) == "passed"
    assert status(BYLAW, eligible=100, yes=66, no=0, closed=False) == "open"


def test_member_kind_fails_early_when_it_cannot_pass() -> None:
    result = decide(GENERAL, eligible=100, yes=0, no=50, abstain=0, closed=False)
    assert result.status == "failed" and result.decided_early
    assert status(GENERAL, eligible=100, yes=0, no=49, closed=False) == "open"
    # Bylaw: 34 no of 100 means at most 66 yes: 66/100 < 2/3.
    assert status(BYLAW, eligible=100, yes=0, no=34, closed=False) == "failed"
    assert status(BYLAW, eligible=100, yes=0, no=33, closed=False) == "open"


def test_result_body_matches_the_contract() -> None:
    result = decide(FARE, eligible=5, yes=1, no=1, abstain=1, closed=False)
    assert result.to_dict() == {
        "status": "open",
        "yes": 1,
        "no": 1,
        "abstain": 1,
        "eligible": 5,
        "quorum_met": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eligible": 3, "yes": 2, "no": 2, "abstain": 0}, "4 votes cast but only 3 eligible"),
        ({"eligible": 3, "yes": -1, "no": 0, "abstain": 0}, "yes must be a non-negative integer"),
        ({"eligible": 3, "yes": 1, "no": True, "abstain": 0}, "no must be a non-negative integer"),
    ],
)
def test_invalid_counts_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide(GENERAL, closed=False, **kwargs)


def test_rule_fractions_are_exact_and_validated() -> None:
    rule = DecisionRule(quorum=Decimal("0.25"), threshold="2/3", voters="members")
    assert rule.quorum == Fraction(1, 4) and rule.threshold == Fraction(2, 3)
    with pytest.raises(TypeError):
        DecisionRule(quorum=0.5, threshold=Fraction(1, 2), voters="members")
    with pytest.raises(ValueError):
        DecisionRule(quorum=Fraction(3, 2), threshold=Fraction(1, 2), voters="members")
    with pytest.raises(ValueError):
        DecisionRule(quorum=Fraction(1, 2), threshold=Fraction(1, 2), voters="everyone")


@st.composite
def vote_counts(draw: st.DrawFn) -> tuple[int, int, int, int, int, int, int]:
    """Counts now, plus how the voters yet to vote will vote (yes, no, abstain; the rest stay away)."""
    eligible = draw(st.integers(0, 40))
    yes = draw(st.integers(0, eligible))
    no = draw(st.integers(0, eligible - yes))
    abstain = draw(st.integers(0, eligible - yes - no))
    left = eligible - yes - no - abstain
    later_yes = draw(st.integers(0, left))
    later_no = draw(st.integers(0, left - later_yes))
    later_abstain = draw(st.integers(0, left - later_yes - later_no))
    return eligible, yes, no, abstain, later_yes, later_no, later_abstain


@settings(max_examples=400, deadline=None)
@given(counts=vote_counts(), kind=st.sampled_from(sorted(RULES)))
def test_an_early_decision_is_never_overturned_by_later_votes(counts: tuple, kind: str) -> None:
    eligible, yes, no, abstain, later_yes, later_no, later_abstain = counts
    rule = RULES[kind]
    now = decide(rule, eligible=eligible, yes=yes, no=no, abstain=abstain, closed=False)
    final = decide(
        rule,
        eligible=eligible,
        yes=yes + later_yes,
        no=no + later_no,
        abstain=abstain + later_abstain,
        closed=True,
    )
    assert final.status in ("passed", "failed")
    if now.status != "open":
        assert now.decided_early and final.status == now.status
