"""Input and output shapes of the governance routes (docs/governance.md).

The outputs are real serializers: a view answers `XOut(record).data`, so the answer holds exactly the fields
declared here and the OpenAPI description is generated from the same declarations: the two cannot drift.
They read models or the typed records of governance/selectors.py (`ProposalRecord`, `ElectionRecord`), and
a few plain records that other readers share (`membership_document` with `/me`, `ballot_record` with the
count, `proposal_result` with the board page).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from dispatch.serializers import MoneySerializer as MoneyOut
from governance.models import (
    DividendBasis,
    MemberStatus,
    ProposalKind,
    ProposalStatus,
    SeatSource,
    VoteChoice,
    Voters,
)
from governance.selectors import ElectionRecord, ProposalRecord
from mobile_api.serializers_fields import MinorMoney, Timestamp

ELECTION_STATUSES = ["nominating", "voting", "counting", "closed"]
COUNT_METHODS = ["irv", "scottish-stv-2007"]

# --- Inputs ------------------------------------------------------------------------------------------------


class ProposalIn(serializers.Serializer):
    kind = serializers.CharField(help_text="fare_policy, bylaw, dividend or general")
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    payload = serializers.JSONField(required=False, default=dict)
    closes_at = serializers.DateTimeField()


class VoteIn(serializers.Serializer):
    choice = serializers.ChoiceField(VoteChoice.choices)


class SeatIn(serializers.Serializer):
    member_id = serializers.UUIDField()
    term_ends = serializers.DateTimeField(required=False)


class MemberStatusIn(serializers.Serializer):
    status = serializers.CharField(help_text="active or suspended")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class ElectionIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    seats = serializers.IntegerField(min_value=1, max_value=25)
    nominations_close_at = serializers.DateTimeField()
    voting_closes_at = serializers.DateTimeField()
    term_days = serializers.IntegerField(required=False, min_value=1, max_value=3660)


class NominationIn(serializers.Serializer):
    statement = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class BallotIn(serializers.Serializer):
    ranking = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=100)


# --- Membership (reads governance.selectors.membership_document and membership_detail) --------------------


class MembershipOut(serializers.Serializer):
    member_id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(MemberStatus.choices, read_only=True)
    share_price = MoneyOut(read_only=True)
    paid = MoneyOut(read_only=True, help_text="How much of the share is paid up (withheld from earnings).")
    joined_at = Timestamp(read_only=True)


class PatronageOut(serializers.Serializer):
    year = serializers.IntegerField(read_only=True)
    trips = serializers.IntegerField(read_only=True)
    engaged_seconds = serializers.IntegerField(read_only=True)
    net_earnings = MoneyOut(read_only=True)


class MembershipDetailOut(MembershipOut):
    capital_account = MoneyOut(read_only=True)
    patronage = PatronageOut(read_only=True, help_text="This calendar year's patronage.")


class MembershipSummaryOut(MembershipOut):
    """`/me`'s `member`: the membership and whether the member sits on the board now."""

    director = serializers.BooleanField(read_only=True)
    term_ends = Timestamp(read_only=True, allow_null=True)


# --- The board (reads BoardSeat rows) ----------------------------------------------------------------------


class SeatCreatedOut(serializers.Serializer):
    seat_id = serializers.UUIDField(source="id", read_only=True)
    member_id = serializers.UUIDField(read_only=True)
    term_ends = Timestamp(read_only=True)


class BoardSeatOut(serializers.Serializer):
    seat_id = serializers.UUIDField(source="id", read_only=True)
    member_id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(source="member.user.name", read_only=True)
    source = serializers.ChoiceField(SeatSource.choices, read_only=True)
    starts_at = Timestamp(read_only=True)
    term_ends = Timestamp(read_only=True)


class BoardOut(serializers.Serializer):
    seats = BoardSeatOut(many=True, read_only=True)


# --- Proposals (read ProposalRecord) -----------------------------------------------------------------------


class VoteStatusOut(serializers.Serializer):
    eligible = serializers.BooleanField(read_only=True, help_text="On the voter roll.")
    voted = serializers.BooleanField(read_only=True)


class BoardVoteOut(serializers.Serializer):
    member_id = serializers.UUIDField(read_only=True)
    choice = serializers.ChoiceField(VoteChoice.choices, read_only=True)


class DecisionRuleOut(serializers.Serializer):
    quorum = serializers.CharField(read_only=True, help_text="A fraction of the eligible voters, e.g. 1/2.")
    threshold = serializers.CharField(read_only=True, help_text="A fraction of the votes cast, e.g. 2/3.")


class TallyOut(serializers.Serializer):
    yes = serializers.IntegerField(read_only=True)
    no = serializers.IntegerField(read_only=True)
    abstain = serializers.IntegerField(read_only=True)


class ProposalOut(serializers.Serializer):
    id = serializers.UUIDField(source="proposal.id", read_only=True)
    kind = serializers.ChoiceField(ProposalKind.choices, source="proposal.kind", read_only=True)
    title = serializers.CharField(source="proposal.title", read_only=True)
    body = serializers.CharField(source="proposal.body", read_only=True)
    payload = serializers.DictField(source="proposal.payload", read_only=True)
    voters = serializers.ChoiceField(Voters.choices, source="proposal.voters", read_only=True)
    opens_at = Timestamp(source="proposal.opens_at", read_only=True)
    closes_at = Timestamp(source="proposal.closes_at", read_only=True)
    status = serializers.ChoiceField(ProposalStatus.choices, source="proposal.status", read_only=True)
    proposer_id = serializers.UUIDField(source="proposal.proposer_id", read_only=True)
    rule = DecisionRuleOut(source="proposal", read_only=True)
    decided_at = Timestamp(source="proposal.decided_at", read_only=True, allow_null=True)
    effect = serializers.DictField(
        source="proposal.effect",
        read_only=True,
        allow_null=True,
        help_text="What the decision did, once made.",
    )
    my_vote = VoteStatusOut(required=False, help_text="Only when the reader is a member.")
    board_votes = BoardVoteOut(
        many=True, required=False, help_text="Board proposals only: each director's vote, by name."
    )
    tally = TallyOut(read_only=True, help_text="The votes cast so far.")

    def to_representation(self, instance: ProposalRecord) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Absent (not null) when they do not apply: a staff reader has no vote, a member vote is secret.
        if instance.my_vote is None:
            del data["my_vote"]
        if instance.board_votes is None:
            del data["board_votes"]
        return data


class ProposalResultOut(serializers.Serializer):
    status = serializers.ChoiceField(ProposalStatus.choices, read_only=True)
    yes = serializers.IntegerField(read_only=True)
    no = serializers.IntegerField(read_only=True)
    abstain = serializers.IntegerField(read_only=True)
    eligible = serializers.IntegerField(read_only=True)
    quorum_met = serializers.BooleanField(read_only=True)


class ReceiptOut(serializers.Serializer):
    receipt = serializers.CharField(read_only=True, help_text="Keep it: it proves the vote was counted.")


# --- Elections (read ElectionRecord and Election rows) ------------------------------------------------------


class CandidateOut(serializers.Serializer):
    member_id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(source="member.user.name", read_only=True)
    statement = serializers.CharField(read_only=True)


class ElectionOut(serializers.Serializer):
    id = serializers.UUIDField(source="election.id", read_only=True)
    title = serializers.CharField(source="election.title", read_only=True)
    seats = serializers.IntegerField(source="election.seats", read_only=True)
    term_days = serializers.IntegerField(source="election.term_days", read_only=True)
    opens_at = Timestamp(source="election.opens_at", read_only=True)
    nominations_close_at = Timestamp(source="election.nominations_close_at", read_only=True)
    voting_closes_at = Timestamp(source="election.voting_closes_at", read_only=True)
    status = serializers.ChoiceField(ELECTION_STATUSES, read_only=True)
    method = serializers.ChoiceField(COUNT_METHODS, read_only=True)
    eligible = serializers.IntegerField(source="election.eligible", read_only=True)
    candidates = CandidateOut(many=True, read_only=True)
    my_ballot = VoteStatusOut(required=False, help_text="Only when the reader is a member.")

    def to_representation(self, instance: ElectionRecord) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.my_ballot is None:
            del data["my_ballot"]
        return data


class NominationOut(serializers.Serializer):
    member_id = serializers.UUIDField(read_only=True)


class BallotRecordOut(serializers.Serializer):
    election_id = serializers.UUIDField(read_only=True)
    method = serializers.ChoiceField(COUNT_METHODS, read_only=True)
    seats = serializers.IntegerField(read_only=True)
    candidates = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    withdrawn = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    lot_seed = serializers.CharField(read_only=True)
    ballots = serializers.ListField(
        child=serializers.ListField(child=serializers.UUIDField()),
        read_only=True,
        help_text="Each ballot's ranking, most preferred first; sorted, so not in the order cast.",
    )


class ElectionResultOut(serializers.Serializer):
    status = serializers.ChoiceField(ELECTION_STATUSES, read_only=True)
    elected = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    count = serializers.DictField(
        read_only=True, allow_null=True, help_text="The stage-by-stage count, once counted."
    )


# --- Dividends and the audit log (read DividendStatement and AuditEntry rows) --------------------------


class DividendStatementOut(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    proposal_id = serializers.UUIDField(read_only=True)
    member_id = serializers.UUIDField(read_only=True)
    period_start = serializers.DateField(read_only=True)
    period_end = serializers.DateField(read_only=True)
    basis = serializers.ChoiceField(DividendBasis.choices, read_only=True)
    patronage = serializers.CharField(read_only=True, help_text="The member's measure on the basis.")
    total = MinorMoney("total_minor")
    cash = MinorMoney("cash_minor")
    capital = MinorMoney("capital_minor")
    created_at = Timestamp(read_only=True)


class AuditEntryOut(serializers.Serializer):
    sequence = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    payload = serializers.DictField(read_only=True)
    at = Timestamp(read_only=True)
    prev_hash = serializers.CharField(read_only=True)
    hash = serializers.CharField(read_only=True)


class AuditHeadOut(serializers.Serializer):
    sequence = serializers.IntegerField(read_only=True)
    hash = serializers.CharField(read_only=True)


class AuditVerificationOut(serializers.Serializer):
    ok = serializers.BooleanField(read_only=True)
    checked = serializers.IntegerField(read_only=True)
    first_bad_sequence = serializers.IntegerField(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True, allow_null=True)
    head = AuditHeadOut(read_only=True)
