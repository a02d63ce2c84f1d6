"""One lock order for money, proved on real PostgreSQL transactions, deterministically.

A capture's recording transaction is held mid-way, after it has written its money and just before it
commits, by a temporary trigger that waits on an advisory lock the test holds. While it is held, a tip (or a
refund) on the same trip runs in another thread; the test waits until that thread is either blocked on a
lock or done, then releases the capture. Under a lock order the two transactions take their turns; with
crossed orders PostgreSQL finds a cycle at the capture's COMMIT (the deferred foreign-key check of the
entry's trip) and aborts one of them with `deadlock detected`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import connection, connections

from backend.fares.ledger import ledger_verify
from backend.fares.models import CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import capture_attempt
from dispatch.models import Tip
from dispatch.money.refunds import refund_post
from dispatch.services.trips import trip_tip
from tests.db_threads import WAIT_S, Outcome, blocked_on_a_lock, poll, run_in_thread
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import adopt_policy, complete_trip, ensure_seed_policy, in_progress_trip

pytestmark = pytest.mark.django_db(transaction=True)

# Any constant unique to this test module: the advisory lock the held capture waits on.
HOLD_LOCK = 0x4C4F434B  # "LOCK"


def _waiting_on_hold(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted AND objid = %s",
            [pid, HOLD_LOCK],
        )
        return cursor.fetchone() is not None


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


@pytest.fixture
def capture_held_before_commit() -> Iterator[None]:
    """While the test holds HOLD_LOCK, a capture that records its success waits just before it commits:
    after every row it writes (the trigger fires on the capture row's last UPDATE, to `succeeded`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            # A constant in the plpgsql body: function bodies take no bind parameters.
            f"""
            CREATE OR REPLACE FUNCTION test_hold_capture() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock_shared({HOLD_LOCK});
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_hold_capture AFTER UPDATE ON fares_paymentcapture
                FOR EACH ROW WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION test_hold_capture();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")
            cursor.execute("DROP TRIGGER IF EXISTS test_hold_capture ON fares_paymentcapture")
            cursor.execute("DROP FUNCTION IF EXISTS test_hold_capture()")


def _completed_trip():
    ensure_seed_policy()
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    return complete_trip(trip, distance_m=6000, duration_s=1200)


def _interleave(capture: PaymentCapture, other: Callable[[], object]) -> tuple[Outcome, Outcome]:
    """Hold `capture`'s recording transaction before commit, run `other` against it, then let both go."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [HOLD_LOCK])
    capture_thread, captured = run_in_thread(lambda: capture_attempt(capture_id=capture.id))
    poll(lambda: _waiting_on_hold(captured.pid) or captured.done.is_set(), "the capture to reach its hold")
    assert not captured.done.is_set(), f"the capture ended before its hold: {captured.error!r}"

    other_thread, answered = run_in_thread(other)
    # The other transaction either waits for a lock the held capture has, or does not need one at all.
    poll(
        lambda: answered.done.is_set() or blocked_on_a_lock(answered.pid),
        "the other transaction to block or finish",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [HOLD_LOCK])
    for thread in (capture_thread, other_thread):
        thread.join(WAIT_S)
        assert not thread.is_alive(), "a transaction never finished"
    connections.close_all()
    return captured, answered


def test_a_tip_while_the_fare_capture_commits_does_not_deadlock(capture_held_before_commit):
    trip = _completed_trip()
    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    deadlocks_before = _deadlocks()

    captured, tipped = _interleave(
        capture,
        lambda: trip_tip(trip_id=trip.id, rider_id=trip.rider_id, amount_minor=250, currency="USD"),
    )

    assert captured.error is None, f"the capture failed: {captured.error!r}"
    assert tipped.error is None, f"the tip failed: {tipped.error!r}"
    assert captured.value.status == CaptureStatus.SUCCEEDED
    assert JournalEntry.objects.filter(key=f"capture:{trip.id}").count() == 1
    tip = Tip.objects.get(trip_id=trip.id)
    assert JournalEntry.objects.filter(key=f"tip:{tip.id}").count() == 1
    assert PaymentCapture.objects.filter(key=f"capture:tip:{tip.id}").exists()
    assert _deadlocks() == deadlocks_before
    assert ledger_verify().ok, ledger_verify().problems()


def test_a_refund_while_the_fare_capture_commits_does_not_deadlock(capture_held_before_commit):
    trip = _completed_trip()
    staff = StaffFactory()
    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    deadlocks_before = _deadlocks()

    captured, refunded = _interleave(
        capture,
        lambda: refund_post(trip_id=trip.id, amount_minor=100, reason="detour", staff_id=staff.id),
    )

    assert captured.error is None, f"the capture failed: {captured.error!r}"
    assert refunded.error is None, f"the refund failed: {refunded.error!r}"
    assert captured.value.status == CaptureStatus.SUCCEEDED
    # The refund came after the capture: it is paid back through the provider, not taken off the capture.
    assert PaymentCapture.objects.get(id=capture.id).amount_minor == trip.fare_minor
    assert PaymentCapture.objects.filter(purpose="refund", trip_id=trip.id, amount_minor=100).exists()
    assert _deadlocks() == deadlocks_before
    assert ledger_verify().ok, ledger_verify().problems()
