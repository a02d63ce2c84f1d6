"""Sign-in lockout per phone and per IP, and the request-rate limits, on real Redis counters."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backend.accounts.throttling import sign_in_failed
from backend.redis import get_redis
from tests.factories import TEST_PASSWORD, RiderFactory

pytestmark = pytest.mark.django_db


def _sign_in(phone, password, ip="203.0.113.7"):
    return APIClient().post(
        "/api/v1/auth/token", {"phone": phone, "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_a_phone_is_locked_after_max_failures_even_with_the_right_password(settings):
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 3
    settings.ROCHDALE_SIGN_IN_LOCKOUT_S = 600
    rider = RiderFactory()
    for attempt in range(3):
        response = _sign_in(rider.phone, "wrong", ip=f"203.0.113.{attempt + 1}")
        assert response.status_code == 401
    locked = _sign_in(rider.phone, TEST_PASSWORD, ip="198.51.100.1")
    assert locked.status_code == 429
    body = locked.json()
    assert body["error"]["code"] == "sign_in_locked"
    assert body["error"]["details"]["scope"] == "phone"
    assert 590 <= int(locked["Retry-After"]) <= 600
    # Another phone from the same IPs is not affected.
    other = RiderFactory()
    assert _sign_in(other.phone, TEST_PASSWORD, ip="203.0.113.1").status_code == 200


def test_the_phone_lock_lifts_when_it_expires(settings):
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 2
    settings.ROCHDALE_SIGN_IN_LOCKOUT_S = 600
    rider = RiderFactory()
    _sign_in(rider.phone, "wrong")
    _sign_in(rider.phone, "wrong")
    assert _sign_in(rider.phone, TEST_PASSWORD).status_code == 429
    client = get_redis()
    for key in client.scan_iter("throttle:signin:fail:*"):
        client.delete(key)  # what the expiry does after ROCHDALE_SIGN_IN_LOCKOUT_S
    assert _sign_in(rider.phone, TEST_PASSWORD).status_code == 200


def test_an_ip_is_locked_after_its_own_max_failures_across_phones(settings):
    settings.ROCHDALE_SIGN_IN_IP_MAX_FAILURES = 4
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 100
    riders = [RiderFactory() for _ in range(4)]
    for rider in riders:
        assert _sign_in(rider.phone, "wrong", ip="192.0.2.50").status_code == 401
    locked = _sign_in(riders[0].phone, TEST_PASSWORD, ip="192.0.2.50")
    assert locked.status_code == 429
    assert locked.json()["error"]["details"]["scope"] == "ip"
    assert "Retry-After" in locked
    # The same account from another address signs in.
    assert _sign_in(riders[0].phone, TEST_PASSWORD, ip="192.0.2.51").status_code == 200


def test_a_successful_sign_in_clears_the_phone_count(settings):
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 3
    rider = RiderFactory()
    _sign_in(rider.phone, "wrong")
    _sign_in(rider.phone, "wrong")
    assert _sign_in(rider.phone, TEST_PASSWORD).status_code == 200
    _sign_in(rider.phone, "wrong")
    _sign_in(rider.phone, "wrong")
    assert _sign_in(rider.phone, TEST_PASSWORD).status_code == 200


def test_failure_counters_are_atomic_under_concurrency(settings):
    import threading

    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 1000
    settings.ROCHDALE_SIGN_IN_IP_MAX_FAILURES = 1000
    threads = [
        threading.Thread(
            target=lambda: [sign_in_failed(phone="+12125550100", ip="192.0.2.9") for _ in range(25)]
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = get_redis()
    counts = sorted(int(client.get(key)) for key in client.scan_iter("throttle:signin:fail:*"))
    assert counts == [200, 200]
    assert all(
        0 < client.ttl(key) <= settings.ROCHDALE_SIGN_IN_LOCKOUT_S for key in client.scan_iter("throttle:*")
    )


def test_sign_in_requests_are_rate_limited_per_ip(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "sign_in_ip": "3/min",
        },
    }
    rider = RiderFactory()
    statuses = [_sign_in(rider.phone, TEST_PASSWORD, ip="192.0.2.77").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = _sign_in(rider.phone, TEST_PASSWORD, ip="192.0.2.77")
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    assert _sign_in(rider.phone, TEST_PASSWORD, ip="192.0.2.78").status_code == 200


def test_registration_is_rate_limited_per_ip(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register": "2/hour"},
    }
    client = APIClient()
    statuses = [
        client.post(
            "/api/v1/auth/register",
            {"phone": f"+1212555{n:04d}", "password": "a long pass phrase 9", "name": "R", "role": "rider"},
            format="json",
            REMOTE_ADDR="192.0.2.88",
        ).status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]
