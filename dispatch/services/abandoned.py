"""Trips whose driver vanished: a rule ends them, and staff close any open trip with a reason and a decision.

A driver has vanished from their trip when they have no socket (`DriverPresence.connected` is false) and
nothing has been heard of them for `ROCHDALE_ABANDONED_TRIP_AFTER_S`: no fix (the last one in their Redis
live record, or the last one the batched flush wrote to `DriverPresence.fix_at`, which survives Redis
losing its data), no disconnect and no move of the trip. `abandoned_trips_end` (the beat task
`dispatch.tasks.end_abandoned_trips`, every minute) then, under the trip's row lock:

- cancels an `assigned` or `arrived` trip as the system, without a fee; the rider is told by the usual
  `trip.updated` and may request again at once. It is not sent back to `requested`: the contract's machine
  moves forward only (a trip's driver never changes, clients never see a trip un-assign), the trip's
  search budget and quote date from the request minutes ago, and a fresh request is one tap away;
- completes an `in_progress` trip on its measured trail (the usual settlement, so the quote rule and the
  pay floor apply, over the trail's length and the time from the start to its last fix) when the trail
  has at least two usable fixes and ends within `ROCHDALE_ABANDONED_TRIP_DROPOFF_RADIUS_M` of the
  dropoff: the driver got there and never pressed complete;
- otherwise flags it for staff, once (audit entry `trip.abandoned_flagged`; the admin lists these): where
  the rider was left, and what they owe, is a person's call.

`trip_close_by_staff` (`POST /api/v1/staff/trips/{id}/close` and the admin action) ends an open trip with
a recorded reason and a `CloseDecision`. Every ending is a move through `trip_transition` (the one status
machine) and an entry in the governance audit log, in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares.money import money
from backend.redis import get_redis
from dispatch import live
from dispatch.matching.geo import haversine_m
from dispatch.models import DriverPresence, Trip, TripCancelledBy
from dispatch.money.settlement import completion_fields, trip_completion_settle
from dispatch.services.driving import (
    DISTANCE_ESTIMATE,
    MAX_USABLE_ACCURACY_M,
    TrailPoint,
    trail_measure,
    trip_trail,
)
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import CANCEL_REASON_MAX_LENGTH, trip_cancel
from dispatch.state import DRIVER_ACTIVE_STATUSES, FINAL_STATUSES, TripStatus
from governance.audit import audit_append
from governance.models import AuditEntry

logger = logging.getLogger(__name__)

CLOSE_REASON_MAX_LENGTH = CANCEL_REASON_MAX_LENGTH
AUDIT_CANCELLED = "trip.abandoned_cancelled"
AUDIT_COMPLETED = "trip.abandoned_completed"
AUDIT_FLAGGED = "trip.abandoned_flagged"
AUDIT_STAFF_CLOSED = "trip.closed_by_staff"


class CloseDecision(StrEnum):
    """What staff decide the rider pays when they close a trip."""

    CHARGE_TRAIL = "charge_trail"  # complete on the measured trail (a trip that started)
    CHARGE_ESTIMATE = "charge_estimate"  # complete at the route's estimate, i.e. the quote (started)
    NO_CHARGE = "no_charge"  # cancel as the system, no fee and no fare (any open trip)


class AbandonedOutcome(StrEnum):
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FLAGGED = "flagged"


@dataclass(frozen=True, slots=True)
class MeasuredTrail:
    """A trail with at least two usable fixes: its length, and its last usable fix."""

    distance_m: int
    last: TrailPoint
    source: str  # map_matched or geodesic, as a completion records it
    fallback_reason: str | None = None  # why not map_matched, when it is not
    started_at: datetime | None = None  # the start it was measured from

    def duration_s(self, started_at: datetime) -> int:
        return max(int((self.last.recorded_at - started_at).total_seconds()), 0)


def measured_trail(*, trip: Trip, until: datetime) -> MeasuredTrail | None:
    """The trip's trail since it started (PostGIS rows and the fixes Redis still holds), measured as a
    completion measures it; None when it has fewer than two usable fixes."""
    if trip.started_at is None:
        return None
    points = trip_trail(trip_id=trip.id, driver_id=trip.driver_id, since=trip.started_at, until=until)
    measure = trail_measure(points)
    if measure is None:
        return None
    usable = [p for p in points if p.accuracy_m is None or p.accuracy_m <= MAX_USABLE_ACCURACY_M]
    return MeasuredTrail(
        distance_m=measure.distance_m,
        last=usable[-1],
        source=measure.source,
        fallback_reason=measure.fallback_reason,
        started_at=trip.started_at,
    )


def _premeasured(trip_id: uuid.UUID, until: datetime) -> MeasuredTrail | None:
    """The trail of an in-progress trip measured before any row is locked: map matching may take the road
    engine a while, and a lock held meanwhile would stall the driver's own moves and the fare's capture."""
    trip = Trip.objects.filter(id=trip_id, status=TripStatus.IN_PROGRESS).first()
    return None if trip is None else measured_trail(trip=trip, until=until)


def _measured_under_lock(
    trip: Trip, premeasured: MeasuredTrail | None, until: datetime
) -> MeasuredTrail | None:
    """The premeasured trail if it is this trip's since the same start; else measured now (no trail to match
    is cheap)."""
    if premeasured is not None and premeasured.started_at == trip.started_at:
        return premeasured
    return measured_trail(trip=trip, until=until)


def _measure_details(trail: MeasuredTrail) -> dict[str, object]:
    return {"match_fallback_reason": trail.fallback_reason} if trail.fallback_reason else {}


def driver_last_heard(
    *, trip: Trip, presence: DriverPresence | None, live_fix_at: datetime | None
) -> datetime | None:
    """The last sign of life of the trip's driver: a fix (Redis's or the flushed one), a disconnect, or
    a move of this trip. None when there is none at all."""
    signs = [live_fix_at, trip.assigned_at, trip.arrived_at, trip.started_at]
    if presence is not None:
        signs += [presence.fix_at, presence.disconnected_at]
    known = [sign for sign in signs if sign is not None]
    return max(known) if known else None


def _silent_trips(cutoff: datetime) -> QuerySet[Trip]:
    """Active trips whose driver has no socket and, as far as PostgreSQL knows, has been silent since
    before `cutoff` (Redis's newer fixes are checked afterwards)."""
    return (
        Trip.objects.filter(status__in=sorted(DRIVER_ACTIVE_STATUSES), driver__isnull=False)
        .exclude(driver__presence__connected=True)
        .filter(assigned_at__lt=cutoff)
        .filter(Q(arrived_at__isnull=True) | Q(arrived_at__lt=cutoff))
        .filter(Q(started_at__isnull=True) | Q(started_at__lt=cutoff))
        .filter(Q(driver__presence__fix_at__isnull=True) | Q(driver__presence__fix_at__lt=cutoff))
        .filter(
            Q(driver__presence__disconnected_at__isnull=True)
            | Q(driver__presence__disconnected_at__lt=cutoff)
        )
        .order_by("assigned_at")
    )


def _live_fix_times(driver_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """Each driver's last accepted fix time from their Redis live record (absent when Redis lost it)."""
    pipe = get_redis().pipeline(transaction=False)
    for driver_id in driver_ids:
        pipe.hget(live.driver_key(driver_id), "t")
    return {
        driver_id: datetime.fromtimestamp(float(raw), tz=UTC)
        for driver_id, raw in zip(driver_ids, pipe.execute(), strict=True)
        if raw
    }


def abandoned_trips_end(*, now: datetime | None = None) -> dict[str, int]:
    """End the trips whose driver vanished (see the module doc). Returns how many were cancelled,
    completed and newly flagged for staff.

    When Redis cannot be reached nothing is ended: drivers cannot report during an outage, so their
    silence says nothing about them."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ROCHDALE_ABANDONED_TRIP_AFTER_S)
    counts = {outcome.value: 0 for outcome in AbandonedOutcome}
    candidates = list(_silent_trips(cutoff).values_list("id", "driver_id")[:500])
    if not candidates:
        return counts
    try:
        live_fixes = _live_fix_times([driver_id for _trip_id, driver_id in candidates])
        for trip_id, driver_id in candidates:
            live_fix_at = live_fixes.get(driver_id)
            if live_fix_at is not None and live_fix_at >= cutoff:
                continue
            outcome = _end_if_abandoned(trip_id=trip_id, cutoff=cutoff, now=now, live_fix_at=live_fix_at)
            if outcome is not None:
                counts[outcome.value] += 1
    except (RedisConnectionError, RedisTimeoutError):  # Redis down or restarting, not a bug
        logger.warning("abandoned trips: Redis is unreachable; the run stops here and the next one resumes")
    return counts


def _end_if_abandoned(
    *, trip_id: uuid.UUID, cutoff: datetime, now: datetime, live_fix_at: datetime | None
) -> AbandonedOutcome | None:
    premeasured = _premeasured(trip_id, now)
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update()
            .filter(id=trip_id, status__in=sorted(DRIVER_ACTIVE_STATUSES))
            .first()
        )
        if trip is None:
            return None
        # Locked in the order completion uses (trip, then presence): a reconnect waits for this decision.
        presence = DriverPresence.objects.select_for_update().filter(driver_id=trip.driver_id).first()
        if presence is not None and presence.connected:
            return None
        heard = driver_last_heard(trip=trip, presence=presence, live_fix_at=live_fix_at)
        if heard is not None and heard >= cutoff:
            return None
        silence = {"trip_id": trip.id, "driver_id": trip.driver_id, "last_heard_at": heard}
        if trip.status in (TripStatus.ASSIGNED, TripStatus.ARRIVED):
            minutes = settings.ROCHDALE_ABANDONED_TRIP_AFTER_S // 60
            trip_cancel(
                trip_id=trip.id,
                actor_id=None,
                cancelled_by=TripCancelledBy.SYSTEM,
                reason=f"The driver could not be reached for {minutes} min; cancelled without a fee.",
            )
            audit_append(kind=AUDIT_CANCELLED, payload={**silence, "from_status": trip.status})
            logger.info(
                "trip %s cancelled: driver %s vanished (last heard %s)", trip.id, trip.driver_id, heard
            )
            return AbandonedOutcome.CANCELLED
        trail = _measured_under_lock(trip, premeasured, now)
        problem = _trail_problem(trip, trail)
        if problem is None:
            assert trail is not None and trip.started_at is not None
            done = _complete(
                trip=trip,
                actor_id=None,
                distance_m=trail.distance_m,
                distance_source=trail.source,
                duration_s=trail.duration_s(trip.started_at),
                completed_at=trail.last.recorded_at,
                details={"closed_by": "abandoned_trip_rule", "measured": True, **_measure_details(trail)},
            )
            audit_append(
                kind=AUDIT_COMPLETED,
                payload={
                    **silence,
                    "fare": money(done.fare_minor, done.currency),
                    "distance_m": done.measured_distance_m,
                    "duration_s": done.measured_duration_s,
                },
            )
            logger.info("trip %s completed on its trail: driver %s vanished", trip.id, trip.driver_id)
            return AbandonedOutcome.COMPLETED
        if AuditEntry.objects.filter(kind=AUDIT_FLAGGED, payload__trip_id=str(trip.id)).exists():
            return None
        audit_append(kind=AUDIT_FLAGGED, payload={**silence, "why": problem})
        logger.warning(
            "trip %s needs staff: driver %s vanished mid-trip and %s", trip.id, trip.driver_id, problem
        )
        return AbandonedOutcome.FLAGGED


def _trail_problem(trip: Trip, trail: MeasuredTrail | None) -> str | None:
    """Why the rule will not charge this trail (None: it may)."""
    if trail is None:
        return "no_usable_trail"
    away_m = haversine_m(trail.last.lat, trail.last.lng, trip.dropoff.y, trip.dropoff.x)
    if away_m > settings.ROCHDALE_ABANDONED_TRIP_DROPOFF_RADIUS_M:
        return "trail_ends_away_from_dropoff"
    return None


def trips_needing_staff() -> QuerySet[Trip]:
    """In-progress trips the rule flagged (their driver vanished and the trail could not be charged)."""
    flagged = AuditEntry.objects.filter(kind=AUDIT_FLAGGED).values_list("payload__trip_id", flat=True)
    return Trip.objects.filter(status=TripStatus.IN_PROGRESS, id__in=[uuid.UUID(t) for t in flagged])


def _complete(
    *,
    trip: Trip,
    actor_id: uuid.UUID | None,
    distance_m: int,
    distance_source: str,
    duration_s: int,
    completed_at: datetime,
    details: dict[str, object],
) -> Trip:
    """Complete a started trip over the given route with the usual settlement (fare, pay floor, ledger).

    `completed_at` is when the ride ended as far as is known (the trail's last fix), not when the trip was
    closed: earnings and the weekly floor count engaged time up to it, and a vanished driver's silent
    minutes are not engaged time."""
    fields = completion_fields(trip=trip, distance_m=distance_m, duration_s=duration_s)
    done = trip_transition(
        trip_id=trip.id,
        to=TripStatus.COMPLETED,
        actor_id=actor_id,
        guard={"driver_id": trip.driver_id},
        fields={**fields, "completed_at": completed_at, "distance_source": distance_source},
        details={
            **details,
            "distance_m": distance_m,
            "duration_s": duration_s,
            "distance_source": distance_source,
        },
    )
    trip_completion_settle(trip=done)
    DriverPresence.objects.filter(driver_id=trip.driver_id).update(idle_since=timezone.now())
    driver_id, trip_id = trip.driver_id, trip.id
    transaction.on_commit(lambda: live.driver_release(driver_id=driver_id, trip_id=trip_id), robust=True)
    transaction.on_commit(lambda: get_redis().delete(live.trail_key(driver_id)), robust=True)
    return done


def trip_close_by_staff(
    *, trip_id: uuid.UUID, staff_id: uuid.UUID, decision: CloseDecision, reason: str
) -> Trip:
    """Staff end an open trip with a reason and a decision, through the status machine, audited.

    `no_charge` cancels any open trip as the system, without a fee (an in-progress one through the
    system-only move); `charge_trail` completes a started trip on its measured trail, `charge_estimate` at
    the route's estimate (what the rider was quoted), both with the usual settlement.
    Raises InvalidInput `reason_required`, `reason_too_long`; PermissionDenied `staff_only`; NotFound
    `trip_not_found`; Conflict `trip_already_ended`, `close_decision_not_applicable`; Unprocessable
    `trail_unusable` (fewer than two usable fixes since the start).
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            _("Say why the trip is closed."), code="reason_required", details={"field": "reason"}
        )
    if len(reason) > CLOSE_REASON_MAX_LENGTH:
        raise InvalidInput(
            _("The reason is at most %(close_reason_max_length)s characters.")
            % {"close_reason_max_length": CLOSE_REASON_MAX_LENGTH},
            code="reason_too_long",
            details={"field": "reason"},
        )
    decision = CloseDecision(decision)
    if not User.objects.filter(id=staff_id, is_active=True, is_staff=True).exists():
        raise PermissionDenied(_("Only staff may close a trip."), code="staff_only")
    now = timezone.now()
    premeasured = _premeasured(trip_id, now) if decision is CloseDecision.CHARGE_TRAIL else None
    with transaction.atomic():
        trip = Trip.objects.select_for_update().filter(id=trip_id).first()
        if trip is None:
            raise NotFound(_("No such trip."), code="trip_not_found")
        if TripStatus(trip.status) in FINAL_STATUSES:
            raise Conflict(
                _("This trip has already ended (%(status)s).") % {"status": trip.status},
                code="trip_already_ended",
                details={"status": trip.status},
            )
        from_status = trip.status
        if decision is CloseDecision.NO_CHARGE:
            closed = trip_cancel(
                trip_id=trip.id, actor_id=staff_id, cancelled_by=TripCancelledBy.SYSTEM, reason=reason
            )
        else:
            closed = _charge(
                trip=trip,
                staff_id=staff_id,
                decision=decision,
                reason=reason,
                premeasured=premeasured,
                now=now,
            )
        audit_append(
            kind=AUDIT_STAFF_CLOSED,
            payload={
                "trip_id": trip.id,
                "staff_id": staff_id,
                "decision": decision.value,
                "reason": reason,
                "from_status": from_status,
                "to_status": closed.status,
                "fare": money(closed.fare_minor, closed.currency) if closed.fare_minor is not None else None,
            },
        )
    logger.info("trip %s closed by staff %s: %s (%s)", trip_id, staff_id, decision.value, reason)
    return closed


def _charge(
    *,
    trip: Trip,
    staff_id: uuid.UUID,
    decision: CloseDecision,
    reason: str,
    premeasured: MeasuredTrail | None,
    now: datetime,
) -> Trip:
    if trip.status != TripStatus.IN_PROGRESS or trip.started_at is None:
        raise Conflict(
            _("Only a trip that started can be charged; close this one with no_charge."),
            code="close_decision_not_applicable",
            details={"status": trip.status, "decision": decision.value},
        )
    details: dict[str, object] = {"closed_by": "staff", "decision": decision.value, "reason": reason}
    if decision is CloseDecision.CHARGE_TRAIL:
        trail = _measured_under_lock(trip, premeasured, now)
        if trail is None:
            raise Unprocessable(
                _(
                    "The trip's trail has fewer than two usable fixes; charge the estimate or close it with "
                    "no_charge."
                ),
                code="trail_unusable",
            )
        return _complete(
            trip=trip,
            actor_id=staff_id,
            distance_m=trail.distance_m,
            distance_source=trail.source,
            duration_s=trail.duration_s(trip.started_at),
            completed_at=trail.last.recorded_at,
            details={**details, "measured": True, **_measure_details(trail)},
        )
    ended_at = min(trip.started_at + timedelta(seconds=trip.estimated_duration_s), timezone.now())
    return _complete(
        trip=trip,
        actor_id=staff_id,
        distance_m=trip.estimated_distance_m,
        distance_source=DISTANCE_ESTIMATE,
        duration_s=trip.estimated_duration_s,
        completed_at=ended_at,
        details={**details, "measured": False},
    )
