"""Every member reads the governance audit log (`GET /api/v1/governance/audit`), so an SOS's entries there
say that an alert was raised and what staff did, by ids, and nothing a member does not need: not where the
person in danger was, nor the words staff wrote about the emergency (those stay on the alert, for staff)."""

from __future__ import annotations

import json
import uuid

import pytest

from governance.models import AuditEntry
from governance.services import membership_join
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.mobile_api.builders import assigned_trip, ensure_fare_policy

pytestmark = pytest.mark.django_db

LAT, LNG = 40.712345, -73.954321
ACKNOWLEDGED = "Called her back: she is hiding at the laundromat on Bedford Ave"
RESOLVED = "Police attended; the rider reported the driver for assault"


def test_a_members_audit_log_shows_neither_where_an_sos_was_nor_what_staff_wrote():
    ensure_fare_policy()
    member = membership_join(user=DriverFactory())
    rider, staff = RiderFactory(), StaffFactory()
    trip = assigned_trip(rider)
    raised = auth_client_for(rider).post(
        f"/api/v1/trips/{trip.id}/sos",
        {"client_key": str(uuid.uuid4()), "position": {"lat": LAT, "lng": LNG}, "accuracy_m": 5},
        format="json",
    )
    assert raised.status_code == 201, raised.content
    alert_id = raised.json()["id"]
    staff_client = auth_client_for(staff)
    base = f"/api/v1/staff/safety/alerts/{alert_id}"
    assert staff_client.post(f"{base}/acknowledge", {"note": ACKNOWLEDGED}, format="json").status_code == 200
    assert staff_client.post(f"{base}/resolve", {"note": RESOLVED}, format="json").status_code == 200

    answer = auth_client_for(member.user).get("/api/v1/governance/audit")
    assert answer.status_code == 200
    shown = json.dumps(answer.json())
    kinds = {entry["kind"] for entry in answer.json()["results"]}
    assert {"safety.sos_raised", "safety.sos_acknowledged", "safety.sos_resolved"} <= kinds
    assert alert_id in shown  # staff can find the alert from the entry
    for secret in ("40.7123", "73.9543", "laundromat", "assault"):
        assert secret not in shown, secret
    # Staff still have it all on the alert itself.
    detail = staff_client.get(base).json()
    assert detail["position"] == {"lat": LAT, "lng": LNG} and detail["resolved"]["note"] == RESOLVED
    # The chain still records which note was written (its digest), so it cannot be changed unseen.
    resolved = AuditEntry.objects.get(kind="safety.sos_resolved")
    assert len(resolved.payload["note_sha256"]) == 64
