"""An organisation's API key from making to revoking: shown once and hashed at rest, scoped, revocable,
throttled per key, and confined to its own organisation's trips (404 for everything else's)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from backend.organisations.models import OrganisationApiKey
from dispatch.models import Trip
from tests.organisations.builders import booking

pytestmark = pytest.mark.django_db


def _make_key(world, scopes=("trips:read", "trips:write"), name="Clinic scheduling") -> tuple[dict, str]:
    answer = world.client("admin").post(
        f"/api/v1/organisations/{world.organisation.id}/api-keys",
        {"name": name, "scopes": list(scopes)},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    made = answer.json()
    return made, made["key"]


def _with_key(key: str, *, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    else:
        client.credentials(HTTP_X_API_KEY=key)
    return client


def test_the_key_is_shown_once_and_only_its_hash_is_kept(clinic, caplog):
    made, key = _make_key(clinic)
    prefix, secret = key.split("_")[1], key.split("_", 2)[2]
    assert key.startswith(f"rk_{made['prefix']}_") and len(secret) >= 40
    row = OrganisationApiKey.objects.get(id=made["id"])
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and row.prefix == prefix
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM organisations_organisationapikey k")
        stored = " ".join(text for (text,) in cursor.fetchall())
    assert secret not in stored and key not in stored
    assert secret not in caplog.text
    # Listing shows prefixes, never the key again.
    listed = clinic.client("admin").get(f"/api/v1/organisations/{clinic.organisation.id}/api-keys").json()
    assert [entry["prefix"] for entry in listed["results"]] == [prefix]
    assert "key" not in listed["results"][0] and secret not in str(listed)


def test_a_key_books_reads_and_cancels_its_organisations_trips(clinic):
    _, key = _make_key(clinic)
    client = _with_key(key)
    booked = client.post(clinic.trips_url, booking(rider_id=str(clinic.rider.id)), format="json")
    assert booked.status_code == 201, booked.content
    trip = booked.json()
    assert trip["booked_by"]["kind"] == "api_key" and trip["booked_by"]["name"] == "Clinic scheduling"
    assert Trip.objects.get(id=trip["id"]).booked_by_key_id is not None

    by_header = _with_key(key, header="x-api-key")
    assert by_header.get(f"{clinic.trips_url}/{trip['id']}").json()["id"] == trip["id"]
    listed = by_header.get(clinic.trips_url, {"reference": "CC-100", "status": "scheduled"}).json()
    assert [row["id"] for row in listed["results"]] == [trip["id"]]
    assert by_header.get(clinic.trips_url, {"reference": "other"}).json()["results"] == []

    cancelled = client.post(
        f"{clinic.trips_url}/{trip['id']}/cancel", {"reason": "appointment moved"}, format="json"
    )
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelled_by"] == "rider"

    # It uses the key's write scope for bookings; a key's request may not carry an Idempotency-Key yet.
    keyed = client.post(
        clinic.trips_url, booking(rider_id=str(clinic.rider.id)), format="json", HTTP_IDEMPOTENCY_KEY="b-1"
    )
    assert keyed.status_code == 400 and keyed.json()["error"]["code"] == "idempotency_key_not_supported"


def test_scopes_are_enforced(clinic):
    _, reader = _make_key(clinic, scopes=["trips:read"], name="reports")
    client = _with_key(reader)
    assert client.get(clinic.trips_url).status_code == 200
    refused = client.post(clinic.trips_url, booking(rider_id=str(clinic.rider.id)), format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "api_key_scope_missing"
    trip = (
        clinic.client().post(clinic.trips_url, booking(rider_id=str(clinic.rider.id)), format="json").json()
    )
    cancel = client.post(f"{clinic.trips_url}/{trip['id']}/cancel", {}, format="json")
    assert cancel.status_code == 403 and cancel.json()["error"]["code"] == "api_key_scope_missing"

    _, writer = _make_key(clinic, scopes=["trips:write"], name="intake")
    assert _with_key(writer).get(clinic.trips_url).json()["error"]["code"] == "api_key_scope_missing"


def test_a_key_reaches_nothing_of_another_organisation_nor_anything_else(clinic, agency):
    _, key = _make_key(clinic)
    client = _with_key(key)
    theirs = (
        agency.client().post(agency.trips_url, booking(rider_id=str(agency.rider.id)), format="json").json()
    )

    for path in (agency.trips_url, f"{agency.trips_url}/{theirs['id']}"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "organisation_not_found"
    # Its own organisation's route with the other's trip id: as for an id that does not exist.
    foreign = client.get(f"{clinic.trips_url}/{theirs['id']}")
    made_up = client.get(f"{clinic.trips_url}/{uuid.uuid4()}")
    assert foreign.status_code == made_up.status_code == 404 and foreign.json() == made_up.json()
    assert client.post(f"{clinic.trips_url}/{theirs['id']}/cancel", {}, format="json").status_code == 404
    assert Trip.objects.get(id=theirs["id"]).status == "scheduled"
    # Booking the other organisation's rider or guest is refused like a made-up one.
    guest = (
        agency.client()
        .post(
            f"/api/v1/organisations/{agency.organisation.id}/guests", {"name": "Sam", "phone": "+12125550177"}
        )
        .json()
    )
    as_guest = client.post(clinic.trips_url, booking(guest_id=guest["id"]), format="json")
    assert as_guest.status_code == 404 and as_guest.json()["error"]["code"] == "guest_not_found"
    as_rider = client.post(clinic.trips_url, booking(rider_id=str(agency.rider.id)), format="json")
    assert as_rider.status_code == 422 and as_rider.json()["error"]["code"] == "rider_not_in_organisation"
    # A key is nobody outside the organisation's trip routes.
    for path in ("/api/v1/me", "/api/v1/trips", f"/api/v1/organisations/{clinic.organisation.id}/members"):
        assert client.get(path).status_code == 401, path


def test_a_revoked_or_wrong_key_answers_401_and_use_is_recorded_once_a_minute(clinic):
    made, key = _make_key(clinic)
    client = _with_key(key)
    assert client.get(clinic.trips_url).status_code == 200
    first_use = OrganisationApiKey.objects.get(id=made["id"]).last_used_at
    assert first_use is not None
    assert client.get(clinic.trips_url).status_code == 200
    assert OrganisationApiKey.objects.get(id=made["id"]).last_used_at == first_use

    wrong = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    for bad in (wrong, "rk_000000000000_" + "x" * 43, "rk_nonsense"):
        answer = _with_key(bad).get(clinic.trips_url)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "api_key_invalid", bad

    revoked = clinic.client("admin").post(
        f"/api/v1/organisations/{clinic.organisation.id}/api-keys/{made['id']}/revoke"
    )
    assert revoked.status_code == 200 and revoked.json()["is_active"] is False
    for header in ("bearer", "x-api-key"):
        answer = _with_key(key, header=header).get(clinic.trips_url)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "api_key_revoked"
    # Only the organisation's admins manage keys; its coordinators are refused, outsiders told nothing.
    coordinator = clinic.client().post(
        f"/api/v1/organisations/{clinic.organisation.id}/api-keys/{made['id']}/revoke"
    )
    assert (
        coordinator.status_code == 403
        and coordinator.json()["error"]["code"] == "organisation_admin_required"
    )


def test_each_key_has_its_own_rate_limit(clinic, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"},
    }
    _, first = _make_key(clinic, name="one")
    _, second = _make_key(clinic, name="two")
    answers = [_with_key(first).get(clinic.trips_url).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert _with_key(second).get(clinic.trips_url).status_code == 200
