"""Fixtures for receipts, refunds and statements: a real SMTP server (aiosmtpd) on a free port that the
Django email backend delivers to, and PDF text read back with pypdf."""

from __future__ import annotations

import email
import email.policy
import io
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from tests.fares.conftest import celery_eager, seeded_policy  # noqa: F401  (fixtures used here)
from tests.fares.test_driver_pay import member_week  # noqa: F401  (the scenario statements reuse)
from tests.live_server import _free_port

COPY_TO = "books@coop.example"


@dataclass
class SMTPRecorder:
    """An aiosmtpd handler that keeps every message it accepts; `refuse` holds replies to give instead,
    one per DATA command, before accepting again (`"451 4.3.0 Try again later"`, `"550 5.7.1 No"`)."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.attempts += 1
            if self.refuse:
                return self.refuse.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on 127.0.0.1 and a free port, with Django's SMTP backend pointed at it and the
    co-op's copy address set (the account model keeps no rider address yet, docs/receipts.md)."""
    recorder = SMTPRecorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.ROCHDALE_RECEIPT_COPY_TO = COPY_TO
    try:
        yield recorder
    finally:
        controller.stop()


def pdf_text(pdf: bytes) -> str:
    """The text of every page of a PDF, read back (what a person would see)."""
    assert pdf.startswith(b"%PDF-"), pdf[:20]
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages)
