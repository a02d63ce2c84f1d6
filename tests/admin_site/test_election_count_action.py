"""Counting an election from the admin goes through `election_close`: the winner is seated and the count
is appended to the audit chain, and an election still open is refused and left as it is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from governance import services
from governance.models import AuditEntry, BoardSeat, Election
from tests.governance.conftest import make_member, seeded_policy  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/governance/election/"


def _election(make_member, staff_user, *, voting_closed: bool) -> tuple[Election, list]:  # noqa: F811
    """A one-seat election called by staff, two candidates, one ballot; its voting closed or still open."""
    voter, *candidates = [make_member() for _ in range(3)]
    now = timezone.now()
    election = services.election_create(
        user=staff_user,
        title="Board election",
        seats=1,
        nominations_close_at=now + timedelta(days=1),
        voting_closes_at=now + timedelta(days=2),
    )
    for candidate in candidates:
        services.election_nominate(election_id=election.id, user=candidate.user)
    # Move the windows the way tests/governance/test_elections.py does: nominations closed, voting open.
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(days=2), nominations_close_at=now - timedelta(seconds=1)
    )
    services.election_ballot_cast(election_id=election.id, user=voter.user, ranking=[str(candidates[1].id)])
    if voting_closed:
        Election.objects.filter(id=election.id).update(
            opens_at=now - timedelta(days=3),
            nominations_close_at=now - timedelta(days=2),
            voting_closes_at=now - timedelta(seconds=1),
        )
    return election, candidates


def _count(client: Client, election: Election) -> None:
    response = client.post(CHANGELIST, {"action": "count_elections", "_selected_action": [str(election.id)]})
    assert response.status_code == 302


def test_staff_count_a_finished_election_through_the_service(
    client: Client,
    staff_user,
    make_member,  # noqa: F811
) -> None:
    election, candidates = _election(make_member, staff_user, voting_closed=True)
    client.force_login(staff_user)
    chain_before = AuditEntry.objects.count()
    _count(client, election)
    election.refresh_from_db()
    assert election.closed_at is not None and election.result["elected"] == [str(candidates[1].id)]
    assert BoardSeat.objects.filter(member=candidates[1], ended_at__isnull=True).exists()
    assert AuditEntry.objects.count() > chain_before


def test_an_election_still_open_is_refused(client: Client, staff_user, make_member) -> None:  # noqa: F811
    election, _ = _election(make_member, staff_user, voting_closed=False)
    client.force_login(staff_user)
    _count(client, election)
    election.refresh_from_db()
    assert election.closed_at is None and election.result in (None, {})
