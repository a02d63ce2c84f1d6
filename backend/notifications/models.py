"""The outbox of messages to people: one row per message and channel (docs/notifications.md).

`notify()` (backend/notifications/services.py) writes the rows in the caller's transaction, so a message
exists exactly when what it tells of committed; delivery runs after commit, in a Celery task, and is
retried. `dedup_key` makes a message that must go once (a reminder, a booking confirmation) go once however
often the code that sends it runs.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from backend.accounts.models import User


class NotificationChannel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    LOG = "log", "Log line (no channel reaches this person)"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Gave up"


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=60)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    to = models.CharField(max_length=254, help_text="The phone or address it goes to, as sent.")
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
