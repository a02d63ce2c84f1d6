"""Staff screens for organisations' invoices (registered from dispatch/admin.py; docs/billing.md).

Read-only: an invoice's lines are copies of ledger entries, its payments are recorded through the staff
route (`POST /api/v1/staff/invoices/{id}/payments`), which posts their ledger entries, and its status
follows from them. Nothing here edits money."""

from __future__ import annotations

from django.contrib import admin

from backend.fares.admin import ReadOnlyAdmin
from backend.fares.admin_display import money
from dispatch.models import InvoiceLine, InvoicePayment, OrganisationInvoice


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["occurred_at", "kind", "trip", "reference", "rider_name", "amount_minor", "entry"]
    readonly_fields = fields


class InvoicePaymentInline(admin.TabularInline):
    model = InvoicePayment
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["received_on", "amount_minor", "method", "reference", "recorded_by", "recorded_at"]
    readonly_fields = fields


@admin.register(OrganisationInvoice)
class OrganisationInvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "organisation", "month", "total", "status", "issued_at", "due_on"]
    list_filter = ["status", "month"]
    search_fields = ["number", "organisation__name"]
    ordering = ["-month", "number"]
    readonly_fields = [
        "id",
        "number",
        "organisation",
        "month",
        "currency",
        "total_minor",
        "issued_at",
        "due_on",
        "status",
    ]
    inlines = [InvoiceLineInline, InvoicePaymentInline]

    @admin.display(description="Total", ordering="total_minor")
    def total(self, obj: OrganisationInvoice) -> str:
        return money(obj.total_minor, obj.currency)


@admin.register(InvoicePayment)
class InvoicePaymentAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "received_on", "amount_minor", "method", "reference", "recorded_by"]
    search_fields = ["invoice__number", "reference"]
    ordering = ["-recorded_at"]
    readonly_fields = [
        "id",
        "invoice",
        "amount_minor",
        "received_on",
        "method",
        "reference",
        "recorded_by",
        "recorded_at",
    ]
