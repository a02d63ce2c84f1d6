"""Sending what `notify()` wrote: one outbox row at a time, claimed so that no two workers send it.

Delivery claims a row with a guarded UPDATE (a lease of DELIVERY_LEASE_S, so a second worker leaves it
alone while the first is at it, and a dead worker's row is picked up again after it), calls the channel
outside any transaction, and records the outcome. A failure is retried with exponential backoff by the
sweep (`notifications_deliver_due`, beat every 30 s) until MAX_ATTEMPTS, then the row stays `failed` for
staff to see. A refusal the channel calls permanent is not retried.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import F
from django.utils import timezone

from backend.notifications.channels import ChannelError, email_send, sms_send
from backend.notifications.models import Notification, NotificationChannel, NotificationStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 30
DELIVERY_LEASE_S = 60
# The advisory lock one sweep holds (any fixed 64-bit number no other lock of the project uses).
_SWEEP_LOCK = 0x6E6F7469667900


def notification_deliver(
    *, notification_id: uuid.UUID | str, now: datetime | None = None
) -> Notification | None:
    """Send one pending notification if it is due and unclaimed; None when another worker has it, it was
    sent already, or it is not due. Never raises for a channel's failure: the row records it."""
    clock = now
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        id=notification_id, status=NotificationStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=DELIVERY_LEASE_S), attempts=F("attempts") + 1)
    if not claimed:
        return None
    row = Notification.objects.get(id=notification_id)
    try:
        if row.channel == NotificationChannel.SMS:
            reference = sms_send(to=row.to, body=row.body)
        elif row.channel == NotificationChannel.EMAIL:
            reference = email_send(to=row.to, subject=row.subject, body=row.body)
        else:
            logger.info("notification %s to %s: %s", row.event, row.user_id, row.body)
            reference = "log"
    except ChannelError as exc:
        return _failed(row, str(exc), permanent=exc.permanent, now=clock or timezone.now())
    except Exception as exc:  # an adapter's bug or a network error: retried like a refusal
        logger.warning("notification %s: channel %s raised", row.id, row.channel, exc_info=True)
        return _failed(row, f"{type(exc).__name__}: {exc}", permanent=False, now=clock or timezone.now())
    Notification.objects.filter(id=row.id).update(
        status=NotificationStatus.SENT,
        sent_at=timezone.now(),
        provider_reference=reference[:80],
        last_error="",
    )
    row.refresh_from_db()
    return row


def _failed(row: Notification, error: str, *, permanent: bool, now: datetime) -> Notification:
    gave_up = permanent or row.attempts >= MAX_ATTEMPTS
    Notification.objects.filter(id=row.id).update(
        status=NotificationStatus.FAILED if gave_up else NotificationStatus.PENDING,
        last_error=error[:500],
        next_attempt_at=now + timedelta(seconds=BACKOFF_BASE_S * 2 ** (row.attempts - 1)),
    )
    if gave_up:
        logger.error("notification %s (%s to %s) gave up: %s", row.id, row.event, row.user_id, error)
    row.refresh_from_db()
    return row


def notifications_deliver_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Send what is due: retries after their backoff, rows whose enqueue was lost, leases of dead workers.

    One sweep at a time (a PostgreSQL advisory lock: a slow channel can make a sweep outlast the beat's
    interval), and each row is claimed at the time it is reached, not the sweep's start, so its lease runs
    from when it is sent. `now` fixes the clock for every row (tests)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_SWEEP_LOCK])
        if not cursor.fetchone()[0]:
            return 0
        try:
            due = list(
                Notification.objects.filter(
                    status=NotificationStatus.PENDING, next_attempt_at__lte=now or timezone.now()
                )
                .order_by("next_attempt_at")
                .values_list("id", flat=True)[:limit]
            )
            return sum(
                1 for notification_id in due if notification_deliver(notification_id=notification_id, now=now)
            )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_SWEEP_LOCK])
