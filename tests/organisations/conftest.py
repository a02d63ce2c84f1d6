"""Two organisations to book with (tests/organisations/builders.py), and the Twilio adapter pointed at a
local stand-in for Twilio's Messages endpoint (tests/organisations/twilio_receiver.py)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest

import backend.notifications.sms  # noqa: F401 - registers the `twilio` SMS provider
from tests.organisations.builders import World, make_world
from tests.organisations.twilio_receiver import (
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    TwilioReceiver,
    receiver_handler,
)


@pytest.fixture
def twilio(settings, celery_eager):
    """SMS go through the Twilio adapter to a local HTTP server; deliveries run inline (eager Celery)."""
    receiver = TwilioReceiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver_handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ROCHDALE_SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = TWILIO_FROM
    settings.TWILIO_API_BASE = receiver.url
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def clinic(service_area) -> World:
    return make_world("Harlem Dialysis Center")


@pytest.fixture
def agency(service_area) -> World:
    return make_world("Bronx Senior Services")
