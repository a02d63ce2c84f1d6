"""A proposal's page: voting with a receipt shown once, who may vote (and why not), and the result."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from governance import services
from governance.models import AuditEntry, VoteReceipt

pytestmark = pytest.mark.django_db


def _browser(member) -> Client:
    browser = Client()
    browser.force_login(member.user)
    return browser


def test_a_member_votes_and_sees_the_receipt_once(make_member, bylaw_proposal):
    member, other = make_member(), make_member()
    proposal = bylaw_proposal(other)
    browser = _browser(member)
    page = browser.get(f"/members/proposals/{proposal.id}/").content.decode()
    assert 'id="vote-form"' in page

    answer = browser.post(f"/members/proposals/{proposal.id}/vote", {"choice": "yes"})
    assert answer.status_code == 200  # the answer to the vote is the page with the receipt: nothing keeps it
    page = answer.content.decode()
    receipt = re.search(r'id="receipt-code">([^<]+)<', page).group(1)
    # The receipt is the voter's: the database and the audit log keep only its hash.
    digest = services.receipt_hash(receipt)
    assert VoteReceipt.objects.get(proposal=proposal, member=member).receipt_hash == digest
    assert AuditEntry.objects.filter(kind="proposal.vote", payload__receipt_sha256=digest).exists()
    assert digest in page

    again = browser.get(f"/members/proposals/{proposal.id}/").content.decode()
    assert receipt not in again
    assert receipt not in str(dict(browser.session.items()))
    assert "You have voted" in again
    assert 'id="vote-form"' not in again


def test_a_second_vote_is_refused(make_member, bylaw_proposal):
    member, *others = [make_member() for _ in range(5)]
    proposal = bylaw_proposal(others[0])
    browser = _browser(member)
    browser.post(f"/members/proposals/{proposal.id}/vote", {"choice": "yes"})  # settles nothing yet
    answer = browser.post(f"/members/proposals/{proposal.id}/vote", {"choice": "yes"})
    assert answer.status_code == 409
    assert "already voted" in answer.content.decode()
    assert VoteReceipt.objects.filter(proposal=proposal).count() == 1


@pytest.mark.parametrize("choice", ["", "maybe", "YES"])
def test_a_choice_that_is_not_one_is_refused(make_member, bylaw_proposal, choice):
    member = make_member()
    proposal = bylaw_proposal(member)
    answer = _browser(member).post(f"/members/proposals/{proposal.id}/vote", {"choice": choice})
    assert answer.status_code == 400
    assert 'id="vote-error"' in answer.content.decode()
    assert not VoteReceipt.objects.filter(proposal=proposal).exists()


def test_a_member_who_joined_later_is_told_why_they_cannot_vote(make_member, bylaw_proposal):
    proposer = make_member()
    proposal = bylaw_proposal(proposer)
    newcomer = make_member()
    browser = _browser(newcomer)
    page = browser.get(f"/members/proposals/{proposal.id}/").content.decode()
    assert "not on this proposal&#x27;s voter roll" in page
    assert 'id="vote-form"' not in page
    answer = browser.post(f"/members/proposals/{proposal.id}/vote", {"choice": "yes"})
    assert answer.status_code == 403
    assert not VoteReceipt.objects.filter(proposal=proposal).exists()


def test_a_suspended_member_is_told_why(make_member, bylaw_proposal):
    from tests.factories import StaffFactory

    member, proposer = make_member(), make_member()
    proposal = bylaw_proposal(proposer)
    services.membership_set_status(member_id=member.id, status="suspended", actor=StaffFactory())
    page = _browser(member).get(f"/members/proposals/{proposal.id}/").content.decode()
    assert "suspended" in page
    assert 'id="vote-form"' not in page


def test_members_read_a_fare_policy_the_board_votes_on_but_do_not_vote(make_member, make_director):
    from datetime import timedelta

    from django.utils import timezone

    from tests.governance.conftest import fare_policy_payload

    director = make_director()
    member = make_member()
    proposal = services.proposal_create(
        user=director.user,
        kind="fare_policy",
        title="A new per-mile rate",
        body="",
        payload=fare_policy_payload(per_distance="1.90"),
        closes_at=timezone.now() + timedelta(days=1),
    )
    browser = _browser(member)
    page = browser.get(f"/members/proposals/{proposal.id}/").content.decode()
    assert "Only the board" in page
    assert browser.post(f"/members/proposals/{proposal.id}/vote", {"choice": "yes"}).status_code == 403


def test_a_decided_proposal_shows_its_result(make_member, bylaw_proposal):
    members = [make_member() for _ in range(3)]
    proposal = bylaw_proposal(members[0])
    for member in members[:2]:  # two yes of three: nothing the third could vote changes it
        services.proposal_vote(proposal_id=proposal.id, user=member.user, choice="yes")
    proposal.refresh_from_db()
    assert proposal.status == "passed"
    page = _browser(members[0]).get(f"/members/proposals/{proposal.id}/").content.decode()
    assert re.search(r'id="result-yes">2<', page)
    assert 'data-status="passed"' in page
    listing = _browser(members[0]).get("/members/proposals/").content.decode()
    decided = listing.split('id="decided-proposals"')[1]
    assert proposal.title in decided
