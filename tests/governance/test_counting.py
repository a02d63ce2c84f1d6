"""Ranked-ballot counts checked against published examples and a multi-stage count worked by hand."""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.counting import (
    IRV,
    SCOTTISH_STV_2007,
    BallotError,
    CountResult,
    count_irv,
    count_stv,
)


def ballots_from(groups: list[tuple[int, list[str]]]) -> list[list[str]]:
    return [list(ranking) for count, ranking in groups for _ in range(count)]


def tallies(result: CountResult, stage: int) -> dict[str, Decimal]:
    return dict(result.rounds[stage - 1].tallies)


def d(text: str) -> Decimal:
    return Decimal(text)


# The "food election" from Wikipedia, "Single transferable vote", section "Example"
# (https://en.wikipedia.org/wiki/Single_transferable_vote): 20 guests, 3 dishes, Droop quota 6.
# Published result: Chocolate elected on first preferences, its surplus goes 4 to Strawberries and 2 to
# Hamburgers, Pears is eliminated and Oranges reaches the quota, Hamburgers is eliminated and Strawberries
# takes the last seat. Winners: Chocolate, Oranges, Strawberries.
FOOD_CANDIDATES = ["Oranges", "Pears", "Chocolate", "Strawberries", "Hamburgers"]
FOOD_BALLOTS = ballots_from(
    [
        (4, ["Oranges"]),
        (2, ["Pears", "Oranges"]),
        (8, ["Chocolate", "Strawberries"]),
        (4, ["Chocolate", "Hamburgers"]),
        (1, ["Strawberries"]),
        (1, ["Hamburgers"]),
    ]
)


def test_wikipedia_food_election_matches_the_published_count() -> None:
    result = count_stv(FOOD_BALLOTS, FOOD_CANDIDATES, 3)

    assert result.method == SCOTTISH_STV_2007
    assert result.quota == 6
    assert result.valid_ballots == 20
    assert result.elected == ("Chocolate", "Oranges", "Strawberries")
    assert result.excluded == ("Pears", "Hamburgers")
    assert result.unfilled_seats == 0
    assert [stage.action for stage in result.rounds] == [
        "first_preferences",
        "surplus",
        "exclusion",
        "exclusion",
    ]
    assert tallies(result, 1) == {
        "Oranges": 4,
        "Pears": 2,
        "Chocolate": 12,
        "Strawberries": 1,
        "Hamburgers": 1,
    }
    assert result.rounds[0].elected == ("Chocolate",)

    surplus = result.rounds[1]
    assert surplus.subject == "Chocolate"
    assert surplus.transfer_value == d("0.5")
    assert surplus.transfers["Strawberries"] == 4
    assert surplus.transfers["Hamburgers"] == 2
    assert surplus.transfers["Chocolate"] == -6
    assert tallies(result, 2) == {
        "Oranges": 4,
        "Pears": 2,
        "Chocolate": 6,
        "Strawberries": 5,
        "Hamburgers": 3,
    }

    assert result.rounds[2].excluded == ("Pears",)
    assert result.rounds[2].elected == ("Oranges",)
    assert tallies(result, 3)["Oranges"] == 6

    last = result.rounds[3]
    assert last.excluded == ("Hamburgers",)
    assert last.elected == ("Strawberries",)
    # Hamburgers' own ballot and the four Chocolate>Hamburgers ballots (at 0.5) have nowhere to go.
    assert last.non_transferable == 3
    assert last.exhausted_total == 3


# Wikipedia, "Counting single transferable votes", Droop quota example
# (https://en.wikipedia.org/wiki/Counting_single_transferable_votes): 57 voters, 2 seats, quota 20.
# Andrea has 40 first preferences; her surplus of 20 goes 8 to Brad and 12 to Carter; Brad is excluded
# and his votes take Carter to 20, the second seat. Winners: Andrea, Carter.
def test_wikipedia_droop_quota_example() -> None:
    ballots = ballots_from(
        [
            (16, ["Andrea", "Brad", "Carter", "Delilah"]),
            (24, ["Andrea", "Carter", "Brad", "Delilah"]),
            (17, ["Delilah", "Andrea", "Brad", "Carter"]),
        ]
    )
    result = count_stv(ballots, ["Andrea", "Brad", "Carter", "Delilah"], 2)

    assert result.quota == 20
    assert result.elected == ("Andrea", "Carter")
    assert result.rounds[1].transfers["Brad"] == 8
    assert result.rounds[1].transfers["Carter"] == 12
    assert result.rounds[2].excluded == ("Brad",)
    assert tallies(result, 3)["Carter"] == 20
    assert tallies(result, 3)["Delilah"] == 17


# Wikipedia, "Instant-runoff voting", the Tennessee capital example
# (https://en.wikipedia.org/wiki/Instant-runoff_voting): 42% Memphis, 26% Nashville, 15% Chattanooga,
# 17% Knoxville. Chattanooga is eliminated first (its votes go to Knoxville), then Nashville (its votes
# pass Chattanooga by and go to Knoxville): Knoxville wins 58 to 42.
TENNESSEE = ballots_from(
    [
        (42, ["Memphis", "Nashville", "Chattanooga", "Knoxville"]),
        (26, ["Nashville", "Chattanooga", "Knoxville", "Memphis"]),
        (15, ["Chattanooga", "Knoxville", "Nashville", "Memphis"]),
        (17, ["Knoxville", "Chattanooga", "Nashville", "Memphis"]),
    ]
)
TENNESSEE_CITIES = ["Memphis", "Nashville", "Chattanooga", "Knoxville"]


def test_wikipedia_tennessee_capital_irv_elects_knoxville() -> None:
    result = count_irv(TENNESSEE, TENNESSEE_CITIES)

    assert result.method == IRV
    assert result.elected == ("Knoxville",)
    assert result.excluded == ("Chattanooga", "Nashville")
    assert tallies(result, 1) == {"Memphis": 42, "Nashville": 26, "Chattanooga": 15, "Knoxville": 17}
    assert tallies(result, 2) == {"Memphis": 42, "Nashville": 26, "Chattanooga": 0, "Knoxville": 32}
    assert tallies(result, 3) == {"Memphis": 42, "Nashville": 0, "Chattanooga": 0, "Knoxville": 58}
    assert [stage.threshold for stage in result.rounds] == [51, 51, 51]


def test_tennessee_as_one_seat_stv_agrees() -> None:
    assert count_stv(TENNESSEE, TENNESSEE_CITIES, 1).elected == ("Knoxville",)


# A larger count worked by hand under the Scottish rules, exercising five-decimal truncation, a surplus
# of a candidate elected at an exclusion stage (ballots held at two different values), and exhausted
# ballots. 33 ballots, 3 seats: quota = floor(33 / 4) + 1 = 9.
#
# Stage 1  A 17, B 3, C 3, E 5, G 5. A elected, surplus 8.
# Stage 2  A's surplus. Transfer value 8 x 1 / 17 = 0.470588.. -> 0.47058.
#          11 A>B>E to B: 5.17638; 4 A>C to C: 1.88232; 2 A-only: non-transferable 0.94116.
#          17 x 0.47058 = 7.99986 moved, so 0.00014 is lost to truncation.
#          A 9, B 8.17638, C 4.88232, E 5, G 5; exhausted 0.94130.
# Stage 3  C (lowest) excluded. 3 C>B>G to B at 1: B 11.17638, elected (surplus 2.17638);
#          4 A>C at 0.47058 have no further preference: non-transferable 1.88232. Exhausted 2.82362.
# Stage 4  B's surplus, over B's total 11.17638:
#          ballots B received at 1:       2.17638 x 1       / 11.17638 = 0.194730.. -> 0.19473
#          ballots B received at 0.47058: 2.17638 x 0.47058 / 11.17638 = 0.091636.. -> 0.09163
#          11 A>B>E to E: 11 x 0.09163 = 1.00793; 3 B>G and 3 C>B>G to G: 6 x 0.19473 = 1.16838.
#          Moved 2.17631, lost 0.00007. E 6.00793, G 6.16838; exhausted 2.82369.
# Stage 5  E (lowest) excluded, all of E's ballots exhausted (6.00793); G is the only continuing
#          candidate for the one seat left and is elected (rule 52). Exhausted 8.83162.
# Elected A, B, G. (Weighting the transfer by the value each ballot arrived with is what decides the
# last seat: transferring B's A-origin ballots at the full 0.19473 would have given E 2.14203 and the seat.)
HAND_CANDIDATES = ["A", "B", "C", "E", "G"]
HAND_BALLOTS = ballots_from(
    [
        (11, ["A", "B", "E"]),
        (4, ["A", "C"]),
        (2, ["A"]),
        (3, ["B", "G"]),
        (3, ["C", "B", "G"]),
        (5, ["E"]),
        (5, ["G"]),
    ]
)


def test_multi_stage_count_worked_by_hand() -> None:
    result = count_stv(HAND_BALLOTS, HAND_CANDIDATES, 3)

    assert result.quota == 9
    assert result.elected == ("A", "B", "G")
    assert result.excluded == ("C", "E")
    assert [(stage.action, stage.subject) for stage in result.rounds] == [
        ("first_preferences", None),
        ("surplus", "A"),
        ("exclusion", "C"),
        ("surplus", "B"),
        ("exclusion", "E"),
    ]

    assert tallies(result, 1) == {"A": 17, "B": 3, "C": 3, "E": 5, "G": 5}

    stage2 = result.rounds[1]
    assert stage2.transfer_value == d("0.47058")
    assert stage2.transfers == {"A": -8, "B": d("5.17638"), "C": d("1.88232"), "E": 0, "G": 0}
    assert stage2.non_transferable == d("0.94116")
    assert stage2.lost_to_rounding == d("0.00014")
    assert tallies(result, 2) == {"A": 9, "B": d("8.17638"), "C": d("4.88232"), "E": 5, "G": 5}
    assert stage2.exhausted_total == d("0.94130")

    stage3 = result.rounds[2]
    assert stage3.elected == ("B",)
    assert stage3.non_transferable == d("1.88232")
    assert tallies(result, 3) == {"A": 9, "B": d("11.17638"), "C": 0, "E": 5, "G": 5}
    assert stage3.exhausted_total == d("2.82362")

    stage4 = result.rounds[3]
    assert stage4.transfer_value == d("0.19473")
    assert stage4.transfers["E"] == d("1.00793")
    assert stage4.transfers["G"] == d("1.16838")
    assert stage4.transfers["B"] == d("-2.17638")
    assert stage4.lost_to_rounding == d("0.00007")
    assert tallies(result, 4) == {"A": 9, "B": 9, "C": 0, "E": d("6.00793"), "G": d("6.16838")}

    stage5 = result.rounds[4]
    assert stage5.excluded == ("E",)
    assert stage5.elected == ("G",)
    assert stage5.non_transferable == d("6.00793")
    assert stage5.exhausted_total == d("8.83162")
    assert tallies(result, 5) == {"A": 9, "B": 9, "C": 0, "E": 0, "G": d("6.16838")}


def test_record_serialises_for_publication() -> None:
    record = count_stv(HAND_BALLOTS, HAND_CANDIDATES, 3).to_dict()
    assert record["quota"] == "9.00000"
    assert record["elected"] == ["A", "B", "G"]
    assert record["rounds"][3]["transfer_value"] == "0.19473"
    assert record["rounds"][3]["tallies"]["G"] == "6.16838"


# Tie at the bottom, broken by looking back to the most recent preceding stage at which the tied
# candidates differed (rule 51(2)(a)). Stage 1: W 11, Q 5, R 4, U 3, V 2. V out: R 6. U out: Q 7, R 7.
# Q and R are level; at stage 2 Q had 5 and R 6, so Q goes (the earliest stage, where Q led 5 to 4, would
# have excluded R and handed the seat to W). Q's ballots go to R: R 12, W 11, and R wins.
def test_exclusion_tie_looks_back_to_the_most_recent_stage_that_differed() -> None:
    ballots = ballots_from(
        [
            (11, ["W"]),
            (5, ["Q", "R"]),
            (4, ["R"]),
            (2, ["V", "R"]),
            (2, ["U", "Q"]),
            (1, ["U", "R"]),
        ]
    )
    result = count_irv(ballots, ["W", "Q", "R", "U", "V"])

    assert result.excluded == ("V", "U", "Q")
    assert result.rounds[3].tie_break == "earlier_stage"
    assert result.elected == ("R",)
    assert tallies(result, 4)["R"] == 12
    assert result.rounds[3].threshold == 12  # more than half of the 23 ballots still in play
    assert not result.lot_used


def _lot_order(seed: str, names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: hashlib.sha256(f"{seed}\x00{name}".encode()).hexdigest())


@pytest.mark.parametrize("seed", ["election-1", "election-2", "another seed"])
def test_tie_at_every_stage_is_drawn_by_seeded_lot(seed: str) -> None:
    ballots = ballots_from([(3, ["A"]), (2, ["B", "A"]), (2, ["C", "A"])])
    result = count_irv(ballots, ["A", "B", "C"], lot_seed=seed)

    loser = _lot_order(seed, ["B", "C"])[0]
    assert result.rounds[1].excluded == (loser,)
    assert result.rounds[1].tie_break == "lot"
    assert result.lot_used and result.lot_seed == seed
    assert result.elected == ("A",)
    assert count_irv(ballots, ["A", "B", "C"], lot_seed=seed) == result


def test_withdrawn_candidate_preferences_are_skipped() -> None:
    result = count_stv(FOOD_BALLOTS, FOOD_CANDIDATES, 3, withdrawn=["Pears"])

    assert result.withdrawn == ("Pears",)
    assert "Pears" not in tallies(result, 1)
    assert tallies(result, 1)["Oranges"] == 6
    assert result.valid_ballots == 20
    assert result.elected == ("Chocolate", "Oranges", "Strawberries")


def test_ballots_for_withdrawn_candidates_only_are_not_valid_votes() -> None:
    ballots = [["A"], ["A"], ["B"], ["C"], [], ["C"]]
    result = count_stv(ballots, ["A", "B", "C"], 1, withdrawn=["C"])

    assert result.valid_ballots == 3
    assert result.empty_ballots == 3
    assert result.quota == 2
    assert result.elected == ("A",)


def test_fewer_candidates_than_seats_elects_them_all_and_leaves_seats_unfilled() -> None:
    result = count_stv([["A", "B"], ["B"], ["A"]], ["A", "B"], 3)

    assert set(result.elected) == {"A", "B"}
    assert result.unfilled_seats == 1
    assert len(result.rounds) == 1


def test_no_valid_ballots_elects_nobody() -> None:
    result = count_stv([[], []], ["A", "B"], 1)

    assert result.elected == ()
    assert result.unfilled_seats == 1
    assert count_irv([], ["A", "B"]).elected == ()


def test_exhausted_ballots_shrink_the_irv_majority() -> None:
    ballots = ballots_from([(4, ["A"]), (3, ["B"]), (2, ["C"])])
    result = count_irv(ballots, ["A", "B", "C"])

    assert tallies(result, 1) == {"A": 4, "B": 3, "C": 2}
    assert result.rounds[1].excluded == ("C",)
    assert result.rounds[1].non_transferable == 2
    assert result.rounds[1].threshold == 4  # more than half of the 7 ballots still in play
    assert result.elected == ("A",)


@pytest.mark.parametrize(
    ("ballots", "message"),
    [
        ([["A", "Z"]], "unknown candidate 'Z'"),
        ([["A"], ["B", "A", "B"]], "ballot 1: candidate 'B' is ranked more than once"),
        (["AB"], "not a single string"),
    ],
)
def test_invalid_ballots_are_refused(ballots: list, message: str) -> None:
    with pytest.raises(BallotError, match=message):
        count_stv(ballots, ["A", "B"], 1)
    with pytest.raises(BallotError):
        count_irv(ballots, ["A", "B"])


def test_invalid_election_setup_is_refused() -> None:
    with pytest.raises(ValueError, match="seats"):
        count_stv([["A"]], ["A"], 0)
    with pytest.raises(ValueError, match="unique"):
        count_stv([["A"]], ["A", "A"], 1)
    with pytest.raises(ValueError, match="withdrawn"):
        count_stv([["A"]], ["A"], 1, withdrawn=["B"])


NAMES = ["A", "B", "C", "D", "E", "F"]
ballot_lists = st.lists(
    st.permutations(NAMES).flatmap(lambda order: st.integers(0, len(order)).map(lambda n: order[:n])),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ballots=ballot_lists, seats=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_every_stage_accounts_for_every_vote(ballots: list[list[str]], seats: int, seed: int) -> None:
    result = count_stv(ballots, NAMES, seats)
    valid = sum(1 for ballot in ballots if ballot)

    assert result.valid_ballots == valid
    for stage in result.rounds:
        assert sum(stage.tallies.values()) + stage.exhausted_total == valid
        assert stage.lost_to_rounding >= 0 and stage.non_transferable >= 0
    assert len(set(result.elected)) == len(result.elected)
    assert not set(result.elected) & set(result.excluded)
    if valid:
        assert len(result.elected) == min(seats, len(NAMES))
    for name in result.elected:
        elected_at = next(stage for stage in result.rounds if name in stage.elected)
        # Either it reached the quota, or it filled one of the last seats (rule 52).
        assert elected_at.tallies[name] >= result.quota or elected_at is result.rounds[-1]

    shuffled = list(ballots)
    random.Random(seed).shuffle(shuffled)
    assert count_stv(shuffled, NAMES, seats) == result


@settings(max_examples=150, deadline=None)
@given(ballots=ballot_lists)
def test_irv_and_one_seat_stv_elect_the_same_candidate(ballots: list[list[str]]) -> None:
    irv = count_irv(ballots, NAMES)
    for stage in irv.rounds:
        assert sum(stage.tallies.values()) + stage.exhausted_total == irv.valid_ballots
    assert irv.elected == count_stv(ballots, NAMES, 1).elected
