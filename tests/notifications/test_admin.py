"""Staff see where pushes go in the admin, never the endpoint or token that would let them push."""

from __future__ import annotations

import pytest

from backend.notifications.models import PushDevice, PushSubscription
from tests.factories import RiderFactory

pytestmark = pytest.mark.django_db


def test_staff_see_subscriptions_and_devices_but_not_their_secrets(client, staff_user):
    client.force_login(staff_user)
    rider = RiderFactory()
    subscription = PushSubscription.objects.create(
        user=rider,
        endpoint="https://fcm.googleapis.com/fcm/send/secret-endpoint-id",
        p256dh="k" * 87,
        auth="a" * 22,
    )
    device = PushDevice.objects.create(user=rider, platform="apns", token="ab" * 32)
    listing = client.get("/admin/notifications/pushsubscription/")
    assert listing.status_code == 200 and "fcm.googleapis.com" in listing.content.decode()
    for page in (
        client.get(f"/admin/notifications/pushsubscription/{subscription.id}/change/"),
        client.get(f"/admin/notifications/pushdevice/{device.id}/change/"),
    ):
        html = page.content.decode()
        assert page.status_code == 200
        assert "secret-endpoint-id" not in html and "ab" * 32 not in html and "k" * 87 not in html
    assert client.get("/admin/notifications/pushdevice/add/").status_code == 403
    assert client.get("/admin/notifications/notificationpreferences/").status_code == 200
