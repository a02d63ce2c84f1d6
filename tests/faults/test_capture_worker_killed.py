"""The Celery worker killed with -9 in the middle of a fare capture: the capture is retried within a minute,
with the same idempotency key, and the rider is charged once.

Real processes on the test database and this run's Redis database: Celery beat (the retry sweep every
second) and a Celery worker. The test provider holds the capture inside its call, after it has charged and
stored its answer (the worst moment: the money moved, the worker never heard), and the worker's process
group is killed. A new worker then finds the capture `processing` past its lease (provider timeout + 5 s)
and tries again with the same key; the provider answers with the first charge instead of charging again.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from backend.fares.models import CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import LEASE_MARGIN_S, TestModeProvider
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import adopt_policy, complete_trip, ensure_seed_policy, in_progress_trip
from tests.faults.invariants import assert_invariants
from tests.faults.procs import celery_process, celery_worker, kill_group, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROVIDER_TIMEOUT_S = 4.0
TIMINGS = {
    "ROCHDALE_PAYMENT_PROVIDER": "test",
    "ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S": str(PROVIDER_TIMEOUT_S),
    "ROCHDALE_PAYMENT_RETRY_SWEEP_S": "1",
}


def _capture_status(capture_id) -> str:
    return PaymentCapture.objects.values_list("status", flat=True).get(id=capture_id)


def test_a_capture_whose_worker_is_killed_mid_call_is_retried_within_a_minute_and_charged_once():
    ensure_seed_policy()
    rider = RiderFactory()
    trip = in_progress_trip(rider=rider, driver=DriverFactory(), policy_version=adopt_policy())

    with (
        tempfile.TemporaryDirectory(prefix="rochdale-beat-") as directory,
        celery_process(
            "beat", "--loglevel=INFO", f"--schedule={Path(directory) / 'beat-schedule'}", extra_env=TIMINGS
        ) as beat,
    ):
        with celery_worker(extra_env=TIMINGS) as first_worker:
            TestModeProvider.hold_for(rider_id=rider.id)
            done = complete_trip(trip, distance_m=6000, duration_s=1200)  # enqueues the capture on commit
            capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
            wait_until(
                lambda: TestModeProvider.is_holding(reference=capture.id),
                timeout_s=20,
                what=f"the worker's call for capture {capture.id} is held inside the provider",
                interval_s=0.02,
            )
            kill_group(first_worker.process)
            killed_at = time.monotonic()
            assert not first_worker.alive()
        TestModeProvider.release(rider_id=rider.id)
        assert _capture_status(capture.id) == CaptureStatus.PROCESSING  # the dead worker's claim

        with celery_worker(extra_env=TIMINGS) as second_worker:
            try:
                wait_until(
                    lambda: _capture_status(capture.id) == CaptureStatus.SUCCEEDED,
                    timeout_s=60,
                    what=f"capture {capture.id} succeeded after the kill",
                    interval_s=0.1,
                )
            except AssertionError as exc:
                logs = f"--- worker:\n{second_worker.log()[-3000:]}\n--- beat:\n{beat.log()[-2000:]}"
                raise AssertionError(f"{exc}\n{logs}") from None
            retried_after_s = time.monotonic() - killed_at

    captured = PaymentCapture.objects.get(id=capture.id)
    history = TestModeProvider.history(reference=capture.id)
    assert captured.attempts == 2  # the dead worker's claim and the retry
    assert history.calls == 2
    assert history.idempotency_keys == {captured.idempotency_key}
    assert len(history.charges) == 1 and history.charges[0].amount_minor == done.fare_minor
    assert captured.provider_reference == history.charges[0].charge_id
    assert JournalEntry.objects.filter(key=capture.key).count() == 1
    assert retried_after_s < 60
    lease_s = PROVIDER_TIMEOUT_S + LEASE_MARGIN_S
    print(f"capture retried {retried_after_s:.1f} s after the kill (lease {lease_s:g} s)")
    assert_invariants()
