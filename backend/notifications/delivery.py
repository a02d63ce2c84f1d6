"""Sending what `notify()` wrote: one outbox row at a time, claimed so that no two workers send it.

Delivery claims a row with a guarded UPDATE (a lease of DELIVERY_LEASE_S, so a second worker leaves it
alone while the first is at it, and a dead worker's row is picked up again after it), calls the channel
outside any transaction, and records the outcome. A failure is retried with exponential backoff by the
sweep (`notifications_deliver_due`, beat every 30 s) until MAX_ATTEMPTS, then the row stays `failed` for
staff to see. A refusal the channel calls permanent is not retried.

Channels: SMS through the configured provider, email through Django's backend, Web Push to the row's
browser subscription (backend/notifications/webpush.py), mobile push to the row's app install by FCM or
APNs (fcm.py, apns.py). A push service that says the subscription or token is gone (`TargetGone`) has it
deleted here; its row fails at once, and no later message is written for it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from backend.notifications.apns import apns_send
from backend.notifications.channels import ChannelError, TargetGone, email_send, sms_send
from backend.notifications.fcm import fcm_send
from backend.notifications.messages import is_timely
from backend.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationStatus,
    PushDevice,
    PushPlatform,
    PushSubscription,
)
from backend.notifications.preferences import preferences_of
from backend.notifications.push_targets import endpoint_allowed
from backend.notifications.webpush import web_push_send

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
    sent already, it is not due, or the person's quiet hours began since it was written (then it is held
    until they end). Never raises for a channel's failure: the row records it."""
    clock = now
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        id=notification_id, status=NotificationStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=DELIVERY_LEASE_S), attempts=F("attempts") + 1)
    if not claimed:
        return None
    row = Notification.objects.get(id=notification_id)
    quiet_until = _quiet_until(row, now=now)
    if quiet_until is not None:
        # A retry (or a row written just before) reached the person's quiet hours: held until they end,
        # the claim given back uncounted.
        Notification.objects.filter(id=row.id).update(
            attempts=F("attempts") - 1, next_attempt_at=quiet_until, held_until=quiet_until
        )
        row.refresh_from_db()
        return None
    try:
        reference = _send(row)
    except TargetGone as exc:
        _target_delete(row)
        return _failed(row, str(exc), permanent=True, now=clock or timezone.now())
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


def _quiet_until(row: Notification, *, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if `row` is a message that waits for them and `now` is in them."""
    if row.urgent or is_timely(row.event):
        return None
    return preferences_of(user_id=row.user_id).quiet_until(now)


def _push_ttl_s(row: Notification) -> int:
    """How long a push service may keep the message for an offline device: the sender's `push_ttl_s` (an
    offer's few seconds: late, it would offer a ride that went to someone else), else the setting."""
    ttl = row.context.get("push_ttl_s") if isinstance(row.context, dict) else None
    return ttl if isinstance(ttl, int) and ttl >= 0 else settings.ROCHDALE_WEB_PUSH_TTL_S


def _push_data(row: Notification) -> dict[str, str]:
    """What a push carries beside its title and body: what the app or the service worker opens."""
    link = row.context.get("link") if isinstance(row.context, dict) else None
    return {
        "event": row.event,
        "notification_id": str(row.id),
        "url": link if isinstance(link, str) and link else settings.ROCHDALE_PUBLIC_URL.rstrip("/") + "/",
    }


def _send(row: Notification) -> str:
    """Send one row on its channel; the provider's reference. Raises ChannelError."""
    if row.channel == NotificationChannel.SMS:
        return sms_send(to=row.to, body=row.body)
    if row.channel == NotificationChannel.EMAIL:
        return email_send(to=row.to, subject=row.subject, body=row.body)
    timely = row.urgent or is_timely(row.event)
    if row.channel == NotificationChannel.WEB_PUSH:
        # The row's own person only: a browser that signed in as someone else took the subscription along
        # (push_targets.py), and what was written for the previous person must not reach it.
        subscription = PushSubscription.objects.filter(
            id=row.push_subscription_id, user_id=row.user_id
        ).first()
        if subscription is None:
            raise ChannelError("web push: the subscription was removed or moved", permanent=True)
        # Checked again at sending: a subscription kept before the check was tightened, or before the list
        # of push services changed, must not make the server post anywhere else.
        if not endpoint_allowed(subscription.endpoint):
            raise ChannelError(
                "web push: the endpoint is not a push service this server sends to", permanent=True
            )
        return web_push_send(
            subscription=subscription,
            title=row.subject,
            body=row.body,
            data=_push_data(row),
            ttl_s=_push_ttl_s(row),
        )
    if row.channel == NotificationChannel.MOBILE_PUSH:
        device = PushDevice.objects.filter(id=row.device_id, user_id=row.user_id).first()
        if device is None:
            raise ChannelError("mobile push: the device was removed or moved", permanent=True)
        if device.platform == PushPlatform.APNS:
            reference = apns_send(
                token=device.token,
                title=row.subject,
                body=row.body,
                data=_push_data(row),
                timely=timely,
                ttl_s=_push_ttl_s(row),
            )
        else:
            reference = fcm_send(
                token=device.token,
                title=row.subject,
                body=row.body,
                data=_push_data(row),
                timely=timely,
                ttl_s=_push_ttl_s(row),
            )
        PushDevice.objects.filter(id=device.id).update(last_sent_at=timezone.now())
        return reference
    logger.info("notification %s to %s: %s", row.event, row.user_id, row.body)
    return "log"


def _target_delete(row: Notification) -> None:
    """The push service says the row's subscription or device is gone: forget it."""
    if row.push_subscription_id is not None:
        PushSubscription.objects.filter(id=row.push_subscription_id).delete()
    if row.device_id is not None:
        PushDevice.objects.filter(id=row.device_id).delete()
    logger.info("notification %s: %s target gone, deleted", row.id, row.channel)


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


@shared_task(name="backend.notifications.tasks.deliver_notification", ignore_result=True)
def deliver_notification(notification_id: str) -> None:
    notification_deliver(notification_id=notification_id)
