"""The outbox of messages to people, and what decides where they go (docs/notifications.md).

`Notification`: one row per message and target (the phone, the address, one browser's push subscription,
one app install). `notify()` (backend/notifications/services.py) writes the rows in the caller's
transaction, so a message exists exactly when what it tells of committed; delivery runs after commit, in a
Celery task, and is retried. `dedup_key` makes a message that must go once (a reminder, a booking
confirmation) go once however often the code that sends it runs.

`NotificationPreferences`: a person's switches per event category and channel (only those they changed
from the defaults are stored) and their quiet hours. `PushSubscription`: a browser's Web Push subscription
(its push service's endpoint and the keys the payload is encrypted to). `PushDevice`: a mobile app
install's FCM or APNs token.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.accounts.models import User


class NotificationChannel(models.TextChoices):
    SMS = "sms", gettext_lazy("SMS")
    EMAIL = "email", gettext_lazy("Email")
    WEB_PUSH = "web_push", gettext_lazy("Web Push (a browser)")
    MOBILE_PUSH = "mobile_push", gettext_lazy("Mobile push (FCM or APNs)")
    LOG = "log", gettext_lazy("Log line (no channel reaches this person)")


class PushPlatform(models.TextChoices):
    FCM = "fcm", gettext_lazy("Firebase Cloud Messaging (Android)")
    APNS = "apns", gettext_lazy("Apple Push Notification service (iOS)")


class PushSubscription(models.Model):
    """One browser's Web Push subscription (what `PushManager.subscribe()` gave the page). The endpoint is
    the push service's secret address for that browser, so it is unique: the browser signed in as someone
    else moves to them. Deleted when the push service answers 404 or 410 (the browser dropped it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=100, help_text="The browser's P-256 public key (base64url).")
    auth = models.CharField(max_length=50, help_text="The browser's auth secret (base64url).")
    user_agent = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        # The endpoint's path is a capability to push to the browser: only its service is named.
        return f"web push of {self.user_id} via {self.endpoint.split('://', 1)[-1].split('/', 1)[0]}"


class PushDevice(models.Model):
    """One install of the mobile app: its FCM registration token or APNs device token. Deleted when the
    service says the token is no longer registered."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="push_devices")
    platform = models.CharField(max_length=4, choices=PushPlatform.choices)
    token = models.CharField(max_length=512)
    created_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "token"], name="push_device_token_unique"),
            models.CheckConstraint(
                condition=models.Q(platform__in=PushPlatform.values), name="push_device_platform_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform} device of {self.user_id}"


class NotificationPreferences(models.Model):
    """A person's choices: `channels` holds only the switches they changed from the defaults
    (`{"governance": {"sms": false}}`, backend/notifications/preferences.py), so a new default reaches
    everyone who did not choose. Quiet hours are local times in `time_zone` (blank: the co-op's)."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, primary_key=True, related_name="notification_preferences"
    )
    channels = models.JSONField(default=dict, blank=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "notification preferences"
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(quiet_start__isnull=True) & models.Q(quiet_end__isnull=True))
                | (
                    models.Q(quiet_start__isnull=False)
                    & models.Q(quiet_end__isnull=False)
                    & ~models.Q(quiet_start=models.F("quiet_end"))
                ),
                name="quiet_hours_both_or_neither",
            )
        ]

    def __str__(self) -> str:
        return f"notification preferences of {self.user_id}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Waiting to be sent")
    SENT = "sent", gettext_lazy("Sent")
    FAILED = "failed", gettext_lazy("Gave up")


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=60)
    channel = models.CharField(max_length=12, choices=NotificationChannel.choices)
    to = models.CharField(
        max_length=254, help_text="The phone or address it goes to, as sent (for push: the service's host)."
    )
    push_subscription = models.ForeignKey(
        PushSubscription, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    device = models.ForeignKey(PushDevice, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    urgent = models.BooleanField(
        default=False, help_text="Sent through quiet hours and whatever the person switched off (SOS)."
    )
    held_until = models.DateTimeField(
        null=True, blank=True, help_text="Held for the person's quiet hours; sent when they end."
    )
    subject = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    context = models.JSONField(default=dict, blank=True)
    dedup_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    status = models.CharField(
        max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    provider_reference = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__in=NotificationChannel.values), name="notification_channel_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=NotificationStatus.values), name="notification_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.user_id} by {self.channel} ({self.status})"


class Broadcast(models.Model):
    """One message to many people (`notify_each`: a voter roll) was started: written in the sender's
    transaction, so a sender that runs again (a sweep, a retried close) fans the same message out once."""

    key = models.CharField(max_length=200, primary_key=True)
    event = models.CharField(max_length=60)
    recipients = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.event} to {self.recipients} ({self.key})"
