"""A browser or an app install that signs in as someone else takes its subscription (or token) with it
(backend/notifications/push_targets.py). A message written for the previous person, still waiting to go
(held through their quiet hours, or due for a retry), must then not be delivered to it: the browser or
phone is the new person's now, and the message is about the old one's votes, money or rides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.notifications.delivery import notifications_deliver_due
from backend.notifications.models import Notification, NotificationStatus, PushDevice, PushSubscription
from backend.notifications.services import notify
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.notifications.test_mobile_push import FCM_TOKEN
from tests.notifications.test_preferences import PROPOSAL, _quiet_now

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_held_web_push_is_not_sent_to_a_browser_that_now_belongs_to_someone_else(
    web_push_service, celery_eager
):
    first, second = RiderFactory(), RiderFactory()
    browser = web_push_service.subscribe()
    assert (
        auth_client_for(first)
        .post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
        .status_code
        == 201
    )
    ends = _quiet_now(first)
    [held] = [
        row
        for row in notify(user_id=first.id, event="proposal_opened", context=PROPOSAL)
        if row.channel == "web_push"
    ]
    assert held.held_until == ends

    # The same browser signs in as the second person, who subscribes it again.
    moved = auth_client_for(second).post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
    assert moved.status_code == 201
    assert PushSubscription.objects.get(endpoint=browser.endpoint).user_id == second.id

    notifications_deliver_due(now=ends + timedelta(seconds=1))

    assert web_push_service.received == [], "the first person's message reached the second's browser"
    held.refresh_from_db()
    assert held.status == NotificationStatus.FAILED


def test_a_held_mobile_push_is_not_sent_to_a_phone_that_now_belongs_to_someone_else(
    fcm_service, celery_eager
):
    first, second = RiderFactory(), RiderFactory()
    device = {"platform": "fcm", "token": FCM_TOKEN}
    assert auth_client_for(first).post("/api/v1/me/devices", device, format="json").status_code == 201
    ends = _quiet_now(first)
    [held] = [
        row
        for row in notify(user_id=first.id, event="proposal_opened", context=PROPOSAL)
        if row.channel == "mobile_push"
    ]
    assert auth_client_for(second).post("/api/v1/me/devices", device, format="json").status_code == 201
    assert PushDevice.objects.get(token=FCM_TOKEN).user_id == second.id

    notifications_deliver_due(now=ends + timedelta(seconds=1))

    assert fcm_service.received == [], "the first person's message reached the second's phone"
    assert Notification.objects.get(id=held.id).status == NotificationStatus.FAILED
