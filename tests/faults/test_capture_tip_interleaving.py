"""Fare and tip captures and tips on the same trips, riders and drivers, all at once: no deadlock, every tip
answered 201, every capture recorded once.

Tips go through the real API (`POST /api/v1/trips/{id}/tip` with an Idempotency-Key) on a real server
(tests/live_server.py); captures run in real threads of this process, each in its own database session,
released together by a barrier. A trigger the test installs makes each capture's recording transaction
sleep 50 ms after its last write, just before COMMIT: the window where, before the one lock order
(backend/fares/ledger.py), a capture held the rider's and the co-op's balance rows and then wanted the
trip at COMMIT while a tip held the trip and wanted those balances (PostgreSQL: `deadlock detected`, the
tip answered 500). The deadlock counter of the test database (pg_stat_database) must not move.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from django.db import connection, connections
from rest_framework_simplejwt.tokens import RefreshToken

from backend.fares.models import CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import capture_attempt
from dispatch.models import Tip
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import adopt_policy, complete_trip, ensure_seed_policy, in_progress_trip
from tests.faults.invariants import assert_invariants
from tests.live_server import LiveServer, live_asgi_server  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DRIVERS = 2
RIDERS = 3
TRIPS = 6  # each driver and each rider has several, so captures and tips share rows across trips
TIPS_PER_TRIP_PER_ROUND = 2
TIP_MINOR = 100
COMMIT_DELAY_S = 0.05


@pytest.fixture
def slow_capture_commits() -> Iterator[None]:
    """Every capture recording its success sleeps COMMIT_DELAY_S after its last write, before COMMIT."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE OR REPLACE FUNCTION test_slow_capture_commit() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_sleep({COMMIT_DELAY_S});
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_slow_capture_commit AFTER UPDATE ON fares_paymentcapture
                FOR EACH ROW WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION test_slow_capture_commit();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS test_slow_capture_commit ON fares_paymentcapture")
            cursor.execute("DROP FUNCTION IF EXISTS test_slow_capture_commit()")


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _all_at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run every job in its own thread, started together; each result, or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except Exception as exc:  # the test asserts on every outcome
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a job never finished"
    return results


def _tip(server: LiveServer, token: str, trip_id: uuid.UUID) -> Callable[[], httpx.Response]:
    def send() -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/v1/trips/{trip_id}/tip",
            json={"amount": {"amount": TIP_MINOR, "currency": "USD"}},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )

    return send


def _capture(capture_id: uuid.UUID) -> Callable[[], object]:
    return lambda: capture_attempt(capture_id=capture_id)


def test_captures_and_tips_on_the_same_trips_at_once_never_deadlock(live_asgi_server, slow_capture_commits):  # noqa: F811
    ensure_seed_policy()
    policy = adopt_policy()
    drivers = [DriverFactory() for _ in range(DRIVERS)]
    riders = [RiderFactory() for _ in range(RIDERS)]
    tokens = {rider.id: str(RefreshToken.for_user(rider).access_token) for rider in riders}
    trips = [
        complete_trip(
            in_progress_trip(rider=riders[n % RIDERS], driver=drivers[n % DRIVERS], policy_version=policy),
            distance_m=6000,
            duration_s=1200,
        )
        for n in range(TRIPS)
    ]
    deadlocks_before = _deadlocks()

    tip_answers: list[object] = []
    capture_outcomes: list[object] = []
    # Round 1: the fare captures and tips; round 2: the captures of round 1's tips and more tips.
    for _ in range(2):
        due = list(PaymentCapture.objects.filter(status=CaptureStatus.PENDING).values_list("id", flat=True))
        tips = [
            _tip(live_asgi_server, tokens[trip.rider_id], trip.id)
            for trip in trips
            for _ in range(TIPS_PER_TRIP_PER_ROUND)
        ]
        outcomes = _all_at_once([_capture(capture_id) for capture_id in due] + tips)
        capture_outcomes += outcomes[: len(due)]
        tip_answers += outcomes[len(due) :]
    connections.close_all()

    failed_tips = [
        answer if isinstance(answer, Exception) else (answer.status_code, answer.text[:300])
        for answer in tip_answers
        if isinstance(answer, Exception) or answer.status_code != 201
    ]
    assert not failed_tips, f"tips that were not 201: {failed_tips}\n{live_asgi_server.log()[-3000:]}"
    failed_captures = [outcome for outcome in capture_outcomes if isinstance(outcome, Exception)]
    assert not failed_captures, f"captures that raised: {failed_captures}"
    assert all(outcome.status == CaptureStatus.SUCCEEDED for outcome in capture_outcomes)
    assert len(capture_outcomes) == TRIPS * (1 + TIPS_PER_TRIP_PER_ROUND)

    tip_count = TRIPS * TIPS_PER_TRIP_PER_ROUND * 2
    assert Tip.objects.count() == tip_count
    assert JournalEntry.objects.filter(kind="tip").count() == tip_count
    assert JournalEntry.objects.filter(kind="payment_capture").count() == len(capture_outcomes)
    # Sessions report their statistics when they end or go idle; give the last ones a moment.
    time.sleep(2)
    assert _deadlocks() == deadlocks_before
    assert_invariants()
