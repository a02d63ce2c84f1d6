"""The ledger's guarantees at the database: append-only rows, balanced entries at commit, verification that
finds what is wrong, and completions that post once however they race."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from backend.errors import InvalidTransition
from backend.fares import ledger
from backend.fares.ledger import UnbalancedEntry, credit, debit
from backend.fares.models import AccountKind, CaptureStatus, JournalEntry, PaymentCapture, Posting
from backend.fares.tasks import verify_ledger
from dispatch.money.settlement import trip_completion_settle
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import (
    adopt_policy,
    assert_ledger_consistent,
    complete_trip,
    ensure_seed_policy,
    in_progress_trip,
)


@pytest.fixture
def completed_trip(seeded_policy):
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    return complete_trip(trip, distance_m=8000, duration_s=1500)


def _raw(sql: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.mark.parametrize("table", ["fares_posting", "fares_journalentry", "fares_ledgeraccount"])
def test_raw_update_and_delete_of_ledger_rows_fail(completed_trip, table):
    with pytest.raises(DatabaseError, match="Cannot update or delete"):
        _raw(f"UPDATE {table} SET id = id")
    with pytest.raises(DatabaseError, match="Cannot update or delete"):
        _raw(f"DELETE FROM {table}")
    assert Posting.objects.count() > 0 and JournalEntry.objects.count() > 0


def test_post_entry_refuses_unbalanced_lines(seeded_policy):
    rider = RiderFactory()
    with pytest.raises(UnbalancedEntry):
        ledger.post_entry(
            key="bad",
            kind="test",
            currency="USD",
            lines=[
                debit(AccountKind.RIDER_RECEIVABLE, rider.id, 100),
                credit(AccountKind.COOP_REVENUE, None, 99),
            ],
        )
    assert not JournalEntry.objects.filter(key="bad").exists()


def test_a_key_reused_for_other_money_is_a_conflict(completed_trip):
    from backend.errors import Conflict

    with pytest.raises(Conflict):
        ledger.post_entry(
            key=f"trip:{completed_trip.id}:fare",
            kind="trip_fare",
            currency="USD",
            lines=[
                debit(AccountKind.RIDER_RECEIVABLE, completed_trip.rider_id, 1),
                credit(AccountKind.COOP_REVENUE, None, 1),
            ],
        )


def test_reversal_is_a_new_entry_that_cancels_the_original(completed_trip):
    fare_entry = JournalEntry.objects.get(key=f"trip:{completed_trip.id}:fare")
    reversal, created = ledger.reverse_entry(
        entry_id=fare_entry.id, key=f"{fare_entry.key}:reversal", memo="wrong route"
    )
    assert created and reversal.reverses_id == fare_entry.id
    again, created_again = ledger.reverse_entry(
        entry_id=fare_entry.id, key=f"{fare_entry.key}:reversal", memo="x"
    )
    assert again.id == reversal.id and not created_again
    for kind, owner in [
        (AccountKind.DRIVER_PAYABLE, completed_trip.driver_id),
        (AccountKind.COOP_REVENUE, None),
        (AccountKind.FLOOR_TOP_UPS, None),
    ]:
        assert ledger.balance_minor(kind=kind, owner_id=owner, currency="USD") == 0
    # The fare was captured-pending only, so the rider owes nothing any more.
    assert (
        ledger.balance_minor(
            kind=AccountKind.RIDER_RECEIVABLE, owner_id=completed_trip.rider_id, currency="USD"
        )
        == 0
    )
    assert_ledger_consistent()


# --- Verification ------------------------------------------------------------------------------------------


def test_ledger_verify_passes_on_a_clean_journal(completed_trip, capsys):
    call_command("ledger_verify")
    assert "Ledger OK" in capsys.readouterr().out
    assert verify_ledger()["ok"] is True


def _insert_entry_without_triggers(key: str, lines: list[tuple[int, int, int]]) -> None:
    """Write an entry the way only a superuser bypassing every trigger could (the commit-time balance
    check never fires), so verification has something wrong to find."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        _insert_entry(key, lines)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_ledger_verify_reports_an_unbalanced_entry_loudly(completed_trip, caplog):
    payable = ledger.account_for(
        kind=AccountKind.DRIVER_PAYABLE, owner_id=completed_trip.driver_id, currency="USD"
    )
    _insert_entry_without_triggers("raw:smuggled", [(payable.id, 0, 999_999)])
    with pytest.raises(CommandError, match="problem"):
        call_command("ledger_verify")
    with caplog.at_level(logging.ERROR, logger="backend.fares.ledger"):
        result = verify_ledger()
    assert result["ok"] is False
    assert any("raw:smuggled" in problem and "does not balance" in problem for problem in result["problems"])
    assert any("the journal does not balance in USD" in problem for problem in result["problems"])
    assert any(
        record.levelno == logging.ERROR
        and "LEDGER PROBLEM" in record.message
        and "raw:smuggled" in record.message
        for record in caplog.records
    )


def test_ledger_verify_names_a_capture_the_journal_disagrees_with(completed_trip):
    from backend.fares.payments import capture_attempt

    capture = PaymentCapture.objects.get(key=f"capture:{completed_trip.id}")
    assert capture_attempt(capture_id=capture.id).status == CaptureStatus.SUCCEEDED
    assert ledger.ledger_verify().ok

    # Collected and posted, but the workflow row says otherwise (a retry would collect it again).
    PaymentCapture.objects.filter(id=capture.id).update(status=CaptureStatus.FAILED)
    [problem] = ledger.ledger_verify().problems()
    assert f"capture:{completed_trip.id}" in problem and "is failed but its entry was posted" in problem

    # Succeeded, but for another amount than its entry posted.
    PaymentCapture.objects.filter(id=capture.id).update(
        status=CaptureStatus.SUCCEEDED, amount_minor=capture.amount_minor + 1
    )
    [problem] = ledger.ledger_verify().problems()
    assert f"collected {capture.amount_minor + 1} but its entry posted {capture.amount_minor}" in problem


# --- At commit (real transactions) -------------------------------------------------------------------------


def _insert_entry(key: str, lines: list[tuple[int, int, int]]) -> None:
    entry_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fares_journalentry (id, key, kind, memo, metadata, created_at)"
            " VALUES (%s, %s, 'raw', '', '{}', now())",
            [entry_id, key],
        )
        for account_id, debit_minor, credit_minor in lines:
            cursor.execute(
                "INSERT INTO fares_posting (entry_id, account_id, debit_minor, credit_minor)"
                " VALUES (%s, %s, %s, %s)",
                [entry_id, account_id, debit_minor, credit_minor],
            )


@pytest.mark.django_db(transaction=True)
def test_unbalanced_entry_by_raw_sql_fails_at_commit():
    ensure_seed_policy()
    rider = RiderFactory()
    receivable = ledger.account_for(kind=AccountKind.RIDER_RECEIVABLE, owner_id=rider.id, currency="USD")
    revenue = ledger.account_for(kind=AccountKind.COOP_REVENUE, owner_id=None, currency="USD")
    euros = ledger.account_for(kind=AccountKind.COOP_REVENUE, owner_id=None, currency="EUR")

    statements_ran = []
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        _insert_entry("raw:unbalanced", [(receivable.id, 1000, 0), (revenue.id, 0, 900)])
        statements_ran.append(True)  # each INSERT was accepted: the check waits for commit
    assert statements_ran == [True]
    assert not JournalEntry.objects.filter(key="raw:unbalanced").exists()

    with pytest.raises(DatabaseError, match="no postings"), transaction.atomic():
        _insert_entry("raw:empty", [])
    with pytest.raises(DatabaseError, match="currencies"), transaction.atomic():
        _insert_entry("raw:two-currencies", [(receivable.id, 1000, 0), (euros.id, 0, 1000)])

    with transaction.atomic():
        _insert_entry("raw:balanced", [(receivable.id, 1000, 0), (revenue.id, 0, 1000)])
    assert JournalEntry.objects.filter(key="raw:balanced").exists()


def _run_in_threads(count: int, work) -> tuple[list, list]:
    barrier = threading.Barrier(count)
    results: list = []
    errors: list = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_completions_of_one_trip_post_once():
    ensure_seed_policy()
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())

    results, errors = _run_in_threads(2, lambda: complete_trip(trip, distance_m=6000, duration_s=1200))
    assert len(results) == 1
    assert len(errors) == 1 and isinstance(errors[0], InvalidTransition)
    assert JournalEntry.objects.filter(trip_id=trip.id, kind="trip_fare").count() == 1
    driver_payable = ledger.balance_minor(
        kind=AccountKind.DRIVER_PAYABLE, owner_id=trip.driver_id, currency="USD"
    )
    assert driver_payable == results[0].driver_pay_minor
    assert ledger.ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_postings_of_one_fare_post_once():
    ensure_seed_policy()
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    done = complete_trip(trip, distance_m=6000, duration_s=1200)
    before = Posting.objects.count()

    def post_again():
        with transaction.atomic():
            return trip_completion_settle(trip=done).id

    results, errors = _run_in_threads(4, post_again)
    assert not errors
    assert len(set(results)) == 1
    assert Posting.objects.count() == before
    assert ledger.ledger_verify().ok
