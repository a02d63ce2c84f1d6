"""Board elections: staff or the board call one, members in good standing stand and cast ranked ballots,
and the count (governance/counting.py: IRV for one seat, Scottish STV for several) seats the winners."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance import selectors
from governance.audit import AuditEvent, audit_append, audit_append_all
from governance.counting import count_irv, count_stv
from governance.models import (
    Ballot,
    BallotReceipt,
    Candidate,
    CandidateWithdrawal,
    Election,
    ElectionVoterRoll,
    Member,
    MemberStatus,
    SeatSource,
)
from governance.notices import election_called_notify, election_results_notify
from governance.services.board import board_seat_add, board_seats_end
from governance.services.limits import MAX_TITLE_LENGTH, MAX_VOTING_DAYS
from governance.services.receipts import receipt_new


def election_create(
    *,
    user: User,
    title: str,
    seats: int,
    nominations_close_at: datetime,
    voting_closes_at: datetime,
    term_days: int | None = None,
) -> Election:
    """Staff or the board call an election; its voters are the members in good standing now."""
    now = timezone.now()
    if not user.is_staff and not selectors.is_director(selectors.current_member(user), now):
        raise PermissionDenied(_("Only staff or directors may call an election."), code="not_a_director")
    errors: dict[str, list[str]] = {}
    if not title or not title.strip():
        errors["title"] = [_("must not be blank")]
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= 25:
        errors["seats"] = [_("must be from 1 to 25")]
    if nominations_close_at <= now:
        errors["nominations_close_at"] = [_("must be in the future")]
    if voting_closes_at <= nominations_close_at:
        errors["voting_closes_at"] = [_("must be after nominations_close_at")]
    elif voting_closes_at > now + timedelta(days=MAX_VOTING_DAYS):
        errors["voting_closes_at"] = [
            _("must be within %(max_voting_days)s days") % {"max_voting_days": MAX_VOTING_DAYS}
        ]
    days = settings.ROCHDALE_BOARD_TERM_DAYS if term_days is None else term_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        errors["term_days"] = [_("must be from 1 to 3660")]
    if errors:
        raise InvalidInput(_("Some fields are not valid."), details=errors)
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
        election_called_notify(election=election, voters=voters)
    return election


def _locked_election(election_id: uuid.UUID | str) -> Election:
    election = Election.objects.select_for_update().filter(id=election_id).first()
    if election is None:
        raise NotFound(_("No such election."))
    return election


def election_nominate(*, election_id: uuid.UUID | str, user: User, statement: str = "") -> Candidate:
    """A member in good standing stands for election (self-nomination, during the nomination window)."""
    member = selectors.current_member(user)
    with transaction.atomic():
        election = _locked_election(election_id)
        if election.phase() != "nominating":
            raise Conflict(_("Nominations for this election are closed."), code="nominations_closed")
        if member is None or not member.in_good_standing:
            raise PermissionDenied(_("Only members in good standing may stand."), code="not_eligible")
        if CandidateWithdrawal.objects.filter(
            candidate__election=election, candidate__member=member
        ).exists():
            raise Conflict(
                _("You withdrew from this election; a withdrawal is final."), code="candidacy_withdrawn"
            )
        try:
            with transaction.atomic():
                candidate = Candidate.objects.create(
                    election=election, member=member, statement=statement[:2000]
                )
        except IntegrityError:
            raise Conflict(
                _("You are already standing in this election."), code="already_nominated"
            ) from None
        audit_append(kind="election.nominated", payload={"election_id": election.id, "member_id": member.id})
    return candidate


def election_withdraw(*, election_id: uuid.UUID | str, user: User) -> CandidateWithdrawal:
    """A candidate stands down, while nominations are open (once voting starts the ballot is fixed, as in
    the Scottish rules the count follows; a candidate who leaves the co-op later is still passed over by
    the count). Final: they cannot stand again in this election."""
    member = selectors.current_member(user)
    with transaction.atomic():
        election = _locked_election(election_id)
        if election.phase() != "nominating":
            raise Conflict(
                _("Nominations for this election are closed, so the ballot can no longer change."),
                code="nominations_closed",
            )
        candidate = (
            Candidate.objects.filter(election=election, member=member).first() if member is not None else None
        )
        if candidate is None:
            raise Conflict(_("You are not standing in this election."), code="not_a_candidate")
        try:
            with transaction.atomic():
                withdrawal = CandidateWithdrawal.objects.create(candidate=candidate)
        except IntegrityError:
            raise Conflict(_("You have withdrawn already."), code="already_withdrawn") from None
        audit_append(kind="election.withdrawn", payload={"election_id": election.id, "member_id": member.id})
    return withdrawal


def election_ballot_cast(*, election_id: uuid.UUID | str, user: User, ranking: object) -> str:
    """Cast a ranked ballot (candidate member ids, most preferred first); returns the voter's receipt.

    The election row is locked first, as `election_close` locks it: a ballot that passed the "voting"
    check is written before the count can read the ballots, and a ballot that waited for a count sees the
    election closed."""
    member = selectors.current_member(user)
    receipt, digest = receipt_new()
    with transaction.atomic():
        election = _locked_election(election_id)
        if election.phase() != "voting":
            raise Conflict(_("This election is not taking ballots now."), code="voting_closed")
        if (
            member is None
            or not member.in_good_standing
            or not ElectionVoterRoll.objects.filter(election=election, member=member).exists()
        ):
            raise PermissionDenied(_("You are not eligible to vote in this election."), code="not_eligible")
        candidates = {
            str(c) for c in selectors.candidates_standing(election).values_list("member_id", flat=True)
        }
        if not isinstance(ranking, list) or not ranking:
            raise InvalidInput(
                _("ranking must list at least one candidate."), details={"ranking": [_("must not be empty")]}
            )
        names = [str(item) for item in ranking]
        if len(set(names)) != len(names) or not set(names) <= candidates:
            raise InvalidInput(
                _("ranking must name each candidate at most once."),
                details={"ranking": [_("unknown or repeated candidate")]},
            )
        try:
            with transaction.atomic():
                BallotReceipt.objects.create(election=election, member=member, receipt_hash=digest)
        except IntegrityError:
            raise Conflict(_("You have already voted in this election."), code="already_voted") from None
        Ballot.objects.create(election=election, ranking=names, receipt_hash=digest)
        audit_append(kind="election.ballot", payload={"election_id": election.id, "receipt_sha256": digest})
    return receipt


def election_close(*, election_id: uuid.UUID | str, now: datetime | None = None) -> Election:
    """Count a finished election and seat its winners (IRV for one seat, STV for several)."""
    moment = now or timezone.now()
    with transaction.atomic():
        # The lock order (governance/audit.py): the candidates' member rows first, then the election's.
        # A candidate withdrawing meanwhile either committed before this (and the count below reads them
        # as withdrawn) or waits until their new seat is in force (and ends it). Nobody stands once
        # nominations close, so the candidates read here are the election's.
        candidates = {
            str(member.id): member
            for member in Member.objects.select_for_update(no_key=True)
            .filter(candidacies__election_id=election_id)
            .order_by("id")
        }
        election = _locked_election(election_id)
        if election.closed_at is not None:
            return election
        if moment < election.voting_closes_at:
            raise Conflict(_("Voting in this election is still open."), code="voting_open")
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
        events = [
            AuditEvent(
                kind="election.closed",
                payload={
                    "election_id": election.id,
                    "method": result.method,
                    "elected": list(result.elected),
                    "valid_ballots": result.valid_ballots,
                    "quota": str(result.quota),
                },
            )
        ]
        term_ends = moment + timedelta(days=election.term_days)
        for member_id in result.elected:
            member = candidates[member_id]
            events += board_seats_end(member=member, at=moment, reason="re-elected to a new term")
            _seat, seated = board_seat_add(
                member=member, term_ends=term_ends, source=SeatSource.ELECTION, election=election, at=moment
            )
            events.append(seated)
        audit_append_all(events)
        election_results_notify(
            election=election, elected_names=[candidates[member_id].user.name for member_id in result.elected]
        )
    return election


def close_due_elections(*, now: datetime | None = None) -> int:
    """Count every election whose voting has closed (at most 50 a call); returns how many were counted."""
    moment = now or timezone.now()
    due = Election.objects.filter(closed_at__isnull=True, voting_closes_at__lte=moment).values_list(
        "id", flat=True
    )
    ids = list(due[:50])
    for election_id in ids:
        election_close(election_id=election_id, now=moment)
    return len(ids)
