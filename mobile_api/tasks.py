"""Periodic upkeep of the HTTP edge's own tables."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from mobile_api.models import IdempotencyKey


def idempotency_keys_expire(*, older_than_hours: int | None = None) -> int:
    """Delete keys older than ROCHDALE_IDEMPOTENCY_KEY_TTL_H (never under 24 h); return how many."""
    hours = max(older_than_hours or settings.ROCHDALE_IDEMPOTENCY_KEY_TTL_H, 24)
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@shared_task(name="mobile_api.tasks.expire_idempotency_keys")
def expire_idempotency_keys() -> int:
    return idempotency_keys_expire()
