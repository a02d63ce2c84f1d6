"""Registration, tokens, the caller's account, websocket tickets and driver approval, over HTTP."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backend.accounts.models import DriverProfile, DriverStatus, User
from tests.conftest import auth_client_for
from tests.factories import TEST_PASSWORD, DriverFactory, RiderFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual pass phrase 7"
VEHICLE = {
    "plate": "T777777C",
    "make": "Toyota",
    "model": "Sienna",
    "year": 2021,
    "seats": 6,
    "wheelchair_accessible": True,
}


def _register(client, **fields):
    body = {"phone": "+12125550100", "password": PASSWORD, "name": "Ada", "role": "rider", **fields}
    return client.post("/api/v1/auth/register", body, format="json")


def test_rider_registers_and_gets_the_contract_body(api_client):
    response = _register(api_client)
    assert response.status_code == 201
    body = response.json()
    # email and language: extensions (docs/api.md)
    assert set(body) == {"id", "phone", "name", "email", "language", "roles"}
    assert body["roles"] == ["rider"] and body["email"] == ""
    user = User.objects.get(id=body["id"])
    assert user.is_rider and not user.is_driver and not user.is_staff
    assert user.check_password(PASSWORD)


def test_driver_registers_pending_with_licence_and_vehicle(api_client):
    response = _register(api_client, role="driver", license_number="TLC555", vehicle=VEHICLE)
    assert response.status_code == 201, response.content
    assert response.json()["roles"] == ["driver"]
    assert response.json()["driver_status"] == "pending"
    profile = DriverProfile.objects.get(user_id=response.json()["id"])
    assert profile.license_number == "TLC555"
    assert profile.active_vehicle.wheelchair_accessible is True


def test_auto_approve_setting_approves_drivers_at_registration(api_client, settings):
    settings.ROCHDALE_AUTO_APPROVE_DRIVERS = True
    response = _register(api_client, role="driver", license_number="TLC556", vehicle=VEHICLE)
    assert response.json()["driver_status"] == "approved"
    assert DriverProfile.objects.get(user_id=response.json()["id"]).approved_at is not None


def test_a_driver_without_licence_or_vehicle_is_refused(api_client):
    response = _register(api_client, role="driver")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"license_number", "vehicle"}


def test_registration_cannot_grant_staff_or_approval(api_client):
    response = _register(
        api_client, is_staff=True, is_superuser=True, roles=["staff"], driver_status="approved"
    )
    assert response.status_code == 201
    user = User.objects.get(id=response.json()["id"])
    assert not user.is_staff and not user.is_superuser
    assert response.json()["roles"] == ["rider"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"phone": "2125550100"}, "phone_invalid"),
        ({"phone": "+1212"}, "phone_invalid"),
        ({"password": "password"}, "password_too_weak"),
        ({"password": "12345678901"}, "password_too_weak"),
        ({"role": "staff"}, "invalid_input"),
        ({"name": ""}, "invalid_input"),
        ({"name": "x" * 121}, "invalid_input"),
    ],
)
def test_invalid_registrations_answer_400(api_client, fields, code):
    response = _register(api_client, **fields)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_a_phone_registers_once_and_a_licence_once(api_client):
    assert _register(api_client).status_code == 201
    again = _register(api_client, phone="+1 (212) 555-0100")
    assert again.status_code == 409 and again.json()["error"]["code"] == "phone_taken"
    _register(api_client, phone="+12125550111", role="driver", license_number="TLC9", vehicle=VEHICLE)
    twice = _register(api_client, phone="+12125550112", role="driver", license_number="TLC9", vehicle=VEHICLE)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "license_taken"


def test_sign_in_gives_tokens_that_work_and_refresh(api_client):
    rider = RiderFactory()
    response = api_client.post(
        "/api/v1/auth/token", {"phone": rider.phone, "password": TEST_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/v1/me").json()["id"] == str(rider.id)

    refreshed = api_client.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()
    # Rotation with blacklist: the old refresh token is spent.
    reused = api_client.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "authentication_failed"


def test_wrong_password_unknown_phone_and_inactive_user_answer_401(api_client):
    rider = RiderFactory()
    inactive = RiderFactory(is_active=False)
    for phone, password in (
        (rider.phone, "wrong"),
        ("+12125559999", TEST_PASSWORD),
        (inactive.phone, TEST_PASSWORD),
    ):
        response = api_client.post(
            "/api/v1/auth/token", {"phone": phone, "password": password}, format="json"
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"


def test_refresh_with_garbage_answers_401_and_without_body_400(api_client):
    assert (
        api_client.post("/api/v1/auth/token/refresh", {"refresh": "nope"}, format="json").status_code == 401
    )
    missing = api_client.post("/api/v1/auth/token/refresh", {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_input"


def test_me_shows_driver_status_and_governance_roles(driver):
    body = auth_client_for(driver).get("/api/v1/me").json()
    assert body["roles"][0] == "driver"
    assert body["driver_status"] == "approved"
    assert set(body) <= {"id", "phone", "name", "email", "language", "roles", "driver_status", "member"}


def test_me_requires_a_token(api_client):
    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert bad.get("/api/v1/me").json()["error"]["code"] == "authentication_failed"


def test_ws_ticket_is_issued_for_the_caller(rider_client, rider):
    from backend.redis import get_redis

    response = rider_client.post("/api/v1/ws-ticket")
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 30
    assert get_redis().get(f"wsticket:{body['ticket']}").decode() == str(rider.id)


def test_staff_approve_a_pending_driver(staff_client, staff_user):
    pending = DriverFactory(profile__status=DriverStatus.PENDING)
    response = staff_client.post(f"/api/v1/staff/drivers/{pending.id}/approve")
    assert response.status_code == 200
    assert response.json()["driver_status"] == "approved"
    profile = DriverProfile.objects.get(user_id=pending.id)
    assert profile.approved_by_id == staff_user.id and profile.approved_at is not None


def test_only_staff_approve_and_only_drivers_are_approved(staff_client, rider_client, rider):
    pending = DriverFactory(profile__status=DriverStatus.PENDING)
    refused = rider_client.post(f"/api/v1/staff/drivers/{pending.id}/approve")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert DriverProfile.objects.get(user_id=pending.id).status == DriverStatus.PENDING
    not_driver = staff_client.post(f"/api/v1/staff/drivers/{rider.id}/approve")
    assert not_driver.status_code == 404 and not_driver.json()["error"]["code"] == "driver_not_found"
    assert staff_client.post("/api/v1/staff/drivers/not-a-uuid/approve").status_code == 404


def test_an_account_keeps_an_email_for_receipts_and_only_that_can_be_changed(api_client):
    body = _register(api_client, email=" Ada@Example.ORG ").json()
    assert body["email"] == "Ada@example.org"  # the domain is case-insensitive, the mailbox is not
    bad = _register(api_client, phone="+12125550101", email="not an address")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "email_invalid")
    assert not User.objects.filter(phone="+12125550101").exists()

    user = User.objects.get(id=body["id"])
    client = auth_client_for(user)
    changed = client.patch(
        "/api/v1/me", {"email": "ada@coop.example", "name": "Mallory", "is_staff": True}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    user.refresh_from_db()
    assert (user.email, user.name, user.is_staff) == ("ada@coop.example", "Ada", False)
    assert client.patch("/api/v1/me", {"email": ""}, format="json").json()["email"] == ""
    missing = client.patch("/api/v1/me", {"name": "Mallory"}, format="json")
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "invalid_input")
    assert api_client.patch("/api/v1/me", {"email": "x@y.example"}, format="json").status_code == 401
