"""Quorum and thresholds per kind, decided on real proposals, votes and the closing task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from governance import services
from governance.models import Proposal
from tests.governance.conftest import fare_policy_payload

pytestmark = pytest.mark.django_db


def _open(proposer, kind, payload=None):
    return services.proposal_create(
        user=proposer.user,
        kind=kind,
        title=f"A {kind} proposal",
        body="",
        payload=payload if payload is not None else {},
        closes_at=timezone.now() + timedelta(hours=1),
    )


def _vote_and_close(proposal, members, choices):
    for member, choice in zip(members, choices, strict=False):
        proposal.refresh_from_db()
        if proposal.status != "open":
            break
        services.proposal_vote(proposal_id=proposal.id, user=member.user, choice=choice)
    services.close_due_proposals(now=proposal.closes_at + timedelta(seconds=1))
    proposal.refresh_from_db()
    return proposal


@pytest.mark.parametrize(
    ("choices", "status", "quorum_met"),
    [
        (["yes", "yes", "no"], "passed", True),  # exactly two-thirds: at least 2/3 passes a bylaw
        (["yes", "no", "no"], "failed", True),
        (["yes", "yes", "no", "abstain", "no"], "failed", True),  # 2 of 4 yes+no < 2/3
        (["yes", "yes"], "passed", True),  # two of eight is exactly the quarter: quorum met
    ],
)
def test_bylaw_needs_two_thirds(make_member, choices, status, quorum_met):
    members = [make_member() for _ in range(8)]  # a quarter of 8 is 2
    proposal = _vote_and_close(_open(members[0], "bylaw"), members, choices)
    assert proposal.status == status
    assert proposal.decision["quorum_met"] is quorum_met
    assert proposal.quorum == "1/4" and proposal.threshold == "2/3"


def test_bylaw_without_a_quarter_of_members_fails_for_want_of_quorum(make_member):
    members = [make_member() for _ in range(9)]  # a quarter of 9 is 2.25: two votes are not enough
    proposal = _vote_and_close(_open(members[0], "bylaw"), members, ["yes", "yes"])
    assert proposal.status == "failed"
    assert proposal.decision["quorum_met"] is False


def test_general_needs_a_tenth_and_more_yes_than_no(make_member):
    members = [make_member() for _ in range(20)]  # a tenth of 20 is 2; no early decision possible
    tie = _vote_and_close(_open(members[0], "general"), members, ["yes", "no"])
    assert (tie.status, tie.decision["quorum_met"]) == ("failed", True)
    too_few = _vote_and_close(_open(members[0], "general"), members, ["yes"])
    assert (too_few.status, too_few.decision["quorum_met"]) == ("failed", False)
    carried = _vote_and_close(_open(members[0], "general"), members, ["yes", "yes", "no", "abstain"])
    assert carried.status == "passed"


def test_member_kinds_are_decided_early_only_when_certain(make_member):
    members = [make_member() for _ in range(3)]
    proposal = _open(members[0], "general")
    services.proposal_vote(proposal_id=proposal.id, user=members[0].user, choice="yes")
    proposal.refresh_from_db()
    assert proposal.status == "open"  # two could still vote no
    services.proposal_vote(proposal_id=proposal.id, user=members[1].user, choice="yes")
    proposal.refresh_from_db()
    assert proposal.status == "passed" and proposal.decision["decided_early"] is True


def test_fare_policy_passes_early_on_a_majority_of_all_seats_and_never_fails_early(make_director):
    directors = [make_director() for _ in range(4)]
    proposal = _open(directors[0], "fare_policy", fare_policy_payload(per_minute="0.80"))
    for director, choice in zip(directors[:3], ["no", "no", "yes"], strict=True):
        services.proposal_vote(proposal_id=proposal.id, user=director.user, choice=choice)
    proposal.refresh_from_db()
    assert proposal.status == "open"  # 2 of 4 against, but the board decides at closes_at
    services.close_due_proposals(now=proposal.closes_at + timedelta(seconds=1))
    proposal.refresh_from_db()
    assert proposal.status == "failed" and proposal.effect is None

    second = _open(directors[0], "fare_policy", fare_policy_payload(per_minute="0.80"))
    for director in directors[:2]:
        services.proposal_vote(proposal_id=second.id, user=director.user, choice="yes")
    second.refresh_from_db()
    assert second.status == "open"  # 2 of 4 is not more than half of all seats
    services.proposal_vote(proposal_id=second.id, user=directors[2].user, choice="yes")
    second.refresh_from_db()
    assert second.status == "passed" and second.effect["policy_version"] >= 2
    # The board votes are public, by name.
    assert set(second.votes.values_list("director_id", flat=True)) == {d.id for d in directors[:3]}


def test_fare_policy_quorum_is_more_than_half_the_seats(make_director):
    directors = [make_director() for _ in range(4)]
    proposal = _open(directors[0], "fare_policy", fare_policy_payload(per_minute="0.80"))
    services.proposal_vote(proposal_id=proposal.id, user=directors[0].user, choice="yes")
    services.proposal_vote(proposal_id=proposal.id, user=directors[1].user, choice="abstain")
    services.close_due_proposals(now=proposal.closes_at + timedelta(seconds=1))
    proposal.refresh_from_db()
    assert proposal.status == "failed" and proposal.decision["quorum_met"] is False


@override_settings(
    ROCHDALE_PROPOSAL_RULES={"general": {"quorum": "1/2", "threshold": "3/4"}},
)
def test_rules_come_from_settings_and_are_fixed_when_the_proposal_opens(make_member):
    members = [make_member() for _ in range(4)]
    proposal = _open(members[0], "general")
    assert (proposal.quorum, proposal.threshold) == ("1/2", "3/4")
    with override_settings(ROCHDALE_PROPOSAL_RULES={}):
        decided = _vote_and_close(proposal, members, ["yes", "yes", "no"])
    assert decided.status == "failed"  # 2/3 yes is under the 3/4 fixed at opening
    assert Proposal.objects.get(id=proposal.id).decision["quorum_met"] is True
