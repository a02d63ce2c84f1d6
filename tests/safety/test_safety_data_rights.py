"""A person's safety data in their data-rights export, and what their erasure removes (docs/safety.md,
docs/compliance.md "Data rights"): their standing safety choices, the share links they made (never the
token, nor its digest), the SOS alerts they raised; and the erasure removes their second-factor devices,
their share links and their safety settings. The SOS alerts stay (an emergency's record is append-only),
under the pseudonymised account."""

from __future__ import annotations

import json
import uuid

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from backend.fares.models import CaptureStatus, PaymentCapture
from backend.fares.payments import capture_attempt
from dispatch.models import RiderSafetySettings, SafetyAlert, TripShareLink
from tests.conftest import auth_client_for
from tests.factories import TEST_PASSWORD, DriverFactory, RiderFactory
from tests.mobile_api.builders import assign, drive_to_completion, requested_trip
from tests.second_factor import authenticator_for

pytestmark = pytest.mark.django_db


def _export(client) -> dict:
    response = client.get("/api/v1/me/export")
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content))


def test_safety_data_is_exported_and_the_erasure_removes_links_settings_and_devices():
    rider, driver = RiderFactory(), DriverFactory()
    client = auth_client_for(rider)
    assert client.put("/api/v1/me/safety", {"ride_pin_always": True}, format="json").status_code == 200
    trip = assign(requested_trip(rider), driver)
    made = client.post(f"/api/v1/trips/{trip.id}/share-links", {}, format="json")
    assert made.status_code == 201, made.content
    link = made.json()
    sos = client.post(
        f"/api/v1/trips/{trip.id}/sos",
        {"client_key": str(uuid.uuid4()), "position": {"lat": 40.7611, "lng": -73.98}},
        format="json",
    )
    assert sos.status_code == 201, sos.content
    authenticator_for(rider)  # a member may set an authenticator app up; anyone may
    drive_to_completion(trip)
    for capture_id in PaymentCapture.objects.filter(rider=rider, status=CaptureStatus.PENDING).values_list(
        "id", flat=True
    ):
        capture_attempt(capture_id=capture_id)

    document = _export(client)
    safety = document["safety"]
    assert safety["settings"]["ride_pin_always"] is True
    [shared] = safety["share_links"]
    assert shared["id"] == link["id"] and shared["trip_id"] == str(trip.id)
    assert shared["expires_at"] == link["expires_at"] and shared["revoked_at"] is None
    [alert] = safety["sos_alerts"]
    assert alert["id"] == sos.json()["id"] and alert["trip_id"] == str(trip.id)
    assert alert["role"] == "rider" and alert["position"] == {"lat": 40.7611, "lng": -73.98}
    # The link's secret opens a trip: neither it nor its digest ever leaves.
    digest = TripShareLink.objects.get(id=link["id"]).token_sha256
    text = json.dumps(document)
    assert link["token"] not in text and digest not in text
    # What the notifications engineer exports is there too.
    assert "preferences" in document["notification_settings"]

    erased = client.post("/api/v1/me/erasure", {"password": TEST_PASSWORD}, format="json")
    assert erased.status_code == 201, erased.json()
    assert erased.json()["status"] == "completed"
    assert not TOTPDevice.objects.filter(user=rider).exists()
    assert not TripShareLink.objects.filter(trip__rider=rider).exists()
    assert not RiderSafetySettings.objects.filter(rider=rider).exists()
    assert SafetyAlert.objects.filter(raised_by=rider).count() == 1
