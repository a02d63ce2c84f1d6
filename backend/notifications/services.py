"""`notify()`: the one call every part of Rochdale makes to tell a person something (docs/notifications.md).

It writes one outbox row (`Notification`) per channel that reaches the person, in the caller's transaction,
and hands the rows to a Celery task after commit (backend/notifications/delivery.py sends them, claims,
retries and gives up): a request never waits for an SMS or an email, and a message about something that
rolled back is never sent.

Channels: SMS to the account's phone (every account has one: it is the username), and email when the
account has an address. A `dedup_key` makes a message go once however often its sender runs (a reminder, a
confirmation): a second row with the key is simply not written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.db import IntegrityError, transaction

from backend.accounts.models import User
from backend.notifications.messages import render
from backend.notifications.models import Notification, NotificationChannel
from backend.notifications.tasks import deliver_notification


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
    for notification_id in ids:
        deliver_notification.delay(notification_id)
