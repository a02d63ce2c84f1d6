"""Must show (issue 16): an organisation's monthly invoice reconciles with the ledger to the cent.

Three local months of one organisation's trips (settings.TIME_ZONE, America/New_York): two trips in the
first, one of them at 23:30 on its last evening (already the next day in UTC); a trip at 00:30 on the
second month's first day and a late cancellation's fee in it; a refund made now of a first-month trip that
was invoiced and paid already, and a trip now. Each month's invoice bills exactly its own entries, its total
is what the ledger posted to the organisation's receivable, payments in parts move its status and a
payment too many is refused, and once every invoice is paid the receivable is zero and the ledger verifies.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from backend.errors import Unprocessable
from backend.fares.ledger import balance_minor, ledger_verify
from backend.fares.models import AccountKind, JournalEntry, PaymentCapture, Posting
from backend.fares.pay import local_month_bounds, month_last_day
from dispatch.models import InvoiceStatus, OrganisationInvoice
from dispatch.money import invoices
from dispatch.money.refunds import refund_post
from tests.billing.builders import cancelled_late, completed, local, organisation_with_people
from tests.factories import RiderFactory, StaffFactory

pytestmark = pytest.mark.django_db


def _receivable(organisation) -> int:
    return balance_minor(
        kind=AccountKind.ORGANISATION_RECEIVABLE, owner_id=None, currency="USD", code=str(organisation.id)
    )


def _posted_to(organisation, entry: JournalEntry) -> int:
    totals = Posting.objects.filter(
        entry=entry, account__kind=AccountKind.ORGANISATION_RECEIVABLE, account__code=str(organisation.id)
    ).aggregate(d=Sum("debit_minor"), c=Sum("credit_minor"))
    return (totals["d"] or 0) - (totals["c"] or 0)


def _entries(trip) -> list[JournalEntry]:
    return list(JournalEntry.objects.filter(trip_id=trip.id, kind__in=["trip_fare", "cancellation_fee"]))


def _pay(invoice, amount: int, staff, on: date):
    return invoices.invoice_payment_record(
        invoice_id=invoice.id, amount_minor=amount, received_on=on, method="ACH", staff_id=staff.id
    )


def test_an_organisations_monthly_invoices_reconcile_with_the_ledger_to_the_cent():
    organisation, _, coordinator, patient = organisation_with_people()
    other, _, other_coordinator, other_patient = organisation_with_people("Bronx Community Clinic")
    staff = StaffFactory()
    now = timezone.now()
    this_month = invoices.month_of(now)
    second = invoices.previous_month(this_month)
    first = invoices.previous_month(second)

    early = completed(
        rider=patient, organisation=organisation, coordinator=coordinator, at=local(first.replace(day=10))
    )
    late_evening = completed(
        rider=patient,
        organisation=organisation,
        coordinator=coordinator,
        at=local(month_last_day(first), 23, 30),
        reference="DIAL-9",
    )
    assert late_evening.completed_at.astimezone(UTC).date() == second  # UTC says the next month
    small_hours = completed(
        rider=patient, organisation=organisation, coordinator=coordinator, at=local(second, 0, 30)
    )
    cancelled = cancelled_late(
        rider=patient, organisation=organisation, coordinator=coordinator, at=local(second.replace(day=15), 9)
    )
    # Neither another organisation's trip nor a rider's own trip is on this organisation's invoice.
    completed(
        rider=other_patient,
        organisation=other,
        coordinator=other_coordinator,
        at=local(first.replace(day=12)),
    )
    completed(rider=RiderFactory(), at=local(first.replace(day=12), 15))

    first_invoice, created = invoices.invoice_issue(organisation_id=organisation.id, month=first)
    assert created
    assert {line.trip_id for line in first_invoice.lines.all()} == {early.id, late_evening.id}
    charged_first = sum(_posted_to(organisation, e) for t in (early, late_evening) for e in _entries(t))
    assert (
        first_invoice.total_minor
        == charged_first
        == early.fare_breakdown["total"] + late_evening.fare_breakdown["total"]
    )
    assert [line.reference for line in first_invoice.lines.order_by("occurred_at")] == ["CC-7", "DIAL-9"]
    assert invoices.invoice_reconcile(first_invoice).ok, invoices.invoice_reconcile(first_invoice).problems()
    # Issuing again answers the same invoice and bills nothing twice.
    again, created = invoices.invoice_issue(organisation_id=organisation.id, month=first)
    assert not created and again.id == first_invoice.id and again.lines.count() == 2

    # Paid in two parts; a payment of more than is left is refused and records nothing.
    _pay(first_invoice, 1000, staff, second.replace(day=20))
    first_invoice.refresh_from_db()
    assert first_invoice.status == InvoiceStatus.PARTLY_PAID
    with pytest.raises(Unprocessable) as refused:
        _pay(first_invoice, first_invoice.total_minor - 1000 + 1, staff, second.replace(day=21))
    assert refused.value.code == "invoice_overpayment"
    assert refused.value.details["outstanding"] == {
        "amount": first_invoice.total_minor - 1000,
        "currency": "USD",
    }
    _pay(first_invoice, first_invoice.total_minor - 1000, staff, second.replace(day=21))
    first_invoice.refresh_from_db()
    assert first_invoice.status == InvoiceStatus.PAID
    assert invoices.invoice_reconcile(first_invoice).ok

    # A refund now of the early trip, already invoiced and paid: a credit to the organisation, no payout.
    refund = refund_post(
        trip_id=early.id, amount_minor=300, reason="Longer route than needed", staff_id=staff.id
    )
    assert _posted_to(organisation, refund) == -300
    now_trip = completed(rider=patient, organisation=organisation, coordinator=coordinator, at=timezone.now())

    second_invoice, _ = invoices.invoice_issue(organisation_id=organisation.id, month=second)
    assert {line.trip_id for line in second_invoice.lines.all()} == {small_hours.id, cancelled.id}
    kinds = sorted(second_invoice.lines.values_list("kind", flat=True))
    assert kinds == ["cancellation_fee", "trip_fare"]
    assert (
        second_invoice.total_minor == small_hours.fare_breakdown["total"] + cancelled.cancellation_fee_minor
    )
    assert invoices.invoice_reconcile(second_invoice).ok

    # This month's invoice, once the month is over: the refund is a negative line, reducing it.
    with pytest.raises(Unprocessable) as too_early:
        invoices.invoice_issue(organisation_id=organisation.id, month=this_month)
    assert too_early.value.code == "invoice_month_not_over"
    _, end = local_month_bounds(this_month)
    third_invoice, _ = invoices.invoice_issue(
        organisation_id=organisation.id, month=this_month, at=end + timedelta(hours=1)
    )
    lines = {line.entry_id: line.amount_minor for line in third_invoice.lines.all()}
    assert lines[refund.id] == -300
    assert third_invoice.total_minor == now_trip.fare_breakdown["total"] - 300
    assert third_invoice.due_on == invoices.month_of(end + timedelta(hours=1)) + timedelta(days=30)

    # Every charge on the receivable is on exactly one invoice, and the invoices add up to the ledger.
    charges = JournalEntry.objects.filter(
        postings__account__kind=AccountKind.ORGANISATION_RECEIVABLE,
        postings__account__code=str(organisation.id),
    ).exclude(kind=invoices.INVOICE_PAYMENT)
    billed = [
        inv.lines.values_list("entry_id", flat=True) for inv in (first_invoice, second_invoice, third_invoice)
    ]
    assert sorted(entry for ids in billed for entry in ids) == sorted(charges.values_list("id", flat=True))
    invoiced = OrganisationInvoice.objects.filter(organisation=organisation).aggregate(t=Sum("total_minor"))[
        "t"
    ]
    paid_so_far = first_invoice.total_minor
    assert _receivable(organisation) == invoiced - paid_so_far

    for invoice in (second_invoice, third_invoice):
        _pay(invoice, invoice.total_minor, staff, timezone.localdate())
        invoice.refresh_from_db()
        assert invoice.status == InvoiceStatus.PAID
        report = invoices.invoice_reconcile(invoice)
        assert report.ok, report.problems()
        assert report.receivable_balance == report.invoiced_outstanding + report.uninvoiced
    assert _receivable(organisation) == 0
    # No card was asked for any of this organisation's money; the ledger balances.
    assert not PaymentCapture.objects.filter(trip__organisation=organisation).exists()
    verification = ledger_verify()
    assert verification.ok, verification.problems()
