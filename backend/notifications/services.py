"""`notify()`: the one call every part of Rochdale makes to tell a person something (docs/notifications.md).

It writes one outbox row (`Notification`) per target that reaches the person and that they want (the phone
for SMS, the email address, each browser's Web Push subscription, each app install), in the caller's
transaction, and hands the rows to a Celery task after commit (backend/notifications/delivery.py sends
them, claims, retries and gives up): a request never waits for a channel, and a message about something
that rolled back is never sent.

Which targets: the event's category (backend/notifications/messages.py) and the person's switches for it
per channel (backend/notifications/preferences.py), within the channels the event may use at all. When:
at once, unless the person is in their quiet hours and the message can wait; then the row is written
held (`held_until`, `next_attempt_at` the end of the quiet hours) and the sweep sends it when they end.
`urgent=True` (SOS) goes on every channel that reaches the person, through quiet hours and switches.
The text is rendered in the person's language (`User.language`, else the co-op's default).

A `dedup_key` makes a message go once however often its sender runs (a reminder, a confirmation): a
second row with the key (per channel and target) is simply not written. `notify_each` tells many people
(a voter roll) from a task after commit, so the sender's transaction writes no more than one task.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db import IntegrityError, transaction
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from django.utils import timezone, translation

from backend.accounts.models import User
from backend.notifications.delivery import deliver_notification
from backend.notifications.messages import category_of, channels_of, is_timely, render
from backend.notifications.models import (
    Broadcast,
    Notification,
    NotificationChannel,
    PushDevice,
    PushSubscription,
)
from backend.notifications.preferences import Preferences, preferences_from

# The order rows are written (and so sent) in: the quickest to reach a phone first.
CHANNEL_ORDER = (
    NotificationChannel.MOBILE_PUSH,
    NotificationChannel.WEB_PUSH,
    NotificationChannel.SMS,
    NotificationChannel.EMAIL,
)
# Rows one `notify_each` task writes before it hands the rest of the roll to the next task.
FAN_OUT_BATCH = 200


@dataclass(frozen=True)
class _Target:
    channel: str
    to: str
    key_suffix: str  # added to the dedup key: the channel, and the subscription or device for push
    push_subscription_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None


def language_of(user: User) -> str:
    """The language a person reads messages in: their own setting, else the co-op's default."""
    return getattr(user, "language", "") or settings.LANGUAGE_CODE


@dataclass(frozen=True)
class _Recipient:
    """A person as notify() loads them: with their preferences row and their push targets, in one query
    (every ride move notifies someone, so each round trip saved is saved on every trip)."""

    user: User
    preferences: Preferences
    web_push_targets: list[dict[str, str]]  # [{"id": ..., "endpoint": ...}], oldest first
    mobile_push_targets: list[dict[str, str]]  # [{"id": ..., "platform": ...}], oldest first


def _recipient(user_id: uuid.UUID) -> _Recipient | None:
    def targets(model: type[PushSubscription] | type[PushDevice], field: str) -> ArraySubquery:
        rows = model.objects.filter(user_id=OuterRef("id")).order_by("created_at", "id")
        return ArraySubquery(rows.values(target=JSONObject(id="id", **{field: field})))

    user = (
        User.objects.filter(id=user_id, is_active=True)
        .select_related("notification_preferences")
        .annotate(
            web_push_targets=targets(PushSubscription, "endpoint"),
            mobile_push_targets=targets(PushDevice, "platform"),
        )
        .first()
    )
    if user is None:
        return None
    return _Recipient(
        user=user,
        # The reverse one-to-one raises (an AttributeError) where the person chose nothing.
        preferences=preferences_from(getattr(user, "notification_preferences", None)),
        web_push_targets=user.web_push_targets,  # type: ignore[attr-defined]  # annotated above
        mobile_push_targets=user.mobile_push_targets,  # type: ignore[attr-defined]
    )


def _targets(recipient: _Recipient, channel: str) -> list[_Target]:
    user = recipient.user
    if channel == NotificationChannel.SMS:
        return [_Target(channel, user.phone, channel)]
    if channel == NotificationChannel.EMAIL:
        return [_Target(channel, user.email, channel)] if user.email else []
    if channel == NotificationChannel.WEB_PUSH:
        return [
            _Target(
                channel,
                _host(row["endpoint"]),
                f"{channel}:{row['id']}",
                push_subscription_id=uuid.UUID(row["id"]),
            )
            for row in recipient.web_push_targets
        ]
    return [
        _Target(channel, row["platform"], f"{channel}:{row['id']}", device_id=uuid.UUID(row["id"]))
        for row in recipient.mobile_push_targets
    ]


def _host(endpoint: str) -> str:
    return endpoint.split("://", 1)[-1].split("/", 1)[0][:254]


def notify(
    *,
    user_id: uuid.UUID,
    event: str,
    context: Mapping[str, object],
    dedup_key: str | None = None,
    urgent: bool = False,
) -> list[Notification]:
    """Tell `user_id` about `event` on every channel that reaches them and that they want, after the
    caller's commit; `urgent` goes on every channel that reaches them, through quiet hours and switches.

    Returns the rows written (none for an inactive account, when every channel is switched off, or when
    `dedup_key` was used before)."""
    recipient = _recipient(user_id)
    if recipient is None:
        return []
    user, preferences = recipient.user, recipient.preferences
    category = category_of(event)
    allowed = channels_of(event)
    with translation.override(language_of(user)):
        subject, body = render(event, context)
    now = timezone.now()
    held_until = None if urgent or is_timely(event) else preferences.quiet_until(now)
    written: list[Notification] = []
    for channel in CHANNEL_ORDER:
        if channel not in allowed:
            continue
        if not urgent and not preferences.allows(category=category, channel=channel):
            continue
        for target in _targets(recipient, channel):
            key = f"{dedup_key}:{target.key_suffix}" if dedup_key else None
            try:
                with transaction.atomic():
                    written.append(
                        Notification.objects.create(
                            user_id=user.id,
                            event=event,
                            channel=channel,
                            to=target.to,
                            push_subscription_id=target.push_subscription_id,
                            device_id=target.device_id,
                            subject=subject[:200],
                            body=body,
                            context=dict(context),
                            dedup_key=key,
                            urgent=urgent,
                            held_until=held_until,
                            created_at=now,
                            next_attempt_at=held_until or now,
                        )
                    )
            except IntegrityError:
                if key is None or not Notification.objects.filter(dedup_key=key).exists():
                    raise
    # Held rows wait for the sweep (`deliver_due_notifications`), which sends them once quiet hours end.
    due = [str(row.id) for row in written if row.held_until is None]
    if due:
        transaction.on_commit(lambda: _enqueue(due), robust=True)
    return written


def _enqueue(ids: list[str]) -> None:
    for notification_id in ids:
        deliver_notification.delay(notification_id)


def notify_each(
    *,
    user_ids: Iterable[uuid.UUID],
    event: str,
    context: Mapping[str, object],
    dedup_key: str,
    urgent: bool = False,
) -> bool:
    """Tell each of `user_ids` about `event`, from a task after the caller commits (a voter roll can be
    thousands: the caller's transaction writes none of their rows). The broadcast is recorded under
    `dedup_key` in the caller's transaction, so a sender that runs again fans it out once; each person's
    message is deduplicated by `{dedup_key}:{user id}`, so a task that runs twice sends nobody two.
    Returns whether this call started the broadcast."""
    ids = [str(user_id) for user_id in dict.fromkeys(user_ids)]
    if not ids:
        return False
    with transaction.atomic():
        _broadcast, created = Broadcast.objects.get_or_create(
            key=dedup_key, defaults={"event": event, "recipients": len(ids)}
        )
    if not created:
        return False
    payload = dict(context)
    transaction.on_commit(
        lambda: notify_each_task.delay(ids, event, payload, dedup_key, urgent),
        robust=True,
    )
    return True


@shared_task(name="backend.notifications.tasks.notify_each", ignore_result=True)
def notify_each_task(
    user_ids: list[str], event: str, context: dict[str, object], dedup_key: str, urgent: bool = False
) -> int:
    """Write the messages of a batch of the roll (each in its own transaction) and pass the rest on."""
    batch, rest = user_ids[:FAN_OUT_BATCH], user_ids[FAN_OUT_BATCH:]
    written = 0
    for user_id in batch:
        with transaction.atomic():
            written += len(
                notify(
                    user_id=uuid.UUID(user_id),
                    event=event,
                    context=context,
                    dedup_key=f"{dedup_key}:{user_id}",
                    urgent=urgent,
                )
            )
    if rest:
        notify_each_task.delay(rest, event, context, dedup_key, urgent)
    return written
