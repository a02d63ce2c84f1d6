"""Read-only admin views of governance records: changes go through the services (and the audit log).

Members, seats, proposals, dividend statements and the audit chain are never added, changed or deleted
here (the statements and the chain are append-only tables). The one act is counting a finished election,
through `election_close`, which seats the winners and appends to the audit chain."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from backend.errors import DomainError
from governance.models import (
    AuditEntry,
    BoardSeat,
    DividendStatement,
    Election,
    Member,
    Proposal,
)
from governance.services.elections import election_close


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "status", "share_price_minor", "joined_at")
    list_filter = ("status",)
    search_fields = ("user__phone", "user__name")


@admin.register(BoardSeat)
class BoardSeatAdmin(ReadOnlyAdmin):
    list_display = ("id", "member", "source", "starts_at", "term_ends", "ended_at")


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "status", "opens_at", "closes_at", "eligible")
    list_filter = ("kind", "status")


@admin.register(Election)
class ElectionAdmin(ReadOnlyAdmin):
    list_display = ("title", "seats", "nominations_close_at", "voting_closes_at", "closed_at")
    actions = ["count_elections"]

    def has_count_permission(self, request: HttpRequest) -> bool:
        # Counting is what the hourly sweep does anyway once voting closes: any active staff member may
        # do it sooner; the service refuses an election still open.
        return bool(request.user.is_active and request.user.is_staff)

    @admin.action(description="Count the selected elections whose voting has closed", permissions=["count"])
    def count_elections(self, request: HttpRequest, queryset: QuerySet[Election]) -> None:
        counted = 0
        for election in queryset.filter(closed_at__isnull=True):
            try:
                election_close(election_id=election.id)
            except DomainError as error:
                self.message_user(request, f"{election.title}: {error.message}", messages.ERROR)
                continue
            counted += 1
        if counted:
            self.message_user(request, f"{counted} election(s) counted.", messages.SUCCESS)


@admin.register(DividendStatement)
class DividendStatementAdmin(ReadOnlyAdmin):
    list_display = ("proposal", "member", "total_minor", "cash_minor", "capital_minor")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "kind", "at", "hash")
    list_filter = ("kind",)
