"""Proposals and votes: a member (or, for fare policy, a director) opens a proposal; its voters are
snapshotted; each vote is one secret ballot (by name for the board); the proposal is decided as soon as
the votes settle it, or when voting closes, and a passed fare policy or dividend takes effect then."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance import selectors
from governance.audit import AuditEvent, audit_append, audit_append_all
from governance.models import (
    Member,
    MemberStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Vote,
    VoteChoice,
    VoteReceipt,
    VoterRoll,
    Voters,
)
from governance.notices import proposal_decided_notify, proposal_opened_notify
from governance.services.dividends import dividend_allocate, dividend_payload_validated
from governance.services.fare_policy import fare_policy_adopt, fare_policy_payload_validated
from governance.services.limits import MAX_BODY_LENGTH, MAX_TITLE_LENGTH, MAX_VOTING_DAYS
from governance.services.receipts import receipt_new
from governance.tally import decide


def proposal_create(
    *, user: User, kind: str, title: str, body: str, payload: object, closes_at: datetime
) -> Proposal:
    """Open a proposal and snapshot its voters (the board's directors, or every member in good standing)."""
    if kind not in ProposalKind.values:
        raise InvalidInput(
            _("Unknown proposal kind."),
            details={"kind": [_("must be one of %(kinds)s") % {"kinds": ", ".join(ProposalKind.values)}]},
        )
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    if not title or not title.strip():
        errors["title"] = [_("must not be blank")]
    if closes_at <= now:
        errors["closes_at"] = [_("must be in the future")]
    elif closes_at > now + timedelta(days=MAX_VOTING_DAYS):
        errors["closes_at"] = [
            _("must be within %(max_voting_days)s days") % {"max_voting_days": MAX_VOTING_DAYS}
        ]
    if errors:
        raise InvalidInput(_("Some fields are not valid."), details=errors)
    member = selectors.current_member(user)
    if member is None or not member.in_good_standing:
        raise PermissionDenied(_("Only members in good standing may propose."), code="not_eligible")
    rule = selectors.decision_rule(kind)
    if rule.voters == Voters.BOARD and not selectors.is_director(member, now):
        raise PermissionDenied(_("Only directors may propose a fare policy."), code="not_a_director")

    if kind == ProposalKind.FARE_POLICY:
        payload = fare_policy_payload_validated(payload)
    elif kind == ProposalKind.DIVIDEND:
        payload = dividend_payload_validated(payload)
    elif payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise InvalidInput(_("payload must be an object."), details={"payload": [_("must be an object")]})

    with transaction.atomic():
        if rule.voters == Voters.BOARD:
            voters = list(selectors.directors_in_force(now))
        else:
            voters = list(Member.objects.filter(status=MemberStatus.ACTIVE))
        if not voters:
            raise Conflict(_("Nobody is eligible to vote on this."), code="no_eligible_voters")
        proposal = Proposal.objects.create(
            kind=kind,
            title=title.strip()[:MAX_TITLE_LENGTH],
            body=(body or "")[:MAX_BODY_LENGTH],
            payload=payload,
            voters=rule.voters,
            proposer=member,
            quorum=str(rule.quorum),
            threshold=str(rule.threshold),
            eligible=len(voters),
            opens_at=now,
            closes_at=closes_at,
        )
        VoterRoll.objects.bulk_create([VoterRoll(proposal=proposal, member=voter) for voter in voters])
        audit_append(
            kind="proposal.opened",
            payload={
                "proposal_id": proposal.id,
                "kind": kind,
                "title": proposal.title,
                "body_sha256": hashlib.sha256(proposal.body.encode()).hexdigest(),
                "payload": payload,
                "proposer": member.id,
                "voters": rule.voters,
                "eligible": [str(voter.id) for voter in sorted(voters, key=lambda v: str(v.id))],
                "quorum": proposal.quorum,
                "threshold": proposal.threshold,
                "opens_at": now,
                "closes_at": closes_at,
            },
        )
        proposal_opened_notify(proposal=proposal, voters=voters)
    return proposal


def proposal_vote(*, proposal_id: uuid.UUID | str, user: User, choice: str) -> str:
    """Cast one vote; returns the voter's receipt. Decides the proposal at once when the vote settles it."""
    if choice not in VoteChoice.values:
        raise InvalidInput(
            _("choice must be yes, no or abstain."), details={"choice": [_("must be yes, no or abstain")]}
        )
    member = selectors.current_member(user)
    receipt, digest = receipt_new()
    with transaction.atomic():
        # The row lock orders votes and the decision: no vote lands after a proposal is decided.
        proposal = Proposal.objects.select_for_update().filter(id=proposal_id).first()
        if proposal is None:
            raise NotFound(_("No such proposal."))
        now = timezone.now()
        if proposal.status != ProposalStatus.OPEN or now >= proposal.closes_at:
            raise Conflict(_("Voting on this proposal has closed."), code="voting_closed")
        if (
            member is None
            or not member.in_good_standing
            or not VoterRoll.objects.filter(proposal=proposal, member=member).exists()
        ):
            raise PermissionDenied(_("You are not eligible to vote on this proposal."), code="not_eligible")
        try:
            with transaction.atomic():
                VoteReceipt.objects.create(proposal=proposal, member=member, receipt_hash=digest, cast_at=now)
        except IntegrityError:
            raise Conflict(_("You have already voted on this proposal."), code="already_voted") from None
        by_name = proposal.voters == Voters.BOARD
        Vote.objects.create(
            proposal=proposal, choice=choice, receipt_hash=digest, director=member if by_name else None
        )
        entry: dict[str, Any] = {"proposal_id": proposal.id, "receipt_sha256": digest}
        if by_name:
            entry.update({"member_id": member.id, "choice": choice})
        decided = _decide(proposal, now=now, closed=False)
        audit_append_all([AuditEvent(kind="proposal.vote", payload=entry), *decided])
    return receipt


def _decide(proposal: Proposal, *, now: datetime, closed: bool) -> list[AuditEvent]:
    """Decide a locked proposal if its votes or the clock settle it; apply the effect in this transaction.

    Returns the decision's entries for the caller to append last, none while the proposal stays open."""
    counts = selectors.vote_counts_of([proposal.id])[proposal.id]
    decision = decide(
        selectors.proposal_rule(proposal),
        eligible=proposal.eligible,
        yes=counts["yes"],
        no=counts["no"],
        abstain=counts["abstain"],
        closed=closed,
    )
    if decision.status == ProposalStatus.OPEN:
        return []
    proposal.status = decision.status
    proposal.decided_at = now
    proposal.decision = {
        **decision.to_dict(),
        "decided_early": decision.decided_early,
        "reason": decision.reason,
    }
    events = [
        AuditEvent(
            kind="proposal.decided",
            payload={"proposal_id": proposal.id, "decided_at": now, **proposal.decision},
        )
    ]
    if decision.status == ProposalStatus.PASSED:
        if proposal.kind == ProposalKind.FARE_POLICY:
            proposal.effect, adopted = fare_policy_adopt(proposal, now=now)
            events.append(adopted)
        elif proposal.kind == ProposalKind.DIVIDEND:
            proposal.effect, allocated = dividend_allocate(proposal, now=now)
            events.append(allocated)
    proposal.save(update_fields=["status", "decided_at", "decision", "effect"])
    proposal_decided_notify(proposal=proposal)
    return events


def close_due_proposals(*, now: datetime | None = None) -> int:
    """Decide every open proposal whose voting has closed; returns how many were decided."""
    moment = now or timezone.now()
    decided = 0
    due = Proposal.objects.filter(status=ProposalStatus.OPEN, closes_at__lte=moment).values_list(
        "id", flat=True
    )
    for proposal_id in list(due[:500]):
        with transaction.atomic():
            proposal = (
                Proposal.objects.select_for_update(skip_locked=True)
                .filter(id=proposal_id, status=ProposalStatus.OPEN)
                .first()
            )
            if proposal is None:
                continue
            events = _decide(proposal, now=moment, closed=True)
            if events:
                audit_append_all(events)
                decided += 1
    return decided
