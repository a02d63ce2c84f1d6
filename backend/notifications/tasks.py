"""Celery tasks of notifications: deliver one message after its sender committed, and sweep what is due."""

from __future__ import annotations

from celery import shared_task

from backend.notifications.delivery import notification_deliver, notifications_deliver_due


@shared_task(name="backend.notifications.tasks.deliver_notification", ignore_result=True)
def deliver_notification(notification_id: str) -> None:
    notification_deliver(notification_id=notification_id)


@shared_task(name="backend.notifications.tasks.deliver_due_notifications", ignore_result=True)
def deliver_due_notifications() -> int:
    """Retries after their backoff, and messages whose enqueue was lost (beat, every 30 s)."""
    return notifications_deliver_due()
