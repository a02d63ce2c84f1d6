"""Organisations in the admin: the organisation and its booking policy with its people inline, its guests,
and its API keys. A key shows its prefix only (the key itself was shown once, to whoever made it, and is
not stored); keys are made through the API (`POST /organisations/{id}/api-keys`) and revoked here with an
action that goes through `api_key_revoke`. The allowed area is shown as WKT; it is set through the staff
API (`PATCH /staff/organisations/{id}`, GeoJSON), which checks it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from backend.errors import DomainError
from backend.organisations.models import (
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationInvitation,
    OrganisationMembership,
)
from backend.organisations.rules import allowed_hours_problems
from backend.organisations.services import api_key_revoke


class OrganisationForm(forms.ModelForm):
    class Meta:
        model = Organisation
        fields = [
            "name",
            "kind",
            "is_active",
            "billing_email",
            "billing_address",
            "payment_terms_days",
            "allowed_hours",
            "max_fare_minor",
            "wav_allowed",
            "booking_rule",
            "reference_required",
        ]

    def clean_allowed_hours(self) -> object:
        value = self.cleaned_data["allowed_hours"]
        problems = allowed_hours_problems(value if value is not None else [])
        if problems:
            raise forms.ValidationError("; ".join(problems))
        return value or []


class MembershipInline(admin.TabularInline):
    model = OrganisationMembership
    extra = 0
    fields = ["user", "role", "is_active", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]

    def has_delete_permission(self, request: HttpRequest, obj: Organisation | None = None) -> bool:
        return False  # a member leaves by `is_active`, so the trips they booked keep their booker


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    form = OrganisationForm
    list_display = ["name", "kind", "is_active", "booking_rule", "reference_required", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "billing_email"]
    readonly_fields = ["id", "currency", "allowed_area_wkt", "created_at"]
    inlines = [MembershipInline]

    @admin.display(description="Allowed area (WKT; set through the staff API)")
    def allowed_area_wkt(self, organisation: Organisation) -> str:
        return organisation.allowed_area.wkt if organisation.allowed_area is not None else "anywhere served"

    def has_delete_permission(self, request: HttpRequest, obj: Organisation | None = None) -> bool:
        return False  # its trips and invoices keep it; close it with `is_active`


@admin.register(OrganisationGuest)
class OrganisationGuestAdmin(admin.ModelAdmin):
    list_display = ["name", "phone", "organisation", "created_at", "confirmed_at"]
    search_fields = ["name", "phone", "organisation__name"]
    list_filter = ["organisation"]
    fields = [
        "organisation",
        "name",
        "phone",
        "user",
        "created_by",
        "created_at",
        "account_created",
        "confirmed_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # added by the organisation's bookers, who find or make the rider account

    def has_delete_permission(self, request: HttpRequest, obj: OrganisationGuest | None = None) -> bool:
        return False


@admin.register(OrganisationInvitation)
class OrganisationInvitationAdmin(admin.ModelAdmin):
    list_display = ["phone", "role", "organisation", "created_at"]
    search_fields = ["phone", "organisation__name"]
    list_filter = ["organisation"]
    fields = ["organisation", "phone", "role", "invited_by", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # its admins invite through the API; the person accepts or declines in the app


@admin.register(OrganisationApiKey)
class OrganisationApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "organisation", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organisation"]
    search_fields = ["prefix", "name", "organisation__name"]
    # Never the hash: nothing here helps anyone rebuild or test a key.
    fields = [
        "organisation",
        "name",
        "prefix",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["revoke_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made through the API, which shows the key once

    def has_delete_permission(self, request: HttpRequest, obj: OrganisationApiKey | None = None) -> bool:
        return False  # trips booked with it name it

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[OrganisationApiKey]) -> None:
        revoked = 0
        for key in queryset:
            try:
                api_key_revoke(organisation_id=key.organisation_id, by=request.user, key_id=key.id)
            except DomainError as error:
                self.message_user(request, f"{key.prefix}: {error.message}", messages.ERROR)
                continue
            revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
