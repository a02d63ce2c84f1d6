"""CORS for the co-op's own web apps (django-cors-headers, docs/operations.md "The admin, CORS"): a
configured origin may call the API with a bearer token and an idempotency key; any other origin, and any
page outside /api/, gets no CORS header at all."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

APP = "https://app.coop.example"


def _preflight(client: Client, path: str, origin: str) -> dict[str, str]:
    response = client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, idempotency-key, content-type",
    )
    return {name.lower(): value for name, value in response.headers.items()}


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_an_allowed_origin_may_send_a_token_and_an_idempotency_key(client: Client) -> None:
    headers = _preflight(client, "/api/v1/trips", APP)
    assert headers.get("access-control-allow-origin") == APP
    allowed = {name.strip() for name in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "idempotency-key"} <= allowed
    assert "POST" in headers["access-control-allow-methods"]


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_an_actual_answer_names_the_origin_and_exposes_the_request_id(client: Client) -> None:
    response = client.get("/api/v1/health", HTTP_ORIGIN=APP)
    assert response.headers.get("Access-Control-Allow-Origin") == APP
    assert "x-request-id" in response.headers.get("Access-Control-Expose-Headers", "").lower()


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_another_origin_gets_no_cors_header(client: Client) -> None:
    headers = _preflight(client, "/api/v1/trips", "https://evil.example")
    assert not [name for name in headers if name.startswith("access-control-")]


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_pages_outside_the_api_get_no_cors_header(client: Client) -> None:
    for path in ("/members/", "/admin/login/", "/"):
        headers = _preflight(client, path, APP)
        assert not [name for name in headers if name.startswith("access-control-")], path
