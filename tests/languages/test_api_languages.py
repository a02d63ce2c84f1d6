"""The API speaks the reader's language (docs/languages.md): an explicit Accept-Language wins, else the
signed-in user's setting, else English; the error codes never change with it."""

from __future__ import annotations

import uuid

import pytest

from backend.accounts.models import User
from tests.conftest import auth_client_for
from tests.factories import TEST_PASSWORD, RiderFactory
from tests.mobile_api.builders import DROPOFF, PICKUP, requested_trip

SPANISH = {"HTTP_ACCEPT_LANGUAGE": "es-US,es;q=0.9,en;q=0.5"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}


def _error(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


@pytest.mark.django_db
def test_a_validation_error_is_spanish_with_the_same_code_and_field_messages(api_client):
    english = api_client.post("/api/v1/auth/register", {"phone": "+12125550100"}, format="json")
    spanish = api_client.post("/api/v1/auth/register", {"phone": "+12125550100"}, format="json", **SPANISH)
    assert _error(english) == (400, "invalid_input", "Some fields are missing or not valid.")
    assert _error(spanish) == (400, "invalid_input", "Faltan campos o algunos no son válidos.")
    # DRF's own field messages follow the same language (DRF ships its Spanish catalogue).
    assert english.json()["error"]["details"]["password"] == ["This field is required."]
    assert spanish.json()["error"]["details"]["password"] == ["Este campo es requerido."]
    assert spanish["Content-Language"] == "es"


@pytest.mark.django_db
def test_a_not_found_is_spanish_with_the_same_code(rider_client):
    path = f"/api/v1/trips/{uuid.uuid4()}"
    assert _error(rider_client.get(path)) == (404, "trip_not_found", "No such trip.")
    assert _error(rider_client.get(path, **SPANISH)) == (404, "trip_not_found", "No existe ese viaje.")


@pytest.mark.django_db
def test_a_refused_trip_request_is_spanish_with_the_same_code(rider, rider_client, service_area):
    requested_trip(rider)
    trip = {"pickup": PICKUP, "dropoff": DROPOFF}
    english = rider_client.post("/api/v1/trips", trip, format="json", HTTP_IDEMPOTENCY_KEY="en")
    spanish = rider_client.post("/api/v1/trips", trip, format="json", HTTP_IDEMPOTENCY_KEY="es", **SPANISH)
    assert _error(english) == (409, "trip_in_progress", "You already have a trip in progress.")
    assert _error(spanish) == (409, "trip_in_progress", "Ya tienes un viaje en curso.")
    assert spanish.json()["error"]["details"] == english.json()["error"]["details"]


@pytest.mark.django_db
def test_a_failed_sign_in_is_spanish_with_the_same_code(api_client):
    rider = RiderFactory()
    body = {"phone": rider.phone, "password": "not the password"}
    english = api_client.post("/api/v1/auth/token", body, format="json")
    spanish = api_client.post("/api/v1/auth/token", body, format="json", **SPANISH)
    assert _error(english) == (401, "invalid_credentials", "The phone number or the password is wrong.")
    assert _error(spanish) == (
        401,
        "invalid_credentials",
        "El número de teléfono o la contraseña no son correctos.",
    )
    signed_in = api_client.post(
        "/api/v1/auth/token", {"phone": rider.phone, "password": TEST_PASSWORD}, format="json", **SPANISH
    )
    assert signed_in.status_code == 200


@pytest.mark.django_db
def test_the_users_setting_applies_without_the_header_and_the_header_wins_over_it():
    rider = RiderFactory(language="es")
    client = auth_client_for(rider)
    path = f"/api/v1/trips/{uuid.uuid4()}"
    without_header = client.get(path)
    assert _error(without_header) == (404, "trip_not_found", "No existe ese viaje.")
    assert without_header["Content-Language"] == "es"
    # An explicit Accept-Language is what the app asks for now: it wins over the stored setting.
    assert _error(client.get(path, **ENGLISH)) == (404, "trip_not_found", "No such trip.")
    # A header naming no language the co-op offers is no choice: the setting applies.
    assert _error(client.get(path, HTTP_ACCEPT_LANGUAGE="de-DE,de")) == (
        404,
        "trip_not_found",
        "No existe ese viaje.",
    )
    # DRF's validation messages too: they are made after authentication, in the view.
    invalid = client.post("/api/v1/trips", {"pickup": PICKUP}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert invalid.json()["error"]["details"]["dropoff"] == ["Este campo es requerido."]


@pytest.mark.django_db
def test_without_a_header_or_a_setting_messages_are_english(rider_client):
    response = rider_client.get(f"/api/v1/trips/{uuid.uuid4()}")
    assert _error(response)[2] == "No such trip."
    assert response["Content-Language"] == "en"


@pytest.mark.django_db
def test_people_choose_their_language_with_patch_me(rider, rider_client):
    changed = rider_client.patch("/api/v1/me", {"language": "es"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["language"] == "es"
    rider.refresh_from_db()
    assert rider.language == "es"
    # From the next request on, answers are in Spanish.
    assert _error(rider_client.get(f"/api/v1/trips/{uuid.uuid4()}"))[2] == "No existe ese viaje."

    refused = rider_client.patch("/api/v1/me", {"language": "klingon"}, format="json", **SPANISH)
    assert _error(refused) == (400, "language_unsupported", "La cooperativa no ofrece este idioma.")
    assert refused.json()["error"]["details"]["language"] == ["en", "es", "bn", "fr", "ht"]
    # A refused body changes nothing, not even the field that was valid.
    both = rider_client.patch("/api/v1/me", {"email": "ada@coop.example", "language": "xx"}, format="json")
    assert both.status_code == 400
    rider.refresh_from_db()
    assert (rider.email, rider.language) == ("", "es")

    cleared = rider_client.patch("/api/v1/me", {"language": ""}, format="json")
    assert cleared.json()["language"] == ""
    assert User.objects.get(id=rider.id).language == ""
    nothing = rider_client.patch("/api/v1/me", {}, format="json")
    assert _error(nothing)[:2] == (400, "invalid_input")
