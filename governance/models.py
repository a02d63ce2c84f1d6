"""Governance records: members and their shares, board seats, proposals and votes, elections, dividend
statements, and the hash-chained audit log.

Who is a member or a director is a fact recorded here (a membership row, a seat in force), never a flag on
the user. Votes, ballots, dividend statements and audit entries are append-only: the database refuses
UPDATE and DELETE on them (pgtrigger), and the races that matter (one membership per driver, one vote per
voter and proposal, one ballot per voter and election) are decided by unique indexes. docs/governance.md
explains the rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.fares.money import minor_to_decimal


def _protect(name: str) -> pgtrigger.Protect:
    return pgtrigger.Protect(name=name, operation=pgtrigger.Update | pgtrigger.Delete)


class MemberStatus(models.TextChoices):
    ACTIVE = "active", gettext_lazy("Active")
    SUSPENDED = "suspended", gettext_lazy("Suspended")
    WITHDRAWN = "withdrawn", gettext_lazy("Withdrawn")


class Member(models.Model):
    """One membership: a driver who subscribed one member share. A withdrawn member may join again later,
    which makes a new row (and a new member id); at most one membership per user is not withdrawn."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    status = models.CharField(max_length=16, choices=MemberStatus.choices, default=MemberStatus.ACTIVE)
    share_price_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    joined_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=MemberStatus.values), name="member_status_valid"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=~models.Q(status=MemberStatus.WITHDRAWN),
                name="one_current_membership_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"member {self.id} ({self.status})"

    @property
    def in_good_standing(self) -> bool:
        return self.status == MemberStatus.ACTIVE


class SeatSource(models.TextChoices):
    FOUNDING = "founding", gettext_lazy("Founding director (seated by staff)")
    ELECTION = "election", gettext_lazy("Elected")


class BoardSeat(models.Model):
    """A director's seat for a term. In force while ``starts_at <= now < term_ends`` and not ended early."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="seats")
    starts_at = models.DateTimeField(default=timezone.now)
    term_ends = models.DateTimeField()
    source = models.CharField(max_length=16, choices=SeatSource.choices)
    election = models.ForeignKey(
        "Election", on_delete=models.PROTECT, null=True, blank=True, related_name="board_seats"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=SeatSource.values), name="seat_source_valid"
            ),
            models.CheckConstraint(condition=models.Q(term_ends__gt=models.F("starts_at")), name="seat_term"),
            models.CheckConstraint(
                condition=models.Q(source=SeatSource.FOUNDING) | models.Q(election__isnull=False),
                name="elected_seat_names_election",
            ),
        ]

    def __str__(self) -> str:
        return f"seat {self.id} of member {self.member_id}"


class ProposalKind(models.TextChoices):
    FARE_POLICY = "fare_policy", gettext_lazy("Fare policy (board)")
    BYLAW = "bylaw", gettext_lazy("Bylaw amendment (members)")
    DIVIDEND = "dividend", gettext_lazy("Patronage dividend (members)")
    GENERAL = "general", gettext_lazy("General resolution (members)")


class ProposalStatus(models.TextChoices):
    OPEN = "open", gettext_lazy("Open")
    PASSED = "passed", gettext_lazy("Passed")
    FAILED = "failed", gettext_lazy("Failed")


class Voters(models.TextChoices):
    BOARD = "board", gettext_lazy("The board")
    MEMBERS = "members", gettext_lazy("All members")


class Proposal(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=ProposalKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    voters = models.CharField(max_length=8, choices=Voters.choices)
    proposer = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="proposals")
    # The decision rule is fixed when the proposal opens, so changing a setting never moves a live vote.
    quorum = models.CharField(max_length=32)
    threshold = models.CharField(max_length=32)
    eligible = models.PositiveIntegerField()
    opens_at = models.DateTimeField(default=timezone.now)
    closes_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=8, choices=ProposalStatus.choices, default=ProposalStatus.OPEN)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.JSONField(null=True, blank=True)
    effect = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-opens_at"]
        indexes = [models.Index(fields=["status", "closes_at"], name="proposal_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=ProposalKind.values), name="proposal_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ProposalStatus.values), name="proposal_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")), name="proposal_closes_after_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} proposal {self.id} ({self.status})"


class VoterRoll(models.Model):
    """The voters of a proposal, snapshotted when it opened: who joins later cannot vote on it."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="roll")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "member"], name="voter_roll_unique"),
        ]
        triggers = [_protect("voter_roll_append_only")]


class VoteChoice(models.TextChoices):
    YES = "yes", gettext_lazy("Yes")
    NO = "no", gettext_lazy("No")
    ABSTAIN = "abstain", gettext_lazy("Abstain")


class VoteReceipt(models.Model):
    """That a member voted on a proposal (not how): the unique index makes one vote per member."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="receipts")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    receipt_hash = models.CharField(max_length=64, unique=True)
    cast_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "member"], name="one_vote_per_member_and_proposal"),
        ]
        triggers = [_protect("vote_receipts_append_only")]


class Vote(models.Model):
    """How a vote went. A board vote names its director (board votes are public, for accountability);
    a member vote does not (a secret ballot): only the receipt's hash ties it to the voter's receipt."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="votes")
    choice = models.CharField(max_length=8, choices=VoteChoice.choices)
    receipt_hash = models.CharField(max_length=64, unique=True)
    director = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(choice__in=VoteChoice.values), name="vote_choice_valid"
            ),
        ]
        triggers = [_protect("votes_append_only")]


class ProposalComment(models.Model):
    """A member's comment in a proposal's discussion thread.

    The row never changes: its text is in its revisions (`CommentRevision`, number 1 the original), the
    newest shown, every earlier one kept; a moderator hiding it adds a `CommentModeration`. Both are
    append-only, so nothing said in a thread is overwritten silently, and each edit and hide has its audit
    entry (governance/services/discussion.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["proposal", "created_at"], name="comment_thread")]
        triggers = [_protect("proposal_comments_append_only")]

    def __str__(self) -> str:
        return f"comment {self.id} on proposal {self.proposal_id}"


class CommentRevision(models.Model):
    """One version of a comment's text: 1 is what was first posted, each edit adds the next number."""

    comment = models.ForeignKey(ProposalComment, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    written_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["comment", "number"]
        constraints = [
            models.UniqueConstraint(fields=["comment", "number"], name="one_revision_per_number"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="revision_number_positive"),
        ]
        triggers = [_protect("comment_revisions_append_only")]


class CommentModeration(models.Model):
    """A moderator (a director) hid a comment, with the reason members read in its place. Once per
    comment (the primary key); the text stays in its revisions, for moderators only."""

    comment = models.OneToOneField(
        ProposalComment, on_delete=models.PROTECT, primary_key=True, related_name="moderation"
    )
    moderator = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    hidden_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(reason=""), name="moderation_has_reason")]
        triggers = [_protect("comment_moderations_append_only")]


class Election(models.Model):
    """A board election: nominations until ``nominations_close_at``, then ranked ballots until
    ``voting_closes_at``; counted by IRV for one seat and STV for several."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    seats = models.PositiveSmallIntegerField()
    term_days = models.PositiveIntegerField()
    opens_at = models.DateTimeField(default=timezone.now)
    nominations_close_at = models.DateTimeField()
    voting_closes_at = models.DateTimeField(db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    eligible = models.PositiveIntegerField()
    closed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-opens_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(seats__gte=1, seats__lte=25), name="election_seats"),
            models.CheckConstraint(
                condition=models.Q(nominations_close_at__gt=models.F("opens_at"))
                & models.Q(voting_closes_at__gt=models.F("nominations_close_at")),
                name="election_windows_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"election {self.id}: {self.title}"

    def phase(self, at: datetime | None = None) -> str:
        moment = at or timezone.now()
        if self.closed_at is not None:
            return "closed"
        if moment < self.nominations_close_at:
            return "nominating"
        if moment < self.voting_closes_at:
            return "voting"
        return "counting"


class ElectionVoterRoll(models.Model):
    election = models.ForeignKey(Election, on_delete=models.PROTECT, related_name="roll")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["election", "member"], name="election_roll_unique")]
        triggers = [_protect("election_roll_append_only")]


class Candidate(models.Model):
    election = models.ForeignKey(Election, on_delete=models.PROTECT, related_name="candidates")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="candidacies")
    statement = models.TextField(blank=True, default="")
    nominated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["nominated_at"]
        constraints = [models.UniqueConstraint(fields=["election", "member"], name="one_candidacy")]
        triggers = [_protect("candidates_append_only")]


class CandidateWithdrawal(models.Model):
    """A candidate stood down from an election (while nominations were open): they are not on its ballot.

    The candidacy row itself is append-only, so the withdrawal is a row of its own, one per candidacy (the
    primary key), and final: the one-candidacy index keeps the member from standing again in that election."""

    candidate = models.OneToOneField(
        Candidate, on_delete=models.PROTECT, primary_key=True, related_name="withdrawal"
    )
    withdrawn_at = models.DateTimeField(default=timezone.now)

    class Meta:
        triggers = [_protect("candidate_withdrawals_append_only")]


class BallotReceipt(models.Model):
    """That a member cast a ballot in an election; the unique index makes it one ballot per member."""

    election = models.ForeignKey(Election, on_delete=models.PROTECT, related_name="receipts")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    receipt_hash = models.CharField(max_length=64, unique=True)
    cast_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["election", "member"], name="one_ballot_per_member")]
        triggers = [_protect("ballot_receipts_append_only")]


class Ballot(models.Model):
    """A ranked ballot, anonymous: candidate member ids in order of preference, and the receipt's hash."""

    election = models.ForeignKey(Election, on_delete=models.PROTECT, related_name="ballots")
    ranking = models.JSONField()
    receipt_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        triggers = [_protect("ballots_append_only")]


class DividendBasis(models.TextChoices):
    TRIPS = "trips", gettext_lazy("Completed trips")
    ENGAGED_HOURS = "engaged_hours", gettext_lazy("Engaged hours (assigned to completed)")
    NET_EARNINGS = "net_earnings", gettext_lazy("Net earnings (driver pay)")


class DividendStatement(models.Model):
    """One member's patronage dividend from one passed dividend proposal."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="statements")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="statements")
    period_start = models.DateField()
    period_end = models.DateField()
    basis = models.CharField(max_length=16, choices=DividendBasis.choices)
    patronage = models.CharField(max_length=40)
    total_minor = models.BigIntegerField()
    cash_minor = models.BigIntegerField()
    capital_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "member"], name="one_statement_per_dividend"),
            models.CheckConstraint(
                condition=models.Q(total_minor=models.F("cash_minor") + models.F("capital_minor")),
                name="statement_adds_up",
            ),
        ]
        triggers = [_protect("dividend_statements_append_only")]

    def __str__(self) -> str:
        amount = minor_to_decimal(self.total_minor, self.currency)
        return f"dividend of {amount} {self.currency} to member {self.member_id}"


class AuditEntry(models.Model):
    """One governance act, chained to the one before by its hash (governance/audit_chain.py)."""

    sequence = models.PositiveBigIntegerField(primary_key=True)
    kind = models.CharField(max_length=40)
    payload = models.JSONField()
    at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["sequence"]
        triggers = [_protect("audit_entries_append_only")]

    def __str__(self) -> str:
        return f"audit #{self.sequence} {self.kind}"


class AuditHead(models.Model):
    """The newest entry's sequence and hash, in one row: appending locks it (``SELECT ... FOR UPDATE``) so
    appends are serialised and the chain never forks, and verification compares the chain's end with it
    (so removing the newest entries is detected too)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")]
