"""The invoice routes (mobile_api/views_billing.py): staff issue, list, read (JSON, CSV, PDF) and record
payments; an organisation's admins read their own organisation's invoices and nobody else's."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from dispatch.money import invoices
from tests.billing.builders import completed, local, organisation_with_people
from tests.conftest import auth_client_for
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def last_month():
    return invoices.previous_month(invoices.month_of(timezone.now()))


def _organisation_with_trips(month, name="Harlem Dialysis Center", days=(3, 9)):
    organisation, admin, coordinator, patient = organisation_with_people(name)
    trips = [
        completed(
            rider=patient,
            organisation=organisation,
            coordinator=coordinator,
            at=local(month.replace(day=day), 10 + n),
            reference=f"CC-{n}",
        )
        for n, day in enumerate(days)
    ]
    return organisation, admin, coordinator, trips


def test_staff_issue_read_export_and_record_payments(last_month, idem):
    organisation, _, _, trips = _organisation_with_trips(last_month)
    staff = auth_client_for(StaffFactory())
    month = f"{last_month:%Y-%m}"

    issued = staff.post(
        "/api/v1/staff/invoices", {"organisation_id": str(organisation.id), "month": month}, format="json"
    )
    assert issued.status_code == 201, issued.json()
    body = issued.json()
    total = sum(trip.fare_breakdown["total"] for trip in trips)
    assert body["total"] == {"amount": total, "currency": "USD"} and body["status"] == "issued"
    assert [line["reference"] for line in body["lines"]] == ["CC-0", "CC-1"]
    assert {line["trip_id"] for line in body["lines"]} == {str(trip.id) for trip in trips}
    assert body["period"]["from"] == last_month.isoformat() and body["month"] == month
    again = staff.post(
        "/api/v1/staff/invoices", {"organisation_id": str(organisation.id), "month": month}, format="json"
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    listed = staff.get(f"/api/v1/staff/invoices?organisation={organisation.id}&month={month}").json()
    assert [item["id"] for item in listed["results"]] == [body["id"]] and listed["next"] is None
    assert staff.get(f"/api/v1/staff/invoices?month={month[:4]}-13").status_code == 400
    assert staff.get(f"/api/v1/staff/invoices/{body['id']}").json() == body

    exported = staff.get(f"/api/v1/staff/invoices/{body['id']}.csv")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [row["reference"] for row in rows] == ["CC-0", "CC-1"]
    assert sum(Decimal(row["amount"]) for row in rows) == Decimal(total) / 100
    assert staff.get(f"/api/v1/staff/invoices/{body['id']}?format=csv").content == exported.content
    for url in (
        f"/api/v1/staff/invoices/{body['id']}.pdf",
        f"/api/v1/staff/invoices/{body['id']}?format=pdf",
    ):
        pdf = staff.get(url)
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")

    payment = {
        "amount": {"amount": 1500, "currency": "USD"},
        "received_on": timezone.localdate().isoformat(),
        "method": "ACH",
        "reference": "REF-1",
    }
    key = idem()
    paid = staff.post(f"/api/v1/staff/invoices/{body['id']}/payments", payment, format="json", **key)
    assert paid.status_code == 201, paid.json()
    # The same submission again (a double click, a retry) is the same payment, recorded once.
    again = staff.post(f"/api/v1/staff/invoices/{body['id']}/payments", payment, format="json", **key)
    assert again.status_code == 201 and again.json() == paid.json()
    unkeyed = staff.post(f"/api/v1/staff/invoices/{body['id']}/payments", payment, format="json")
    assert unkeyed.status_code == 400 and unkeyed.json()["error"]["code"] == "idempotency_key_required"
    assert paid.json()["invoice"] == {
        "id": body["id"],
        "status": "partly_paid",
        "paid": {"amount": 1500, "currency": "USD"},
        "outstanding": {"amount": total - 1500, "currency": "USD"},
    }
    too_much = {**payment, "amount": {"amount": total, "currency": "USD"}}
    refused = staff.post(f"/api/v1/staff/invoices/{body['id']}/payments", too_much, format="json", **idem())
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invoice_overpayment"
    future = {**payment, "received_on": "2999-01-01"}
    assert (
        staff.post(
            f"/api/v1/staff/invoices/{body['id']}/payments", future, format="json", **idem()
        ).status_code
        == 400
    )
    assert invoices.invoice_reconcile(invoices.invoice_for_staff(invoice_id=body["id"])).ok


def test_issuing_refuses_a_month_not_over_and_a_month_with_nothing_to_bill(last_month):
    organisation, *_ = organisation_with_people()
    staff = auth_client_for(StaffFactory())
    this_month = f"{invoices.month_of(timezone.now()):%Y-%m}"
    for month, code in (
        (this_month, "invoice_month_not_over"),
        (f"{last_month:%Y-%m}", "nothing_to_invoice"),
    ):
        response = staff.post(
            "/api/v1/staff/invoices", {"organisation_id": str(organisation.id), "month": month}, format="json"
        )
        assert response.status_code == 422 and response.json()["error"]["code"] == code


def test_an_organisations_admins_read_their_own_invoices_and_no_one_elses(last_month):
    organisation, admin, coordinator, _ = _organisation_with_trips(last_month)
    other, other_admin, _, _ = _organisation_with_trips(last_month, name="Bronx Community Clinic", days=(5,))
    ours, _ = invoices.invoice_issue(organisation_id=organisation.id, month=last_month)
    theirs, _ = invoices.invoice_issue(organisation_id=other.id, month=last_month)
    base = f"/api/v1/organisations/{organisation.id}/invoices"

    client = auth_client_for(admin)
    assert [item["id"] for item in client.get(base).json()["results"]] == [str(ours.id)]
    assert client.get(f"{base}/{ours.id}").json()["number"] == ours.number
    assert client.get(f"{base}/{ours.id}.csv").content.decode().startswith("invoice,occurred_at")
    assert client.get(f"{base}/{ours.id}.pdf").content.startswith(b"%PDF")
    # Another organisation's invoice, asked for under ours: as if it did not exist.
    for suffix in ("", ".csv", ".pdf"):
        response = client.get(f"{base}/{theirs.id}{suffix}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "invoice_not_found"
    # Someone who does not administer the organisation (a coordinator of it, another's admin, staff as such):
    # the organisation does not exist for them.
    for outsider in (coordinator, other_admin, StaffFactory()):
        for url in (base, f"{base}/{ours.id}", f"{base}/{ours.id}.pdf"):
            response = auth_client_for(outsider).get(url)
            assert (
                response.status_code == 404 and response.json()["error"]["code"] == "organisation_not_found"
            )
    # And an organisation's admin is no staff member.
    refused = client.get("/api/v1/staff/invoices")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "staff_only"
