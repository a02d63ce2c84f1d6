"""Staff views of card payments: read-only, because Stripe and the ledger are the records."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from backend.cards.models import CardHold, StripeCustomer, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyAdmin):
    list_display = ("rider", "customer_id", "default_payment_method_id", "created_at")
    search_fields = ("customer_id", "rider__phone")


@admin.register(CardHold)
class CardHoldAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "trip",
        "status",
        "amount_minor",
        "captured_minor",
        "over_authorization_minor",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("payment_intent_id", "trip__id")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "created", "deliveries", "processed_at", "outcome")
    list_filter = ("type",)
    search_fields = ("event_id",)
