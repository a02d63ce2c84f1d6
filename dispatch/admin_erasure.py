"""Staff screen for erasure requests (registered from dispatch/admin.py; docs/compliance.md "Data rights").

Read-only but for one action, "Carry out the erasure", which calls `account_erase` for each selected
request: a blocked one is reported with its code and left open.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from backend.accounts.models import ErasureRequest
from backend.errors import DomainError
from dispatch.services.data_rights import account_erase


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    list_display = ["user", "status", "requested_at", "checked_at", "completed_at", "completed_by"]
    list_filter = ["status"]
    readonly_fields = [
        "id",
        "user",
        "status",
        "requested_at",
        "blockers",
        "checked_at",
        "completed_at",
        "completed_by",
    ]
    actions = ["erase"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.action(description="Carry out the erasure (pseudonymise the account)")
    def erase(self, request: HttpRequest, queryset: QuerySet[ErasureRequest]) -> None:
        for erasure_request in queryset.filter(status="requested"):
            try:
                result = account_erase(user_id=erasure_request.user_id, erased_by=request.user.pk)
            except DomainError as error:
                self.message_user(
                    request, f"{erasure_request.user_id}: {error.code}: {error.message}", messages.WARNING
                )
                continue
            self.message_user(request, f"{result.user_id} erased as {result.pseudonym}.", messages.SUCCESS)
