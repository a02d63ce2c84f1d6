"""The real client: per-IP limits key on the socket peer, or on what the trusted proxies added, never on a
made-up `X-Forwarded-For` (docs/contract.md). tests/e2e/test_nginx_client_ip.py runs the same through real
nginx and a real server; these pin the two halves of the rule (DRF's NUM_PROXIES, the ASGI middleware)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backend.forwarded import TrustedProxyClient, forwarded_client
from tests.factories import RiderFactory


def _with_hops(settings, hops: int) -> None:
    settings.ROCHDALE_TRUSTED_PROXY_HOPS = hops
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "NUM_PROXIES": hops,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register": "2/hour"},
    }


def _register(index: int, *, peer: str, forwarded_for: str | None = None) -> int:
    headers = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    body = {"phone": f"+1646555{index:04d}", "password": "a long pass phrase", "name": "N", "role": "rider"}
    return APIClient().post("/api/v1/auth/register", body, format="json", **headers).status_code


@pytest.mark.django_db
def test_without_a_proxy_the_header_is_never_read(settings):
    _with_hops(settings, 0)
    statuses = [_register(i, peer="192.0.2.10", forwarded_for=f"198.51.100.{i}") for i in range(3)]
    assert statuses == [201, 201, 429]
    assert _register(9, peer="192.0.2.11", forwarded_for="192.0.2.10") == 201


@pytest.mark.django_db
def test_behind_one_proxy_only_its_entry_counts(settings):
    _with_hops(settings, 1)
    # The proxy (the socket peer) appended the client it saw; what the client wrote before it is ignored.
    statuses = [_register(i, peer="10.0.0.2", forwarded_for=f"198.51.100.{i}, 192.0.2.10") for i in range(3)]
    assert statuses == [201, 201, 429]
    assert _register(9, peer="10.0.0.2", forwarded_for="192.0.2.10, 192.0.2.11") == 201


@pytest.mark.django_db
def test_the_sign_in_lockout_keys_on_the_client_behind_the_proxy(settings):
    _with_hops(settings, 1)
    settings.ROCHDALE_SIGN_IN_IP_MAX_FAILURES = 3
    rider = RiderFactory()

    def sign_in(forwarded_for: str) -> int:
        return (
            APIClient()
            .post(
                "/api/v1/auth/token",
                {"phone": rider.phone, "password": "wrong"},
                format="json",
                REMOTE_ADDR="10.0.0.2",
                HTTP_X_FORWARDED_FOR=forwarded_for,
            )
            .status_code
        )

    assert [sign_in(f"198.51.100.{i}, 192.0.2.20") for i in range(4)] == [401, 401, 401, 429]
    assert sign_in("192.0.2.21") == 401


@pytest.mark.parametrize(
    ("header", "hops", "client"),
    [
        ("203.0.113.9", 1, "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9", 1, "203.0.113.9"),
        ("198.51.100.1,203.0.113.9, 10.0.0.5", 2, "203.0.113.9"),
        ("203.0.113.9", 2, "203.0.113.9"),  # fewer entries than hops: the leftmost, as DRF does
    ],
)
def test_the_client_is_the_entry_the_outermost_trusted_proxy_added(header, hops, client):
    assert forwarded_client(header, hops=hops) == client


async def _scope_seen_by_app(*, hops: int, headers: list[tuple[bytes, bytes]]) -> dict:
    seen: dict = {}

    async def app(scope, receive, send) -> None:
        seen.update(scope)

    scope = {"type": "http", "client": ("127.0.0.1", 50000), "scheme": "http", "headers": headers}
    await TrustedProxyClient(app, hops=hops)(scope, None, None)
    return seen


async def test_the_server_reads_no_proxy_header_with_zero_hops():
    seen = await _scope_seen_by_app(
        hops=0, headers=[(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    )
    assert seen["client"] == ("127.0.0.1", 50000) and seen["scheme"] == "http"


async def test_the_server_takes_the_client_and_scheme_its_proxy_vouches_for():
    seen = await _scope_seen_by_app(
        hops=1,
        headers=[
            (b"x-forwarded-for", b"198.51.100.1"),
            (b"x-forwarded-for", b"127.0.0.1, 203.0.113.9"),  # repeated headers are one list
            (b"x-forwarded-proto", b"https"),
        ],
    )
    assert seen["client"] == ("203.0.113.9", 0) and seen["scheme"] == "https"
