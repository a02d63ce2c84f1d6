"""Proposals and votes over HTTP: who may propose and vote, snapshots, receipts, decisions, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance import services
from governance.models import AuditEntry, Proposal, Vote, VoteReceipt
from tests.factories import RiderFactory
from tests.governance.conftest import client_for, fare_policy_payload

pytestmark = pytest.mark.django_db


def _closes(hours=24):
    return (timezone.now() + timedelta(hours=hours)).isoformat()


def _propose(user, **overrides):
    body = {
        "kind": "general",
        "title": "Open a second office in Queens",
        "body": "Closer to the airports.",
        "payload": {},
        "closes_at": _closes(),
        **overrides,
    }
    return client_for(user).post("/api/v1/governance/proposals", body, format="json")


def test_a_director_proposes_a_fare_policy(make_director):
    director = make_director()
    make_director()
    response = _propose(
        director.user,
        kind="fare_policy",
        title="Raise the per-mile rate",
        payload={**fare_policy_payload(per_distance="1.90"), "effective_at": "2030-01-01T00:00:00Z"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    for key in ("id", "kind", "title", "body", "payload", "voters", "opens_at", "closes_at", "status"):
        assert key in body
    assert body["voters"] == "board" and body["status"] == "open" and body["kind"] == "fare_policy"
    assert body["payload"]["rider"]["per_distance"] == "1.90"
    assert body["payload"]["effective_at"] == "2030-01-01T00:00:00Z"
    assert Proposal.objects.get(id=body["id"]).roll.count() == 2


def test_an_invalid_fare_policy_is_refused_with_details(make_director):
    director = make_director()
    payload = fare_policy_payload(per_distance="-1")
    payload["commission_rate"] = "0.9"
    response = _propose(director.user, kind="fare_policy", payload=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_fare_policy"
    assert "rider.per_distance" in error["details"] and "commission_rate" in error["details"]


def test_only_directors_propose_fare_policies_and_only_members_propose_at_all(make_member):
    member = make_member()
    refused = _propose(member.user, kind="fare_policy", payload=fare_policy_payload())
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_a_director"
    assert _propose(RiderFactory()).status_code == 403
    assert _propose(member.user).status_code == 201


def test_bad_fields_are_400(make_member):
    member = make_member()
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert _propose(member.user, closes_at=past).status_code == 400
    assert _propose(member.user, kind="coup").status_code == 400
    bad_dividend = _propose(member.user, kind="dividend", payload={"surplus": 5, "cash_share": "0.1"})
    assert bad_dividend.status_code == 400
    assert {"surplus.amount", "cash_share", "basis"} <= set(bad_dividend.json()["error"]["details"])


def test_vote_receipt_and_one_vote_each(make_member):
    alice, bob = make_member(), make_member()
    proposal_id = _propose(alice.user).json()["id"]
    url = f"/api/v1/governance/proposals/{proposal_id}/votes"

    first = client_for(alice.user).post(url, {"choice": "yes"}, format="json")
    assert first.status_code == 201
    receipt = first.json()["receipt"]
    assert isinstance(receipt, str) and len(receipt) >= 20
    again = client_for(alice.user).post(url, {"choice": "no"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
    assert client_for(bob.user).post(url, {"choice": "maybe"}, format="json").status_code == 400

    # A member's vote is secret: the vote row names nobody, the receipt row says only that alice voted.
    vote = Vote.objects.get(proposal_id=proposal_id)
    assert vote.director_id is None and vote.receipt_hash == services.receipt_hash(receipt)
    assert VoteReceipt.objects.filter(proposal_id=proposal_id, member=alice).exists()
    audit = AuditEntry.objects.filter(kind="proposal.vote").get()
    assert "choice" not in audit.payload and audit.payload["receipt_sha256"] == vote.receipt_hash

    listing = client_for(alice.user).get("/api/v1/governance/proposals").json()
    assert listing["next"] is None
    assert listing["results"][0]["my_vote"] == {"eligible": True, "voted": True}
    mine = client_for(bob.user).get(f"/api/v1/governance/proposals/{proposal_id}").json()
    assert mine["my_vote"] == {"eligible": True, "voted": False}


def test_a_non_eligible_voter_gets_403(make_member, make_director):
    director = make_director()
    make_director()
    member = make_member()
    proposal_id = _propose(director.user, kind="fare_policy", payload=fare_policy_payload()).json()["id"]
    url = f"/api/v1/governance/proposals/{proposal_id}/votes"
    for outsider in (member.user, RiderFactory()):
        response = client_for(outsider).post(url, {"choice": "yes"}, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "not_eligible"


def test_a_member_who_joins_after_the_proposal_opened_cannot_vote(make_member):
    early = make_member()
    proposal_id = _propose(early.user).json()["id"]
    late = make_member()
    response = client_for(late.user).post(
        f"/api/v1/governance/proposals/{proposal_id}/votes", {"choice": "yes"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_eligible"
    assert client_for(late.user).get(f"/api/v1/governance/proposals/{proposal_id}").json()["my_vote"] == {
        "eligible": False,
        "voted": False,
    }


def test_a_vote_after_the_decision_gets_409(make_director):
    directors = [make_director() for _ in range(3)]
    proposal_id = _propose(directors[0].user, kind="general").json()["id"]
    url = f"/api/v1/governance/proposals/{proposal_id}/votes"
    # general: 3 members, 10% quorum; two yes settle it whatever the third does.
    assert client_for(directors[0].user).post(url, {"choice": "yes"}, format="json").status_code == 201
    assert client_for(directors[1].user).post(url, {"choice": "yes"}, format="json").status_code == 201
    result = client_for(directors[2].user).get(f"/api/v1/governance/proposals/{proposal_id}/result").json()
    assert result == {"status": "passed", "yes": 2, "no": 0, "abstain": 0, "eligible": 3, "quorum_met": True}
    late = client_for(directors[2].user).post(url, {"choice": "no"}, format="json")
    assert late.status_code == 409 and late.json()["error"]["code"] == "voting_closed"


def test_a_vote_after_closes_at_gets_409_and_the_task_decides(make_member):
    members = [make_member() for _ in range(4)]
    proposal_id = _propose(members[0].user).json()["id"]
    proposal = Proposal.objects.get(id=proposal_id)
    services.proposal_vote(proposal_id=proposal_id, user=members[0].user, choice="no")
    assert services.close_due_proposals(now=proposal.closes_at - timedelta(seconds=1)) == 0
    assert services.close_due_proposals(now=proposal.closes_at + timedelta(seconds=1)) == 1
    proposal.refresh_from_db()
    assert proposal.status == "failed"
    assert proposal.decision["reason"] == "voting closed with the threshold not met"
    Proposal.objects.filter(id=proposal_id)  # decided rows stay readable
    response = client_for(members[1].user).post(
        f"/api/v1/governance/proposals/{proposal_id}/votes", {"choice": "yes"}, format="json"
    )
    assert response.status_code == 409


def test_unknown_or_invisible_proposals_are_404_and_non_members_403(make_member):
    member = make_member()
    missing = "/api/v1/governance/proposals/00000000-0000-0000-0000-000000000000"
    assert client_for(member.user).get(missing).status_code == 404
    assert client_for(member.user).get(missing + "/result").status_code == 404
    assert (
        client_for(member.user).post(missing + "/votes", {"choice": "yes"}, format="json").status_code == 404
    )
    assert client_for(RiderFactory()).get("/api/v1/governance/proposals").status_code == 403
