"""Emailing a trip's receipt: after the trip completes, and again, updated, after each refund.

The money transaction never waits for mail. `receipt_email_enqueue` schedules the Celery task
`dispatch.email_receipt` after commit (so a rolled-back completion sends nothing and the worker finds the
entries it reads); the task builds the receipt from the ledger as it stands when it runs, renders it
(plain text, HTML and the PDF attachment, dispatch/money/receipts.py) and sends it through Django's email
backend (settings `EMAIL_*`). A refusal the server may not repeat (a 4xx answer, a dropped connection, a
timeout, no server) is retried with backoff (30 s doubling, at most an hour apart, `MAX_ATTEMPTS` in all);
a permanent refusal (5xx) is logged once and not retried. A failure never touches the trip or its money.

Recipients: the rider's email address, by Django's convention for a custom user model
(`User.email`, when the rider gave one), and the co-op's
copy address `ROCHDALE_RECEIPT_COPY_TO` when set. With neither, nothing is sent.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from enum import StrEnum

from celery import Task, shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils.translation import gettext

from backend.accounts.languages import in_language_of
from backend.accounts.models import User
from backend.notifications.preferences import channel_wanted
from backend.notifications.services import notify
from dispatch.models import Trip
from dispatch.money.receipts import (
    Receipt,
    format_money,
    receipt_html,
    receipt_pdf,
    receipt_text,
    trip_receipt,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY_S = 30
MAX_RETRY_S = 3600


class ReceiptOccasion(StrEnum):
    COMPLETED = "completed"
    REFUNDED = "refunded"


def receipt_recipients(rider: User) -> list[str]:
    """Where a trip's receipt goes: the rider's address (when they gave one: `PATCH /me`, and keep money
    emails on: docs/notifications.md) and the co-op's copy address (when set)."""
    rider_address = rider.email.strip()
    if rider_address and not channel_wanted(user_id=rider.id, event="trip_receipt", channel="email"):
        rider_address = ""
    copy_to = settings.ROCHDALE_RECEIPT_COPY_TO.strip()
    return [address for address in (rider_address, copy_to) if address]


def receipt_email(receipt: Receipt, *, occasion: ReceiptOccasion) -> EmailMultiAlternatives | None:
    """The receipt as an email (text, HTML, the PDF attached), or None when it has nobody to go to."""
    recipients = receipt_recipients(receipt.trip.rider)
    if not recipients:
        return None
    total = format_money(receipt.total, receipt.currency)
    short_id = str(receipt.trip.id)[:8]
    names = {"trip": short_id, "total": total, "organisation": receipt.billed_to}
    if occasion == ReceiptOccasion.REFUNDED:
        subject = (
            gettext("Updated receipt for trip %(trip)s: %(total)s after a refund, billed to %(organisation)s")
            if receipt.billed_to
            else gettext("Updated receipt for trip %(trip)s: %(total)s after a refund")
        ) % names
    else:
        subject = (
            gettext("Your receipt for trip %(trip)s: %(total)s, billed to %(organisation)s")
            if receipt.billed_to
            else gettext("Your receipt for trip %(trip)s: %(total)s")
        ) % names
    rider_address, copies = recipients[0], recipients[1:]
    message = EmailMultiAlternatives(
        subject=subject,
        body=receipt_text(receipt),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[rider_address],
        bcc=copies,
        headers={"X-Rochdale-Trip": str(receipt.trip.id), "X-Rochdale-Receipt": occasion.value},
    )
    message.attach_alternative(receipt_html(receipt), "text/html")
    message.attach(f"receipt-{receipt.trip.id}.pdf", receipt_pdf(receipt), "application/pdf")
    return message


def receipt_email_send(*, trip_id: uuid.UUID, occasion: ReceiptOccasion) -> bool:
    """Build the receipt from the ledger now and send it; False when there was nobody to send it to.
    SMTP and connection errors propagate (the task decides whether to retry)."""
    rider = User.objects.filter(trips_as_rider__id=trip_id).first()
    message = None
    if rider is not None and receipt_recipients(rider):
        # Written in the rider's language (their setting, else English): no request is in hand here.
        with in_language_of(rider):
            message = receipt_email(trip_receipt(trip_id=trip_id), occasion=occasion)
    if message is None:
        logger.info("receipt for trip %s (%s) not emailed: no address to send it to", trip_id, occasion)
        return False
    message.send(fail_silently=False)
    return True


def receipt_email_enqueue(*, trip_id: uuid.UUID, occasion: ReceiptOccasion) -> None:
    """Email the receipt once the current transaction commits (at once outside one), and tell the rider by
    push (`trip_receipt`, once per trip; `trip_receipt_updated` after a refund) through notify()."""
    trip, kind = str(trip_id), occasion.value
    transaction.on_commit(lambda: email_receipt.delay(trip, kind), robust=True)
    receipt_push_notify(trip_id=trip_id, occasion=occasion)


def receipt_push_notify(*, trip_id: uuid.UUID, occasion: ReceiptOccasion) -> None:
    """The receipt's push (the email above carries the receipt itself)."""
    trip = Trip.objects.filter(id=trip_id).only("rider_id", "fare_minor", "currency").first()
    if trip is None:
        return
    completed = occasion == ReceiptOccasion.COMPLETED
    notify(
        user_id=trip.rider_id,
        event="trip_receipt" if completed else "trip_receipt_updated",
        context={
            "trip_id": str(trip_id),
            "trip_short": str(trip_id)[:8],
            "total": format_money(trip.fare_minor or 0, trip.currency),
        },
        # A completion is told once however often it is retried; each refund is its own message.
        dedup_key=f"trip_receipt:{trip_id}" if completed else None,
    )


def _is_permanent(error: Exception) -> bool:
    """A 5xx answer: the server will refuse the same message again."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


@shared_task(name="dispatch.email_receipt", bind=True, ignore_result=True, max_retries=MAX_ATTEMPTS - 1)
def email_receipt(self: Task, trip_id: str, occasion: str) -> bool:
    """Send a trip's receipt; retried with backoff while the mail server may accept it later."""
    try:
        return receipt_email_send(trip_id=uuid.UUID(trip_id), occasion=ReceiptOccasion(occasion))
    except (smtplib.SMTPException, OSError) as error:
        attempt = self.request.retries + 1
        if _is_permanent(error) or attempt >= MAX_ATTEMPTS:
            logger.error(
                "receipt for trip %s (%s) not emailed after %d attempt(s): %s",
                trip_id,
                occasion,
                attempt,
                error,
            )
            return False
        countdown = min(FIRST_RETRY_S * 2 ** (attempt - 1), MAX_RETRY_S)
        logger.warning(
            "receipt for trip %s (%s): mail refused (%s); retrying in %d s",
            trip_id,
            occasion,
            error,
            countdown,
        )
        raise self.retry(exc=error, countdown=countdown) from error
