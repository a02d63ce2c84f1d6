"""Read-only admin views of governance records: changes go through the services (and the audit log)."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from governance.models import (
    AuditEntry,
    BoardSeat,
    DividendStatement,
    Election,
    Member,
    Proposal,
)


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


@admin.register(DividendStatement)
class DividendStatementAdmin(ReadOnlyAdmin):
    list_display = ("proposal", "member", "total_minor", "cash_minor", "capital_minor")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "kind", "at", "hash")
    list_filter = ("kind",)
