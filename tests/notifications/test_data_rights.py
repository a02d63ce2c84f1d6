"""A person's notification settings in their data-rights export, and gone with their erasure: their
preferences and where their pushes went."""

from __future__ import annotations

import json

import pytest

from backend.notifications.models import NotificationPreferences, PushDevice, PushSubscription
from backend.notifications.preferences import preferences_set
from tests.conftest import auth_client_for
from tests.factories import TEST_PASSWORD, RiderFactory

pytestmark = pytest.mark.django_db


def test_notification_settings_are_exported_and_erased(web_push_service):
    rider = RiderFactory()
    client = auth_client_for(rider)
    browser = web_push_service.subscribe()
    assert client.post("/api/v1/me/push-subscriptions", browser.to_json(), format="json").status_code == 201
    assert (
        client.post("/api/v1/me/devices", {"platform": "apns", "token": "ab" * 32}, format="json").status_code
        == 201
    )
    preferences_set(user_id=rider.id, categories={"governance": {"sms": False}})

    response = client.get("/api/v1/me/export")
    exported = json.loads(b"".join(response.streaming_content))["notification_settings"]
    assert exported["preferences"]["categories"]["governance"]["sms"] is False
    assert exported["web_push_subscriptions"][0]["push_service"] == f"127.0.0.1:{web_push_service.port}"
    assert exported["devices"] == [
        {"platform": "apns", "token_start": "abababab", "created_at": exported["devices"][0]["created_at"]}
    ]
    # The endpoint (a capability to push to the browser) and the full token never leave.
    assert browser.endpoint not in json.dumps(exported) and "ab" * 32 not in json.dumps(exported)

    answer = client.post("/api/v1/me/erasure", {"password": TEST_PASSWORD}, format="json")
    assert answer.status_code == 201, answer.json()
    assert not PushSubscription.objects.filter(user=rider).exists()
    assert not PushDevice.objects.filter(user=rider).exists()
    assert not NotificationPreferences.objects.filter(user=rider).exists()
