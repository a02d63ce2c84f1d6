"""Runs at the same time, in real threads with their own database connections and committed transactions:
each driver-week is paid once (the unique payout row, the entry key, the driver's payout lock), each payout
goes into one bank file or one Stripe transfer, and two weeks run at once for one driver pay what was owed
once, not twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry
from dispatch.models import Payout, PayoutStatus
from dispatch.money.payouts import payouts_reconcile, payouts_run
from tests.factories import DriverFactory
from tests.fares.builders import assert_ledger_consistent
from tests.payouts.builders import driver_with_bank, earn, stripe_account
from tests.payouts.test_nacha import parse_nacha

pytestmark = pytest.mark.django_db(transaction=True)


def payable(driver) -> int:
    return sum(
        ledger.balance_minor(kind=kind, owner_id=driver.id, currency="USD")
        for kind in (AccountKind.DRIVER_PAYABLE, AccountKind.TIPS_HELD)
    )


def at_once(*calls) -> None:
    """Start every call together (a barrier), each in its own thread and connection; re-raise any error."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call):
        try:
            barrier.wait(timeout=10)
            call()
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_concurrent_runs_pay_each_driver_week_once_into_one_bank_file_entry(
    seeded_policy, this_week, payout_files
):
    monday, after = this_week
    drivers = [driver_with_bank() for _ in range(4)]
    for driver in drivers:
        earn(seeded_policy, driver, tip_minor=100)
    owed = {driver.id: payable(driver) for driver in drivers}

    at_once(*[lambda: payouts_run(week_start=monday, now=after)] * 3)

    payouts = list(Payout.objects.all())
    assert sorted(payout.driver_id for payout in payouts) == sorted(owed)
    assert all(payout.amount_minor == owed[payout.driver_id] for payout in payouts)
    assert all(payout.status == PayoutStatus.SUBMITTED and payout.attempts == 1 for payout in payouts)
    assert JournalEntry.objects.filter(kind="driver_payout").count() == 4
    assert all(payable(driver) == 0 for driver in drivers)
    in_files = [
        entry["trace_number"]
        for path in sorted(payout_files.glob("*.ach"))
        for entry in parse_nacha(path.read_text())["6"]
    ]
    assert len(in_files) == 4 and len(set(in_files)) == 4  # every payout in exactly one file, once
    assert sorted(in_files) == sorted(payout.provider_reference.split("/")[1] for payout in payouts)
    assert payouts_reconcile(week_start=monday).ok
    assert_ledger_consistent()


def test_concurrent_runs_make_one_stripe_transfer_per_payout(seeded_policy, this_week, fake_stripe):
    monday, after = this_week
    drivers = [DriverFactory() for _ in range(3)]
    for n, driver in enumerate(drivers):
        stripe_account(driver, f"acct_1Concurrent{n}")
        earn(seeded_policy, driver)

    at_once(*[lambda: payouts_run(week_start=monday, now=after)] * 3)

    payouts = list(Payout.objects.all())
    assert len(payouts) == 3 and {payout.status for payout in payouts} == {PayoutStatus.PAID}
    calls = fake_stripe.calls("/v1/transfers")
    assert sorted(call.idempotency_key for call in calls) == sorted(
        payout.idempotency_key for payout in payouts
    )
    assert len(fake_stripe.transfers) == 3
    assert payouts_reconcile(week_start=monday).ok


def test_two_weeks_run_at_once_for_one_driver_pay_what_was_owed_once(seeded_policy, this_week, payout_files):
    monday, after = this_week
    driver = driver_with_bank()
    earn(seeded_policy, driver, trips=2)
    owed = payable(driver)
    following = monday + timedelta(days=7)

    at_once(
        lambda: payouts_run(week_start=monday, now=after + timedelta(days=7)),
        lambda: payouts_run(week_start=following, now=after + timedelta(days=7)),
    )

    [payout] = Payout.objects.all()  # whichever ran first paid it all; the other found nothing left
    assert payout.amount_minor == owed and payable(driver) == 0
    assert payouts_reconcile(week_start=monday).ok and payouts_reconcile(week_start=following).ok
    assert_ledger_consistent()
