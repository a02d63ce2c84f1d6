"""The governance lists cost the same number of queries whatever the number of items on the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance import services
from tests.factories import StaffFactory
from tests.governance.conftest import client_for, fare_policy_payload

pytestmark = pytest.mark.django_db


def _queries(client, path: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), response.json()


def _open_proposals(director, member, count: int) -> None:
    closes_at = timezone.now() + timedelta(days=1)
    for number in range(count):
        fare_policy = services.proposal_create(
            user=director.user,
            kind="fare_policy",
            title=f"Fare policy {number}",
            body="",
            payload={**fare_policy_payload(per_distance="1.90"), "effective_at": "2030-01-01T00:00:00Z"},
            closes_at=closes_at,
        )
        services.proposal_vote(proposal_id=fare_policy.id, user=director.user, choice="yes")
        general = services.proposal_create(
            user=member.user,
            kind="general",
            title=f"General {number}",
            body="",
            payload={},
            closes_at=closes_at,
        )
        services.proposal_vote(proposal_id=general.id, user=member.user, choice="no")


@pytest.mark.parametrize("reader", ["director", "staff"])
def test_the_proposal_list_costs_the_same_queries_for_two_or_ten(make_director, make_member, reader):
    director = make_director()
    make_director()
    member = make_member()
    client = client_for(director.user if reader == "director" else StaffFactory())
    _open_proposals(director, member, 1)
    few, small = _queries(client, "/api/v1/governance/proposals")
    _open_proposals(director, member, 4)
    many, large = _queries(client, "/api/v1/governance/proposals")
    assert (len(small["results"]), len(large["results"])) == (2, 10)
    assert many == few


def test_the_election_list_costs_the_same_queries_for_one_or_four_elections(make_member):
    staff = StaffFactory()
    members = [make_member() for _ in range(3)]
    now = timezone.now()

    def call_election(number: int) -> None:
        election = services.election_create(
            user=staff,
            title=f"Election {number}",
            seats=1,
            nominations_close_at=now + timedelta(days=7),
            voting_closes_at=now + timedelta(days=14),
        )
        for member in members:
            services.election_nominate(election_id=election.id, user=member.user, statement="Vote for me")

    client = client_for(members[0].user)
    call_election(0)
    few, small = _queries(client, "/api/v1/governance/elections")
    for number in range(1, 4):
        call_election(number)
    many, large = _queries(client, "/api/v1/governance/elections")
    assert (len(small["results"]), len(large["results"])) == (1, 4)
    assert all(len(election["candidates"]) == 3 for election in large["results"])
    assert many == few
