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
from dispatch.money.invoices import invoices_issue_due
from dispatch.money.payouts import payouts_scheduled_run
from dispatch.money.weekly import weekly_top_ups_post
from dispatch.services import dispatching, presence
from dispatch.services.abandoned import abandoned_trips_end
from dispatch.services.locations import flush_pending_fixes
from dispatch.services.recurring import recurring_rides_materialise
from dispatch.services.reservation_holds import reservation_holds_place
from dispatch.services.reservations import reservation_reminders_send, reservations_dispatch_due

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


@shared_task(name="dispatch.tasks.materialise_recurring_rides", ignore_result=True)
def materialise_recurring_rides() -> dict[str, int]:
    """Book the occurrences of recurring rides that came within the horizon, and end the series whose last
    date has passed (dispatch/services/recurring.py). An occurrence the booking refused is logged by the
    service, kept for its occurrences list, and tried again at the next run."""
    report = recurring_rides_materialise()
    if report.booked or report.failed:
        logger.info(
            "recurring rides: %d occurrences booked, %d refused, %d series ended",
            len(report.booked),
            len(report.failed),
            len(report.ended),
        )
    return {"booked": len(report.booked), "failed": len(report.failed), "ended": len(report.ended)}


@shared_task(name="dispatch.tasks.issue_organisation_invoices", ignore_result=True)
def issue_organisation_invoices() -> int:
    """Issue last local month's invoices to the organisations that pay for their trips (docs/billing.md).
    Hourly: one invoice per organisation and month, so the first run after a month ends issues them and
    every later run finds them issued."""
    run = invoices_issue_due()
    for invoice in run.issued:
        money_logger.info(
            "invoice %s issued to organisation %s: %s %s, due %s",
            invoice.number,
            invoice.organisation_id,
            invoice.total_minor,
            invoice.currency,
            invoice.due_on,
        )
    return len(run.issued)


@shared_task(name="dispatch.tasks.dispatch_due_reservations", ignore_result=True)
def dispatch_due_reservations() -> dict[str, int]:
    """Rides booked ahead whose time has come (dispatch/services/reservations.py, docs/scheduling.md):
    unclaimed ones enter dispatch at their road-ETA lead time, claimed ones go to their driver or, when the
    driver is not coming, are warned about and then re-dispatched."""
    outcomes = reservations_dispatch_due()
    acted = {name: count for name, count in outcomes.items() if name not in ("waiting", "skipped")}
    if acted:
        logger.info("reservations: %s", ", ".join(f"{count} {name}" for name, count in sorted(acted.items())))
    return outcomes


@shared_task(name="dispatch.tasks.send_reservation_reminders", ignore_result=True)
def send_reservation_reminders() -> dict[str, int]:
    """Remind riders (a day and half an hour ahead) and claimed drivers (an hour ahead), once each."""
    return reservation_reminders_send()


@shared_task(name="dispatch.tasks.place_reservation_holds", ignore_result=True)
def place_reservation_holds() -> dict[str, int]:
    """Authorise the cards of rides booked ahead whose pickup came within three days
    (dispatch/services/reservation_holds.py); a refused card cancels the reservation and tells the rider."""
    outcomes = reservation_holds_place()
    if outcomes["held"] or outcomes["declined"]:
        logger.info(
            "reservation holds: %d placed, %d refused (cancelled)", outcomes["held"], outcomes["declined"]
        )
    return outcomes
