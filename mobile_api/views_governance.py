"""The HTTP face of governance: membership, the board, proposals and votes, elections, dividend statements
and the audit log. Thin: validate, call a service or selector, answer through an output serializer
(mobile_api/serializers_governance.py; docs/governance.md)."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import Conflict, NotFound
from governance import selectors, services
from governance.audit import audit_head, audit_verify
from governance.models import Election, Proposal
from mobile_api import serializers_governance as g
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsMemberOrStaff, IsMemberOrStaffVoting, IsStaffOnly
from mobile_api.schema import error_responses
from mobile_api.schema import governance as docs

TAG = "governance"


class ProposalPage(CursorPage):
    ordering = ("-opens_at", "-id")


class AuditPage(CursorPage):
    ordering = "-sequence"
    page_size = 50


class ElectionPage(CursorPage):
    ordering = ("-opens_at", "-id")


class StatementPage(CursorPage):
    ordering = ("-created_at", "-id")


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _proposal_or_404(proposal_id: uuid.UUID) -> Proposal:
    proposal = selectors.proposal_get(proposal_id)
    if proposal is None:
        raise NotFound(_("No such proposal."))
    return proposal


def _election_or_404(election_id: uuid.UUID) -> Election:
    election = selectors.election_get(election_id)
    if election is None:
        raise NotFound(_("No such election."))
    return election


# --- Membership --------------------------------------------------------------------------------


class MembershipView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        summary="Join the co-operative by subscribing one member share",
        request=None,
        responses={201: g.MembershipOut, **error_responses(docs.MEMBERSHIP_JOIN)},
        examples=docs.MEMBERSHIP_JOIN_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        member = services.membership_join(user=request.user)
        document = selectors.membership_document(member)
        return Response(g.MembershipOut(document).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="My membership, capital account and this year's patronage",
        responses={200: g.MembershipDetailOut, **error_responses(docs.MEMBERSHIP_READ)},
    )
    def get(self, request: Request) -> Response:
        member = selectors.current_member(request.user)
        if member is None:
            raise NotFound(_("You are not a member."), code="not_a_member")
        return Response(g.MembershipDetailOut(selectors.membership_detail(member)).data)


class MembershipWithdrawView(APIView):
    @extend_schema(
        tags=[TAG],
        summary="Withdraw from membership (the share is repaid as the bylaws say)",
        request=None,
        responses={200: g.MembershipOut, **error_responses(docs.MEMBERSHIP_WITHDRAW)},
    )
    def post(self, request: Request) -> Response:
        member = services.membership_withdraw(user=request.user)
        return Response(g.MembershipOut(selectors.membership_document(member)).data)


class StaffMemberStatusView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        tags=[TAG],
        summary="Suspend or reinstate a member (staff)",
        request=g.MemberStatusIn,
        responses={200: g.MembershipOut, **error_responses(docs.MEMBER_STATUS_SET)},
    )
    def post(self, request: Request, member_id: uuid.UUID) -> Response:
        data = _valid(g.MemberStatusIn, request)
        member = services.membership_set_status(
            member_id=member_id, status=data["status"], actor=request.user, reason=data["reason"]
        )
        return Response(g.MembershipOut(selectors.membership_document(member)).data)


# --- Board -------------------------------------------------------------------------------------------------


class StaffBoardSeatsView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        tags=[TAG],
        summary="Seat a founding director (staff)",
        request=g.SeatIn,
        responses={201: g.SeatCreatedOut, **error_responses(docs.BOARD_SEAT_FOUND)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(g.SeatIn, request)
        seat = services.board_seat_found(
            member_id=data["member_id"], actor=request.user, term_ends=data.get("term_ends")
        )
        return Response(g.SeatCreatedOut(seat).data, status=status.HTTP_201_CREATED)


class BoardView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="The board seats in force",
        responses={200: g.BoardOut, **error_responses(docs.NOT_A_MEMBER)},
    )
    def get(self, request: Request) -> Response:
        seats = selectors.seats_in_force().select_related("member__user").order_by("starts_at")
        return Response(g.BoardOut({"seats": seats}).data)


# --- Proposals ---------------------------------------------------------------------------------------------


class ProposalsView(APIView):
    pagination_class = ProposalPage

    def get_permissions(self) -> list[BasePermission]:
        # Anyone signed in may try to propose (the service says who may); only members and staff list.
        return [IsAuthenticated()] if self.request.method == "POST" else [IsMemberOrStaff()]

    @extend_schema(
        tags=[TAG],
        summary="Open a proposal (directors: fare_policy; members: bylaw, dividend, general)",
        request=g.ProposalIn,
        responses={201: g.ProposalOut, **error_responses(docs.PROPOSAL_CREATE)},
        examples=docs.PROPOSAL_CREATE_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        data = _valid(g.ProposalIn, request)
        proposal = services.proposal_create(user=request.user, **data)
        record = selectors.proposal_record(proposal, viewer=selectors.current_member(request.user))
        return Response(g.ProposalOut(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Proposals, newest first, with my vote status",
        operation_id="governance_proposals_list",
        responses={200: g.ProposalOut(many=True), **error_responses(docs.NOT_A_MEMBER)},
    )
    def get(self, request: Request) -> Response:
        viewer = selectors.current_member(request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.proposals_all(), request, view=self) or []
        records = selectors.proposal_records(page, viewer=viewer)
        return paginator.get_paginated_response(g.ProposalOut(records, many=True).data)


class ProposalDetailView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="One proposal",
        responses={200: g.ProposalOut, **error_responses(docs.PROPOSAL_READ)},
    )
    def get(self, request: Request, proposal_id: uuid.UUID) -> Response:
        viewer = selectors.current_member(request.user)
        record = selectors.proposal_record(_proposal_or_404(proposal_id), viewer=viewer)
        return Response(g.ProposalOut(record).data)


class ProposalVotesView(APIView):
    permission_classes = [IsMemberOrStaffVoting]

    @extend_schema(
        tags=[TAG],
        summary="Vote on a proposal (once; the answer is a receipt)",
        request=g.VoteIn,
        responses={201: g.ReceiptOut, **error_responses(docs.PROPOSAL_VOTE)},
        examples=docs.PROPOSAL_VOTE_EXAMPLES,
    )
    def post(self, request: Request, proposal_id: uuid.UUID) -> Response:
        data = _valid(g.VoteIn, request)
        receipt = services.proposal_vote(proposal_id=proposal_id, user=request.user, choice=data["choice"])
        return Response(g.ReceiptOut({"receipt": receipt}).data, status=status.HTTP_201_CREATED)


class ProposalResultView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="The result of a proposal (running count while open)",
        responses={200: g.ProposalResultOut, **error_responses(docs.PROPOSAL_READ)},
    )
    def get(self, request: Request, proposal_id: uuid.UUID) -> Response:
        return Response(g.ProposalResultOut(selectors.proposal_result(_proposal_or_404(proposal_id))).data)


# --- Elections ---------------------------------------------------------------------------------------------


class ElectionsView(APIView):
    pagination_class = ElectionPage

    def get_permissions(self) -> list[BasePermission]:
        # Anyone signed in may try to call one (the service says who may); only members and staff list.
        return [IsAuthenticated()] if self.request.method == "POST" else [IsMemberOrStaff()]

    @extend_schema(
        tags=[TAG],
        summary="Call a board election (staff or directors)",
        request=g.ElectionIn,
        responses={201: g.ElectionOut, **error_responses(docs.ELECTION_CREATE)},
        examples=docs.ELECTION_CREATE_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        data = _valid(g.ElectionIn, request)
        election = services.election_create(user=request.user, **data)
        record = selectors.election_record(election, viewer=None)
        return Response(g.ElectionOut(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Elections, newest first",
        operation_id="governance_elections_list",
        responses={200: g.ElectionOut(many=True), **error_responses(docs.NOT_A_MEMBER)},
    )
    def get(self, request: Request) -> Response:
        viewer = selectors.current_member(request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.elections_all(), request, view=self) or []
        records = selectors.election_records(page, viewer=viewer)
        return paginator.get_paginated_response(g.ElectionOut(records, many=True).data)


class ElectionDetailView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="One election",
        responses={200: g.ElectionOut, **error_responses(docs.ELECTION_READ)},
    )
    def get(self, request: Request, election_id: uuid.UUID) -> Response:
        viewer = selectors.current_member(request.user)
        record = selectors.election_record(_election_or_404(election_id), viewer=viewer)
        return Response(g.ElectionOut(record).data)


class ElectionNominationsView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="Stand for election (members in good standing, during nominations)",
        request=g.NominationIn,
        responses={201: g.NominationOut, **error_responses(docs.ELECTION_NOMINATE)},
    )
    def post(self, request: Request, election_id: uuid.UUID) -> Response:
        data = _valid(g.NominationIn, request)
        candidate = services.election_nominate(
            election_id=election_id, user=request.user, statement=data["statement"]
        )
        return Response(g.NominationOut(candidate).data, status=status.HTTP_201_CREATED)


class ElectionBallotsView(APIView):
    def get_permissions(self) -> list[BasePermission]:
        # Casting is for members (and staff, whom the service refuses as not on the roll); the ballot
        # record is public to anyone signed in, so that anyone can recount.
        return [IsMemberOrStaff()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        tags=[TAG],
        summary="Cast a ranked ballot (candidate member ids, most preferred first)",
        request=g.BallotIn,
        responses={201: g.ReceiptOut, **error_responses(docs.ELECTION_BALLOT_CAST)},
    )
    def post(self, request: Request, election_id: uuid.UUID) -> Response:
        data = _valid(g.BallotIn, request)
        receipt = services.election_ballot_cast(
            election_id=election_id, user=request.user, ranking=[str(item) for item in data["ranking"]]
        )
        return Response(g.ReceiptOut({"receipt": receipt}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="The anonymous ballot record of a closed election: public, so anyone can recount",
        responses={200: g.BallotRecordOut, **error_responses(docs.BALLOT_RECORD_READ)},
    )
    def get(self, request: Request, election_id: uuid.UUID) -> Response:
        election = _election_or_404(election_id)
        if election.closed_at is None:
            raise Conflict(
                _("The ballots are published once the election is counted."), code="election_not_closed"
            )
        return Response(g.BallotRecordOut(selectors.ballot_record(election)).data)


class ElectionResultView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="The result of an election and its stage-by-stage count",
        responses={200: g.ElectionResultOut, **error_responses(docs.ELECTION_READ)},
    )
    def get(self, request: Request, election_id: uuid.UUID) -> Response:
        election = _election_or_404(election_id)
        result = election.result or {}
        return Response(
            g.ElectionResultOut(
                {"status": election.phase(), "elected": result.get("elected", []), "count": election.result}
            ).data
        )


# --- Dividends and the audit log ------------------------------------------------------------


class StatementsView(APIView):
    pagination_class = StatementPage

    @extend_schema(
        tags=[TAG],
        summary="My patronage dividend statements",
        operation_id="governance_statements_list",
        responses={200: g.DividendStatementOut(many=True)},
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.statements_of(request.user), request, view=self) or []
        return paginator.get_paginated_response(g.DividendStatementOut(page, many=True).data)


class AuditView(APIView):
    pagination_class = AuditPage
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="The governance audit log, newest first (hash-chained; see docs/governance.md)",
        responses={200: g.AuditEntryOut(many=True), **error_responses(docs.NOT_A_MEMBER)},
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.audit_entries(), request, view=self) or []
        return paginator.get_paginated_response(g.AuditEntryOut(page, many=True).data)


class AuditVerifyView(APIView):
    permission_classes = [IsMemberOrStaff]

    @extend_schema(
        tags=[TAG],
        summary="Recompute the audit chain",
        responses={200: g.AuditVerificationOut, **error_responses(docs.NOT_A_MEMBER)},
    )
    def get(self, request: Request) -> Response:
        result = audit_verify()
        return Response(
            g.AuditVerificationOut(
                {
                    "ok": result.ok,
                    "checked": result.checked,
                    "first_bad_sequence": result.first_bad_sequence,
                    "reason": result.reason,
                    "head": audit_head(),
                }
            ).data
        )
