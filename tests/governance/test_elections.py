"""Board elections: nominations, ranked ballots, STV and IRV counts, seats with terms, the ballot record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance import services
from governance.counting import count_stv
from governance.models import BoardSeat, Election
from tests.factories import RiderFactory, StaffFactory
from tests.governance.conftest import client_for

pytestmark = pytest.mark.django_db


def _shift(election, *, to):
    """Move an election's windows so that ``to`` ("voting" or "closed") is where it stands now."""
    now = timezone.now()
    if to == "voting":
        Election.objects.filter(id=election.id).update(
            opens_at=now - timedelta(days=2), nominations_close_at=now - timedelta(seconds=1)
        )
    else:
        Election.objects.filter(id=election.id).update(
            opens_at=now - timedelta(days=3),
            nominations_close_at=now - timedelta(days=2),
            voting_closes_at=now - timedelta(seconds=1),
        )


def _create(client, seats):
    now = timezone.now()
    return client.post(
        "/api/v1/governance/elections",
        {
            "title": "Board election",
            "seats": seats,
            "nominations_close_at": (now + timedelta(days=7)).isoformat(),
            "voting_closes_at": (now + timedelta(days=14)).isoformat(),
            "term_days": 365,
        },
        format="json",
    )


def test_a_two_seat_stv_election_from_call_to_seats(make_member):
    staff = StaffFactory()
    members = [make_member() for _ in range(7)]
    response = _create(client_for(staff), seats=2)
    assert response.status_code == 201, response.content
    election_id = response.json()["id"]
    assert response.json()["method"] == "scottish-stv-2007" and response.json()["status"] == "nominating"
    assert _create(client_for(members[0].user), seats=1).status_code == 403  # not a director

    ann, ben, cat = members[:3]
    for candidate in (ann, ben, cat):
        nominated = client_for(candidate.user).post(
            f"/api/v1/governance/elections/{election_id}/nominations",
            {"statement": "Vote for me"},
            format="json",
        )
        assert nominated.status_code == 201
    early_ballot = client_for(ann.user).post(
        f"/api/v1/governance/elections/{election_id}/ballots", {"ranking": [str(ann.id)]}, format="json"
    )
    assert early_ballot.status_code == 409

    election = Election.objects.get(id=election_id)
    _shift(election, to="voting")
    late_nomination = client_for(members[3].user).post(
        f"/api/v1/governance/elections/{election_id}/nominations"
    )
    assert late_nomination.status_code == 409
    rankings = [
        [ann, ben],
        [ann, cat],
        [ann, ben],
        [ann],
        [ben, ann],
        [cat, ben],
        [cat],
    ]
    for voter, ranking in zip(members, rankings, strict=True):
        cast = client_for(voter.user).post(
            f"/api/v1/governance/elections/{election_id}/ballots",
            {"ranking": [str(m.id) for m in ranking]},
            format="json",
        )
        assert cast.status_code == 201, cast.content
        assert "receipt" in cast.json()
    twice = client_for(members[0].user).post(
        f"/api/v1/governance/elections/{election_id}/ballots", {"ranking": [str(ben.id)]}, format="json"
    )
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_voted"
    assert (
        client_for(RiderFactory())
        .post(
            f"/api/v1/governance/elections/{election_id}/ballots", {"ranking": [str(ben.id)]}, format="json"
        )
        .status_code
        == 403
    )
    assert client_for(ann.user).get(f"/api/v1/governance/elections/{election_id}/ballots").status_code == 409

    _shift(election, to="closed")
    assert services.close_due_elections() == 1
    result = client_for(ben.user).get(f"/api/v1/governance/elections/{election_id}/result").json()
    # Quota floor(7/3)+1 = 3. First preferences: ann 4, cat 2, ben 1, so ann is elected with a surplus of 1,
    # moved at 1/4 a ballot: ben 1.5, cat 2.25 (the ann-only ballot's quarter is non-transferable). Nobody
    # reaches the quota, ben is excluded, and cat, the last continuing candidate, fills the second seat.
    assert result["status"] == "closed"
    assert result["elected"] == [str(ann.id), str(cat.id)]

    record = RiderFactory()
    published = client_for(record).get(f"/api/v1/governance/elections/{election_id}/ballots").json()
    assert len(published["ballots"]) == 7
    recount = count_stv(
        published["ballots"], published["candidates"], published["seats"], lot_seed=published["lot_seed"]
    )
    assert list(recount.elected) == result["elected"]

    seats = BoardSeat.objects.filter(election_id=election_id)
    assert {str(s.member_id) for s in seats} == set(result["elected"])
    for seat in seats:
        assert seat.source == "election"
        assert timedelta(days=364) < seat.term_ends - seat.starts_at <= timedelta(days=365)
    board = client_for(ann.user).get("/api/v1/governance/board").json()["seats"]
    assert {s["member_id"] for s in board} == set(result["elected"])


def test_a_one_seat_election_is_counted_by_instant_runoff(make_director, make_member):
    director = make_director()
    voters = [make_member() for _ in range(5)]
    response = _create(client_for(director.user), seats=1)
    assert response.status_code == 201
    election = Election.objects.get(id=response.json()["id"])
    assert response.json()["method"] == "irv"
    a, b, c = voters[:3]
    for candidate in (a, b, c):
        services.election_nominate(election_id=election.id, user=candidate.user)
    _shift(election, to="voting")
    # First preferences a 2, b 2, c 1: c is excluded and c's ballot moves to b, who wins 3-2.
    for voter, ranking in zip(voters, [[a], [a, b], [b], [b, a], [c, b]], strict=True):
        services.election_ballot_cast(
            election_id=election.id, user=voter.user, ranking=[str(m.id) for m in ranking]
        )
    _shift(election, to="closed")
    closed = services.election_close(election_id=election.id)
    assert closed.result["method"] == "irv"
    assert closed.result["elected"] == [str(b.id)]
    assert next(r["excluded"] for r in closed.result["rounds"] if r["excluded"]) == [str(c.id)]
