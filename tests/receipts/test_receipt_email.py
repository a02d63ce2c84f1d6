"""Receipts by email: sent after the trip completes (after commit, by the Celery task, retried) and again,
updated, after a refund, through Django's SMTP backend to a real SMTP server (aiosmtpd) on a free port."""

from __future__ import annotations

import logging

import pytest
from django.core import mail

from dispatch.money.receipt_mail import MAX_ATTEMPTS, ReceiptOccasion, email_receipt, receipt_recipients
from dispatch.money.refunds import refund_post
from tests.factories import RiderFactory, StaffFactory
from tests.live_server import _free_port
from tests.mobile_api.builders import completed_trip, drive_to_completion, requested_trip
from tests.receipts.builders import policy_with, reference_trip
from tests.receipts.conftest import COPY_TO, pdf_text

pytestmark = pytest.mark.django_db


def _parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    (attachment,) = list(message.iter_attachments())
    return text, html, attachment


def test_a_completed_trip_emails_its_receipt_after_commit(
    smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    trip = requested_trip()
    with django_capture_on_commit_callbacks(execute=False) as pending:
        done = drive_to_completion(trip)
    assert smtp_server.messages == []  # nothing leaves before the completion commits
    for callback in pending:
        callback()

    (message,) = smtp_server.messages
    assert smtp_server.envelopes[0][1] == [COPY_TO]
    assert message["Subject"].startswith(f"Your receipt for trip {str(done.id)[:8]}")
    assert message["X-Rochdale-Trip"] == str(done.id)
    text, html, attachment = _parts(message)
    total = f"{done.fare_minor / 100:.2f} USD"
    assert f"Total: {total}" in text and str(done.id) in text
    assert total in html and "<svg" in html and "<polyline" in html
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"receipt-{done.id}.pdf"
    assert total in pdf_text(attachment.get_content())


def test_a_refund_emails_the_updated_receipt(smtp_server, celery_eager, django_capture_on_commit_callbacks):
    trip = reference_trip(policy=policy_with())
    with django_capture_on_commit_callbacks(execute=True):
        refund_post(trip_id=trip.id, amount_minor=350, reason="Traffic detour", staff_id=StaffFactory().id)
    (message,) = smtp_server.messages
    assert message["Subject"] == f"Updated receipt for trip {str(trip.id)[:8]}: 35.00 USD after a refund"
    assert message["X-Rochdale-Receipt"] == "refunded"
    text, html, attachment = _parts(message)
    assert (
        "Refund" in text and "-3.50 USD" in text and "Traffic detour" in text and "Total: 35.00 USD" in text
    )
    assert "35.00 USD" in html
    pdf = pdf_text(attachment.get_content())
    assert "3.50 USD" in pdf and "35.00 USD" in pdf and "38.50 USD" in pdf


def test_a_mail_server_that_says_try_later_gets_the_receipt_on_a_retry(smtp_server, celery_eager, caplog):
    trip = completed_trip()
    smtp_server.refuse = ["451 4.3.0 Try again later", "421 4.7.0 Too busy"]
    with caplog.at_level(logging.WARNING, logger="dispatch.money.receipt_mail"):
        email_receipt.delay(str(trip.id), ReceiptOccasion.COMPLETED.value)
    assert smtp_server.attempts == 3
    assert len(smtp_server.messages) == 1
    assert sum("retrying in" in record.message for record in caplog.records) == 2


def test_a_permanent_refusal_is_logged_and_not_retried(smtp_server, celery_eager, caplog):
    trip = completed_trip()
    smtp_server.refuse = ["550 5.7.1 Relaying denied"] * MAX_ATTEMPTS
    with caplog.at_level(logging.ERROR, logger="dispatch.money.receipt_mail"):
        email_receipt.delay(str(trip.id), ReceiptOccasion.COMPLETED.value)
    assert smtp_server.attempts == 1 and smtp_server.messages == []
    assert any("not emailed after 1 attempt" in record.message for record in caplog.records)


def test_a_mail_server_that_never_comes_back_is_given_up_after_the_last_attempt(
    smtp_server, celery_eager, caplog
):
    trip = completed_trip()
    smtp_server.refuse = ["451 4.3.0 Try again later"] * MAX_ATTEMPTS
    with caplog.at_level(logging.ERROR, logger="dispatch.money.receipt_mail"):
        email_receipt.delay(str(trip.id), ReceiptOccasion.COMPLETED.value)
    assert smtp_server.attempts == MAX_ATTEMPTS and smtp_server.messages == []
    assert any(f"not emailed after {MAX_ATTEMPTS} attempt" in r.message for r in caplog.records)


def test_with_no_address_to_send_to_nothing_is_sent(smtp_server, celery_eager, settings):
    settings.ROCHDALE_RECEIPT_COPY_TO = ""
    trip = completed_trip()
    assert receipt_recipients(trip.rider) == []  # this rider gave no address
    assert email_receipt.delay(str(trip.id), ReceiptOccasion.COMPLETED.value).get() is False
    assert smtp_server.attempts == 0 and mail.outbox == []


def test_an_unreachable_mail_server_never_fails_the_trip(
    settings, celery_eager, django_capture_on_commit_callbacks
):

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # nothing listens there
    settings.ROCHDALE_RECEIPT_COPY_TO = COPY_TO
    rider = RiderFactory()
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(requested_trip(rider))
    assert done.status == "completed" and done.fare_minor > 0


def test_a_rider_who_gave_an_address_gets_the_receipt_and_the_coop_a_copy(
    smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    rider = RiderFactory(email="ada@rider.example")
    with django_capture_on_commit_callbacks(execute=True):
        done = drive_to_completion(requested_trip(rider))
    (message,) = smtp_server.messages
    assert sorted(smtp_server.envelopes[0][1]) == sorted(["ada@rider.example", COPY_TO])
    assert message["To"] == "ada@rider.example"
    assert message["X-Rochdale-Trip"] == str(done.id)
