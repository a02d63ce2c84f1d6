"""Reading governance state: who is a member or a director, balances of a member's share and capital,
patronage, and the records the API's serializers read (mobile_api/serializers_governance.py).

``user_governance_roles`` and ``membership_summary`` are called by the accounts area for ``GET /me``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from backend.accounts.models import User
from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind
from backend.fares.money import money
from backend.fares.pay import driver_pay_for_period
from backend.fares.policy import FarePolicy
from backend.fares.pricing import driver_pay, quote_fare
from backend.timestamps import wire_timestamp
from governance.models import (
    AuditEntry,
    BallotReceipt,
    BoardSeat,
    Candidate,
    CommentRevision,
    DividendStatement,
    Election,
    ElectionVoterRoll,
    Member,
    MemberStatus,
    Proposal,
    ProposalComment,
    ProposalKind,
    ProposalStatus,
    Vote,
    VoteChoice,
    VoteReceipt,
    VoterRoll,
    Voters,
)
from governance.tally import DecisionRule, quorum_met, rule_for_kind

# A signed-in user, or Django's anonymous one: governance answers "not a member" for the latter.
Reader = User | AnonymousUser

# --- Members and directors --------------------------------------------------------------------------------


def proposal_get(proposal_id: uuid.UUID | str) -> Proposal | None:
    return Proposal.objects.filter(id=proposal_id).first()


def election_get(election_id: uuid.UUID | str) -> Election | None:
    return Election.objects.filter(id=election_id).first()


def proposals_all() -> QuerySet[Proposal]:
    return Proposal.objects.all()


def proposals_open() -> QuerySet[Proposal]:
    """Proposals still taking votes, the soonest to close first."""
    return Proposal.objects.filter(status=ProposalStatus.OPEN).order_by("closes_at", "id")


def proposals_decided() -> QuerySet[Proposal]:
    """Decided proposals, the latest decision first."""
    return Proposal.objects.exclude(status=ProposalStatus.OPEN).order_by("-decided_at", "id")


def fare_policy_proposals() -> QuerySet[Proposal]:
    """The board's fare policy proposals, newest first (the board pages show nothing else)."""
    return Proposal.objects.filter(kind=ProposalKind.FARE_POLICY).order_by("-opens_at")


def elections_all() -> QuerySet[Election]:
    return Election.objects.all()


def statements_of(user: User) -> QuerySet[DividendStatement]:
    """The caller's own patronage dividend statements."""
    return DividendStatement.objects.filter(member__user=user)


def audit_entries() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()


def member_names(member_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The account name of each member, by member id (board votes are by name)."""
    return dict(Member.objects.filter(id__in=list(member_ids)).values_list("id", "user__name"))


def current_member(user: Reader | None) -> Member | None:
    """The user's membership that has not been withdrawn (active or suspended), if any."""
    if user is None or not user.is_authenticated:
        return None
    return Member.objects.filter(user_id=user.pk).exclude(status=MemberStatus.WITHDRAWN).first()


def seats_in_force(at: datetime | None = None) -> QuerySet[BoardSeat]:
    """Seats begun, not past their term and not ended, of members who have not withdrawn (a suspended
    member's seat stays in force: reinstated, they are a director again)."""
    moment = at or timezone.now()
    return BoardSeat.objects.filter(
        starts_at__lte=moment, term_ends__gt=moment, ended_at__isnull=True
    ).exclude(member__status=MemberStatus.WITHDRAWN)


def directors_in_force(at: datetime | None = None) -> QuerySet[Member]:
    """The board: members in good standing holding a seat now. This is the one definition of a director
    (the board's voters, the board pages' users, who may call an election, `/me`'s `director`)."""
    seat_members = seats_in_force(at).values("member_id")
    return Member.objects.filter(id__in=seat_members, status=MemberStatus.ACTIVE).order_by("id")


def is_director(member: Member | None, at: datetime | None = None) -> bool:
    """Whether the member is on the board now (`directors_in_force`)."""
    return member is not None and directors_in_force(at).filter(id=member.id).exists()


def user_governance_roles(user: Reader) -> list[str]:
    """``[]``, ``["member"]`` or ``["member", "director"]`` for ``GET /me``'s roles."""
    member = current_member(user)
    if member is None:
        return []
    return ["member", "director"] if is_director(member) else ["member"]


def membership_summary(user: Reader) -> dict[str, Any] | None:
    """The ``member`` object of ``GET /me``: ``{"member_id", "status", "share_price", "paid", "joined_at",
    "director", "term_ends"}``, or ``None`` for a non-member."""
    member = current_member(user)
    if member is None:
        return None
    seat = None
    if is_director(member):
        seat = seats_in_force().filter(member=member).order_by("-term_ends").first()
    return {
        **membership_document(member),
        "director": seat is not None,
        "term_ends": wire_timestamp(seat.term_ends) if seat else None,
    }


# --- Money of a membership ---------------------------------------------------------------------------------


def share_outstanding_minor(member: Member) -> int:
    """What is still owed on the member's share (the subscription receivable)."""
    return balance_minor(
        kind=AccountKind.SHARE_SUBSCRIPTIONS, owner_id=member.user_id, currency=member.currency
    )


def share_paid_minor(member: Member) -> int:
    return max(member.share_price_minor - share_outstanding_minor(member), 0)


def capital_account_minor(member: Member) -> int:
    return balance_minor(kind=AccountKind.MEMBER_CAPITAL, owner_id=member.user_id, currency=member.currency)


def membership_document(member: Member) -> dict[str, Any]:
    """The contract's membership object (the membership routes' answer and `/me`'s `member`)."""
    return {
        "member_id": str(member.id),
        "status": member.status,
        "share_price": money(member.share_price_minor, member.currency),
        "paid": money(share_paid_minor(member), member.currency),
        "joined_at": wire_timestamp(member.joined_at),
    }


def membership_detail(member: Member) -> dict[str, Any]:
    """``GET /governance/membership``: the membership, the capital account and this year's patronage."""
    year = timezone.localdate().year
    measure = patronage_by_member([member], start=date(year, 1, 1), end=date(year, 12, 31))[str(member.id)]
    return {
        **membership_document(member),
        "capital_account": money(capital_account_minor(member), member.currency),
        "patronage": {"year": year, **measure.document(member.currency)},
    }


# --- Patronage -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatronageMeasure:
    """A member's use of the co-op over a period: completed trips, engaged time (assigned to completed),
    and net earnings (driver pay for the period, tips excluded: backend/fares/pay.py)."""

    trips: int
    engaged_seconds: int
    net_earnings_minor: int

    def weight(self, basis: str) -> int:
        # Integers in proportion to the basis: hours are weighted in seconds (the same proportions).
        return {
            "trips": self.trips,
            "engaged_hours": self.engaged_seconds,
            "net_earnings": self.net_earnings_minor,
        }[basis]

    def label(self, basis: str) -> str:
        if basis == "engaged_hours":
            return str((Decimal(self.engaged_seconds) / 3600).quantize(Decimal("0.0001")))
        return str(self.weight(basis))

    def document(self, currency: str) -> dict[str, Any]:
        return {
            "trips": self.trips,
            "engaged_seconds": self.engaged_seconds,
            "net_earnings": money(self.net_earnings_minor, currency),
        }


def patronage_by_member(members: Iterable[Member], *, start: date, end: date) -> dict[str, PatronageMeasure]:
    """Patronage of each member from ``start`` to ``end`` inclusive (local dates of the co-op's zone).

    Read from the ledger, never from trips: ``net_earnings`` is the kernel's one definition of driver pay
    for a period (backend/fares/pay.py: trip pay, cancellation shares and floor top-ups, net of reversals;
    tips excluded), ``trips`` the completed trips it paid for and ``engaged_seconds`` their engaged time as
    their fare entries recorded it, so a member's patronage is what their earnings say to the cent."""
    by_user = {member.user_id: str(member.id) for member in members}
    pay = driver_pay_for_period(driver_ids=list(by_user), date_from=start, date_to=end)
    return {
        by_user[user_id]: PatronageMeasure(
            trips=paid.trips, engaged_seconds=paid.engaged_s, net_earnings_minor=paid.pay_minor
        )
        for user_id, paid in pay.items()
    }


# --- Proposals -------------------------------------------------------------------------------------------


def decision_rule(kind: str) -> DecisionRule:
    """The rule for a kind: tally.py's defaults with the quorum and threshold from settings (what a new
    proposal of that kind copies when it opens)."""
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


@dataclass(frozen=True)
class VoteStatus:
    """Whether the reader is on the voter roll of a proposal (or an election), and has voted."""

    eligible: bool
    voted: bool


@dataclass(frozen=True)
class BoardVote:
    member_id: uuid.UUID
    choice: str


@dataclass(frozen=True)
class ProposalRecord:
    """A proposal as a reader sees it: the row, the running count, the directors' votes by name (board
    proposals only: accountability for the fare policy) and the reader's own vote status (members only)."""

    proposal: Proposal
    tally: dict[str, int]
    board_votes: list[BoardVote] | None
    my_vote: VoteStatus | None


def vote_counts_of(proposal_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Yes, no and abstain counts of each proposal, in one query."""
    counts = {proposal_id: dict.fromkeys(VoteChoice.values, 0) for proposal_id in proposal_ids}
    rows = (
        Vote.objects.filter(proposal_id__in=proposal_ids)
        .values_list("proposal_id", "choice")
        .annotate(n=Count("id"))
        .order_by()
    )
    for proposal_id, choice, n in rows:
        counts[proposal_id][choice] = n
    return counts


def proposal_records(proposals: Sequence[Proposal], *, viewer: Member | None) -> list[ProposalRecord]:
    """The records of a page of proposals in at most four queries, however many proposals it holds."""
    ids = [proposal.id for proposal in proposals]
    if not ids:
        return []
    tallies = vote_counts_of(ids)
    board_votes: dict[uuid.UUID, list[BoardVote]] = {
        proposal.id: [] for proposal in proposals if proposal.voters == Voters.BOARD
    }
    if board_votes:
        named = (
            Vote.objects.filter(proposal_id__in=list(board_votes))
            .order_by("id")
            .values_list("proposal_id", "director_id", "choice")
        )
        for proposal_id, director_id, choice in named:
            board_votes[proposal_id].append(BoardVote(member_id=director_id, choice=choice))
    eligible: set[uuid.UUID] = set()
    voted: set[uuid.UUID] = set()
    if viewer is not None:
        eligible = set(
            VoterRoll.objects.filter(proposal_id__in=ids, member=viewer).values_list("proposal_id", flat=True)
        )
        voted = set(
            VoteReceipt.objects.filter(proposal_id__in=ids, member=viewer).values_list(
                "proposal_id", flat=True
            )
        )
    return [
        ProposalRecord(
            proposal=proposal,
            tally=tallies[proposal.id],
            board_votes=board_votes.get(proposal.id),
            my_vote=None
            if viewer is None
            else VoteStatus(eligible=proposal.id in eligible, voted=proposal.id in voted),
        )
        for proposal in proposals
    ]


def proposal_record(proposal: Proposal, *, viewer: Member | None) -> ProposalRecord:
    return proposal_records([proposal], viewer=viewer)[0]


def proposal_result(proposal: Proposal) -> dict[str, Any]:
    """``{"status", "yes", "no", "abstain", "eligible", "quorum_met"}``: the decision once decided, the
    running count (and whether the quorum is met so far) while open."""
    if proposal.decision:
        keys = ("status", "yes", "no", "abstain", "eligible", "quorum_met")
        return {key: proposal.decision[key] for key in keys}
    counts = vote_counts_of([proposal.id])[proposal.id]
    cast = counts["yes"] + counts["no"] + counts["abstain"]
    return {
        "status": proposal.status,
        **counts,
        "eligible": proposal.eligible,
        "quorum_met": quorum_met(proposal_rule(proposal), cast=cast, eligible=proposal.eligible),
    }


# --- A proposal's discussion -----------------------------------------------------------------------------

# Comments shown on a proposal's page at most (the oldest first); the audit log keeps every one regardless.
THREAD_LIMIT = 500


@dataclass(frozen=True)
class CommentRecord:
    """A comment as one reader sees it. ``body`` and ``earlier`` (older revisions, newest first) are empty
    when a moderator hid it and the reader is no moderator: they read ``hidden_reason`` instead."""

    comment: ProposalComment
    author_name: str
    body: str
    written_at: datetime
    revisions: int
    earlier: list[CommentRevision]
    hidden: bool
    hidden_reason: str
    hidden_by: str
    mine: bool

    @property
    def edited(self) -> bool:
        return self.revisions > 1


def _comment_records(
    comments: Iterable[ProposalComment], *, viewer: Member | None, moderator: bool
) -> list[CommentRecord]:
    records = []
    for comment in comments:
        revisions = sorted(comment.revisions.all(), key=lambda revision: revision.number, reverse=True)
        moderation = getattr(comment, "moderation", None)
        hidden = moderation is not None
        shown = not hidden or moderator
        records.append(
            CommentRecord(
                comment=comment,
                author_name=comment.author.user.name,
                body=revisions[0].body if shown else "",
                written_at=revisions[0].written_at,
                revisions=len(revisions),
                earlier=revisions[1:] if shown else [],
                hidden=hidden,
                hidden_reason=moderation.reason if moderation else "",
                hidden_by=moderation.moderator.user.name if moderation else "",
                mine=viewer is not None and comment.author_id == viewer.id,
            )
        )
    return records


def _comments_with_text() -> QuerySet[ProposalComment]:
    return ProposalComment.objects.select_related(
        "author__user", "moderation__moderator__user"
    ).prefetch_related("revisions")


def proposal_thread(proposal: Proposal, *, viewer: Member | None, moderator: bool) -> list[CommentRecord]:
    """The proposal's comments, oldest first (at most ``THREAD_LIMIT``), in three queries."""
    comments = _comments_with_text().filter(proposal=proposal).order_by("created_at", "id")[:THREAD_LIMIT]
    return _comment_records(comments, viewer=viewer, moderator=moderator)


def comment_of_author(comment_id: uuid.UUID | str, *, author: Member | None) -> CommentRecord | None:
    """The comment if ``author`` wrote it (None for anyone else's and for an unknown id alike). Its author
    reads a hidden comment as everyone does: the reason, not the text."""
    if author is None:
        return None
    comment = _comments_with_text().filter(id=comment_id, author=author).first()
    if comment is None:
        return None
    return _comment_records([comment], viewer=author, moderator=False)[0]


def comment_get(comment_id: uuid.UUID | str) -> ProposalComment | None:
    return ProposalComment.objects.filter(id=comment_id).first()


# --- Elections -------------------------------------------------------------------------------------------


def count_method(election: Election) -> str:
    """How the election is counted: instant-runoff for one seat, Scottish STV (2007) for several."""
    return "irv" if election.seats == 1 else "scottish-stv-2007"


def candidates_standing(election: Election) -> QuerySet[Candidate]:
    """The election's candidacies that were not withdrawn while nominations were open: its ballot.
    (A candidate who later left the co-op is still on it; the count passes over them.)"""
    return election.candidates.filter(withdrawal__isnull=True)


def candidacy_of(election: Election, member: Member) -> Candidate | None:
    """The member's candidacy in the election, withdrawn or not (``candidate.withdrawal`` says)."""
    return election.candidates.filter(member=member).select_related("withdrawal").first()


def ballot_record(election: Election) -> dict[str, Any]:
    """The public, anonymous record of an election's ballots: enough for anyone to recount.

    Ballots are sorted (not in the order they were cast) so the record cannot be matched to who voted when.
    """
    standing = candidates_standing(election)
    candidates = sorted(str(c) for c in standing.values_list("member_id", flat=True))
    withdrawn = sorted(
        str(c)
        for c in standing.filter(member__status=MemberStatus.WITHDRAWN).values_list("member_id", flat=True)
    )
    ballots = sorted(election.ballots.values_list("ranking", flat=True))
    return {
        "election_id": str(election.id),
        "method": count_method(election),
        "seats": election.seats,
        "candidates": candidates,
        "withdrawn": withdrawn,
        "lot_seed": str(election.id),
        "ballots": ballots,
    }


@dataclass(frozen=True)
class ElectionRecord:
    """An election as a reader sees it: the row, its candidates standing (in nomination order, with their
    names; withdrawn candidacies left out) and the reader's own ballot status (members only)."""

    election: Election
    candidates: list[Candidate]
    my_ballot: VoteStatus | None

    @property
    def status(self) -> str:
        return self.election.phase()

    @property
    def method(self) -> str:
        return count_method(self.election)


def election_records(elections: Sequence[Election], *, viewer: Member | None) -> list[ElectionRecord]:
    """The records of a page of elections in at most three queries, however many elections it holds."""
    ids = [election.id for election in elections]
    if not ids:
        return []
    candidates: dict[uuid.UUID, list[Candidate]] = {election_id: [] for election_id in ids}
    standing = Candidate.objects.filter(election_id__in=ids, withdrawal__isnull=True)
    for candidate in standing.select_related("member__user"):
        candidates[candidate.election_id].append(candidate)
    eligible: set[uuid.UUID] = set()
    voted: set[uuid.UUID] = set()
    if viewer is not None:
        eligible = set(
            ElectionVoterRoll.objects.filter(election_id__in=ids, member=viewer).values_list(
                "election_id", flat=True
            )
        )
        voted = set(
            BallotReceipt.objects.filter(election_id__in=ids, member=viewer).values_list(
                "election_id", flat=True
            )
        )
    return [
        ElectionRecord(
            election=election,
            candidates=candidates[election.id],
            my_ballot=None
            if viewer is None
            else VoteStatus(eligible=election.id in eligible, voted=election.id in voted),
        )
        for election in elections
    ]


def election_record(election: Election, *, viewer: Member | None) -> ElectionRecord:
    return election_records([election], viewer=viewer)[0]


# --- Fare policy preview (the board page) -----------------------------------------------------------------

SAMPLE_TRIPS: tuple[tuple[Promise, int, int, bool], ...] = (
    (gettext_lazy("Short hop: 1.5 mi, 8 min"), 2414, 480, False),
    (gettext_lazy("Across town: 5 mi, 18 min"), 8047, 1080, False),
    (gettext_lazy("Airport run: 15 mi, 40 min"), 24140, 2400, False),
    (gettext_lazy("Wheelchair-accessible: 7.5 mi, 30 min"), 12070, 1800, True),
)


def fare_policy_preview(*, current: FarePolicy, proposed: FarePolicy) -> list[dict[str, Any]]:
    """Fare, driver pay and co-op share of a few sample trips under two policies (pure pricing rules)."""

    def outcome(policy: FarePolicy, distance_m: int, duration_s: int, wav: bool) -> dict[str, Any]:
        fare = quote_fare(policy, distance_m=distance_m, duration_s=duration_s).fare
        pay = driver_pay(
            policy, fare_minor=fare, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=wav
        )
        return {
            "fare": money(fare, policy.currency),
            "driver_pay": money(pay.pay, policy.currency),
            "coop": {"amount": fare - pay.pay, "currency": policy.currency},
            "floor_applied": pay.floor_applied,
        }

    return [
        {
            "label": str(label),
            "distance_m": distance_m,
            "duration_s": duration_s,
            "wheelchair_accessible": wav,
            "current": outcome(current, distance_m, duration_s, wav),
            "proposed": outcome(proposed, distance_m, duration_s, wav),
        }
        for label, distance_m, duration_s, wav in SAMPLE_TRIPS
    ]
