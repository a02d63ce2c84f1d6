"""The notification hook of compliance: how a driver hears that a document is about to expire.

It tells the driver through `notify()` (`document_expiring`: email, SMS and push by their preferences, in
their language; held through their quiet hours, since it can wait until morning) and writes a log line
(INFO, logger `backend.compliance.notify`). The sweep that calls it (`services.expiry_reminders_send`) has
already recorded the reminder (one per document and day) in the same transaction, so the message exists
exactly when the record does; the dedup key (the document and the days before) keeps a reminder that a
rerun claims on another day from going twice. Raising rolls the record back and the next run tries again.
"""

from __future__ import annotations

import logging

from django.conf import settings

from backend.compliance.models import Document
from backend.notifications.services import notify

logger = logging.getLogger("backend.compliance.notify")


def document_expiry_reminder(*, document: Document, label: str, days_before: int) -> None:
    """Tell the document's driver that `label` expires in `days_before` days (on `document.expires_on`)."""
    logger.info(
        "reminder: driver %s, %s (%s %s) expires on %s, in %s days",
        document.driver_id,
        label,
        document.subject,
        document.vehicle_id or document.driver_id,
        document.expires_on.isoformat(),
        days_before,
    )
    notify(
        user_id=document.driver.user_id,
        event="document_expiring",
        context={
            "document_id": str(document.id),
            "document": label,
            "expires_on": document.expires_on.isoformat(),
            "days": days_before,
            "link": settings.ROCHDALE_PUBLIC_URL.rstrip("/") + "/members/",
        },
        dedup_key=f"document_expiring:{document.id}:{days_before}",
    )
