"""Mobile push at its HTTP boundary: FCM HTTP v1 (an OAuth token from the service account's token_uri,
then the send) and APNs (a provider JWT over HTTP/2), both against local servers that check what the real
services check. Devices come in through the API; a token the service no longer knows is deleted; a
refusal worth retrying is retried."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.notifications.delivery import notifications_deliver_due
from backend.notifications.models import Notification, NotificationStatus, PushDevice
from backend.notifications.services import notify
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory

pytestmark = pytest.mark.django_db(transaction=True)
FCM_TOKEN = "dGVzdC1mY20tdG9rZW4:APA91bH" + "x" * 140
APNS_TOKEN = "a1" * 32
CONTEXT = {"pickup_local": "Mon 01 Mar 07:30", "window_start_local": "07:15", "window_end_local": "07:45"}


def _device(user, platform: str, token: str) -> None:
    answer = auth_client_for(user).post(
        "/api/v1/me/devices", {"platform": platform, "token": token}, format="json"
    )
    assert answer.status_code == 201, answer.content


def test_fcm_gets_an_access_token_from_the_service_account_and_sends(fcm_service, celery_eager):
    rider = RiderFactory()
    _device(rider, "fcm", FCM_TOKEN)

    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    notify(user_id=rider.id, event="reservation_confirmed", context=CONTEXT)

    assert fcm_service.problems == []
    first, second = fcm_service.received
    assert first["token"] == FCM_TOKEN
    assert first["notification"] == {
        "title": "Your ride is coming up",
        "body": "Rochdale reminder: your ride is on Mon 01 Mar 07:30, pickup between 07:15 and 07:45.",
    }
    assert first["data"]["event"] == "reservation_reminder"
    assert first["android"]["priority"] == "HIGH"  # a reminder of a ride is timely
    assert second["android"]["priority"] == "NORMAL"
    # One access token for both: it is cached until it expires.
    assert len(fcm_service.tokens_issued) == 1
    rows = Notification.objects.filter(user=rider, channel="mobile_push")
    assert {row.status for row in rows} == {NotificationStatus.SENT}
    assert all(row.provider_reference.startswith("projects/rochdale-test/messages/") for row in rows)


def test_an_fcm_token_that_is_no_longer_registered_is_deleted(fcm_service, celery_eager):
    rider = RiderFactory()
    _device(rider, "fcm", FCM_TOKEN)
    fcm_service.unregistered.add(FCM_TOKEN)

    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)

    row = Notification.objects.get(user=rider, channel="mobile_push")
    assert row.status == NotificationStatus.FAILED and "UNREGISTERED" in row.last_error
    assert not PushDevice.objects.filter(token=FCM_TOKEN).exists()


def test_fcm_unavailable_is_retried_after_its_backoff(fcm_service, celery_eager):
    rider = RiderFactory()
    _device(rider, "fcm", FCM_TOKEN)
    fcm_service.statuses = [503]

    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)

    row = Notification.objects.get(user=rider, channel="mobile_push")
    assert row.status == NotificationStatus.PENDING and "503" in row.last_error
    notifications_deliver_due(now=row.next_attempt_at + timedelta(seconds=1))
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.attempts == 2 and len(fcm_service.received) == 1


def test_apns_gets_a_signed_provider_token_over_http2(apns_service, celery_eager):
    driver = DriverFactory()
    _device(driver, "apns", APNS_TOKEN)

    notify(
        user_id=driver.id, event="reservation_driver_reminder", context={**CONTEXT, "pickup_area": "Harlem"}
    )

    assert apns_service.problems == []
    [message] = apns_service.received
    assert message["token"] == APNS_TOKEN
    assert message["aps"]["alert"]["title"] == "Your reserved ride is coming up"
    assert "near Harlem" in message["aps"]["alert"]["body"]
    assert message["headers"]["apns-priority"] == "10" and message["event"] == "reservation_driver_reminder"
    row = Notification.objects.get(user=driver, channel="mobile_push")
    assert row.status == NotificationStatus.SENT and len(row.provider_reference) == 36


def test_an_apns_token_that_is_unregistered_is_deleted(apns_service, celery_eager):
    driver = DriverFactory()
    _device(driver, "apns", APNS_TOKEN)
    apns_service.unregistered.add(APNS_TOKEN)

    notify(user_id=driver.id, event="reservation_driver_reminder", context=CONTEXT)

    row = Notification.objects.get(user=driver, channel="mobile_push")
    assert row.status == NotificationStatus.FAILED and "410" in row.last_error
    assert not PushDevice.objects.exists()


def test_an_expired_provider_token_is_renewed_and_the_message_retried(apns_service, celery_eager):
    from backend.notifications import apns

    driver = DriverFactory()
    _device(driver, "apns", APNS_TOKEN)
    apns_service.statuses = [(403, "ExpiredProviderToken")]
    notify(user_id=driver.id, event="reservation_driver_reminder", context=CONTEXT)
    row = Notification.objects.get(user=driver, channel="mobile_push")
    assert row.status == NotificationStatus.PENDING and "ExpiredProviderToken" in row.last_error
    # The refusal dropped the cached token for a new one (made when APNs refused the old).
    [(_token, made_at)] = apns._tokens.values()
    assert made_at > row.created_at.timestamp()

    notifications_deliver_due(now=row.next_attempt_at + timedelta(seconds=1))

    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and len(apns_service.received) == 1
    assert apns_service.attempts == 2


def test_without_keys_mobile_push_is_written_to_the_log(settings, celery_eager, caplog):
    settings.ROCHDALE_FCM_SERVICE_ACCOUNT_JSON = settings.ROCHDALE_FCM_SERVICE_ACCOUNT_FILE = ""
    settings.ROCHDALE_APNS_KEY = settings.ROCHDALE_APNS_KEY_FILE = ""
    rider = RiderFactory()
    _device(rider, "fcm", FCM_TOKEN)
    _device(rider, "apns", APNS_TOKEN)
    with caplog.at_level("INFO"):
        notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    rows = Notification.objects.filter(user=rider, channel="mobile_push")
    assert sorted(row.provider_reference.split("-")[1] for row in rows) == ["apns", "fcm"]
    assert {row.status for row in rows} == {NotificationStatus.SENT}
    assert sum("not configured" in record.message for record in caplog.records) == 2


def test_devices_are_validated_moved_and_deleted_by_their_owner():
    owner, other = RiderFactory(), RiderFactory()
    bad = auth_client_for(owner).post(
        "/api/v1/me/devices", {"platform": "apns", "token": "not hex"}, format="json"
    )
    assert bad.status_code == 400 and "token" in bad.json()["error"]["details"]
    unknown = auth_client_for(owner).post(
        "/api/v1/me/devices", {"platform": "pager", "token": APNS_TOKEN}, format="json"
    )
    assert unknown.status_code == 400 and "platform" in unknown.json()["error"]["details"]
    _device(owner, "apns", APNS_TOKEN)
    again = auth_client_for(owner).post(
        "/api/v1/me/devices", {"platform": "apns", "token": APNS_TOKEN}, format="json"
    )
    assert again.status_code == 200
    refused = auth_client_for(other).delete(
        "/api/v1/me/devices", {"platform": "apns", "token": APNS_TOKEN}, format="json"
    )
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "device_not_found"
    gone = auth_client_for(owner).delete(
        "/api/v1/me/devices", {"platform": "apns", "token": APNS_TOKEN}, format="json"
    )
    assert gone.status_code == 204 and not PushDevice.objects.exists()
