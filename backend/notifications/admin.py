"""The outbox in the admin: what was sent to whom, what failed and why, what is held for quiet hours; and
where people's pushes go and what they chose. Staff look; delivery and the people themselves write."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from backend.notifications.models import Notification, NotificationPreferences, PushDevice, PushSubscription


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "event",
        "channel",
        "user",
        "status",
        "attempts",
        "held_until",
        "last_error",
    ]
    list_filter = ["status", "channel", "event", "urgent"]
    search_fields = ["user__phone", "event", "provider_reference"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(ReadOnlyAdmin):
    # The endpoint is a capability to push to the person's browser: listed by its service only.
    list_display = ["user", "push_service", "user_agent", "created_at", "last_sent_at"]
    exclude = ["endpoint", "p256dh", "auth"]
    search_fields = ["user__phone"]
    list_select_related = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return ["user", "push_service", "user_agent", "created_at", "last_sent_at"]

    @admin.display(description="push service")
    def push_service(self, subscription: PushSubscription) -> str:
        return subscription.endpoint.split("://", 1)[-1].split("/", 1)[0]


@admin.register(PushDevice)
class PushDeviceAdmin(ReadOnlyAdmin):
    list_display = ["user", "platform", "created_at", "last_sent_at"]
    exclude = ["token"]
    list_filter = ["platform"]
    search_fields = ["user__phone"]
    list_select_related = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return ["user", "platform", "created_at", "last_sent_at"]


@admin.register(NotificationPreferences)
class NotificationPreferencesAdmin(ReadOnlyAdmin):
    list_display = ["user", "quiet_start", "quiet_end", "time_zone", "updated_at"]
    search_fields = ["user__phone"]
    list_select_related = ["user"]
