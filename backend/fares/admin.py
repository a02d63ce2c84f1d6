"""Read-only admin: staff can see policies, the journal, balances and payment captures, never edit them.

Policies change only through governance (or the founding command); money moves only by new entries.
The one write here is the capture action "retry now", which only moves a failed capture's next attempt.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Model, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from backend.fares.admin_display import money
from backend.fares.models import (
    DEBIT_NORMAL_KINDS,
    CaptureStatus,
    FarePolicyVersion,
    JournalEntry,
    LedgerAccount,
    PaymentCapture,
    Posting,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(FarePolicyVersion)
class FarePolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "effective_at", "source", "proposal_id", "created_at"]
    list_filter = ["source"]
    ordering = ["-version"]
    readonly_fields = ["version", "effective_at", "source", "proposal_id", "created_at", "policy"]
    exclude = ["document"]

    @admin.display(description="Policy")
    def policy(self, obj: FarePolicyVersion) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.document, indent=2))


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["account", "debit_minor", "credit_minor"]
    readonly_fields = fields


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["key", "kind", "trip_id", "created_at", "memo"]
    list_filter = ["kind"]
    search_fields = ["key", "memo"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [PostingInline]


def _posted_total(column: str) -> Coalesce:
    """One account's total on one side, summed from its postings (balances are derived, never stored)."""
    per_account = (
        Posting.objects.filter(account_id=OuterRef("pk"))
        .order_by()
        .values("account_id")
        .annotate(total=Sum(column))
        .values("total")
    )
    return Coalesce(Subquery(per_account), 0)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "code", "owner", "currency", "debits", "credits", "balance"]
    list_filter = ["kind", "currency"]
    search_fields = ["owner__phone", "owner__name", "code"]
    list_select_related = ["owner"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerAccount]:
        return (
            super()
            .get_queryset(request)
            .annotate(debit_total=_posted_total("debit_minor"), credit_total=_posted_total("credit_minor"))
        )

    @admin.display(description="Debits", ordering="debit_total")
    def debits(self, obj: LedgerAccount) -> str:
        return money(obj.debit_total, obj.currency)

    @admin.display(description="Credits", ordering="credit_total")
    def credits(self, obj: LedgerAccount) -> str:
        return money(obj.credit_total, obj.currency)

    @admin.display(description="Balance, normal side")
    def balance(self, obj: LedgerAccount) -> str:
        if obj.kind in DEBIT_NORMAL_KINDS:
            return money(obj.debit_total - obj.credit_total, obj.currency)
        return money(obj.credit_total - obj.debit_total, obj.currency)


@admin.register(PaymentCapture)
class PaymentCaptureAdmin(ReadOnlyAdmin):
    list_display = [
        "key",
        "purpose",
        "status",
        "amount_minor",
        "currency",
        "provider",
        "attempts",
        "idempotency_key",
        "next_attempt_at",
        "last_error",
        "created_at",
    ]
    list_filter = ["status", "purpose", "provider"]
    search_fields = ["key", "rider__phone", "provider_reference"]
    ordering = ["-created_at"]
    actions = ["retry_now"]

    @admin.action(description="Retry the selected failed captures now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[PaymentCapture]) -> None:
        moved = queryset.filter(status=CaptureStatus.FAILED).update(
            next_attempt_at=timezone.now(), updated_at=timezone.now()
        )
        self.message_user(request, f"{moved} capture(s) will be retried by the next sweep.", messages.INFO)
