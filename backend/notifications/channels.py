"""The channels a notification goes out on: SMS through a provider adapter, email through Django's backend.

SMS providers register by name (`register_sms_provider`) and are chosen with `ROCHDALE_SMS_PROVIDER`. The
local default, `log`, sends nothing and writes the message to the log (logger `backend.notifications.sms`),
so a machine with no SMS account still runs every feature; the Twilio adapter is backend/notifications/sms.py.
A provider raises `ChannelError` for a refusal (the outbox retries it, then gives up) and returns the
provider's reference for a message it accepted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage

logger = logging.getLogger("backend.notifications.sms")


class ChannelError(Exception):
    """The channel refused or failed to take the message; `permanent` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class TargetGone(ChannelError):
    """The push service says this subscription or device token no longer exists: delivery deletes it, and
    the message is not retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class SmsProvider(Protocol):
    def send(self, *, to: str, body: str) -> str:
        """Send `body` to the E.164 number `to`; return the provider's message id."""
        ...


class LogSmsProvider:
    """Writes the message to the log instead of sending it (the local default)."""

    def send(self, *, to: str, body: str) -> str:
        reference = f"log-{uuid.uuid4().hex[:12]}"
        logger.info("sms to %s (%s): %s", to, reference, body)
        return reference


_SMS_PROVIDERS: dict[str, Callable[[], SmsProvider]] = {"log": LogSmsProvider}


def register_sms_provider(name: str, factory: Callable[[], SmsProvider]) -> None:
    _SMS_PROVIDERS[name] = factory


def sms_provider() -> SmsProvider:
    name = getattr(settings, "ROCHDALE_SMS_PROVIDER", "log") or "log"
    try:
        return _SMS_PROVIDERS[name]()
    except KeyError:
        raise ChannelError(f"unknown SMS provider {name!r} (ROCHDALE_SMS_PROVIDER)", permanent=True) from None


def sms_send(*, to: str, body: str) -> str:
    return sms_provider().send(to=to, body=body)


def email_send(*, to: str, subject: str, body: str) -> str:
    """Send one plain-text email through Django's configured backend; returns our own reference."""
    reference = f"email-{uuid.uuid4().hex[:12]}"
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"X-Rochdale-Id": reference},
    )
    try:
        message.send(fail_silently=False)
    except OSError as exc:  # SMTP refused or unreachable: the outbox retries
        raise ChannelError(f"email to {to} not sent: {exc}") from exc
    return reference
