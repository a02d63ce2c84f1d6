"""Celery tasks of notifications (registered from here for the worker's autodiscovery): deliver one message
after its sender committed, sweep what is due (retries, and messages held for quiet hours), and fan one
message out to many people (`notify_each`). Each task lives beside the service it runs."""

from __future__ import annotations

from celery import shared_task

from backend.notifications.delivery import deliver_notification, notifications_deliver_due
from backend.notifications.services import notify_each_task

__all__ = ["deliver_due_notifications", "deliver_notification", "notify_each_task"]


@shared_task(name="backend.notifications.tasks.deliver_due_notifications", ignore_result=True)
def deliver_due_notifications() -> int:
    """Retries after their backoff, messages held for quiet hours whose end has come, and messages whose
    enqueue was lost (beat, every 30 s)."""
    return notifications_deliver_due()
