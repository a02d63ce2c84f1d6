"""`notify()`: the one call every part of Rochdale makes to tell a person something (docs/notifications.md).

It writes one outbox row (`Notification`) per channel that reaches the person, in the caller's transaction,
and hands the rows to a Celery task after commit: a request never waits for an SMS or an email, and a
message about something that rolled back is never sent. Delivery claims a row with a guarded UPDATE (a
lease, so two workers never send it twice while one is at it), calls the channel outside any transaction,
and records the outcome; a failure is retried with backoff by the sweep until `MAX_ATTEMPTS`, then the row
stays `failed` for staff to see.

Channels: SMS to the account's phone (every account has one: it is the username), and email when the
account has an address. A `dedup_key` makes a message go once however often its sender runs (a reminder, a
confirmation): a second row with the key is simply not written.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backend.accounts.models import User
from backend.notifications.channels import ChannelError, email_send, sms_send
from backend.notifications.messages import render
from backend.notifications.models import Notification, NotificationChannel, NotificationStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 30
# A claimed row belongs to its worker this long; a row still claimed after it (a dead worker) is retried.
DELIVERY_LEASE_S = 60
DELIVER_TASK = "backend.notifications.tasks.deliver_notification"


def notify(
    *,
    user_id: uuid.UUID,
    event: str,
    context: Mapping[str, object],
    dedup_key: str | None = None,
) -> list[Notification]:
    """Tell `user_id` about `event` on every channel that reaches them, after the caller's commit.

    Returns the rows written (none for an inactive account, or when `dedup_key` was used before)."""
    user = User.objects.filter(id=user_id, is_active=True).only("phone", "email").first()
    if user is None:
        return []
    subject, body = render(event, context)
    targets = [(NotificationChannel.SMS, user.phone)]
    if user.email:
        targets.append((NotificationChannel.EMAIL, user.email))
    written: list[Notification] = []
    for channel, to in targets:
        key = f"{dedup_key}:{channel}" if dedup_key else None
        try:
            with transaction.atomic():
                written.append(
                    Notification.objects.create(
                        user_id=user_id,
                        event=event,
                        channel=channel,
                        to=to,
                        subject=subject,
                        body=body,
                        context=dict(context),
                        dedup_key=key,
                    )
                )
        except IntegrityError:
            if key is None or not Notification.objects.filter(dedup_key=key).exists():
                raise
    if written:
        ids = [str(row.id) for row in written]
        transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return written


def _enqueue(ids: list[str]) -> None:
    # By name: the task module imports this one.
    for notification_id in ids:
        current_app.send_task(DELIVER_TASK, args=[notification_id])


def notification_deliver(
    *, notification_id: uuid.UUID | str, now: datetime | None = None
) -> Notification | None:
    """Send one pending notification if it is due and unclaimed; None when another worker has it, it was
    sent already, or it is not due. Never raises for a channel's failure: the row records it."""
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
        return _failed(row, str(exc), permanent=exc.permanent, now=now)
    except Exception as exc:  # an adapter's bug or a network error: retried like a refusal
        logger.warning("notification %s: channel %s raised", row.id, row.channel, exc_info=True)
        return _failed(row, f"{type(exc).__name__}: {exc}", permanent=False, now=now)
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
    """Send what is due: retries after their backoff, rows whose enqueue was lost, leases of dead workers."""
    now = now or timezone.now()
    due = list(
        Notification.objects.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    return sum(1 for notification_id in due if notification_deliver(notification_id=notification_id, now=now))
