"""Governance actions: every write of the co-op's democracy goes through here, one transaction each, with its
audit entry in the same transaction (docs/governance.md).

Services take keyword-only arguments, raise ``backend.errors`` domain errors the edges shape into the
contract's error body, and leave races to the database (unique indexes, row locks).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry
from backend.fares.money import round_half_up
from backend.fares.policy import FarePolicy, PolicyValidationError
from governance import selectors
from governance.audit import audit_append
from governance.counting import IRV, SCOTTISH_STV_2007, count_irv, count_stv
from governance.dividends import MINIMUM_CASH_SHARE, allocate_patronage
from governance.models import (
    Ballot,
    BallotReceipt,
    BoardSeat,
    Candidate,
    DividendBasis,
    DividendStatement,
    Election,
    ElectionVoterRoll,
    Member,
    MemberStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    SeatSource,
    Vote,
    VoteChoice,
    VoteReceipt,
    VoterRoll,
    Voters,
)
from governance.tally import DecisionRule, decide, rule_for_kind

MAX_VOTING_DAYS = 90
MAX_TITLE_LENGTH = 200
MAX_BODY_LENGTH = 20_000


def _receipt() -> tuple[str, str]:
    """A fresh receipt for the voter and the hash the database keeps (the receipt itself is never stored)."""
    token = secrets.token_urlsafe(18)
    return token, hashlib.sha256(token.encode()).hexdigest()


def receipt_hash(receipt: str) -> str:
    return hashlib.sha256(receipt.encode()).hexdigest()


# --- Membership -------------------------------------------------------------------------------------------


def membership_join(*, user: Any) -> Member:
    """An approved driver subscribes one member share; the unpaid price is withheld from earnings later."""
    profile = getattr(user, "driver_profile", None) if getattr(user, "is_driver", False) else None
    if profile is None or not profile.is_approved:
        raise PermissionDenied(
            "Only approved drivers may join the co-operative.", code="not_an_approved_driver"
        )
    price = int(settings.ROCHDALE_SHARE_PRICE_MINOR)
    currency = settings.ROCHDALE_CURRENCY
    with transaction.atomic():
        try:
            with transaction.atomic():
                member = Member.objects.create(user=user, share_price_minor=price, currency=currency)
        except IntegrityError:
            raise Conflict("You are already a member.", code="already_member") from None
        if price:
            ledger.post_entry(
                key=f"member:{member.id}:subscription",
                kind="share_subscription",
                currency=currency,
                memo=f"Member share subscribed by member {member.id}",
                lines=[
                    debit(AccountKind.SHARE_SUBSCRIPTIONS, user.id, price),
                    credit(AccountKind.MEMBER_EQUITY, user.id, price),
                ],
            )
        audit_append(
            kind="membership.joined",
            payload={
                "member_id": member.id,
                "share_price": {"amount": price, "currency": currency},
                "joined_at": member.joined_at,
            },
        )
    return member


def share_instalment_withhold(*, trip: Any) -> None:
    """Withhold the next share instalment from a completed trip's pay (rate x pay, capped at what remains).

    Called right after the trip's fare is posted, in the same transaction. Idempotent per trip.
    """
    if not trip.driver_id or not trip.driver_pay_minor:
        return
    key = f"trip:{trip.id}:share_instalment"
    if JournalEntry.objects.filter(key=key).exists():
        return
    member = (
        Member.objects.select_for_update()
        .filter(user_id=trip.driver_id)
        .exclude(status=MemberStatus.WITHDRAWN)
        .first()
    )
    if member is None or member.currency != trip.currency:
        return
    outstanding = selectors.share_outstanding_minor(member)
    if outstanding <= 0:
        return
    rate = Fraction(Decimal(settings.ROCHDALE_SHARE_INSTALMENT_RATE))
    amount = min(round_half_up(rate * trip.driver_pay_minor), outstanding)
    if amount <= 0:
        return
    ledger.post_entry(
        key=key,
        kind="share_instalment",
        currency=trip.currency,
        trip_id=trip.id,
        memo=f"Share instalment of member {member.id} withheld from trip {trip.id}",
        lines=[
            debit(AccountKind.DRIVER_PAYABLE, trip.driver_id, amount),
            credit(AccountKind.SHARE_SUBSCRIPTIONS, trip.driver_id, amount),
        ],
        metadata={"member_id": str(member.id)},
    )


def membership_withdraw(*, user: Any) -> Member:
    """A member leaves: the unpaid part of the share is cancelled, the paid part repaid as the bylaws say
    (``ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL``: ``paid`` repays it to the driver's earnings, ``none``
    keeps it in the co-op's surplus), and any board seat ends."""
    now = timezone.now()
    with transaction.atomic():
        member = (
            Member.objects.select_for_update()
            .filter(user=user)
            .exclude(status=MemberStatus.WITHDRAWN)
            .first()
        )
        if member is None:
            raise NotFound("You are not a member.", code="not_a_member")
        outstanding = selectors.share_outstanding_minor(member)
        paid = member.share_price_minor - outstanding
        mode = settings.ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL
        repaid = paid if mode == "paid" else 0
        lines = [
            debit(AccountKind.MEMBER_EQUITY, user.id, outstanding),
            credit(AccountKind.SHARE_SUBSCRIPTIONS, user.id, outstanding),
            debit(AccountKind.MEMBER_EQUITY, user.id, paid),
            credit(AccountKind.DRIVER_PAYABLE, user.id, repaid),
            credit(AccountKind.SURPLUS, None, paid - repaid),
        ]
        if outstanding or paid:
            ledger.post_entry(
                key=f"member:{member.id}:withdrawal",
                kind="share_withdrawal",
                currency=member.currency,
                memo=f"Member {member.id} withdrew; share repaid: {repaid}",
                lines=lines,
            )
        _end_seats(member=member, at=now, reason="the director withdrew from membership")
        member.status = MemberStatus.WITHDRAWN
        member.status_changed_at = now
        member.withdrawn_at = now
        member.save(update_fields=["status", "status_changed_at", "withdrawn_at"])
        audit_append(
            kind="membership.withdrawn",
            payload={
                "member_id": member.id,
                "repaid": {"amount": repaid, "currency": member.currency},
                "cancelled_unpaid": {"amount": outstanding, "currency": member.currency},
            },
        )
    return member


def membership_set_status(*, member_id: Any, status: str, actor: Any, reason: str = "") -> Member:
    """Staff suspend a member (no voting, proposing or standing) or reinstate them."""
    if status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        raise InvalidInput("status must be active or suspended.", details={"status": ["not a valid status"]})
    with transaction.atomic():
        member = Member.objects.select_for_update().filter(id=member_id).first()
        if member is None:
            raise NotFound("No such member.")
        if member.status == MemberStatus.WITHDRAWN:
            raise Conflict("A withdrawn membership cannot change status.", code="member_withdrawn")
        if member.status == status:
            return member
        member.status = status
        member.status_changed_at = timezone.now()
        member.save(update_fields=["status", "status_changed_at"])
        audit_append(
            kind="membership.status_changed",
            payload={"member_id": member.id, "status": status, "by": actor.id, "reason": reason[:300]},
        )
    return member


# --- Board ------------------------------------------------------------------------------------------------


def _end_seats(*, member: Member, at: datetime, reason: str) -> None:
    for seat in selectors.seats_in_force(at).filter(member=member):
        seat.ended_at = at
        seat.ended_reason = reason[:200]
        seat.save(update_fields=["ended_at", "ended_reason"])
        audit_append(
            kind="board.seat_ended",
            payload={"seat_id": seat.id, "member_id": member.id, "ended_at": at, "reason": reason},
        )


def _seat(
    *, member: Member, term_ends: datetime, source: str, election: Election | None, at: datetime
) -> BoardSeat:
    seat = BoardSeat.objects.create(
        member=member, starts_at=at, term_ends=term_ends, source=source, election=election
    )
    audit_append(
        kind="board.seat_added",
        payload={
            "seat_id": seat.id,
            "member_id": member.id,
            "source": source,
            "election_id": election.id if election else None,
            "starts_at": at,
            "term_ends": term_ends,
        },
    )
    return seat


def board_seat_found(*, member_id: Any, actor: Any, term_ends: datetime | None = None) -> BoardSeat:
    """Staff seat a founding director (before the first election)."""
    now = timezone.now()
    if term_ends is None:
        term_ends = now + timedelta(days=settings.ROCHDALE_BOARD_TERM_DAYS)
    if term_ends <= now:
        raise InvalidInput(
            "term_ends must be in the future.", details={"term_ends": ["must be in the future"]}
        )
    with transaction.atomic():
        member = Member.objects.select_for_update().filter(id=member_id).first()
        if member is None:
            raise NotFound("No such member.")
        if not member.in_good_standing:
            raise Conflict(
                "Only a member in good standing may sit on the board.", code="not_in_good_standing"
            )
        if selectors.seats_in_force(now).filter(member=member).exists():
            raise Conflict("This member already holds a seat.", code="already_director")
        return _seat(member=member, term_ends=term_ends, source=SeatSource.FOUNDING, election=None, at=now)


# --- Proposals --------------------------------------------------------------------------------------------


def decision_rule(kind: str) -> DecisionRule:
    """The rule for a kind: tally.py's defaults with the quorum and threshold from settings."""
    base = rule_for_kind(kind)
    configured = getattr(settings, "ROCHDALE_PROPOSAL_RULES", {}).get(kind, {})
    return replace(
        base,
        quorum=Fraction(configured.get("quorum", base.quorum)),
        threshold=Fraction(configured.get("threshold", base.threshold)),
    )


def proposal_rule(proposal: Proposal) -> DecisionRule:
    """The rule fixed on the proposal when it opened."""
    return replace(
        rule_for_kind(proposal.kind), quorum=Fraction(proposal.quorum), threshold=Fraction(proposal.threshold)
    )


def _validated_fare_policy(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput(
            "A fare policy proposal carries the policy in its payload.", code="invalid_fare_policy"
        )
    try:
        policy = FarePolicy.from_document(payload)
    except PolicyValidationError as error:
        raise InvalidInput(str(error), code="invalid_fare_policy", details=error.details) from None
    if payload.get("version") is not None:
        raise InvalidInput(
            "The server numbers policy versions; leave version out.",
            code="invalid_fare_policy",
            details={"version": ["must not be set"]},
        )
    document = policy.to_document()
    document.pop("version", None)
    document["effective_at"] = payload.get("effective_at")
    if document["effective_at"] is None:
        document.pop("effective_at")
    return document


def _parse_date(raw: Any, field: str, errors: dict[str, list[str]]) -> date | None:
    if not isinstance(raw, str):
        errors[field] = ["must be a date, YYYY-MM-DD"]
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[field] = ["must be a date, YYYY-MM-DD"]
        return None


def _validated_dividend(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput("A dividend proposal needs a payload.", code="invalid_dividend")
    errors: dict[str, list[str]] = {}
    surplus = payload.get("surplus")
    currency = settings.ROCHDALE_CURRENCY
    amount = surplus.get("amount") if isinstance(surplus, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        errors["surplus.amount"] = ["must be a positive integer in minor units"]
    if not isinstance(surplus, dict) or surplus.get("currency") != currency:
        errors["surplus.currency"] = [f"must be {currency}"]
    start = _parse_date(payload.get("period_start"), "period_start", errors)
    end = _parse_date(payload.get("period_end"), "period_end", errors)
    if start and end and end < start:
        errors["period_end"] = ["must not be before period_start"]
    basis = payload.get("basis")
    if basis not in DividendBasis.values:
        errors["basis"] = [f"must be one of {', '.join(DividendBasis.values)}"]
    minimum = max(Decimal(settings.ROCHDALE_DIVIDEND_MIN_CASH_SHARE), MINIMUM_CASH_SHARE)
    raw_share = payload.get("cash_share")
    try:
        share = Decimal(raw_share) if isinstance(raw_share, str) else None
    except InvalidOperation:
        share = None
    if share is None or not share.is_finite() or not minimum <= share <= 1:
        errors["cash_share"] = [f'must be a decimal string from "{minimum}" to "1"']
    if errors:
        raise InvalidInput("The dividend proposal is not valid.", code="invalid_dividend", details=errors)
    return {
        "surplus": {"amount": amount, "currency": currency},
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "basis": basis,
        "cash_share": str(share),
    }


def proposal_create(
    *, user: Any, kind: str, title: str, body: str, payload: Any, closes_at: datetime
) -> Proposal:
    """Open a proposal and snapshot its voters (the board's directors, or every member in good standing)."""
    if kind not in ProposalKind.values:
        raise InvalidInput(
            "Unknown proposal kind.", details={"kind": [f"must be one of {', '.join(ProposalKind.values)}"]}
        )
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    if not title or not title.strip():
        errors["title"] = ["must not be blank"]
    if closes_at <= now:
        errors["closes_at"] = ["must be in the future"]
    elif closes_at > now + timedelta(days=MAX_VOTING_DAYS):
        errors["closes_at"] = [f"must be within {MAX_VOTING_DAYS} days"]
    if errors:
        raise InvalidInput("Some fields are not valid.", details=errors)
    member = selectors.current_member(user)
    if member is None or not member.in_good_standing:
        raise PermissionDenied("Only members in good standing may propose.", code="not_eligible")
    rule = decision_rule(kind)
    if rule.voters == Voters.BOARD and not selectors.is_director(member, now):
        raise PermissionDenied("Only directors may propose a fare policy.", code="not_a_director")

    if kind == ProposalKind.FARE_POLICY:
        payload = _validated_fare_policy(payload)
    elif kind == ProposalKind.DIVIDEND:
        payload = _validated_dividend(payload)
    elif payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        raise InvalidInput("payload must be an object.", details={"payload": ["must be an object"]})

    with transaction.atomic():
        if rule.voters == Voters.BOARD:
            voters = list(selectors.directors_in_force(now))
        else:
            voters = list(Member.objects.filter(status=MemberStatus.ACTIVE))
        if not voters:
            raise Conflict("Nobody is eligible to vote on this.", code="no_eligible_voters")
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
    return proposal


def proposal_vote(*, proposal_id: Any, user: Any, choice: str) -> str:
    """Cast one vote; returns the voter's receipt. Decides the proposal at once when the vote settles it."""
    if choice not in VoteChoice.values:
        raise InvalidInput(
            "choice must be yes, no or abstain.", details={"choice": ["must be yes, no or abstain"]}
        )
    member = selectors.current_member(user)
    receipt, digest = _receipt()
    with transaction.atomic():
        # The row lock orders votes and the decision: no vote lands after a proposal is decided.
        proposal = Proposal.objects.select_for_update().filter(id=proposal_id).first()
        if proposal is None:
            raise NotFound("No such proposal.")
        now = timezone.now()
        if proposal.status != ProposalStatus.OPEN or now >= proposal.closes_at:
            raise Conflict("Voting on this proposal has closed.", code="voting_closed")
        if (
            member is None
            or not member.in_good_standing
            or not VoterRoll.objects.filter(proposal=proposal, member=member).exists()
        ):
            raise PermissionDenied("You are not eligible to vote on this proposal.", code="not_eligible")
        try:
            with transaction.atomic():
                VoteReceipt.objects.create(proposal=proposal, member=member, receipt_hash=digest, cast_at=now)
        except IntegrityError:
            raise Conflict("You have already voted on this proposal.", code="already_voted") from None
        by_name = proposal.voters == Voters.BOARD
        Vote.objects.create(
            proposal=proposal, choice=choice, receipt_hash=digest, director=member if by_name else None
        )
        entry: dict[str, Any] = {"proposal_id": proposal.id, "receipt_sha256": digest}
        if by_name:
            entry.update({"member_id": member.id, "choice": choice})
        audit_append(kind="proposal.vote", payload=entry)
        _decide(proposal, now=now, closed=False)
    return receipt


def vote_counts(proposal: Proposal) -> dict[str, int]:
    counts = dict(
        Vote.objects.filter(proposal=proposal).values_list("choice").annotate(n=Count("id")).order_by()
    )
    return {choice: counts.get(choice, 0) for choice in VoteChoice.values}


def _decide(proposal: Proposal, *, now: datetime, closed: bool) -> bool:
    """Decide a locked proposal if its votes or the clock settle it; apply the effect in this transaction."""
    counts = vote_counts(proposal)
    decision = decide(
        proposal_rule(proposal),
        eligible=proposal.eligible,
        yes=counts["yes"],
        no=counts["no"],
        abstain=counts["abstain"],
        closed=closed,
    )
    if decision.status == ProposalStatus.OPEN:
        return False
    proposal.status = decision.status
    proposal.decided_at = now
    proposal.decision = {
        **decision.to_dict(),
        "decided_early": decision.decided_early,
        "reason": decision.reason,
    }
    audit_append(
        kind="proposal.decided",
        payload={"proposal_id": proposal.id, "decided_at": now, **proposal.decision},
    )
    if decision.status == ProposalStatus.PASSED:
        if proposal.kind == ProposalKind.FARE_POLICY:
            proposal.effect = _adopt_fare_policy(proposal, now=now)
        elif proposal.kind == ProposalKind.DIVIDEND:
            proposal.effect = _allocate_dividend(proposal, now=now)
    proposal.save(update_fields=["status", "decided_at", "decision", "effect"])
    return True


def _adopt_fare_policy(proposal: Proposal, *, now: datetime) -> dict[str, Any]:
    from backend.fares.services import policy_version_create

    document = dict(proposal.payload)
    requested = document.pop("effective_at", None)
    # A date already past means "at once": a policy never takes effect before the vote that adopted it.
    effective_at = max(datetime.fromisoformat(requested), now) if requested else now
    version = policy_version_create(
        document=document, effective_at=effective_at, source="governance", proposal_id=proposal.id
    )
    number = getattr(version, "version", version)
    audit_append(
        kind="fare_policy.adopted",
        payload={"proposal_id": proposal.id, "version": number, "effective_at": effective_at},
    )
    return {"policy_version": number, "effective_at": effective_at.isoformat()}


def _allocate_dividend(proposal: Proposal, *, now: datetime) -> dict[str, Any]:
    payload = proposal.payload
    start, end = date.fromisoformat(payload["period_start"]), date.fromisoformat(payload["period_end"])
    surplus = payload["surplus"]["amount"]
    currency = payload["surplus"]["currency"]
    members = {str(m.id): m for m in Member.objects.exclude(status=MemberStatus.WITHDRAWN)}
    measures = selectors.patronage_by_member(list(members.values()), start=start, end=end)
    basis = payload["basis"]
    weights = {member_id: measure.weight(basis) for member_id, measure in measures.items()}
    allocations = allocate_patronage(surplus, weights, Decimal(payload["cash_share"]))
    if allocations.reason and not any(a.total for a in allocations):
        audit_append(
            kind="dividend.allocated",
            payload={"proposal_id": proposal.id, "allocated": 0, "reason": allocations.reason},
        )
        return {"allocated": {"amount": 0, "currency": currency}, "reason": allocations.reason}
    lines = [debit(AccountKind.SURPLUS, None, surplus)]
    statements = []
    for allocation in allocations:
        member = members[allocation.member_id]
        lines.append(credit(AccountKind.DIVIDENDS_PAYABLE, member.user_id, allocation.cash))
        lines.append(credit(AccountKind.MEMBER_CAPITAL, member.user_id, allocation.capital))
        statements.append(
            DividendStatement(
                proposal=proposal,
                member=member,
                period_start=start,
                period_end=end,
                basis=basis,
                patronage=measures[allocation.member_id].label(basis),
                total_minor=allocation.total,
                cash_minor=allocation.cash,
                capital_minor=allocation.capital,
                currency=currency,
                created_at=now,
            )
        )
    entry, _ = ledger.post_entry(
        key=f"dividend:{proposal.id}",
        kind="patronage_dividend",
        currency=currency,
        memo=f"Patronage dividend of proposal {proposal.id}",
        lines=lines,
        metadata={"proposal_id": str(proposal.id), "basis": basis},
    )
    DividendStatement.objects.bulk_create(statements)
    audit_append(
        kind="dividend.allocated",
        payload={
            "proposal_id": proposal.id,
            "journal_entry": entry.id,
            "surplus": surplus,
            "cash_total": allocations.cash_total,
            "capital_total": allocations.capital_total,
            "allocations": [
                {"member_id": a.member_id, "total": a.total, "cash": a.cash, "capital": a.capital}
                for a in allocations
            ],
        },
    )
    return {
        "allocated": {"amount": surplus, "currency": currency},
        "cash": {"amount": allocations.cash_total, "currency": currency},
        "capital": {"amount": allocations.capital_total, "currency": currency},
        "members": len(statements),
        "journal_entry": str(entry.id),
    }


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
            if proposal is not None and _decide(proposal, now=moment, closed=True):
                decided += 1
    return decided


# --- Elections --------------------------------------------------------------------------------------------


def election_create(
    *,
    user: Any,
    title: str,
    seats: int,
    nominations_close_at: datetime,
    voting_closes_at: datetime,
    term_days: int | None = None,
) -> Election:
    """Staff or the board call an election; its voters are the members in good standing now."""
    now = timezone.now()
    member = selectors.current_member(user)
    if not user.is_staff and not (member and member.in_good_standing and selectors.is_director(member, now)):
        raise PermissionDenied("Only staff or directors may call an election.", code="not_a_director")
    errors: dict[str, list[str]] = {}
    if not title or not title.strip():
        errors["title"] = ["must not be blank"]
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= 25:
        errors["seats"] = ["must be from 1 to 25"]
    if nominations_close_at <= now:
        errors["nominations_close_at"] = ["must be in the future"]
    if voting_closes_at <= nominations_close_at:
        errors["voting_closes_at"] = ["must be after nominations_close_at"]
    elif voting_closes_at > now + timedelta(days=MAX_VOTING_DAYS):
        errors["voting_closes_at"] = [f"must be within {MAX_VOTING_DAYS} days"]
    days = settings.ROCHDALE_BOARD_TERM_DAYS if term_days is None else term_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        errors["term_days"] = ["must be from 1 to 3660"]
    if errors:
        raise InvalidInput("Some fields are not valid.", details=errors)
    with transaction.atomic():
        voters = list(Member.objects.filter(status=MemberStatus.ACTIVE))
        election = Election.objects.create(
            title=title.strip()[:MAX_TITLE_LENGTH],
            seats=seats,
            term_days=days,
            opens_at=now,
            nominations_close_at=nominations_close_at,
            voting_closes_at=voting_closes_at,
            created_by=user,
            eligible=len(voters),
        )
        ElectionVoterRoll.objects.bulk_create(
            [ElectionVoterRoll(election=election, member=v) for v in voters]
        )
        audit_append(
            kind="election.opened",
            payload={
                "election_id": election.id,
                "title": election.title,
                "seats": seats,
                "term_days": days,
                "nominations_close_at": nominations_close_at,
                "voting_closes_at": voting_closes_at,
                "eligible": len(voters),
                "lot_seed": str(election.id),
                "called_by": user.id,
            },
        )
    return election


def _locked_election(election_id: Any) -> Election:
    election = Election.objects.select_for_update().filter(id=election_id).first()
    if election is None:
        raise NotFound("No such election.")
    return election


def election_nominate(*, election_id: Any, user: Any, statement: str = "") -> Candidate:
    """A member in good standing stands for election (self-nomination, during the nomination window)."""
    member = selectors.current_member(user)
    with transaction.atomic():
        election = _locked_election(election_id)
        if election.phase() != "nominating":
            raise Conflict("Nominations for this election are closed.", code="nominations_closed")
        if member is None or not member.in_good_standing:
            raise PermissionDenied("Only members in good standing may stand.", code="not_eligible")
        try:
            with transaction.atomic():
                candidate = Candidate.objects.create(
                    election=election, member=member, statement=statement[:2000]
                )
        except IntegrityError:
            raise Conflict("You are already standing in this election.", code="already_nominated") from None
        audit_append(kind="election.nominated", payload={"election_id": election.id, "member_id": member.id})
    return candidate


def election_ballot_cast(*, election_id: Any, user: Any, ranking: Any) -> str:
    """Cast a ranked ballot (candidate member ids, most preferred first); returns the voter's receipt.

    The election row is locked first, as `election_close` locks it: a ballot that passed the "voting"
    check is written before the count can read the ballots, and a ballot that waited for a count sees the
    election closed."""
    member = selectors.current_member(user)
    receipt, digest = _receipt()
    with transaction.atomic():
        election = _locked_election(election_id)
        if election.phase() != "voting":
            raise Conflict("This election is not taking ballots now.", code="voting_closed")
        if (
            member is None
            or not member.in_good_standing
            or not ElectionVoterRoll.objects.filter(election=election, member=member).exists()
        ):
            raise PermissionDenied("You are not eligible to vote in this election.", code="not_eligible")
        candidates = {str(c) for c in election.candidates.values_list("member_id", flat=True)}
        if not isinstance(ranking, list) or not ranking:
            raise InvalidInput(
                "ranking must list at least one candidate.", details={"ranking": ["must not be empty"]}
            )
        names = [str(item) for item in ranking]
        if len(set(names)) != len(names) or not set(names) <= candidates:
            raise InvalidInput(
                "ranking must name each candidate at most once.",
                details={"ranking": ["unknown or repeated candidate"]},
            )
        try:
            with transaction.atomic():
                BallotReceipt.objects.create(election=election, member=member, receipt_hash=digest)
        except IntegrityError:
            raise Conflict("You have already voted in this election.", code="already_voted") from None
        Ballot.objects.create(election=election, ranking=names, receipt_hash=digest)
        audit_append(kind="election.ballot", payload={"election_id": election.id, "receipt_sha256": digest})
    return receipt


def election_close(*, election_id: Any, now: datetime | None = None) -> Election:
    """Count a finished election and seat its winners (IRV for one seat, STV for several)."""
    moment = now or timezone.now()
    with transaction.atomic():
        election = _locked_election(election_id)
        if election.closed_at is not None:
            return election
        if moment < election.voting_closes_at:
            raise Conflict("Voting in this election is still open.", code="voting_open")
        record = selectors.ballot_record(election)
        standing = record["candidates"]
        withdrawn = record["withdrawn"]
        if election.seats == 1:
            result = count_irv(record["ballots"], standing, withdrawn=withdrawn, lot_seed=record["lot_seed"])
        else:
            result = count_stv(
                record["ballots"], standing, election.seats, withdrawn=withdrawn, lot_seed=record["lot_seed"]
            )
        election.closed_at = moment
        election.result = result.to_dict()
        election.save(update_fields=["closed_at", "result"])
        audit_append(
            kind="election.closed",
            payload={
                "election_id": election.id,
                "method": result.method,
                "elected": list(result.elected),
                "valid_ballots": result.valid_ballots,
                "quota": str(result.quota),
            },
        )
        term_ends = moment + timedelta(days=election.term_days)
        for member_id in result.elected:
            member = Member.objects.select_for_update().get(id=member_id)
            _end_seats(member=member, at=moment, reason="re-elected to a new term")
            _seat(
                member=member, term_ends=term_ends, source=SeatSource.ELECTION, election=election, at=moment
            )
    return election


def close_due_elections(*, now: datetime | None = None) -> int:
    moment = now or timezone.now()
    due = Election.objects.filter(closed_at__isnull=True, voting_closes_at__lte=moment).values_list(
        "id", flat=True
    )
    ids = list(due[:50])
    for election_id in ids:
        election_close(election_id=election_id, now=moment)
    return len(ids)


__all__ = [
    "IRV",
    "SCOTTISH_STV_2007",
    "board_seat_found",
    "close_due_elections",
    "close_due_proposals",
    "decision_rule",
    "election_ballot_cast",
    "election_close",
    "election_create",
    "election_nominate",
    "membership_join",
    "membership_set_status",
    "membership_withdraw",
    "proposal_create",
    "proposal_vote",
    "receipt_hash",
    "share_instalment_withhold",
    "vote_counts",
]
