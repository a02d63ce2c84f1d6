"""Dispatch's periodic tasks, the trip's money among them (Celery beat; the schedule is in
settings.CELERY_BEAT_SCHEDULE).

None of these runs per location fix: fixes are batched by `flush_locations` (docs/dispatch.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from dispatch.models import FareEstimate, LocationFix, Trip
from dispatch.money.payouts import payouts_scheduled_run
from dispatch.money.weekly import weekly_top_ups_post
from dispatch.services import dispatching, presence
from dispatch.services.abandoned import abandoned_trips_end
from dispatch.services.locations import flush_pending_fixes

logger = logging.getLogger(__name__)
# Money events go to the ledger's log, where operators read every movement of money (docs/fares.md).
money_logger = logging.getLogger("backend.fares.ledger")


@shared_task(name="dispatch.tasks.flush_locations", ignore_result=True)
def flush_locations() -> int:
    """Persist the fixes received since the last flush (bulk INSERT + one bulk UPDATE of presence)."""
    return flush_pending_fixes(wait_s=0.5)


@shared_task(name="dispatch.tasks.sweep_presence", ignore_result=True)
def sweep_presence() -> int:
    """Close the sockets of dead servers (lease run out) into the disconnect grace; take offline the drivers
    whose grace ran out; free drivers of ended trips."""
    return presence.sweep_presence()


@shared_task(name="dispatch.tasks.end_abandoned_trips", ignore_result=True)
def end_abandoned_trips() -> dict[str, int]:
    """End trips whose driver has had no socket and no fix for ROCHDALE_ABANDONED_TRIP_AFTER_S: cancel
    assigned/arrived ones without a fee, complete in-progress ones on their trail or flag them for staff."""
    return abandoned_trips_end()


@shared_task(name="dispatch.tasks.sweep_dispatch", ignore_result=True)
def sweep_dispatch() -> dict[str, int]:
    """Expire overdue offers, and run due dispatch rounds when the dispatch worker is down."""
    return dispatching.sweep_dispatch()


@shared_task(name="dispatch.tasks.apply_location_retention", ignore_result=True)
def apply_location_retention() -> dict[str, int]:
    """Delete off-trip fixes after ROCHDALE_OFF_TRIP_FIX_RETENTION_H; reduce trip traces older than
    ROCHDALE_TRIP_TRACE_RETENTION_D to their first and last fix (what the fare was measured between)."""
    return location_retention()


def location_retention() -> dict[str, int]:
    now = timezone.now()
    off_trip_cutoff = now - timedelta(hours=settings.ROCHDALE_OFF_TRIP_FIX_RETENTION_H)
    trace_cutoff = now - timedelta(days=settings.ROCHDALE_TRIP_TRACE_RETENTION_D)
    with transaction.atomic():
        off_trip, _ = LocationFix.objects.filter(trip__isnull=True, received_at__lt=off_trip_cutoff).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                DELETE FROM dispatch_locationfix AS f
                USING dispatch_trip AS t
                WHERE f.trip_id = t.id AND t.ended_at IS NOT NULL AND t.ended_at < %s
                  AND f.id <> (SELECT g.id FROM dispatch_locationfix g WHERE g.trip_id = f.trip_id
                               ORDER BY g.recorded_at ASC, g.id ASC LIMIT 1)
                  AND f.id <> (SELECT g.id FROM dispatch_locationfix g WHERE g.trip_id = f.trip_id
                               ORDER BY g.recorded_at DESC, g.id DESC LIMIT 1)
                """,
                [trace_cutoff],
            )
            reduced = cursor.rowcount
    logger.info("location retention: %d off-trip fixes deleted, %d trace fixes reduced", off_trip, reduced)
    return {"off_trip_deleted": off_trip, "trace_fixes_deleted": reduced}


@shared_task(name="dispatch.tasks.purge_expired_estimates", ignore_result=True)
def purge_expired_estimates() -> int:
    """Delete fare estimates that expired over a day ago and that no trip points to."""
    cutoff = timezone.now() - timedelta(days=1)
    used = Trip.objects.filter(estimate__isnull=False).values("estimate_id")
    deleted, _ = FareEstimate.objects.filter(expires_at__lt=cutoff).exclude(id__in=used).delete()
    return deleted


@shared_task(name="dispatch.tasks.post_weekly_top_ups", ignore_result=True)
def post_weekly_top_ups() -> int:
    """Top up every finished driver-week under a weekly floor, once (idempotent by key)."""
    posted = weekly_top_ups_post()
    for week in posted:
        money_logger.info(
            "weekly floor top-up %s: %s %s (floor %s, received %s, %s trips)",
            week.key,
            week.top_up,
            week.currency,
            week.floor,
            week.received,
            week.trip_count,
        )
    return len(posted)


@shared_task(name="dispatch.tasks.run_driver_payouts", ignore_result=True)
def run_driver_payouts() -> int:
    """Pay the last finished week (its floor top-ups first), once per driver-week, and retry payouts whose
    outcome was unknown with their same idempotency keys (dispatch/money/payouts.py)."""
    report = payouts_scheduled_run()
    if report is None:
        return 0
    created = [plan for plan in report.planned if plan.outcome == "created"]
    for plan in created:
        money_logger.info(
            "payout week of %s: driver %s %s %s by %s (payout %s)",
            report.week_start,
            plan.driver_id,
            plan.amount,
            plan.currency,
            plan.method,
            plan.payout_id,
        )
    for plan in report.planned:
        if plan.outcome in ("no_destination", "several_currencies"):
            money_logger.warning(
                "payout week of %s: driver %s not paid (%s), %s payable",
                report.week_start,
                plan.driver_id,
                plan.outcome,
                plan.amount,
            )
    return len(created)
