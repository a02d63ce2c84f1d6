"""The weekly run: each driver's pay and tips at the week's cut-off become one payout, with its ledger entry,
once; the floor top-ups are posted first; nothing is paid to a driver with nothing (or less) payable; a
second run pays nothing twice; the ledger balances after it; the bank file holds each payout once."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest

from backend.errors import InvalidInput, Unprocessable
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry
from dispatch.models import Payout, PayoutMethod, PayoutStatus
from dispatch.money.payouts import payout_statement, payouts_reconcile, payouts_run
from tests.factories import DriverFactory
from tests.fares.builders import adopt_policy, assert_ledger_consistent
from tests.payouts.builders import SHORT, bank_account, driver_with_bank, earn
from tests.payouts.test_nacha import parse_nacha

pytestmark = pytest.mark.django_db


def payable(driver) -> tuple[int, int]:
    return (
        ledger.balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD"),
        ledger.balance_minor(kind=AccountKind.TIPS_HELD, owner_id=driver.id, currency="USD"),
    )


def test_a_run_pays_each_driver_their_pay_and_tips_once(seeded_policy, this_week, payout_files):
    monday, after = this_week
    tipped, plain, unbanked = driver_with_bank(), driver_with_bank(), DriverFactory()
    earn(seeded_policy, tipped, trips=2, tip_minor=300)
    earn(seeded_policy, plain)
    earn(seeded_policy, unbanked)
    before = {driver.id: payable(driver) for driver in (tipped, plain, unbanked)}
    assert before[tipped.id][1] == 300 and before[tipped.id][0] > 0

    report = payouts_run(week_start=monday, now=after)

    outcomes = {plan.driver_id: plan.outcome for plan in report.planned}
    assert outcomes == {tipped.id: "created", plain.id: "created", unbanked.id: "no_destination"}
    payouts = {payout.driver_id: payout for payout in Payout.objects.all()}
    assert set(payouts) == {tipped.id, plain.id}
    for driver in (tipped, plain):
        payout = payouts[driver.id]
        pay, tips = before[driver.id]
        assert (payout.payable_minor, payout.tips_minor, payout.amount_minor) == (pay, tips, pay + tips)
        assert (payout.status, payout.method, payout.week_start) == (PayoutStatus.SUBMITTED, "ach", monday)
        assert payout.destination == "****6789" and payout.attempts == 1
        entry = JournalEntry.objects.get(key=f"payout:{driver.id}:{monday.isoformat()}")
        assert entry.kind == "driver_payout"
        assert entry.metadata == {
            "week_start": monday.isoformat(),
            "payable": pay,
            "tips": tips,
            "method": "ach",
            "payout_id": str(payout.id),
        }
        lines = sorted((p.account.kind, p.debit_minor, p.credit_minor) for p in entry.postings.all())
        expected = [("cash_clearing", 0, pay + tips), ("driver_payable", pay, 0)]
        assert lines == sorted(expected + ([("tips_held", tips, 0)] if tips else []))
        assert payable(driver) == (0, 0)
    assert payable(unbanked) == before[unbanked.id]  # carried forward to the week they can be paid
    assert_ledger_consistent()

    # The bank file: one entry per payout, for its amount, to its account; the CSV shows it masked.
    [nacha_path] = report.files
    nacha = parse_nacha(nacha_path.read_text())
    entries = {entry["individual_id"].strip(): entry for entry in nacha["6"]}
    assert set(entries) == {driver.id.hex[:15].upper() for driver in (tipped, plain)}
    for driver in (tipped, plain):
        entry = entries[driver.id.hex[:15].upper()]
        assert int(entry["amount"]) == payouts[driver.id].amount_minor
        assert entry["account_number"].strip() == "000123456789"
        assert payouts[driver.id].provider_reference.endswith(entry["trace_number"])
    summary = list(csv.reader(nacha_path.with_suffix(".csv").read_text().splitlines()))
    assert {row[6] for row in summary[1:-1]} == {"****6789"}
    assert "000123456789" not in nacha_path.with_suffix(".csv").read_text()
    assert oct(nacha_path.stat().st_mode & 0o777) == "0o600"

    # Again: nothing more is paid, posted or written.
    entries_before = JournalEntry.objects.count()
    file_bytes = nacha_path.read_bytes()
    again = payouts_run(week_start=monday, now=after + timedelta(hours=1))
    assert {plan.driver_id: plan.outcome for plan in again.planned} == {
        tipped.id: "exists",
        plain.id: "exists",
        unbanked.id: "no_destination",
    }
    assert again.results == []
    assert JournalEntry.objects.count() == entries_before and Payout.objects.count() == 2
    assert again.files == [nacha_path] and nacha_path.read_bytes() == file_bytes

    report = payouts_reconcile(week_start=monday)
    assert [(d.kind, d.driver_id) for d in report.discrepancies] == [("unpaid_balance", unbanked.id)]

    # Once the driver has bank details, the next run pays them for the same week.
    bank_account(unbanked)
    late = payouts_run(week_start=monday, now=after + timedelta(hours=2))
    assert {plan.driver_id: plan.outcome for plan in late.planned}[unbanked.id] == "created"
    assert payable(unbanked) == (0, 0)
    assert payouts_reconcile(week_start=monday).ok
    assert_ledger_consistent()


def test_zero_and_negative_payable_get_no_payout(seeded_policy, this_week, payout_files):
    monday, after = this_week
    reversed_driver, owing_driver = driver_with_bank(), driver_with_bank()
    [trip] = earn(seeded_policy, reversed_driver)
    fare = JournalEntry.objects.get(key=f"trip:{trip.id}:fare")
    ledger.reverse_entry(
        entry_id=fare.id, key=f"trip:{trip.id}:fare:correction", memo="fare charged in error"
    )
    ledger.post_entry(
        key=f"test:advance:{owing_driver.id}",
        kind="driver_advance",
        currency="USD",
        lines=[
            debit(AccountKind.DRIVER_PAYABLE, owing_driver.id, 500),
            credit(AccountKind.CASH_CLEARING, None, 500),
        ],
    )
    assert payable(reversed_driver) == (0, 0) and payable(owing_driver) == (-500, 0)

    report = payouts_run(week_start=monday, now=after)

    assert {plan.driver_id: plan.outcome for plan in report.planned} == {
        reversed_driver.id: "nothing_payable",
        owing_driver.id: "nothing_payable",
    }
    assert not Payout.objects.exists()
    assert not JournalEntry.objects.filter(kind="driver_payout").exists()
    assert payable(owing_driver) == (-500, 0)  # carried forward, netted against next week's pay
    assert payouts_reconcile(week_start=monday).ok

    # Next week the driver earns more than they owe: the payout is the difference.
    [next_trip] = earn(seeded_policy, owing_driver)
    pay = JournalEntry.objects.get(key=f"trip:{next_trip.id}:fare").metadata["pay"]
    later = payouts_run(week_start=monday + timedelta(days=7), now=after + timedelta(days=7))
    [plan] = [plan for plan in later.planned if plan.driver_id == owing_driver.id]
    assert (plan.outcome, plan.amount) == ("created", pay - 500)
    assert_ledger_consistent()


def test_the_weeks_floor_top_up_is_posted_before_the_balance_is_read(seeded_policy, this_week, payout_files):
    monday, after = this_week
    weekly = adopt_policy(
        "week", per_distance="1.28", per_minute="0.31", per_trip="9.00", wav_per_distance="1.28"
    )
    driver = driver_with_bank()
    [trip] = earn(weekly, driver, distance_duration=SHORT)
    assert trip.driver_pay_minor == 680  # the share alone; the week's floor is $9.00 for this ride
    assert not JournalEntry.objects.filter(kind="weekly_floor_top_up").exists()

    dry = payouts_run(week_start=monday, now=after, dry_run=True)
    assert dry.top_ups_planned == 220
    assert [(plan.outcome, plan.amount) for plan in dry.planned] == [("would_create", 900)]
    assert (
        not Payout.objects.exists() and not JournalEntry.objects.filter(kind="weekly_floor_top_up").exists()
    )
    assert not payout_files.exists()

    report = payouts_run(week_start=monday, now=after)
    assert report.top_ups_posted == 1
    [payout] = Payout.objects.all()
    assert (payout.amount_minor, payout.payable_minor) == (900, 900)
    statement = payout_statement(payout=payout)
    assert [(line.kind, line.amount) for line in statement.lines] == [("trip", 680), ("weekly_top_up", 220)]
    assert statement.brought_forward == 0 and statement.total == 900
    assert payable(driver) == (0, 0)
    assert payouts_reconcile(week_start=monday).ok
    assert_ledger_consistent()


def test_only_finished_weeks_starting_on_a_monday_are_paid(seeded_policy, this_week, payout_files):
    monday, after = this_week
    with pytest.raises(Unprocessable) as refused:
        payouts_run(week_start=monday, now=after - timedelta(hours=1))  # the cut-off's grace is not over
    assert refused.value.code == "week_not_finished"
    with pytest.raises(InvalidInput) as not_monday:
        payouts_run(week_start=monday + timedelta(days=1), now=after)
    assert not_monday.value.code == "invalid_week"
    with pytest.raises(InvalidInput):
        payouts_run(week_start=monday, now=after, method="cheque")


def test_an_explicit_method_without_its_details_pays_nobody(seeded_policy, this_week, payout_files):
    monday, after = this_week
    driver = driver_with_bank()
    earn(seeded_policy, driver)
    report = payouts_run(week_start=monday, now=after, method=PayoutMethod.STRIPE)
    assert [plan.outcome for plan in report.planned] == ["no_destination"]
    assert not Payout.objects.exists()


def test_the_beat_job_pays_the_last_finished_week_after_the_floor_job(seeded_policy, this_week, payout_files):
    from django.conf import settings

    from dispatch.money.payouts import last_finished_week, payouts_scheduled_run

    schedule = list(settings.CELERY_BEAT_SCHEDULE)
    assert schedule.index("driver-payouts") == schedule.index("weekly-floor") + 1
    assert settings.CELERY_BEAT_SCHEDULE["driver-payouts"]["task"] == "dispatch.tasks.run_driver_payouts"

    monday, after = this_week
    assert last_finished_week(after) == monday
    driver = driver_with_bank()
    earn(seeded_policy, driver)
    from dispatch.tasks import run_driver_payouts

    assert run_driver_payouts() == 0  # by the real clock the last finished week is last week: nothing earned
    report = payouts_scheduled_run(now=after)
    assert report.week_start == monday and [plan.outcome for plan in report.planned] == ["created"]
    assert [plan.outcome for plan in payouts_scheduled_run(now=after + timedelta(hours=1)).planned] == [
        "exists"
    ]
    assert Payout.objects.count() == 1
