"""Access cases for organisations' invoices (mobile_api/urls_billing.py): staff routes refuse everyone else
with 403 before looking at the id; an organisation's invoices are its admins' alone, and for anyone else the
organisation does not exist (tests/billing/test_billing_api.py covers coordinators and other admins)."""

from __future__ import annotations

from django.utils import timezone

from dispatch.money import invoices
from tests.access_cases import AccessCase, Arranged, register
from tests.billing.builders import completed, local, organisation_with_people
from tests.factories import StaffFactory


def _issued():
    month = invoices.previous_month(invoices.month_of(timezone.now()))
    organisation, admin, coordinator, rider = organisation_with_people()
    completed(rider=rider, organisation=organisation, coordinator=coordinator, at=local(month.replace(day=2)))
    invoice, _ = invoices.invoice_issue(organisation_id=organisation.id, month=month)
    return organisation, admin, invoice


def _staff_invoice() -> Arranged:
    _, _, invoice = _issued()
    return Arranged(owner=StaffFactory(), kwargs={"invoice_id": invoice.id})


def _staff_payment() -> Arranged:
    _, _, invoice = _issued()
    return Arranged(
        owner=StaffFactory(),
        kwargs={"invoice_id": invoice.id},
        body={
            "amount": {"amount": 100, "currency": invoice.currency},
            "received_on": timezone.localdate().isoformat(),
            "method": "ACH",
        },
    )


def _organisation_invoices() -> Arranged:
    organisation, admin, _ = _issued()
    return Arranged(owner=admin, kwargs={"organisation_id": organisation.id})


def _organisation_invoice() -> Arranged:
    organisation, admin, invoice = _issued()
    return Arranged(owner=admin, kwargs={"organisation_id": organisation.id, "invoice_id": invoice.id})


for _route in ("staff-invoice", "staff-invoice-csv", "staff-invoice-pdf"):
    register(_route, AccessCase(_staff_invoice, "get", 200, outsider_status=403))
register(
    "staff-invoice-payments",
    AccessCase(_staff_payment, "post", 201, outsider_status=403, idempotency_key=True),
)
register("organisation-invoices", AccessCase(_organisation_invoices, "get", 200))
for _route in ("organisation-invoice", "organisation-invoice-csv", "organisation-invoice-pdf"):
    register(_route, AccessCase(_organisation_invoice, "get", 200))
