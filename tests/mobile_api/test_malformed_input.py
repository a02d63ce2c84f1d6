"""Bad input of every kind answers 400 (or 413) in the contract's error shape, never 500."""

from __future__ import annotations

import json

import pytest

from dispatch.models import FareEstimate, Trip
from tests.mobile_api.builders import DROPOFF, PICKUP

pytestmark = pytest.mark.django_db


def _assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code:
        assert body["error"]["code"] == code
    return body["error"]


BAD_PLACES = [
    {"lat": 91, "lng": 0},
    {"lat": -90.0001, "lng": 0},
    {"lat": 0, "lng": 180.5},
    {"lat": "40.7", "lng": -73.9},
    {"lat": True, "lng": -73.9},
    {"lat": None, "lng": -73.9},
    {"lat": 10**400, "lng": 0},
    {"lat": 1e308 * 10, "lng": 0},
    {"lng": -73.9},
    [40.7, -73.9],
    "40.7,-73.9",
    None,
]


@pytest.mark.parametrize("place", BAD_PLACES, ids=range(len(BAD_PLACES)))
def test_bad_places_answer_400(rider_client, service_area, idem, place):
    for url, extra in (("/api/v1/fares/estimate", {}), ("/api/v1/trips", idem())):
        response = rider_client.post(
            url,
            json.dumps({"pickup": place, "dropoff": DROPOFF}).replace("Infinity", "1e999"),
            content_type="application/json",
            **extra,
        )
        error = _assert_error_shape(response, 400, "invalid_input")
        assert "pickup" in error["details"]
    assert not Trip.objects.exists() and not FareEstimate.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pickup": PICKUP},
        {"pickup": PICKUP, "dropoff": DROPOFF, "wheelchair_accessible": "perhaps"},
        {"pickup": PICKUP, "dropoff": DROPOFF, "estimate_id": "not-a-uuid"},
        {"pickup": PICKUP, "dropoff": DROPOFF, "estimate_id": 12},
        [],
        "a string",
        42,
    ],
)
def test_wrong_types_and_missing_fields_answer_400(rider_client, service_area, idem, body):
    response = rider_client.post("/api/v1/trips", body, format="json", **idem())
    _assert_error_shape(response, 400, "invalid_input")


@pytest.mark.parametrize("raw", ['{"pickup": ', "{'single': 1}", "NaN", '{"a": NaN}', "\xff\xfe", ""])
def test_broken_json_answers_400(rider_client, service_area, idem, raw):
    response = rider_client.post(
        "/api/v1/trips", raw.encode("latin-1"), content_type="application/json", **idem()
    )
    if raw == "":
        # An empty body is an empty object: the fields are missing.
        _assert_error_shape(response, 400, "invalid_input")
    else:
        _assert_error_shape(response, 400, "malformed_json")


def test_broken_json_on_sign_in_answers_400(api_client):
    response = api_client.post("/api/v1/auth/token", b"{", content_type="application/json")
    _assert_error_shape(response, 400, "malformed_json")


def test_a_huge_body_answers_413(rider_client, service_area, idem, settings):
    body = json.dumps(
        {
            **{"pickup": PICKUP, "dropoff": DROPOFF},
            "padding": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
        }
    )
    for url, extra in (
        ("/api/v1/trips", idem()),
        ("/api/v1/fares/estimate", {}),
        ("/api/v1/auth/register", {}),
    ):
        response = rider_client.post(url, body, content_type="application/json", **extra)
        error = _assert_error_shape(response, 413, "request_too_large")
        assert error["details"]["max_bytes"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert not Trip.objects.exists()


def test_other_media_types_answer_415(rider_client, service_area, idem):
    response = rider_client.post("/api/v1/trips", "pickup=1", content_type="text/plain", **idem())
    _assert_error_shape(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "n" * 121), ("phone", "+1" + "2" * 40), ("password", "p" * 129), ("license_number", "L" * 33)],
)
def test_overlong_strings_answer_400(api_client, field, value):
    body = {
        "phone": "+12125550100",
        "password": "a long pass phrase 3",
        "name": "Ada",
        "role": "rider",
        field: value,
    }
    _assert_error_shape(api_client.post("/api/v1/auth/register", body, format="json"), 400, "invalid_input")


def test_overlong_reason_and_comment_answer_400(service_area):
    from tests.conftest import auth_client_for
    from tests.mobile_api.builders import completed_trip, requested_trip

    trip = requested_trip()
    client = auth_client_for(trip.rider)
    _assert_error_shape(
        client.post(f"/api/v1/trips/{trip.id}/cancel", {"reason": "r" * 501}, format="json"),
        400,
        "invalid_input",
    )
    done = completed_trip()
    _assert_error_shape(
        auth_client_for(done.rider).post(
            f"/api/v1/trips/{done.id}/rating", {"stars": 5, "comment": "c" * 1001}, format="json"
        ),
        400,
        "invalid_input",
    )


def test_not_found_and_method_not_allowed_keep_the_shape(rider_client):
    _assert_error_shape(
        rider_client.get("/api/v1/trips/00000000-0000-4000-8000-000000000000"), 404, "trip_not_found"
    )
    _assert_error_shape(rider_client.get("/api/v1/trips/not-a-uuid"), 404, "not_found")
    _assert_error_shape(rider_client.delete("/api/v1/trips"), 405, "method_not_allowed")
    _assert_error_shape(rider_client.get("/api/v1/fares/estimate"), 405, "method_not_allowed")
    _assert_error_shape(rider_client.put("/api/v1/me", {}, format="json"), 405, "method_not_allowed")
