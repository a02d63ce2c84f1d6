"""Celery tasks of the fares app (the beat schedule in settings names the periodic ones)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from backend import metrics
from backend.fares.ledger import ledger_verify
from backend.fares.payments import capture_attempt, captures_retry_due

logger = logging.getLogger("backend.fares.ledger")


@shared_task(name="backend.fares.tasks.capture_payment", ignore_result=True)
def capture_payment(capture_id: str) -> str | None:
    """One attempt at a payment capture (enqueued after the entry that made the rider owe it commits)."""
    capture = capture_attempt(capture_id=capture_id)
    return capture.status if capture is not None else None


@shared_task(name="backend.fares.tasks.retry_failed_captures", ignore_result=True)
def retry_failed_captures() -> int:
    """Attempt every due capture: failed ones past their backoff, and pending or processing ones whose
    lease ran out (beat runs it every `ROCHDALE_PAYMENT_RETRY_SWEEP_S`, so a dead worker's capture is
    retried within its lease plus that interval)."""
    return captures_retry_due()


@shared_task(name="backend.fares.tasks.verify_ledger", ignore_result=True)
def verify_ledger() -> dict[str, Any]:
    """Verify the journal and the captures against it; any problem is logged as an ERROR naming it."""
    report = ledger_verify()
    if report.ok:
        logger.info("ledger verified: %s", report.summary())
    else:
        for problem in report.problems():
            logger.error("LEDGER PROBLEM: %s", problem)
        logger.error(
            "ledger verification FAILED with %s problem(s): %s", len(report.problems()), report.summary()
        )
    metrics.record_ledger_verification(ok=report.ok, problems=len(report.problems()))
    return {"ok": report.ok, "problems": report.problems(), "summary": report.summary()}
