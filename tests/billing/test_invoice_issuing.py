"""Issuing invoices in bulk (`invoices_issue_due`, which the hourly beat task runs, and `manage.py
invoices_issue`) and under races: each organisation gets one invoice a month however often or however
concurrently it is asked for, a month that would be a credit is carried forward, and concurrent payments
never pay an invoice twice."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from backend.errors import Unprocessable
from backend.fares.ledger import ledger_verify
from backend.fares.pay import local_month_bounds
from dispatch.models import InvoiceLine, InvoicePayment, InvoiceStatus, OrganisationInvoice
from dispatch.money import invoices
from dispatch.money.refunds import refund_post
from tests.billing.builders import completed, local, organisation_with_people
from tests.db_threads import run_in_thread
from tests.factories import StaffFactory


def _last_month():
    return invoices.previous_month(invoices.month_of(timezone.now()))


@pytest.mark.django_db
def test_the_beat_issues_last_months_invoices_once_and_the_command_agrees():
    month = _last_month()
    clinic, _, coordinator, patient = organisation_with_people()
    idle, *_ = organisation_with_people("Idle Agency")
    trip = completed(
        rider=patient, organisation=clinic, coordinator=coordinator, at=local(month.replace(day=4))
    )

    assert len(invoices.invoices_issue_due().issued) == 1
    invoice = OrganisationInvoice.objects.get()
    assert invoice.organisation_id == clinic.id and invoice.month == month
    assert invoice.number == f"INV-{month:%Y%m}-{clinic.id.hex[:12].upper()}"
    assert not OrganisationInvoice.objects.filter(organisation=idle).exists()
    assert invoices.invoices_issue_due().issued == []
    out = StringIO()
    call_command("invoices_issue", "--month", f"{month:%Y-%m}", stdout=out)
    assert "0 invoices issued" in out.getvalue()

    # Only a refund this month: no invoice of less than nothing; the credit stays open for the next one.
    refund = refund_post(trip_id=trip.id, amount_minor=250, reason="Wrong turn", staff_id=StaffFactory().id)
    this_month = invoices.month_of(timezone.now())
    _, end = local_month_bounds(this_month)
    with pytest.raises(Unprocessable) as credit:
        invoices.invoice_issue(organisation_id=clinic.id, month=this_month, at=end + timedelta(minutes=5))
    assert credit.value.code == "invoice_would_be_credit"
    assert credit.value.details["total"] == {"amount": -250, "currency": "USD"}
    assert not InvoiceLine.objects.filter(entry=refund).exists()
    run = invoices.invoices_issue_for_month(month=this_month, at=end + timedelta(minutes=5))
    assert run.issued == [] and run.skipped == {clinic.id: "invoice_would_be_credit"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_and_payments_make_one_invoice_and_never_pay_it_twice():
    month = _last_month()
    clinic, _, coordinator, patient = organisation_with_people()
    completed(rider=patient, organisation=clinic, coordinator=coordinator, at=local(month.replace(day=7)))
    completed(rider=patient, organisation=clinic, coordinator=coordinator, at=local(month.replace(day=8)))
    staff = StaffFactory()

    def all_at_once(work, n=6):
        barrier = threading.Barrier(n)

        def step():
            barrier.wait(timeout=10)
            return work()

        started = [run_in_thread(step) for _ in range(n)]
        for thread, _ in started:
            thread.join(timeout=30)
        return [outcome for _, outcome in started]

    issued = all_at_once(lambda: invoices.invoice_issue(organisation_id=clinic.id, month=month))
    assert [o.error for o in issued] == [None] * 6
    assert sorted(o.value[1] for o in issued) == [False] * 5 + [True]
    invoice = OrganisationInvoice.objects.get()
    assert {o.value[0].id for o in issued} == {invoice.id} and invoice.lines.count() == 2

    paid = all_at_once(
        lambda: invoices.invoice_payment_record(
            invoice_id=invoice.id,
            amount_minor=invoice.total_minor,
            received_on=timezone.localdate(),
            method="cheque",
            staff_id=staff.id,
        )
    )
    assert sum(o.error is None for o in paid) == 1
    assert {o.error.code for o in paid if o.error is not None} == {"invoice_overpayment"}
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and InvoicePayment.objects.count() == 1
    assert invoices.invoice_reconcile(invoice).ok and ledger_verify().ok
