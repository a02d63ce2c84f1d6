"""Web Push end to end against a local push service that does what a browser's does: a page subscribes
through the API with the co-op's VAPID key, `notify()` sends after commit, and the push service verifies
the VAPID JWT with the key in the request, checks aud/exp/sub, and decrypts the aes128gcm payload with the
browser's private key. A 410 deletes the subscription; a 500 is retried after its backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.notifications.delivery import notifications_deliver_due
from backend.notifications.models import Notification, NotificationStatus, PushSubscription
from backend.notifications.services import notify
from backend.notifications.webpush import vapid_public_key
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.notifications.conftest import VAPID_SUBJECT

pytestmark = pytest.mark.django_db(transaction=True)
CONTEXT = {"pickup_local": "Mon 01 Mar 07:30", "window_start_local": "07:15", "window_end_local": "07:45"}


def _subscribe(client, service):
    """What the portal's script does: fetch the key, subscribe the browser with it, post the result."""
    key = client.get("/api/v1/me/push/vapid-public-key").json()["public_key"]
    browser = service.subscribe()
    answer = client.post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
    assert answer.status_code == 201, answer.content
    return key, browser, answer.json()


def test_a_subscribed_browser_gets_the_message_signed_and_encrypted(web_push_service, celery_eager):
    rider = RiderFactory()
    key, browser, saved = _subscribe(auth_client_for(rider), web_push_service)
    assert saved["endpoint"] == browser.endpoint

    notify(
        user_id=rider.id, event="reservation_reminder", context={**CONTEXT, "link": "https://r.example/t/1"}
    )

    assert web_push_service.problems == []
    [message] = web_push_service.received
    assert message["title"] == "Your ride is coming up"
    assert message["body"].startswith("Rochdale reminder: your ride is on Mon 01 Mar 07:30")
    assert message["event"] == "reservation_reminder" and message["url"] == "https://r.example/t/1"
    # Signed with the key the API handed the browser, for this push service's origin, by our subject.
    assert web_push_service.vapid_keys == [key] and key == vapid_public_key()
    assert message["claims"]["aud"] == web_push_service.origin and message["claims"]["sub"] == VAPID_SUBJECT
    assert int(message["ttl"]) > 0
    row = Notification.objects.get(user=rider, channel="web_push")
    assert row.status == NotificationStatus.SENT and row.to == f"127.0.0.1:{web_push_service.port}"
    assert row.provider_reference.startswith(f"{web_push_service.origin}/message/")
    assert PushSubscription.objects.get(endpoint=browser.endpoint).last_sent_at is not None


def test_the_vapid_key_is_generated_once_into_its_file_and_kept(web_push_service, settings):
    from pathlib import Path

    first = vapid_public_key()
    path = Path(settings.ROCHDALE_VAPID_KEY_FILE)
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    assert vapid_public_key() == first


def test_a_subscription_the_push_service_calls_gone_is_deleted(web_push_service, celery_eager):
    rider = RiderFactory()
    _key, browser, _ = _subscribe(auth_client_for(rider), web_push_service)
    web_push_service.statuses = [410]

    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)

    row = Notification.objects.get(user=rider, channel="web_push")
    assert row.status == NotificationStatus.FAILED and "410" in row.last_error and row.attempts == 1
    assert not PushSubscription.objects.filter(endpoint=browser.endpoint).exists()
    # Nothing retries it, and the next message has no push row at all.
    assert notifications_deliver_due(now=timezone.now() + timedelta(days=1)) == 0
    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    assert Notification.objects.filter(user=rider, channel="web_push").count() == 1
    assert web_push_service.received == []


def test_a_push_service_error_is_retried_after_its_backoff(web_push_service, celery_eager):
    rider = RiderFactory()
    _subscribe(auth_client_for(rider), web_push_service)
    web_push_service.statuses = [500]

    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)

    row = Notification.objects.get(user=rider, channel="web_push")
    assert row.status == NotificationStatus.PENDING and row.attempts == 1 and "500" in row.last_error
    assert web_push_service.received == []
    assert notifications_deliver_due(now=row.next_attempt_at + timedelta(seconds=1)) >= 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.attempts == 2
    assert len(web_push_service.received) == 1


def test_a_browser_that_signs_in_as_someone_else_moves_its_subscription(web_push_service):
    first, second = RiderFactory(), RiderFactory()
    browser = web_push_service.subscribe()
    assert (
        auth_client_for(first)
        .post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
        .status_code
        == 201
    )
    again = auth_client_for(first).post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
    assert again.status_code == 200
    moved = auth_client_for(second).post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
    assert moved.status_code == 201
    assert PushSubscription.objects.get(endpoint=browser.endpoint).user_id == second.id


def test_a_subscription_is_deleted_by_its_endpoint_and_only_by_its_owner(web_push_service):
    owner, other = RiderFactory(), RiderFactory()
    browser = web_push_service.subscribe()
    auth_client_for(owner).post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
    refused = auth_client_for(other).delete(
        "/api/v1/me/push-subscriptions", {"endpoint": browser.endpoint}, format="json"
    )
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "push_subscription_not_found"
    gone = auth_client_for(owner).delete(
        "/api/v1/me/push-subscriptions", {"endpoint": browser.endpoint}, format="json"
    )
    assert gone.status_code == 204
    assert not PushSubscription.objects.exists()


def test_an_endpoint_outside_the_listed_push_services_or_bad_keys_are_refused(web_push_service, settings):
    client = auth_client_for(RiderFactory())
    browser = web_push_service.subscribe()
    body = browser.to_json()
    for endpoint in (
        "http://169.254.169.254/latest/meta-data",
        "https://intranet.example/push",
        "ftp://127.0.0.1/x",
    ):
        answer = client.post("/api/v1/me/push-subscriptions", {**body, "endpoint": endpoint}, format="json")
        assert answer.status_code == 400, endpoint
        assert (
            answer.json()["error"]["code"] == "invalid_input"
            and "endpoint" in answer.json()["error"]["details"]
        )
    settings.ROCHDALE_WEB_PUSH_ALLOW_HTTP = False  # a local receiver's plain http only where allowed
    answer = client.post("/api/v1/me/push-subscriptions", body, format="json")
    assert answer.status_code == 400
    settings.ROCHDALE_WEB_PUSH_ALLOW_HTTP = True
    bad_keys = {**body, "keys": {"p256dh": "AAAA", "auth": "short"}}
    answer = client.post("/api/v1/me/push-subscriptions", bad_keys, format="json")
    assert answer.status_code == 400
    assert set(answer.json()["error"]["details"]) == {"keys.p256dh", "keys.auth"}
    assert not PushSubscription.objects.exists()


def test_the_push_routes_need_a_signed_in_caller(api_client):
    assert api_client.get("/api/v1/me/push/vapid-public-key").status_code == 401
    assert api_client.post("/api/v1/me/push-subscriptions", {}, format="json").status_code == 401
    assert api_client.post("/api/v1/me/devices", {}, format="json").status_code == 401
    assert api_client.get("/api/v1/me/notification-preferences").status_code == 401
