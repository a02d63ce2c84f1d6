"""Notification tests deliver to a real SMTP server (aiosmtpd) and run tasks in-process after commit."""

from tests.fares.conftest import celery_eager  # noqa: F401  (fixtures used here)
from tests.receipts.conftest import smtp_server  # noqa: F401
