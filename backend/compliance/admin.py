"""Documents in the admin: the same review as the staff API (`document_review`, so every decision is
recorded), as list actions; a rejection takes its reason from the box next to the action. Nothing about a
document is edited here, and its file opens only through a short-lived signed link."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from backend.compliance.models import Document, DocumentReview, DocumentStatus, ExpiryReminder
from backend.compliance.services import document_file_link, document_review
from backend.errors import DomainError


class ReviewActionForm(ActionForm):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Reason (to reject)",
        widget=forms.TextInput(attrs={"size": 40}),
    )


class DocumentReviewInline(admin.TabularInline):
    model = DocumentReview
    extra = 0
    can_delete = False
    fields = ["decision", "reason", "reviewer", "decided_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    action_form = ReviewActionForm
    actions = ["approve_documents", "reject_documents"]
    list_display = ["kind", "subject", "driver", "vehicle", "expires_on", "status", "created_at"]
    list_filter = ["status", "subject", "kind"]
    search_fields = ["driver__user__phone", "driver__user__name", "number", "vehicle__plate"]
    ordering = ["created_at"]
    inlines = [DocumentReviewInline]
    fields = [
        "driver",
        "vehicle",
        "subject",
        "kind",
        "number",
        "issuer",
        "expires_on",
        "file_link",
        "content_type",
        "size_bytes",
        "sha256",
        "status",
        "reviewed_by",
        "reviewed_at",
        "reason",
        "superseded_by",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # drivers send documents through the API, which checks the file

    def has_delete_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False

    @admin.display(description="File")
    def file_link(self, document: Document) -> str:
        try:
            download = reverse("document-file-download")
        except NoReverseMatch:
            return "-"
        return format_html(
            '<a href="{}?token={}" rel="noreferrer">Open (a link valid a few minutes)</a>',
            download,
            document_file_link(document=document).token,
        )

    def _review(self, request: HttpRequest, queryset: QuerySet[Document], decision: str) -> None:
        reason = request.POST.get("reason", "")
        done, refused = 0, []
        for document_id in queryset.filter(status=DocumentStatus.PENDING).values_list("id", flat=True):
            try:
                document_review(
                    document_id=document_id, reviewer=request.user, decision=decision, reason=reason
                )
                done += 1
            except DomainError as exc:
                refused.append(exc.message)
        if done:
            self.message_user(request, f"{done} document(s) {decision}.", messages.SUCCESS)
        for message in sorted(set(refused)):
            self.message_user(request, message, messages.ERROR)
        skipped = queryset.exclude(status=DocumentStatus.PENDING).count()
        if skipped:
            self.message_user(
                request, f"{skipped} document(s) not pending were left as they are.", messages.WARNING
            )

    @admin.action(description="Approve the selected documents", permissions=["change"])
    def approve_documents(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        self._review(request, queryset, "approved")

    @admin.action(description="Reject the selected documents (with the reason given)", permissions=["change"])
    def reject_documents(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        self._review(request, queryset, "rejected")


@admin.register(ExpiryReminder)
class ExpiryReminderAdmin(admin.ModelAdmin):
    list_display = ["document", "days_before", "reminded_on", "created_at"]
    readonly_fields = ["document", "days_before", "reminded_on", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
