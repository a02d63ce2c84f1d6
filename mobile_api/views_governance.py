"""The HTTP face of governance: membership, the board, proposals and votes, elections, dividend statements
and the audit log. Thin: validate, call a service or selector, shape the answer (docs/governance.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import Conflict, NotFound, PermissionDenied
from backend.fares.policy import DEFAULT_POLICY_DOCUMENT
from governance import selectors, services
from governance.audit import audit_head, audit_verify
from governance.models import (
    AuditEntry,
    Election,
    Member,
    Proposal,
    VoteChoice,
)
from mobile_api.pagination import CursorPage
from mobile_api.schema import ErrorBody, MoneySerializer

TAG = "governance"


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input",
        401: "Not signed in",
        403: "Not allowed (e.g. not_a_member, not_eligible)",
        404: "Not found (or not visible to the caller)",
        409: "Conflict (e.g. already_voted, voting_closed)",
    }
    return {code: OpenApiResponse(ErrorBody, description=descriptions[code]) for code in codes}


def _page(name: str, item: Any) -> Any:
    return inline_serializer(
        name, {"results": serializers.ListField(child=item), "next": serializers.URLField(allow_null=True)}
    )


def _reader(request: Request) -> Member | None:
    """Members (any status but withdrawn) and staff may read governance records; others get 403."""
    member = selectors.current_member(request.user)
    if member is None and not request.user.is_staff:
        raise PermissionDenied("Only members of the co-operative may see this.", code="not_a_member")
    return member


def _require_staff(request: Request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff may do this.", code="staff_only")


class ProposalPage(CursorPage):
    ordering = ("-opens_at", "-id")


class AuditPage(CursorPage):
    ordering = "-sequence"
    page_size = 50


class ElectionPage(CursorPage):
    ordering = ("-opens_at", "-id")


class StatementPage(CursorPage):
    ordering = ("-created_at", "-id")


# --- Schemas ------------------------------------------------------------------------------------------------

MembershipOut = inline_serializer(
    "Membership",
    {
        "member_id": serializers.UUIDField(),
        "status": serializers.CharField(help_text="active, suspended or withdrawn"),
        "share_price": MoneySerializer,
        "paid": MoneySerializer,
        "joined_at": serializers.DateTimeField(),
    },
)
MembershipDetailOut = inline_serializer(
    "MembershipDetail",
    {
        "member_id": serializers.UUIDField(),
        "status": serializers.CharField(),
        "share_price": MoneySerializer,
        "paid": MoneySerializer,
        "joined_at": serializers.DateTimeField(),
        "capital_account": MoneySerializer,
        "patronage": inline_serializer(
            "Patronage",
            {
                "year": serializers.IntegerField(),
                "trips": serializers.IntegerField(),
                "engaged_seconds": serializers.IntegerField(),
                "net_earnings": MoneySerializer,
            },
        ),
    },
)
SeatOut = inline_serializer(
    "BoardSeat",
    {
        "seat_id": serializers.UUIDField(),
        "member_id": serializers.UUIDField(),
        "name": serializers.CharField(),
        "source": serializers.ChoiceField(["founding", "election"]),
        "starts_at": serializers.DateTimeField(),
        "term_ends": serializers.DateTimeField(),
    },
)
ProposalOut = inline_serializer(
    "Proposal",
    {
        "id": serializers.UUIDField(),
        "kind": serializers.CharField(help_text="fare_policy, bylaw, dividend or general"),
        "title": serializers.CharField(),
        "body": serializers.CharField(),
        "payload": serializers.DictField(),
        "voters": serializers.ChoiceField(["board", "members"]),
        "opens_at": serializers.DateTimeField(),
        "closes_at": serializers.DateTimeField(),
        "status": serializers.CharField(help_text="open, passed or failed"),
        "my_vote": inline_serializer(
            "MyVote", {"eligible": serializers.BooleanField(), "voted": serializers.BooleanField()}
        ),
        "effect": serializers.DictField(allow_null=True),
    },
)
ResultOut = inline_serializer(
    "ProposalResult",
    {
        "status": serializers.CharField(help_text="open, passed or failed"),
        "yes": serializers.IntegerField(),
        "no": serializers.IntegerField(),
        "abstain": serializers.IntegerField(),
        "eligible": serializers.IntegerField(),
        "quorum_met": serializers.BooleanField(),
    },
)
ReceiptOut = inline_serializer("VoteReceipt", {"receipt": serializers.CharField()})

FARE_POLICY_EXAMPLE = {
    "kind": "fare_policy",
    "title": "Raise the per-mile rate",
    "body": "Fuel went up; riders pay 10 cents more a mile, drivers keep 85%.",
    "payload": {
        **DEFAULT_POLICY_DOCUMENT,
        "rider": {**DEFAULT_POLICY_DOCUMENT["rider"], "per_distance": "1.86"},
        "effective_at": "2026-12-01T05:00:00Z",
    },
    "closes_at": "2026-11-28T17:00:00Z",
}
DIVIDEND_EXAMPLE = {
    "kind": "dividend",
    "title": "2026 patronage dividend",
    "body": "Share $12,000 of the 2026 surplus by trips driven, 40% in cash.",
    "payload": {
        "surplus": {"amount": 1200000, "currency": "USD"},
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "basis": "trips",
        "cash_share": "0.40",
    },
    "closes_at": "2027-01-31T17:00:00Z",
}


class ProposalIn(serializers.Serializer):
    kind = serializers.CharField(help_text="fare_policy, bylaw, dividend or general")
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    payload = serializers.JSONField(required=False, default=dict)
    closes_at = serializers.DateTimeField()


class VoteIn(serializers.Serializer):
    choice = serializers.ChoiceField(VoteChoice.values)


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


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _proposal_or_404(proposal_id: Any) -> Proposal:
    proposal = selectors.proposal_get(proposal_id)
    if proposal is None:
        raise NotFound("No such proposal.")
    return proposal


def _election_or_404(election_id: Any) -> Election:
    election = selectors.election_get(election_id)
    if election is None:
        raise NotFound("No such election.")
    return election


# --- Membership --------------------------------------------------------------------------------


class MembershipView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        summary="Join the co-operative by subscribing one member share",
        request=None,
        responses={201: MembershipOut, **_errors(401, 403, 409)},
        examples=[
            OpenApiExample(
                "Joined",
                response_only=True,
                status_codes=["201"],
                value={
                    "member_id": "0b5e3a38-4d0f-4a53-9d2e-3f0d8c7a1e55",
                    "status": "active",
                    "share_price": {"amount": 10000, "currency": "USD"},
                    "paid": {"amount": 0, "currency": "USD"},
                    "joined_at": "2026-11-21T14:03:00Z",
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        member = services.membership_join(user=request.user)
        return Response(selectors.membership_document(member), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="My membership, capital account and this year's patronage",
        responses={200: MembershipDetailOut, **_errors(401, 404)},
    )
    def get(self, request: Request) -> Response:
        member = selectors.current_member(request.user)
        if member is None:
            raise NotFound("You are not a member.", code="not_a_member")
        return Response(selectors.membership_detail(member))


class MembershipWithdrawView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Withdraw from membership (the share is repaid as the bylaws say)",
        request=None,
        responses={200: MembershipOut, **_errors(401, 404)},
    )
    def post(self, request: Request) -> Response:
        member = services.membership_withdraw(user=request.user)
        return Response(selectors.membership_document(member))


class StaffMemberStatusView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Suspend or reinstate a member (staff)",
        request=MemberStatusIn,
        responses={200: MembershipOut, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, member_id: Any) -> Response:
        _require_staff(request)
        data = _valid(MemberStatusIn, request)
        member = services.membership_set_status(
            member_id=member_id, status=data["status"], actor=request.user, reason=data["reason"]
        )
        return Response(selectors.membership_document(member))


# --- Board -------------------------------------------------------------------------------------------------


def _seat_document(seat: Any) -> dict[str, Any]:
    return {
        "seat_id": str(seat.id),
        "member_id": str(seat.member_id),
        "name": seat.member.user.name,
        "source": seat.source,
        "starts_at": seat.starts_at.isoformat(),
        "term_ends": seat.term_ends.isoformat(),
    }


class StaffBoardSeatsView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Seat a founding director (staff)",
        request=SeatIn,
        responses={
            201: inline_serializer(
                "SeatCreated",
                {
                    "seat_id": serializers.UUIDField(),
                    "member_id": serializers.UUIDField(),
                    "term_ends": serializers.DateTimeField(),
                },
            ),
            **_errors(400, 401, 403, 404, 409),
        },
    )
    def post(self, request: Request) -> Response:
        _require_staff(request)
        data = _valid(SeatIn, request)
        seat = services.board_seat_found(
            member_id=data["member_id"], actor=request.user, term_ends=data.get("term_ends")
        )
        return Response(
            {
                "seat_id": str(seat.id),
                "member_id": str(seat.member_id),
                "term_ends": seat.term_ends.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )


class BoardView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="The board seats in force",
        responses={
            200: inline_serializer("Board", {"seats": serializers.ListField(child=SeatOut)}),
            **_errors(401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        _reader(request)
        seats = selectors.seats_in_force().select_related("member__user").order_by("starts_at")
        return Response({"seats": [_seat_document(seat) for seat in seats]})


# --- Proposals ---------------------------------------------------------------------------------------------


class ProposalsView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Open a proposal (directors: fare_policy; members: bylaw, dividend, general)",
        request=ProposalIn,
        responses={201: ProposalOut, **_errors(400, 401, 403, 409)},
        examples=[
            OpenApiExample("Fare policy", request_only=True, value=FARE_POLICY_EXAMPLE),
            OpenApiExample("Dividend", request_only=True, value=DIVIDEND_EXAMPLE),
            OpenApiExample(
                "Invalid policy",
                response_only=True,
                status_codes=["400"],
                value={
                    "error": {
                        "code": "invalid_fare_policy",
                        "message": "The fare policy is not valid: commission_rate.",
                        "details": {"commission_rate": ["must be at most 0.5"]},
                    }
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = _valid(ProposalIn, request)
        proposal = services.proposal_create(user=request.user, **data)
        viewer = selectors.current_member(request.user)
        return Response(selectors.proposal_document(proposal, viewer=viewer), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Proposals, newest first, with my vote status",
        operation_id="governance_proposals_list",
        responses={200: _page("ProposalPage", ProposalOut), **_errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        viewer = _reader(request)
        paginator = ProposalPage()
        page = paginator.paginate_queryset(selectors.proposals_all(), request, view=self)
        return paginator.get_paginated_response(
            [selectors.proposal_document(p, viewer=viewer) for p in page or []]
        )


class ProposalDetailView(APIView):
    @extend_schema(tags=[TAG], summary="One proposal", responses={200: ProposalOut, **_errors(401, 403, 404)})
    def get(self, request: Request, proposal_id: Any) -> Response:
        viewer = _reader(request)
        return Response(selectors.proposal_document(_proposal_or_404(proposal_id), viewer=viewer))


class ProposalVotesView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Vote on a proposal (once; the answer is a receipt)",
        request=VoteIn,
        responses={201: ReceiptOut, **_errors(400, 401, 403, 404, 409)},
        examples=[
            OpenApiExample("Vote", request_only=True, value={"choice": "yes"}),
            OpenApiExample(
                "Receipt",
                response_only=True,
                status_codes=["201"],
                value={"receipt": "q0P3rM1bGk8uXfYc2hNw9aLs"},
            ),
            OpenApiExample(
                "Already voted",
                response_only=True,
                status_codes=["409"],
                value={
                    "error": {
                        "code": "already_voted",
                        "message": "You have already voted on this proposal.",
                        "details": {},
                    }
                },
            ),
        ],
    )
    def post(self, request: Request, proposal_id: Any) -> Response:
        # Refuse non-members before looking the proposal up, so they learn nothing about which ids exist;
        # the contract names this refusal `not_eligible`.
        if selectors.current_member(request.user) is None and not request.user.is_staff:
            raise PermissionDenied("Only eligible members may vote on this proposal.", code="not_eligible")
        data = _valid(VoteIn, request)
        receipt = services.proposal_vote(proposal_id=proposal_id, user=request.user, choice=data["choice"])
        return Response({"receipt": receipt}, status=status.HTTP_201_CREATED)


class ProposalResultView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="The result of a proposal (running count while open)",
        responses={200: ResultOut, **_errors(401, 403, 404)},
    )
    def get(self, request: Request, proposal_id: Any) -> Response:
        _reader(request)
        return Response(selectors.proposal_result(_proposal_or_404(proposal_id)))


# --- Elections ---------------------------------------------------------------------------------------------

ElectionOut = inline_serializer(
    "Election",
    {
        "id": serializers.UUIDField(),
        "title": serializers.CharField(),
        "seats": serializers.IntegerField(),
        "status": serializers.CharField(help_text="nominating, voting, counting or closed"),
        "method": serializers.ChoiceField(["irv", "scottish-stv-2007"]),
        "nominations_close_at": serializers.DateTimeField(),
        "voting_closes_at": serializers.DateTimeField(),
        "candidates": serializers.ListField(child=serializers.DictField()),
    },
)


class ElectionsView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Call a board election (staff or directors)",
        request=ElectionIn,
        responses={201: ElectionOut, **_errors(400, 401, 403)},
        examples=[
            OpenApiExample(
                "Two seats",
                request_only=True,
                value={
                    "title": "2027 board election",
                    "seats": 2,
                    "nominations_close_at": "2027-01-10T17:00:00Z",
                    "voting_closes_at": "2027-01-24T17:00:00Z",
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = _valid(ElectionIn, request)
        election = services.election_create(user=request.user, **data)
        return Response(selectors.election_document(election), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Elections, newest first",
        operation_id="governance_elections_list",
        responses={200: _page("ElectionPage", ElectionOut), **_errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        viewer = _reader(request)
        paginator = ElectionPage()
        page = paginator.paginate_queryset(selectors.elections_all(), request, view=self)
        return paginator.get_paginated_response(
            [selectors.election_document(e, viewer=viewer) for e in page or []]
        )


class ElectionDetailView(APIView):
    @extend_schema(tags=[TAG], summary="One election", responses={200: ElectionOut, **_errors(401, 403, 404)})
    def get(self, request: Request, election_id: Any) -> Response:
        viewer = _reader(request)
        return Response(selectors.election_document(_election_or_404(election_id), viewer=viewer))


class ElectionNominationsView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Stand for election (members in good standing, during nominations)",
        request=NominationIn,
        responses={
            201: inline_serializer("Nomination", {"member_id": serializers.UUIDField()}),
            **_errors(401, 403, 404, 409),
        },
    )
    def post(self, request: Request, election_id: Any) -> Response:
        _reader(request)
        data = _valid(NominationIn, request)
        candidate = services.election_nominate(
            election_id=election_id, user=request.user, statement=data["statement"]
        )
        return Response({"member_id": str(candidate.member_id)}, status=status.HTTP_201_CREATED)


class ElectionBallotsView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Cast a ranked ballot (candidate member ids, most preferred first)",
        request=BallotIn,
        responses={201: ReceiptOut, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, election_id: Any) -> Response:
        _reader(request)
        data = _valid(BallotIn, request)
        receipt = services.election_ballot_cast(
            election_id=election_id, user=request.user, ranking=[str(item) for item in data["ranking"]]
        )
        return Response({"receipt": receipt}, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="The anonymous ballot record of a closed election: public, so anyone can recount",
        responses={
            200: inline_serializer(
                "BallotRecord",
                {
                    "election_id": serializers.UUIDField(),
                    "method": serializers.CharField(),
                    "seats": serializers.IntegerField(),
                    "candidates": serializers.ListField(child=serializers.CharField()),
                    "withdrawn": serializers.ListField(child=serializers.CharField()),
                    "lot_seed": serializers.CharField(),
                    "ballots": serializers.ListField(
                        child=serializers.ListField(child=serializers.CharField())
                    ),
                },
            ),
            **_errors(401, 404, 409),
        },
    )
    def get(self, request: Request, election_id: Any) -> Response:
        election = _election_or_404(election_id)
        if election.closed_at is None:
            raise Conflict(
                "The ballots are published once the election is counted.", code="election_not_closed"
            )
        return Response(selectors.ballot_record(election))


class ElectionResultView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="The result of an election and its stage-by-stage count",
        responses={
            200: inline_serializer(
                "ElectionResult",
                {
                    "status": serializers.CharField(),
                    "elected": serializers.ListField(child=serializers.UUIDField()),
                    "count": serializers.DictField(allow_null=True),
                },
            ),
            **_errors(401, 403, 404),
        },
    )
    def get(self, request: Request, election_id: Any) -> Response:
        _reader(request)
        election = _election_or_404(election_id)
        result = election.result or {}
        return Response(
            {"status": election.phase(), "elected": result.get("elected", []), "count": election.result}
        )


# --- Dividends and the audit log ------------------------------------------------------------


class StatementsView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="My patronage dividend statements",
        responses={
            200: _page(
                "DividendStatementPage",
                inline_serializer(
                    "DividendStatement",
                    {
                        "id": serializers.UUIDField(),
                        "proposal_id": serializers.UUIDField(),
                        "period_start": serializers.DateField(),
                        "period_end": serializers.DateField(),
                        "basis": serializers.CharField(),
                        "patronage": serializers.CharField(),
                        "total": MoneySerializer,
                        "cash": MoneySerializer,
                        "capital": MoneySerializer,
                        "member_id": serializers.UUIDField(),
                        "created_at": serializers.DateTimeField(),
                    },
                ),
            ),
            **_errors(401),
        },
    )
    def get(self, request: Request) -> Response:
        statements = selectors.statements_of(request.user)
        paginator = StatementPage()
        page = paginator.paginate_queryset(statements, request, view=self)
        return paginator.get_paginated_response(
            [
                {
                    "id": str(s.id),
                    "proposal_id": str(s.proposal_id),
                    "member_id": str(s.member_id),
                    "period_start": s.period_start.isoformat(),
                    "period_end": s.period_end.isoformat(),
                    "basis": s.basis,
                    "patronage": s.patronage,
                    "total": {"amount": s.total_minor, "currency": s.currency},
                    "cash": {"amount": s.cash_minor, "currency": s.currency},
                    "capital": {"amount": s.capital_minor, "currency": s.currency},
                    "created_at": s.created_at.isoformat(),
                }
                for s in page or []
            ]
        )


def audit_entry_document(entry: AuditEntry) -> dict[str, Any]:
    return {
        "sequence": entry.sequence,
        "kind": entry.kind,
        "payload": entry.payload,
        "at": entry.at.isoformat(),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


class AuditView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="The governance audit log, newest first (hash-chained; see docs/governance.md)",
        responses={
            200: inline_serializer(
                "AuditEntry",
                {
                    "sequence": serializers.IntegerField(),
                    "kind": serializers.CharField(),
                    "payload": serializers.DictField(),
                    "at": serializers.DateTimeField(),
                    "prev_hash": serializers.CharField(),
                    "hash": serializers.CharField(),
                },
                many=True,
            ),
            **_errors(401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        _reader(request)
        paginator = AuditPage()
        page = paginator.paginate_queryset(selectors.audit_entries(), request, view=self)
        return paginator.get_paginated_response([audit_entry_document(e) for e in page or []])


class AuditVerifyView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Recompute the audit chain",
        responses={
            200: inline_serializer(
                "AuditVerification",
                {
                    "ok": serializers.BooleanField(),
                    "checked": serializers.IntegerField(),
                    "first_bad_sequence": serializers.IntegerField(allow_null=True),
                    "reason": serializers.CharField(allow_null=True),
                    "head": inline_serializer(
                        "AuditHead", {"sequence": serializers.IntegerField(), "hash": serializers.CharField()}
                    ),
                },
            ),
            **_errors(401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        _reader(request)
        result = audit_verify()
        head = audit_head()
        return Response(
            {
                "ok": result.ok,
                "checked": result.checked,
                "first_bad_sequence": result.first_bad_sequence,
                "reason": result.reason,
                "head": head,
            }
        )
