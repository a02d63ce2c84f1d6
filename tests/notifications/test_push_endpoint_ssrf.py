"""The server POSTs to whatever endpoint a subscription names, so an endpoint is taken only when the HTTP
client that sends (requests, through urllib3) would connect to a listed push service. An address that
Python's `urlsplit` reads as a push service's name but urllib3 reads as another host (a backslash before
the listed suffix: `https://169.254.169.254\\.push.apple.com/`) would make the server post inside the
co-op's own network on anyone's behalf."""

from __future__ import annotations

import pytest
import requests

from backend.notifications.push_targets import endpoint_allowed
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.notifications.receivers import BrowserSubscription

pytestmark = pytest.mark.django_db

LISTED = [".push.apple.com", "fcm.googleapis.com"]
SMUGGLED = [
    "https://169.254.169.254\\.push.apple.com/latest/meta-data",
    "https://127.0.0.1\\.push.apple.com/x",
    "https://10.0.0.5\\fcm.googleapis.com/x",
    "https://kubernetes.default.svc\t.push.apple.com/api",
    "https://127.0.0.1 .push.apple.com/x",
]


def _host_requests_would_reach(endpoint: str) -> str:
    return requests.Request("POST", endpoint).prepare().url.split("://", 1)[1].split("/", 1)[0]


def test_an_endpoint_the_http_client_reads_as_another_host_is_refused(settings):
    settings.ROCHDALE_WEB_PUSH_HOSTS = LISTED
    keys = BrowserSubscription(endpoint="https://web.push.apple.com/x").to_json()["keys"]
    client = auth_client_for(RiderFactory())
    for endpoint in SMUGGLED:
        refused = client.post(
            "/api/v1/me/push-subscriptions", {"endpoint": endpoint, "keys": keys}, format="json"
        )
        assert refused.status_code == 400, (endpoint, _host_requests_would_reach(endpoint))
        assert "endpoint" in refused.json()["error"]["details"]
    # The push services' own addresses still pass.
    for endpoint in (
        "https://web.push.apple.com/QGuQyavXutnMH0XZ8Aa5Id8",
        "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bH",
    ):
        assert endpoint_allowed(endpoint), endpoint
        assert _host_requests_would_reach(endpoint) in ("web.push.apple.com", "fcm.googleapis.com")
