"""What the HTTP edge itself must remember: Idempotency-Keys and the answers they replay."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

IDEMPOTENCY_KEY_MAX_LENGTH = 128


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` a user sent, with the fingerprint of its request and the answer it got.

    The row is written in the same transaction as the request's effect, so a key exists if and only if its
    effect does. The unique constraint scopes keys to their user: two riders may pick the same key.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    request_fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path, user and body.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
