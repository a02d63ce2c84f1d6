"""The staff routes of the regulator's reports: staff only (403 `staff_only` before anything else), the
trip-record file as a CSV download or its JSON summary, the accessibility figures, and errors in JSON."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from tests.compliance import test_trip_records as records
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory

pytestmark = pytest.mark.django_db

# The month of trips of the report's own tests, as fixtures here too.
new_york = records.new_york
month_of_trips = records.month_of_trips
hand_written_fields = records.hand_written_fields

TRIP_RECORDS = "/api/v1/staff/regulator/trip-records"
ACCESSIBILITY = "/api/v1/staff/regulator/accessibility"


@pytest.mark.parametrize("route", [TRIP_RECORDS, ACCESSIBILITY])
def test_only_staff_and_before_the_month_is_read(route):
    assert APIClient().get(route, {"month": "2026-10"}).status_code == 401
    for outsider in (RiderFactory(), DriverFactory()):
        # Even a month that is not valid: the role is checked first.
        response = auth_client_for(outsider).get(route, {"month": "nonsense"})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "staff_only"


def test_staff_download_the_month_as_the_csv_file(month_of_trips):
    response = auth_client_for(StaffFactory()).get(TRIP_RECORDS, {"month": "2026-10"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="hvfhv-trip-records-2026-10.csv"'
    assert (response["X-Rochdale-Exceptions"], response["X-Rochdale-Reconciled"]) == ("2", "true")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == hand_written_fields()
    assert len(rows) == 1 + 5


def test_staff_read_the_summary_with_exceptions_and_reconciliation(month_of_trips):
    response = auth_client_for(StaffFactory()).get(TRIP_RECORDS, {"month": "2026-10", "format": "json"})
    assert response.status_code == 200
    summary = response.json()
    assert (summary["month"], summary["rows"], summary["dropoffs_outside_zones"]) == ("2026-10", 5, 1)
    assert {(e["trip_id"], e["code"]) for e in summary["exceptions"]} == {
        (str(month_of_trips["from_new_jersey"].id), "no_pickup_zone"),
        (str(month_of_trips["unsettled"].id), "no_fare_entry"),
    }
    assert summary["reconciliation"]["ok"] is True
    columns = {c["column"]: c for c in summary["reconciliation"]["columns"]}
    assert columns["congestion_surcharge"]["ledger"] == "8.25"
    assert columns["airport_fee"]["rows"] == "2.50"


def test_a_bad_month_and_a_profile_without_the_file_answer_json_errors(new_york, settings):
    staff = auth_client_for(StaffFactory())
    response = staff.get(TRIP_RECORDS, {"month": "2026-13"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "month" in response.json()["error"]["details"]
    assert staff.get(TRIP_RECORDS).status_code == 400
    settings.ROCHDALE_REGULATOR_PROFILE = "none"
    response = staff.get(TRIP_RECORDS, {"month": "2026-10"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "trip_report_not_configured"


def test_staff_read_the_accessibility_figures(month_of_trips):
    response = auth_client_for(StaffFactory()).get(ACCESSIBILITY, {"month": "2026-10"})
    assert response.status_code == 200
    figures = response.json()
    assert (figures["month"], figures["from"], figures["to"]) == ("2026-10", "2026-10-01", "2026-10-31")
    assert figures["wav"]["requests"] == 1 and figures["wav"]["matched_in_wav"] == 1
    assert figures["wav"]["to_assigned"] == {"count": 1, "median_s": 300.0, "p90_s": 300.0}
    assert figures["standard"]["to_on_scene"]["median_s"] == 420.0
