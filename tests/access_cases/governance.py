"""Access cases for the governance and staff-membership routes (mobile_api/urls_governance.py).

Governance records are for members (and staff) only: a non-member is refused with 403 `not_a_member` or
`not_eligible` *before* the id is looked up, so the refusal is the same for an existing id and an unknown one
and reveals nothing (docs/contract.md: an id the caller may not see answers exactly as one that does not
exist).
The matrix only compares an outsider's answer with an unknown id's when that answer is 404, so every route
here also has an `unknown id` case: outsiders must get the same 403 for an id that does not exist, while
the member (or staff user), who may see such records, is told 404.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from governance import services
from governance.models import Election, Member
from tests.access_cases import AccessCase, Arranged, register
from tests.factories import DriverFactory, StaffFactory
from tests.mobile_api.builders import ensure_fare_policy

NOT_A_MEMBER = 403
STAFF_ONLY = 403


def _member() -> Member:
    """An approved driver who joined the co-op (the fare policy seed is restored in case a transactional
    test flushed it)."""
    ensure_fare_policy()
    return services.membership_join(user=DriverFactory())


def _director() -> Member:
    member = _member()
    services.board_seat_found(member_id=member.id, actor=StaffFactory())
    return member


def _open_proposal() -> tuple[Any, Member]:
    """A general proposal opened by a director; returns it and a member on its voter roll."""
    director = _director()
    voter = _member()
    proposal = services.proposal_create(
        user=director.user,
        kind="general",
        title="Open a drivers' rest stop at the depot",
        body="Rent the lot next to the depot for breaks between trips.",
        payload={},
        closes_at=timezone.now() + timedelta(days=3),
    )
    return proposal, voter


def _election(*, nominating: bool = True) -> tuple[Election, Member]:
    """A one-seat election called by staff; returns it and a member on its voter roll (who stands too
    unless ``nominating`` is asked for, so a ballot has a candidate to rank)."""
    voter = _member()
    now = timezone.now()
    election = services.election_create(
        user=StaffFactory(),
        title="Board election",
        seats=1,
        nominations_close_at=now + timedelta(days=1),
        voting_closes_at=now + timedelta(days=2),
    )
    if not nominating:
        services.election_nominate(election_id=election.id, user=voter.user, statement="Fair fares.")
    return election, voter


def _move_election_to_voting(election: Election) -> None:
    now = timezone.now()
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(hours=2), nominations_close_at=now - timedelta(hours=1)
    )


def _closed_election() -> tuple[Election, Member]:
    election, voter = _election(nominating=False)
    _move_election_to_voting(election)
    services.election_ballot_cast(election_id=election.id, user=voter.user, ranking=[str(voter.id)])
    Election.objects.filter(id=election.id).update(voting_closes_at=timezone.now() - timedelta(minutes=1))
    return services.election_close(election_id=election.id), voter


def _unknown(key: str, owner: Any, body: dict[str, Any] | None = None) -> Arranged:
    return Arranged(owner=owner, kwargs={key: uuid.uuid4()}, body=body)


# --- Proposals ---------------------------------------------------------------------------------------------


def _proposal_read() -> Arranged:
    proposal, voter = _open_proposal()
    return Arranged(owner=voter.user, kwargs={"proposal_id": proposal.id})


def _proposal_unknown() -> Arranged:
    return _unknown("proposal_id", _member().user)


def _proposal_vote() -> Arranged:
    proposal, voter = _open_proposal()
    return Arranged(owner=voter.user, kwargs={"proposal_id": proposal.id}, body={"choice": "yes"})


def _proposal_vote_unknown() -> Arranged:
    return _unknown("proposal_id", _member().user, body={"choice": "yes"})


register(
    "governance-proposal",
    AccessCase(_proposal_read, "get", 200, outsider_status=NOT_A_MEMBER, label="open proposal"),
    AccessCase(_proposal_unknown, "get", 404, outsider_status=NOT_A_MEMBER, label="unknown id"),
)
register(
    "governance-proposal-result",
    AccessCase(_proposal_read, "get", 200, outsider_status=NOT_A_MEMBER, label="open proposal"),
    AccessCase(_proposal_unknown, "get", 404, outsider_status=NOT_A_MEMBER, label="unknown id"),
)
register(
    "governance-proposal-votes",
    AccessCase(_proposal_vote, "post", 201, outsider_status=NOT_A_MEMBER, label="open proposal"),
    AccessCase(_proposal_vote_unknown, "post", 404, outsider_status=NOT_A_MEMBER, label="unknown id"),
)


# --- Elections ---------------------------------------------------------------------------------------------


def _election_read() -> Arranged:
    election, voter = _election()
    return Arranged(owner=voter.user, kwargs={"election_id": election.id})


def _election_unknown() -> Arranged:
    return _unknown("election_id", _member().user)


def _nomination() -> Arranged:
    election, voter = _election()
    return Arranged(owner=voter.user, kwargs={"election_id": election.id}, body={"statement": "Fair fares."})


def _nomination_unknown() -> Arranged:
    return _unknown("election_id", _member().user, body={"statement": "Fair fares."})


def _ballot() -> Arranged:
    election, voter = _election(nominating=False)
    _move_election_to_voting(election)
    return Arranged(owner=voter.user, kwargs={"election_id": election.id}, body={"ranking": [str(voter.id)]})


def _ballot_unknown() -> Arranged:
    return _unknown("election_id", _member().user, body={"ranking": [str(uuid.uuid4())]})


def _election_result() -> Arranged:
    election, voter = _closed_election()
    return Arranged(owner=voter.user, kwargs={"election_id": election.id})


register(
    "governance-election",
    AccessCase(_election_read, "get", 200, outsider_status=NOT_A_MEMBER, label="nominating election"),
    AccessCase(_election_unknown, "get", 404, outsider_status=NOT_A_MEMBER, label="unknown id"),
)
register(
    "governance-election-nominations",
    AccessCase(_nomination, "post", 201, outsider_status=NOT_A_MEMBER, label="nominating election"),
    AccessCase(_nomination_unknown, "post", 404, outsider_status=NOT_A_MEMBER, label="unknown id"),
)
register(
    "governance-election-ballots",
    AccessCase(_ballot, "post", 201, outsider_status=NOT_A_MEMBER, label="cast, election voting"),
    AccessCase(_ballot_unknown, "post", 404, outsider_status=NOT_A_MEMBER, label="cast, unknown id"),
    # GET on this route is the public, anonymous ballot record (anyone may recount an election), so it has
    # no outsider to refuse; tests/governance/test_elections.py reads it as a non-member.
)
register(
    "governance-election-result",
    AccessCase(_election_result, "get", 200, outsider_status=NOT_A_MEMBER, label="closed election"),
    AccessCase(_election_unknown, "get", 404, outsider_status=NOT_A_MEMBER, label="unknown id"),
)


# --- Staff -------------------------------------------------------------------------------------------------


def _member_suspend() -> Arranged:
    member = _member()
    return Arranged(
        owner=StaffFactory(),
        kwargs={"member_id": member.id},
        body={"status": "suspended", "reason": "unpaid share dispute"},
    )


def _member_suspend_unknown() -> Arranged:
    return _unknown("member_id", StaffFactory(), body={"status": "suspended"})


# Staff routes refuse everyone else before looking at the id, so an outsider gets 403, not 404.
register(
    "staff-member-status",
    AccessCase(_member_suspend, "post", 200, outsider_status=STAFF_ONLY, label="active member"),
    AccessCase(_member_suspend_unknown, "post", 404, outsider_status=STAFF_ONLY, label="unknown id"),
)
