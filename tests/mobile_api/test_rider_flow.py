"""A rider's whole journey over HTTP: register, sign in, estimate, request, read, cancel, rate, tip."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind
from dispatch.models import Tip, Trip
from tests.mobile_api.builders import DROPOFF, PICKUP, drive_to_completion

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual pass phrase 7"


def test_rider_journey_end_to_end(service_area):
    client = APIClient()
    registered = client.post(
        "/api/v1/auth/register",
        {"phone": "+1 212 555 0142", "password": PASSWORD, "name": "Ada Rider", "role": "rider"},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    account = registered.json()
    assert account["phone"] == "+12125550142"
    assert account["roles"] == ["rider"]
    assert "password" not in account

    tokens = client.post(
        "/api/v1/auth/token", {"phone": "+12125550142", "password": PASSWORD}, format="json"
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = client.get("/api/v1/me").json()
    assert me["id"] == account["id"] and me["roles"] == ["rider"]

    estimate = client.post(
        "/api/v1/fares/estimate", {"pickup": PICKUP, "dropoff": DROPOFF}, format="json"
    ).json()
    first = client.post(
        "/api/v1/trips",
        {"pickup": PICKUP, "dropoff": DROPOFF, "estimate_id": estimate["estimate_id"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert first.status_code == 201, first.content
    trip = first.json()
    assert trip["status"] == "requested"
    assert trip["fare_estimate"] == estimate["fare"]
    assert trip["rider"] == {"id": account["id"], "name": "Ada Rider"}
    assert [event["status"] for event in trip["events"]] == ["requested"]

    assert client.get(f"/api/v1/trips/{trip['id']}").json()["id"] == trip["id"]
    cancelled = client.post(f"/api/v1/trips/{trip['id']}/cancel", {"reason": "Plans changed"}, format="json")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_by"] == "rider"
    assert cancelled.json()["cancellation_fee"] is None  # no driver was assigned: free
    assert Trip.objects.get(id=trip["id"]).cancel_reason == "Plans changed"

    # A second trip, driven to completion by a driver, then rated and tipped.
    second = client.post(
        "/api/v1/trips",
        {"pickup": PICKUP, "dropoff": DROPOFF},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    ).json()
    driver = drive_to_completion(Trip.objects.get(id=second["id"])).driver
    done = client.get(f"/api/v1/trips/{second['id']}").json()
    assert done["status"] == "completed"
    assert done["fare"]["amount"] > 0 and done["driver"]["id"] == str(driver.id)

    rated = client.post(
        f"/api/v1/trips/{second['id']}/rating", {"stars": 5, "comment": "Great"}, format="json"
    )
    assert rated.status_code == 201
    assert rated.json()["stars"] == 5 and rated.json()["author_role"] == "rider"

    tipped = client.post(
        f"/api/v1/trips/{second['id']}/tip",
        {"amount": {"amount": 300, "currency": "USD"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert tipped.status_code == 201, tipped.content
    assert tipped.json()["amount"] == {"amount": 300, "currency": "USD"}
    assert Tip.objects.get(trip_id=second["id"]).driver_id == driver.id
    assert balance_minor(kind=AccountKind.TIPS_HELD, owner_id=driver.id, currency="USD") == 300

    listed = client.get("/api/v1/trips").json()
    assert [item["id"] for item in listed["results"]] == [second["id"], trip["id"]]
    assert listed["next"] is None
