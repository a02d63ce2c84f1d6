"""Celery tasks of compliance (settings' beat schedule runs the reminders hourly; each is sent once a day)."""

from __future__ import annotations

from celery import shared_task

from backend.compliance.services import expiry_reminders_send


@shared_task(name="backend.compliance.tasks.send_expiry_reminders", ignore_result=True)
def send_expiry_reminders() -> int:
    """Remind drivers of documents expiring in exactly the profile's reminder days (30 and 7 in New York)."""
    return expiry_reminders_send()
