"""Every rider and account operation is documented: request, answers, error codes and examples."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

RIDER_OPERATIONS = {
    ("/api/v1/auth/register", "post"),
    ("/api/v1/auth/token", "post"),
    ("/api/v1/auth/token/refresh", "post"),
    ("/api/v1/me", "get"),
    ("/api/v1/ws-ticket", "post"),
    ("/api/v1/staff/drivers/{driver_id}/approve", "post"),
    ("/api/v1/fares/estimate", "post"),
    ("/api/v1/trips", "get"),
    ("/api/v1/trips", "post"),
    ("/api/v1/trips/{trip_id}", "get"),
    ("/api/v1/trips/{trip_id}/cancel", "post"),
    ("/api/v1/trips/{trip_id}/rating", "post"),
    ("/api/v1/trips/{trip_id}/tip", "post"),
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_every_rider_operation_is_documented_with_errors_and_examples(schema):
    for path, method in sorted(RIDER_OPERATIONS):
        operation = schema["paths"][path][method]
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        assert successes, (path, method)
        errors = [code for code in responses if code[0] in "45"]
        assert errors, (path, method)
        for code in errors:
            content = responses[code]["content"]["application/json"]
            assert content["schema"]["$ref"].endswith("/ErrorBody"), (path, method, code)
            assert content.get("examples"), (path, method, code)
        if method == "post" and "requestBody" in operation:
            assert operation["requestBody"]["content"]["application/json"].get("examples") or path.endswith(
                "refresh"
            ), path


def test_idempotency_key_is_documented_where_it_is_required(schema):
    def header(path, method):
        return next(
            (
                p
                for p in schema["paths"][path][method].get("parameters", [])
                if p["name"] == "Idempotency-Key"
            ),
            None,
        )

    assert header("/api/v1/trips", "post")["required"] is True
    assert header("/api/v1/trips/{trip_id}/tip", "post")["required"] is True
    assert header("/api/v1/fares/estimate", "post").get("required", False) is False


def test_trip_ids_are_uuids_in_the_schema(schema):
    parameter = next(
        p for p in schema["paths"]["/api/v1/trips/{trip_id}"]["get"]["parameters"] if p["name"] == "trip_id"
    )
    assert parameter["schema"]["format"] == "uuid"
