"""Reconciliation of a week's payouts against the ledger, and the two commands: a clean week passes; a
tampered one (a payout row with no entry, an amount changed after the fact, a second payout entry for a
driver, a failed payout never reversed) is named, and the command exits non-zero."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry
from dispatch.models import Payout, PayoutStatus
from dispatch.money.payouts import payout_mark_failed, payouts_reconcile, payouts_run
from tests.payouts.builders import driver_with_bank, earn

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_week(seeded_policy, this_week, payout_files):
    monday, after = this_week
    drivers = [driver_with_bank(), driver_with_bank()]
    for driver in drivers:
        earn(seeded_policy, driver, tip_minor=200)
    payouts_run(week_start=monday, now=after)
    return monday, drivers


def kinds(report) -> list[str]:
    return sorted(discrepancy.kind for discrepancy in report.discrepancies)


def test_a_clean_week_reconciles(paid_week):
    monday, _ = paid_week
    report = payouts_reconcile(week_start=monday)
    assert report.ok, [d.describe() for d in report.discrepancies]
    assert (report.payouts, report.entries) == (2, 2)
    assert report.paid_minor == sum(Payout.objects.values_list("amount_minor", flat=True))
    out = StringIO()
    call_command("payouts_reconcile", "--week", monday.isoformat(), stdout=out)
    assert "Payouts OK" in out.getvalue()


def test_a_payout_row_without_its_entry_is_caught(paid_week):
    monday, _ = paid_week
    ghost_driver = driver_with_bank()
    ghost = Payout.objects.create(  # written around the service: no ledger entry behind it
        driver=ghost_driver,
        week_start=monday,
        cut_off=Payout.objects.first().cut_off,
        method="ach",
        amount_minor=5000,
        payable_minor=5000,
        tips_minor=0,
        currency="USD",
        idempotency_key=f"rochdale:payout:{uuid.uuid4()}:5000USD",
    )
    report = payouts_reconcile(week_start=monday)
    assert kinds(report) == ["missing_entry"]
    [found] = report.discrepancies
    assert (found.payout_id, found.driver_id, found.key) == (ghost.id, ghost_driver.id, ghost.ledger_key)
    err = StringIO()
    with pytest.raises(CommandError, match="1 discrepancy"):
        call_command("payouts_reconcile", "--week", monday.isoformat(), stderr=err)
    assert f"PAYOUT DISCREPANCY: missing_entry: payout {ghost.id} has no ledger entry" in err.getvalue()


def test_an_amount_changed_after_the_fact_is_caught(paid_week):
    monday, drivers = paid_week
    payout = Payout.objects.get(driver=drivers[0])
    Payout.objects.filter(id=payout.id).update(
        amount_minor=payout.amount_minor + 100, tips_minor=payout.tips_minor + 100
    )
    report = payouts_reconcile(week_start=monday)
    assert kinds(report) == ["amount_mismatch", "overpaid"]
    assert all(d.payout_id == payout.id for d in report.discrepancies)


def test_a_driver_paid_twice_is_caught(paid_week):
    monday, drivers = paid_week
    driver = drivers[1]
    # A second payout entry for the same driver-week, under another key (a bad script, a manual fix).
    ledger.post_entry(
        key=f"payout:{driver.id}:{monday.isoformat()}:again",
        kind="driver_payout",
        currency="USD",
        lines=[
            debit(AccountKind.DRIVER_PAYABLE, driver.id, 700),
            credit(AccountKind.CASH_CLEARING, None, 700),
        ],
        metadata={
            "week_start": monday.isoformat(),
            "payable": 700,
            "tips": 0,
            "method": "ach",
            "payout_id": "",
        },
    )
    report = payouts_reconcile(week_start=monday)
    assert kinds(report) == ["entry_without_payout", "paid_twice"]
    assert {d.driver_id for d in report.discrepancies} == {driver.id}


def test_a_failed_payout_must_be_reversed_and_only_then(paid_week):
    monday, drivers = paid_week
    payout = Payout.objects.get(driver=drivers[0])
    payout_mark_failed(payout_id=payout.id, reason="R03 no account")
    assert payouts_reconcile(week_start=monday).ok  # failed and reversed: its amount is owed again
    assert JournalEntry.objects.filter(key=f"{payout.ledger_key}:returned").exists()

    other = Payout.objects.get(driver=drivers[1])
    Payout.objects.filter(id=other.id).update(status=PayoutStatus.FAILED)  # failed without its reversal
    assert kinds(payouts_reconcile(week_start=monday)) == ["failed_not_returned"]


def test_the_run_command(seeded_policy, this_week, payout_files, monkeypatch):
    monday, after = this_week
    driver = driver_with_bank()
    earn(seeded_policy, driver)
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: after)
    out = StringIO()
    call_command("payouts_run", "--week", monday.isoformat(), "--dry-run", stdout=out)
    assert "would_create" in out.getvalue() and "would pay 1 new payouts" in out.getvalue()
    assert not Payout.objects.exists()

    out = StringIO()
    call_command("payouts_run", "--week", monday.isoformat(), "--method", "ach", stdout=out)
    payout = Payout.objects.get()
    assert f"payout {payout.id}" in out.getvalue() and "bank file:" in out.getvalue()
    with pytest.raises(CommandError, match="invalid_week"):
        call_command("payouts_run", "--week", (monday + timedelta(days=2)).isoformat())
    with pytest.raises(CommandError, match="week_not_finished"):
        call_command("payouts_run", "--week", (monday + timedelta(days=7)).isoformat())
