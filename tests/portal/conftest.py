"""Fixtures for the members' portal tests: the governance fixtures (members, directors, completed trips made
through the services) and elections moved between their phases the way the clock would move them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.governance.conftest import (  # noqa: F401 - fixtures
    complete_trip,
    make_director,
    make_member,
    seeded_policy,
)


@pytest.fixture
def bylaw_proposal():
    """``bylaw_proposal(proposer, title=..., body=...)``: an open bylaw amendment (every member votes)."""
    from governance import services

    def make(
        proposer, *, title="Meetings may be held online", body="Article 7: general meetings may meet online."
    ):
        return services.proposal_create(
            user=proposer.user,
            kind="bylaw",
            title=title,
            body=body,
            payload={},
            closes_at=timezone.now() + timedelta(days=3),
        )

    return make


@pytest.fixture
def call_election():
    """``call_election(caller, seats=1)``: an election taking nominations (called by a director)."""
    from governance import services

    def make(caller, *, seats=1, title="Board election"):
        now = timezone.now()
        return services.election_create(
            user=caller.user,
            title=title,
            seats=seats,
            nominations_close_at=now + timedelta(days=1),
            voting_closes_at=now + timedelta(days=2),
        )

    return make


def open_voting(election) -> None:
    """Nominations close now: the election takes ballots (its windows moved back, as time would)."""
    from governance.models import Election

    now = timezone.now()
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(days=2), nominations_close_at=now - timedelta(seconds=1)
    )
    election.refresh_from_db()


def close_voting(election) -> None:
    """Voting closed a moment ago (the count is then due)."""
    from governance.models import Election

    now = timezone.now()
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(days=2),
        nominations_close_at=now - timedelta(days=1),
        voting_closes_at=now - timedelta(seconds=1),
    )
    election.refresh_from_db()
