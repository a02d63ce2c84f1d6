"""Notification tests deliver to real local servers: an SMTP server (aiosmtpd), a Web Push service that
checks VAPID and decrypts, FCM's token and send endpoints, and APNs over HTTP/2 (tests/notifications/
receivers.py); tasks run in-process after commit."""

from __future__ import annotations

import json

import pytest

from tests.dispatch.conftest import seeded  # noqa: F401  (fixtures used here)
from tests.fares.conftest import celery_eager  # noqa: F401
from tests.governance.conftest import make_member, seeded_policy  # noqa: F401
from tests.notifications.receivers import ApnsService, FcmService, WebPushService
from tests.receipts.conftest import smtp_server  # noqa: F401

VAPID_SUBJECT = "mailto:push-test@coop.example"


@pytest.fixture
def web_push_service(settings, tmp_path):
    """A push service on 127.0.0.1, which the server may post to, and a VAPID key made for this test."""
    service = WebPushService(expected_subject=VAPID_SUBJECT).start()
    settings.ROCHDALE_WEB_PUSH_HOSTS = ["127.0.0.1"]
    settings.ROCHDALE_WEB_PUSH_ALLOW_HTTP = True
    settings.ROCHDALE_VAPID_PRIVATE_KEY = ""
    settings.ROCHDALE_VAPID_KEY_FILE = str(tmp_path / "vapid_private.pem")
    settings.ROCHDALE_VAPID_SUBJECT = VAPID_SUBJECT
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def fcm_service(settings):
    """FCM's OAuth token endpoint and send endpoint, with the service account's key in the settings."""
    from backend.notifications import fcm

    service = FcmService().start()
    settings.ROCHDALE_FCM_SERVICE_ACCOUNT_JSON = json.dumps(service.account.info())
    settings.ROCHDALE_FCM_SERVICE_ACCOUNT_FILE = ""
    settings.ROCHDALE_FCM_PROJECT_ID = ""
    settings.ROCHDALE_FCM_BASE_URL = service.origin
    fcm._credentials.clear()
    try:
        yield service
    finally:
        fcm._credentials.clear()
        service.stop()


@pytest.fixture
def apns_service(settings):
    """APNs over HTTP/2 on 127.0.0.1, with the team's signing key in the settings."""
    from backend.notifications import apns

    service = ApnsService().start()
    settings.ROCHDALE_APNS_KEY = service.key_pem
    settings.ROCHDALE_APNS_KEY_FILE = ""
    settings.ROCHDALE_APNS_KEY_ID = service.key_id
    settings.ROCHDALE_APNS_TEAM_ID = service.team_id
    settings.ROCHDALE_APNS_TOPIC = service.topic
    settings.ROCHDALE_APNS_HOST = service.origin
    apns._tokens.clear()
    try:
        yield service
    finally:
        for client in apns._clients.values():
            client.close()
        apns._clients.clear()
        apns._tokens.clear()
        service.stop()
