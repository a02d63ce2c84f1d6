"""Signed-in routes are limited per account (the `user` rate), never per address; a Redis outage lets them
through rather than taking them down."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from backend.redis import get_redis
from tests.factories import RiderFactory
from tests.faults.procs import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_rate(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"},
    }


def _me(client, user, *, ip: str = "192.0.2.30") -> int:
    bearer = f"Bearer {RefreshToken.for_user(user).access_token}"
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=bearer, REMOTE_ADDR=ip).status_code


def test_a_signed_in_user_is_limited_by_the_user_rate(api_client, user_rate):
    rider = RiderFactory()
    assert [_me(api_client, rider) for _ in range(4)] == [200, 200, 200, 429]
    bearer = f"Bearer {RefreshToken.for_user(rider).access_token}"
    limited = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=bearer)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1


def test_the_limit_keys_on_the_account_not_the_address(api_client, user_rate):
    first, second = RiderFactory(), RiderFactory()
    # Another address does not give the same account more.
    assert [_me(api_client, first, ip=f"198.51.100.{i}") for i in range(4)] == [200, 200, 200, 429]
    # Another account at the same address has its own allowance (a depot's NAT, the simulator).
    assert [_me(api_client, second, ip="198.51.100.0") for _ in range(3)] == [200, 200, 200]


def test_routes_open_to_anyone_are_not_counted_against_a_user(api_client, user_rate):
    statuses = {api_client.get("/api/v1/health").status_code for _ in range(5)}
    assert statuses == {200}
    assert not list(get_redis().scan_iter("throttle:rate:user:*"))


def test_an_unreachable_redis_lets_signed_in_requests_through(api_client, user_rate, settings):
    rider = RiderFactory()
    reachable = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert [_me(api_client, rider) for _ in range(5)] == [200] * 5

    settings.REDIS_URL = reachable
    wait_until(
        lambda: _me(api_client, rider) == 200 and any(get_redis().scan_iter("throttle:rate:user:*")),
        timeout_s=10,
        what="the account is counted again once Redis answers",
    )
