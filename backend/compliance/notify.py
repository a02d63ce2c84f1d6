"""The notification hook of compliance: how a driver hears that a document is about to expire.

The default writes a log line (INFO, logger `backend.compliance.notify`) naming the driver, the document and
the days left; issue 17 routes it to email and push. The sweep that calls it
(`services.expiry_reminders_send`) has already recorded the reminder (one per document and day) in the same
transaction, so a replacement here only delivers: it need not, and must not, deduplicate. Raising rolls the
record back and the next run tries again.
"""

from __future__ import annotations

import logging

from backend.compliance.models import Document

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
