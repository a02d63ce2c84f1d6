"""What members are told about the co-op's decisions (docs/notifications.md): a proposal opened for their
vote and its decision, an election called, its ballot open, and its count.

Each goes to the snapshotted roll (a proposal's `VoterRoll`, an election's `ElectionVoterRoll`) with
`notify_each`: written from a task after the governance transaction commits, recorded once per message so
a rerun (a retried close, the sweep) never tells anyone twice, and held through each member's quiet hours.
Links point at the members' portal (`ROCHDALE_PUBLIC_URL` + /members/).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from backend.notifications.services import notify_each
from governance.models import Election, ElectionVoterRoll, Member, Proposal, ProposalStatus, VoterRoll


def _portal_link(path: str = "") -> str:
    return settings.ROCHDALE_PUBLIC_URL.rstrip("/") + "/members/" + path


def _local(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%a %d %b %H:%M") if moment else ""


def _users_of_members(member_ids: list[object]) -> list[object]:
    return list(Member.objects.filter(id__in=member_ids).values_list("user_id", flat=True))


def proposal_opened_notify(*, proposal: Proposal, voters: list[Member]) -> None:
    """Tell the proposal's voters it is open for their vote (after the opening commits)."""
    notify_each(
        user_ids=[voter.user_id for voter in voters],
        event="proposal_opened",
        context={
            "proposal_id": str(proposal.id),
            "title": proposal.title,
            "closes_local": _local(proposal.closes_at),
            "link": _portal_link(f"proposals/{proposal.id}/"),
        },
        dedup_key=f"proposal_opened:{proposal.id}",
    )


def proposal_decided_notify(*, proposal: Proposal) -> None:
    """Tell the proposal's voters how it was decided (after the decision commits)."""
    decision = proposal.decision or {}
    roll = list(VoterRoll.objects.filter(proposal=proposal).values_list("member_id", flat=True))
    notify_each(
        user_ids=_users_of_members(roll),
        event="proposal_passed" if proposal.status == ProposalStatus.PASSED else "proposal_failed",
        context={
            "proposal_id": str(proposal.id),
            "title": proposal.title,
            "yes": decision.get("yes", 0),
            "no": decision.get("no", 0),
            "abstain": decision.get("abstain", 0),
            "link": _portal_link(f"proposals/{proposal.id}/"),
        },
        dedup_key=f"proposal_decided:{proposal.id}",
    )


def _election_roll_users(election: Election) -> list[object]:
    roll = list(ElectionVoterRoll.objects.filter(election=election).values_list("member_id", flat=True))
    return _users_of_members(roll)


def _election_context(election: Election) -> dict[str, object]:
    return {
        "election_id": str(election.id),
        "title": election.title,
        "seats": election.seats,
        "nominations_close_local": _local(election.nominations_close_at),
        "voting_closes_local": _local(election.voting_closes_at),
        "link": _portal_link(f"elections/{election.id}/"),
    }


def election_called_notify(*, election: Election, voters: list[Member]) -> None:
    """Tell the election's voters it is called and until when they may stand."""
    notify_each(
        user_ids=[voter.user_id for voter in voters],
        event="election_called",
        context=_election_context(election),
        dedup_key=f"election_called:{election.id}",
    )


def ballots_open_notify(*, now: datetime | None = None) -> int:
    """Tell the voters of every election whose nominations have closed and whose voting is open that their
    ballot is open (once per election, however often this runs); returns the elections newly told."""
    moment = now or timezone.now()
    voting = Election.objects.filter(
        closed_at__isnull=True, nominations_close_at__lte=moment, voting_closes_at__gt=moment
    )
    told = 0
    for election in voting:
        told += notify_each(
            user_ids=_election_roll_users(election),
            event="ballot_open",
            context=_election_context(election),
            dedup_key=f"ballot_open:{election.id}",
        )
    return told


def election_results_notify(*, election: Election, elected_names: list[str]) -> None:
    """Tell the election's voters it is counted and who was elected (after the count commits)."""
    notify_each(
        user_ids=_election_roll_users(election),
        event="election_results",
        context={**_election_context(election), "elected": ", ".join(elected_names) or "-"},
        dedup_key=f"election_results:{election.id}",
    )
