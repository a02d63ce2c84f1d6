"""Governance routes (docs/governance.md): membership, board, proposals, elections, statements, audit."""

from django.urls import path

from mobile_api import views_governance as views

urlpatterns = [
    path("governance/membership", views.MembershipView.as_view(), name="governance-membership"),
    path(
        "governance/membership/withdraw",
        views.MembershipWithdrawView.as_view(),
        name="governance-membership-withdraw",
    ),
    path("governance/board", views.BoardView.as_view(), name="governance-board"),
    path("governance/proposals", views.ProposalsView.as_view(), name="governance-proposals"),
    path(
        "governance/proposals/<uuid:proposal_id>",
        views.ProposalDetailView.as_view(),
        name="governance-proposal",
    ),
    path(
        "governance/proposals/<uuid:proposal_id>/votes",
        views.ProposalVotesView.as_view(),
        name="governance-proposal-votes",
    ),
    path(
        "governance/proposals/<uuid:proposal_id>/result",
        views.ProposalResultView.as_view(),
        name="governance-proposal-result",
    ),
    path("governance/elections", views.ElectionsView.as_view(), name="governance-elections"),
    path(
        "governance/elections/<uuid:election_id>",
        views.ElectionDetailView.as_view(),
        name="governance-election",
    ),
    path(
        "governance/elections/<uuid:election_id>/nominations",
        views.ElectionNominationsView.as_view(),
        name="governance-election-nominations",
    ),
    path(
        "governance/elections/<uuid:election_id>/ballots",
        views.ElectionBallotsView.as_view(),
        name="governance-election-ballots",
    ),
    path(
        "governance/elections/<uuid:election_id>/result",
        views.ElectionResultView.as_view(),
        name="governance-election-result",
    ),
    path("governance/statements", views.StatementsView.as_view(), name="governance-statements"),
    path("governance/audit", views.AuditView.as_view(), name="governance-audit"),
    path("governance/audit/verify", views.AuditVerifyView.as_view(), name="governance-audit-verify"),
    path("staff/board/seats", views.StaffBoardSeatsView.as_view(), name="staff-board-seats"),
    path(
        "staff/members/<uuid:member_id>/status",
        views.StaffMemberStatusView.as_view(),
        name="staff-member-status",
    ),
]
