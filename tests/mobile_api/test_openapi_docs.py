"""Every operation is documented: request, answers, error codes (as enums, per route and status) with
examples, paging, the Idempotency-Key and Retry-After headers, and which routes need no sign-in."""

from __future__ import annotations

import pytest
from django.core.management import call_command

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
            assert content["schema"]["$ref"].endswith("ErrorBody"), (path, method, code)
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


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_error_answer_names_its_codes_as_an_enum_with_one_example_each(schema):
    for path, method, operation in _operations(schema):
        for status, response in operation["responses"].items():
            health_report = path in ("/api/v1/health", "/api/v1/health/ready") and status == "503"
            if status[0] not in "45" or health_report:
                continue
            content = response["content"]["application/json"]
            body = _resolve(schema, content["schema"])
            assert body["required"] == ["error"], (path, method, status)
            detail = _resolve(schema, body["properties"]["error"])
            assert set(detail["required"]) == {"code", "message", "details"}, (path, method, status)
            codes = _resolve(schema, detail["properties"]["code"])["enum"]
            examples = [example["value"]["error"]["code"] for example in content["examples"].values()]
            assert sorted(examples) == sorted(codes), (path, method, status)


def test_error_codes_are_per_route_and_status(schema):
    def codes(path, method, status):
        content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]
        detail = _resolve(schema, _resolve(schema, content["schema"])["properties"]["error"])
        return _resolve(schema, detail["properties"]["code"])["enum"]

    assert codes("/api/v1/trips", "post", "409") == [
        "trip_in_progress",
        "reservation_overlaps",
        "idempotency_key_in_flight",
    ]
    assert codes("/api/v1/trips/{trip_id}/tip", "post", "400") == [
        "tip_amount_invalid",
        "invalid_input",
        "malformed_json",
        "idempotency_key_required",
        "idempotency_key_invalid",
    ]
    assert codes("/api/v1/governance/proposals/{proposal_id}/votes", "post", "409") == [
        "voting_closed",
        "already_voted",
    ]
    assert codes("/api/v1/governance/proposals", "get", "400") == ["invalid_cursor"]
    assert codes("/api/v1/me", "get", "401") == ["not_authenticated", "authentication_failed"]


def test_every_paginated_list_documents_its_paging_parameters_and_bad_cursor(schema):
    paginated = set()
    for path, _method, operation in _operations(schema):
        success = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        page = _resolve(schema, success["schema"]) if success else {}
        if set(page.get("properties", {})) != {"results", "next"}:
            continue
        paginated.add(path)
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        assert {"cursor", "page_size"} <= names, path
        assert "400" in operation["responses"], path
    assert {
        "/api/v1/trips",
        "/api/v1/governance/proposals",
        "/api/v1/governance/elections",
        "/api/v1/governance/statements",
        "/api/v1/governance/audit",
    } <= paginated


def test_every_idempotent_route_documents_the_key_and_the_replay_header(schema):
    from mobile_api.idempotency import HEADER, REPLAY_HEADER

    documented = {}
    for path, method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == HEADER:
                documented[(path, method)] = parameter.get("required", False)
                successes = [r for code, r in operation["responses"].items() if code.startswith("2")]
                assert all(REPLAY_HEADER in r["headers"] for r in successes), path
                assert "idempotency_key_in_flight" in str(operation["responses"]["409"]), path
    assert documented[("/api/v1/trips", "post")] is True
    assert documented[("/api/v1/trips/{trip_id}/tip", "post")] is True
    assert documented[("/api/v1/trips/{trip_id}/cancel", "post")] is False
    assert documented[("/api/v1/trips/{trip_id}/rating", "post")] is False


def test_every_429_documents_retry_after(schema):
    throttled = [
        (path, method, operation["responses"]["429"])
        for path, method, operation in _operations(schema)
        if "429" in operation["responses"]
    ]
    assert {path for path, _, _ in throttled} >= {"/api/v1/auth/token", "/api/v1/auth/register"}
    for path, method, response in throttled:
        assert response["headers"]["Retry-After"]["schema"]["type"] == "integer", (path, method)


def test_anonymous_routes_say_no_auth_and_the_others_need_the_bearer_token(schema):
    anonymous = set()
    for path, method, operation in _operations(schema):
        assert {} not in operation["security"], (path, method)
        if operation["security"] == []:
            anonymous.add(path)
        elif path.startswith("/api/v1/organisations/{organisation_id}/trips"):
            # A broker's or clinic's system books with the organisation's API key (docs/organisations.md),
            # a coordinator with their token.
            assert operation["security"] == [
                {"organisationApiKey": []},
                {"organisationApiKeyHeader": []},
                {"bearerAuth": []},
            ], (path, method)
            assert "401" in operation["responses"], (path, method)
        else:
            assert operation["security"] == [{"bearerAuth": []}], (path, method)
            assert "401" in operation["responses"], (path, method)
    assert anonymous == {
        "/api/v1/auth/register",
        "/api/v1/auth/token",
        "/api/v1/auth/token/refresh",
        "/api/v1/health",
        # The probes: a kubelet or load balancer carries no token (docs/operations.md, "Health").
        "/api/v1/health/live",
        "/api/v1/health/ready",
        # Stripe's deliveries carry no token: the `Stripe-Signature` header is checked (docs/payments.md).
        "/api/v1/payments/stripe/webhook",
        # The co-op's public fairness figures: aggregates, for anyone (docs/figures.md).
        "/api/v1/coop/figures",
        # A share-trip link's progress: the token in the path is the credential (docs/safety.md).
        "/api/v1/shared/trips/{token}",
    }


def test_the_api_version_is_the_package_version(schema):
    """One version for the package and its API (CHANGELOG.md), so a client knows which release it talks to."""
    from importlib.metadata import version

    assert schema["info"]["version"] == version("rochdale")
