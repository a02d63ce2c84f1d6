"""Celery tasks of governance, both in the beat schedule (backend/settings.py)."""

from __future__ import annotations

from celery import shared_task

from governance import services
from governance.audit_head import audit_head_export
from governance.notices import ballots_open_notify


@shared_task(name="governance.tasks.close_due_proposals", ignore_result=True)
def close_due_proposals() -> int:
    """Decide the proposals whose voting closed (every 5 s, so a passed fare policy is in force within
    seconds of ``closes_at``)."""
    return services.close_due_proposals()


@shared_task(name="governance.tasks.close_due_elections", ignore_result=True)
def close_due_elections() -> int:
    """Count the elections whose voting closed and seat their winners."""
    return services.close_due_elections()


@shared_task(name="governance.tasks.notify_ballots_open", ignore_result=True)
def notify_ballots_open() -> int:
    """Tell each election's voters once that its ballot is open (its nominations closed)."""
    return ballots_open_notify()


@shared_task(name="governance.tasks.export_audit_head", ignore_result=True)
def export_audit_head() -> str | None:
    """Sign the audit chain's head into ROCHDALE_AUDIT_HEAD_DIR for staff to publish (hourly), when it
    moved since the last export there; the path written, or None."""
    path = audit_head_export(only_if_moved=True)
    return str(path) if path else None
