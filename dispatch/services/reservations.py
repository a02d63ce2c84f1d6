"""Turning rides booked ahead into rides (docs/scheduling.md): when a reservation enters dispatch, when the
driver who claimed it is set off, what happens when they are not there, and the reminders.

A reservation is `scheduled` until its time comes. Its dispatch aims for the driver to reach the pickup at
`arrival_target` (`dispatch_margin_s` before the pickup time asked for, never before the window opens), so
a driver who takes it at once arrives inside the window and the rest of the window absorbs declines,
offer timeouts and traffic. The moment to start is that target less the road ETA:

- **unclaimed**: the road ETA of the driver a dispatch round would offer it to first (the nearby online
  drivers' road ETAs, ranked by the board's fairness rule, as `dispatch_round` ranks them); with nobody
  near, the farthest a round offers from (`max_pickup_eta_s`). Once due it moves `scheduled -> requested`
  (a system move) and normal dispatch takes it, offering it only to drivers who can still make the window
  (`dispatching.in_pickup_window`). A rider still on another trip keeps it scheduled until the next pass.
- **claimed**: the road ETA of the claimed driver from their live position. Online, free, eligible and with
  an active vehicle fit for the ride (wheelchair-accessible for a wheelchair-accessible ride) at that
  moment, the ride moves `scheduled -> assigned` to them in that vehicle. Otherwise they are warned once
  (`claim_warned_at`, `reservation_at_risk`), and `claim_grace_s` later, or as soon as even now plus their
  ETA would miss the window, the claim is dropped and the ride goes to normal dispatch
  (`reservation_redispatched` to rider and driver).

`reservations_dispatch_due` runs every few seconds (beat) over the scheduled trips whose `release_at` (the
earliest moment an unclaimed one can be due, set at booking) has passed, and the claimed ones whose window
opens within two hours, soonest window first, a page at a time until none is left (so those kept back, such
as a busy rider's, never hold back the ones behind them); each trip is decided under its row lock
(`SKIP LOCKED`), so overlapping passes never act on one trip twice. A dropped claim is in the audit log
(`reservation.claim_dropped`), as claims and give-backs are (dispatch/services/claims.py).

`reservation_reminders_send` sends the rider's reminders (a day ahead when booked earlier than that, and
half an hour ahead) and the claimed driver's (an hour ahead), once each: a guarded UPDATE of
`rider_reminded_at` / `driver_reminded_at` in the transaction that writes the notification, which carries a
dedup key too.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from backend.accounts.models import Vehicle
from backend.fares.policy import ReservationRules
from backend.fares.selectors import policy_of
from backend.notifications.services import notify
from backend.redis import REDIS_UNREACHABLE, get_redis
from backend.timestamps import wire_timestamp
from dispatch import live
from dispatch.eta_model import pickup_eta_s
from dispatch.matching.geo import haversine_m
from dispatch.models import DriverPresence, PresenceStatus, Trip
from dispatch.policy import DispatchPolicy, dispatch_policy_in_force
from dispatch.roads.engine import LatLng
from dispatch.selectors import trip_load
from dispatch.services.booking_notices import driver_assigned_notify, reservation_context
from dispatch.services.dispatching import (
    Candidate,
    TripInfo,
    by_road,
    candidates_from_redis,
    rank_candidates,
    trip_requested,
)
from dispatch.services.eligibility import driver_eligibility
from dispatch.services.offers import mirror_assigned
from dispatch.services.transitions import push_trip_updated, trip_transition
from dispatch.state import DRIVER_ACTIVE_STATUSES, OPEN_STATUSES, TripStatus
from governance.audit import audit_append

logger = logging.getLogger(__name__)

# With no driver near the pickup, dispatch starts as if the nearest were this far (the default dispatch
# policy offers a trip to nobody farther).
FALLBACK_PICKUP_ETA_S = 1200
# A claimed ride is looked at from this long before its window opens, whatever its `release_at`: its driver
# may be farther than the drivers an unclaimed ride waits for.
CLAIMED_LOOKAHEAD_S = 7200
# The rider is reminded a day ahead (when they booked more than a day ahead) and half an hour ahead.
RIDER_REMINDER_DAY_S = 86400
RIDER_REMINDER_SOON_S = 1800
# The driver who claimed a ride is reminded an hour ahead.
DRIVER_REMINDER_S = 3600
# Reservations due to enter dispatch within this long, with no driver near, are shown to staff as at risk.
AT_RISK_LOOKAHEAD_S = 1800
# The due pass reads this many trips a page.
DUE_BATCH = 500
AUDIT_CLAIM_DROPPED = "reservation.claim_dropped"

Outcome = str  # released | assigned | warned | redispatched | waiting | rider_busy | skipped


# -- when ---------------------------------------------------------------------------------------------------


def arrival_target(trip: Trip, rules: ReservationRules) -> datetime:
    """When dispatch aims for the driver to reach the pickup: `dispatch_margin_s` before the pickup time,
    but never before the window opens."""
    assert trip.scheduled_for is not None and trip.pickup_window_start is not None
    return max(trip.pickup_window_start, trip.scheduled_for - timedelta(seconds=rules.dispatch_margin_s))


def start_at(trip: Trip, rules: ReservationRules, *, eta_s: int) -> datetime:
    """When a driver `eta_s` from the pickup must set off (or an unclaimed ride enter dispatch)."""
    return arrival_target(trip, rules) - timedelta(seconds=eta_s)


def fallback_eta_s(policy: DispatchPolicy) -> int:
    return policy.max_pickup_eta_s if policy.max_pickup_eta_s is not None else FALLBACK_PICKUP_ETA_S


def first_offer_eta_s(trip: Trip, *, policy: DispatchPolicy) -> int | None:
    """The road ETA of the driver a dispatch round would offer the trip to first, now: the nearby online
    free drivers from Redis's geo set, by road, ranked by the fairness rule; None with nobody near (or
    Redis unreachable)."""
    info = TripInfo(str(trip.id), trip.pickup.y, trip.pickup.x, trip.wheelchair_accessible)
    try:
        found = candidates_from_redis(info, policy=policy)
    except REDIS_UNREACHABLE:
        logger.warning("reservation %s: nearby drivers unknown (Redis unreachable)", trip.id)
        return None
    ranked = rank_candidates(
        by_road(found, pickup=(info.lat, info.lng)), policy=policy, wheelchair_required=info.wav
    )
    return ranked[0].candidate.eta_s if ranked else None


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the driver who claimed a ride can be set off towards it now, and how far they are.

    `why` is None when they can (online, no trip under way, an active vehicle fit for the ride, eligible),
    else `offline`, `busy`, `not_located`, `no_vehicle`, `vehicle_not_accessible` (a wheelchair-accessible
    ride) or `not_eligible`; `eta_s` is their road ETA from their last position (None when it is unknown).
    For a busy driver it is the drive from where they are: a lower bound. `vehicle_id` is the vehicle they
    would take it in."""

    why: str | None
    eta_s: int | None
    vehicle_id: uuid.UUID | None = None

    @property
    def free(self) -> bool:
        return self.why is None


def _last_position(driver_id: uuid.UUID, presence: DriverPresence | None) -> LatLng | None:
    try:
        lat, lng = get_redis().hmget(live.driver_key(driver_id), "lat", "lng")
    except REDIS_UNREACHABLE:
        lat = lng = None
    if lat is not None and lng is not None:
        return (float(lat), float(lng))
    if presence is not None and presence.location is not None:
        return (presence.location.y, presence.location.x)
    return None


def claimed_driver_readiness(trip: Trip, *, at: datetime) -> Readiness:
    """The claimed driver's readiness for `trip` (see Readiness)."""
    driver_id = trip.claimed_by_id
    assert driver_id is not None
    presence = DriverPresence.objects.filter(driver_id=driver_id).first()
    position = _last_position(driver_id, presence)
    eta = None
    if position is not None:
        metres = haversine_m(position[0], position[1], trip.pickup.y, trip.pickup.x)
        alone = Candidate(str(driver_id), metres, pickup_eta_s(metres, at=at), 0, 0.0, position)
        eta = by_road([alone], pickup=(trip.pickup.y, trip.pickup.x), at=at)[0].eta_s
    if presence is None or presence.status != PresenceStatus.ONLINE:
        return Readiness("offline", eta)
    if Trip.objects.filter(driver_id=driver_id, status__in=sorted(DRIVER_ACTIVE_STATUSES)).exists():
        return Readiness("busy", eta)
    if position is None:
        return Readiness("not_located", None)
    vehicle = (
        Vehicle.objects.filter(driver_id=driver_id, is_active=True)
        .only("id", "wheelchair_accessible")
        .first()
    )
    if vehicle is None:
        return Readiness("no_vehicle", eta)
    if trip.wheelchair_accessible and not vehicle.wheelchair_accessible:
        return Readiness("vehicle_not_accessible", eta)
    if driver_eligibility(driver_id=driver_id, at=at, wheelchair_accessible=trip.wheelchair_accessible):
        return Readiness("not_eligible", eta)
    return Readiness(None, eta, vehicle.id)


# -- the pass -----------------------------------------------------------------------------------------------


def reservations_dispatch_due(*, at: datetime | None = None, limit: int = DUE_BATCH) -> dict[str, int]:
    """Decide every scheduled trip whose `release_at` has passed, and every claimed one whose window opens
    within CLAIMED_LOOKAHEAD_S, soonest window first, `limit` a page (see the module docstring); returns
    how many of each outcome."""
    now = at or timezone.now()
    policy = dispatch_policy_in_force(now)
    claimed_soon = Q(
        claimed_by__isnull=False, pickup_window_start__lte=now + timedelta(seconds=CLAIMED_LOOKAHEAD_S)
    )
    due = Trip.objects.filter(status=TripStatus.SCHEDULED).filter(Q(release_at__lte=now) | claimed_soon)
    outcomes: Counter[str] = Counter()
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        page = due
        if after is not None:
            # The cursor is the last one decided: what stays scheduled is behind it, not in the way.
            page = page.filter(
                Q(pickup_window_start__gt=after[0]) | Q(pickup_window_start=after[0], id__gt=after[1])
            )
        rows = list(
            page.order_by("pickup_window_start", "id").values_list("pickup_window_start", "id")[:limit]
        )
        for _, trip_id in rows:
            try:
                outcomes[reservation_dispatch(trip_id=trip_id, policy=policy, at=now)] += 1
            except Exception:  # one trip's failure must not hold back the others; the next pass retries it
                logger.exception("reservation %s: dispatch pass failed", trip_id)
                outcomes["failed"] += 1
        if len(rows) < limit:
            return dict(outcomes)
        after = rows[-1]


def reservation_dispatch(
    *, trip_id: uuid.UUID, policy: DispatchPolicy, at: datetime | None = None
) -> Outcome:
    """Decide one scheduled trip now: release it, set its claimed driver off, warn them, drop the claim, or
    wait. ETAs are computed before the row lock; the decision is taken under it, on the same claim."""
    now = at or timezone.now()
    trip = (
        Trip.objects.filter(id=trip_id, status=TripStatus.SCHEDULED).select_related("policy_version").first()
    )
    if trip is None or trip.scheduled_for is None:
        return "skipped"
    rules = policy_of(trip.policy_version).reservations
    if trip.claimed_by_id is None:
        eta = first_offer_eta_s(trip, policy=policy)
        readiness = None
    else:
        readiness = claimed_driver_readiness(trip, at=now)
        eta = readiness.eta_s
    with transaction.atomic():
        locked = (
            Trip.objects.select_for_update(skip_locked=True)
            .filter(id=trip_id, status=TripStatus.SCHEDULED, claimed_by_id=trip.claimed_by_id)
            .select_related("policy_version")
            .first()
        )
        if locked is None:
            return "skipped"
        if readiness is None:
            return _unclaimed_step(locked, rules, policy=policy, eta_s=eta, now=now)
        return _claimed_step(locked, rules, policy=policy, readiness=readiness, now=now)


def _unclaimed_step(
    trip: Trip, rules: ReservationRules, *, policy: DispatchPolicy, eta_s: int | None, now: datetime
) -> Outcome:
    lead_eta = eta_s if eta_s is not None else fallback_eta_s(policy)
    if now < start_at(trip, rules, eta_s=lead_eta):
        return "waiting"
    return _release(
        trip,
        now=now,
        details={
            "reason": "reservation_due",
            "eta_s": lead_eta,
            "eta_of": "first_candidate" if eta_s is not None else "no_driver_near",
            "arrival_target": wire_timestamp(arrival_target(trip, rules)),
        },
    )


def _rider_busy(trip: Trip) -> bool:
    return (
        Trip.objects.filter(rider_id=trip.rider_id, status__in=sorted(OPEN_STATUSES))
        .exclude(id=trip.id)
        .exists()
    )


def _release(trip: Trip, *, now: datetime, details: dict[str, Any]) -> Outcome:
    """`scheduled -> requested`: normal dispatch takes it, searching until its window closes. A rider on
    another trip (one open trip per rider) keeps it scheduled; the next pass tries again."""
    if _rider_busy(trip):
        logger.warning("reservation %s due but its rider is on another trip; kept scheduled", trip.id)
        return "rider_busy"
    try:
        with transaction.atomic():
            trip_transition(
                trip_id=trip.id,
                to=TripStatus.REQUESTED,
                by_system=True,
                guard={"claimed_by__isnull": True},
                fields={"search_deadline": max(trip.pickup_window_end, now), "next_dispatch_at": now},
                details=details,
            )
    except IntegrityError:  # the rider's other trip was requested meanwhile (one_open_trip_per_rider)
        logger.warning("reservation %s due but its rider is on another trip; kept scheduled", trip.id)
        return "rider_busy"
    trip_id, pickup, wav = trip.id, (trip.pickup.y, trip.pickup.x), trip.wheelchair_accessible
    transaction.on_commit(
        lambda: trip_requested(trip_id=trip_id, pickup=pickup, wheelchair_accessible=wav), robust=True
    )
    return "released"


def _claimed_step(
    trip: Trip, rules: ReservationRules, *, policy: DispatchPolicy, readiness: Readiness, now: datetime
) -> Outcome:
    assert trip.pickup_window_end is not None
    eta = readiness.eta_s
    would_miss = eta is not None and now + timedelta(seconds=eta) > trip.pickup_window_end
    if readiness.free and eta is not None and not would_miss:
        if trip.claim_warned_at is not None or now >= start_at(trip, rules, eta_s=eta):
            return _assign_claimed(trip, eta_s=eta, vehicle_id=readiness.vehicle_id)
        return "waiting"
    if would_miss or now > trip.pickup_window_end:
        return _drop_claim(trip, now=now, why="would_miss_window" if would_miss else "window_passed")
    if trip.claim_warned_at is None:
        if now < start_at(trip, rules, eta_s=eta if eta is not None else fallback_eta_s(policy)):
            return "waiting"
        Trip.objects.filter(id=trip.id).update(claim_warned_at=now)
        notify(
            user_id=trip.claimed_by_id,
            event="reservation_at_risk",
            context={**reservation_context(trip), "grace_min": max(1, round(rules.claim_grace_s / 60))},
            dedup_key=f"reservation_at_risk:{trip.id}:{trip.claimed_by_id}:{_claim_stamp(trip)}",
        )
        logger.info(
            "reservation %s: claimed driver %s warned (%s)", trip.id, trip.claimed_by_id, readiness.why
        )
        return "warned"
    if now >= trip.claim_warned_at + timedelta(seconds=rules.claim_grace_s):
        return _drop_claim(trip, now=now, why=readiness.why or "not_on_the_way")
    return "waiting"


def _claim_stamp(trip: Trip) -> float:
    """When the current claim was made: a message about a claim goes once per claim, not once per trip."""
    return trip.claimed_at.timestamp() if trip.claimed_at else 0.0


def _assign_claimed(trip: Trip, *, eta_s: int, vehicle_id: uuid.UUID | None) -> Outcome:
    """`scheduled -> assigned` to the driver who claimed it (a system move), in the vehicle their readiness
    found fit for it."""
    driver_id = trip.claimed_by_id
    assert driver_id is not None and vehicle_id is not None
    try:
        with transaction.atomic():
            assigned = trip_transition(
                trip_id=trip.id,
                to=TripStatus.ASSIGNED,
                by_system=True,
                guard={"claimed_by_id": driver_id, "driver__isnull": True},
                fields={
                    "driver_id": driver_id,
                    "vehicle_id": vehicle_id,
                    "next_dispatch_at": None,
                },
                details={"reason": "claimed_driver_set_off", "driver_id": str(driver_id), "eta_s": eta_s},
            )
    except IntegrityError as exc:
        # The driver took a trip meanwhile (one active trip per driver), or the rider is on another one.
        logger.warning("reservation %s not assigned to its claimed driver: %s", trip.id, exc)
        return "rider_busy" if _rider_busy(trip) else "waiting"
    driver_assigned_notify(trip=assigned)
    transaction.on_commit(lambda: mirror_assigned(driver_id, assigned))
    return "assigned"


def _drop_claim(trip: Trip, *, now: datetime, why: str) -> Outcome:
    """The claimed driver is not coming: the claim goes, both are told, and the ride enters dispatch."""
    driver_id = trip.claimed_by_id
    claim_clear(trip_id=trip.id, driver_id=driver_id)
    context = reservation_context(trip)
    stamp = _claim_stamp(trip)
    notify(
        user_id=trip.rider_id,
        event="reservation_redispatched",
        context={**context, "detail": "Your ride is being offered to the drivers nearby."},
        dedup_key=f"reservation_redispatched:{trip.id}:{driver_id}:{stamp}:rider",
    )
    notify(
        user_id=driver_id,
        event="reservation_redispatched",
        context={**context, "detail": "Your claim on it has lapsed; you need not go to this pickup."},
        dedup_key=f"reservation_redispatched:{trip.id}:{driver_id}:{stamp}:driver",
    )
    logger.info("reservation %s: claim of driver %s dropped (%s)", trip.id, driver_id, why)
    trip.claimed_by_id = None
    released = _release(trip, now=now, details={"reason": "claim_dropped", "why": why})
    if released != "released":
        push_trip_updated(trip_load(trip.id))
    # Last: the audit head is the last lock an act takes (governance/audit.py).
    audit_append(kind=AUDIT_CLAIM_DROPPED, payload={"trip_id": trip.id, "driver_id": driver_id, "why": why})
    return "redispatched"


def claim_clear(*, trip_id: uuid.UUID, driver_id: uuid.UUID | None) -> bool:
    """Take the claim off a scheduled trip (its driver gave it back, or was not coming); True if it was
    theirs. The caller tells whoever needs telling."""
    return bool(
        Trip.objects.filter(id=trip_id, status=TripStatus.SCHEDULED, claimed_by_id=driver_id).update(
            claimed_by=None, claimed_at=None, claim_warned_at=None, driver_reminded_at=None
        )
    )


# -- reminders ----------------------------------------------------------------------------------------------


def reservation_reminders_send(*, at: datetime | None = None) -> dict[str, int]:
    """Send the reminders that are due (see the module docstring); returns how many of each were sent."""
    now = at or timezone.now()
    sent: Counter[str] = Counter()
    for trip_id in _rider_reminder_candidates(now):
        kind = _rider_reminder(trip_id=trip_id, now=now)
        if kind:
            sent[f"rider_{kind}"] += 1
    claimed = Trip.objects.filter(
        status=TripStatus.SCHEDULED,
        claimed_by__isnull=False,
        driver_reminded_at__isnull=True,
        scheduled_for__gt=now,
        scheduled_for__lte=now + timedelta(seconds=DRIVER_REMINDER_S),
    ).values_list("id", flat=True)
    for trip_id in list(claimed[:DUE_BATCH]):
        if _driver_reminder(trip_id=trip_id, now=now):
            sent["driver"] += 1
    return dict(sent)


def _rider_reminder_candidates(now: datetime) -> list[uuid.UUID]:
    """Reservations whose rider is due a reminder (`_rider_reminder_kind` decides again under the lock)."""
    day = timedelta(seconds=RIDER_REMINDER_DAY_S)
    soon = timedelta(seconds=RIDER_REMINDER_SOON_S)
    day_ahead = Q(rider_reminded_at__isnull=True, requested_at__lt=F("scheduled_for") - day)
    half_hour = Q(scheduled_for__lte=now + soon) & (
        Q(rider_reminded_at__isnull=True) | Q(rider_reminded_at__lt=F("scheduled_for") - soon)
    )
    return list(
        Trip.objects.filter(
            status__in=[TripStatus.SCHEDULED, TripStatus.REQUESTED],
            scheduled_for__gt=now,
            scheduled_for__lte=now + day,
        )
        .filter(day_ahead | half_hour)
        .order_by("scheduled_for")
        .values_list("id", flat=True)[:DUE_BATCH]
    )


def _rider_reminder_kind(trip: Trip, *, now: datetime) -> str | None:
    """`soon` within half an hour of the pickup unless reminded within that stretch already; `day` within a
    day of it, once, when it was booked more than a day ahead; else None."""
    assert trip.scheduled_for is not None
    day = timedelta(seconds=RIDER_REMINDER_DAY_S)
    soon = timedelta(seconds=RIDER_REMINDER_SOON_S)
    if trip.scheduled_for - now <= soon:
        if trip.rider_reminded_at is None or trip.rider_reminded_at < trip.scheduled_for - soon:
            return "soon"
        return None
    if (
        trip.rider_reminded_at is None
        and trip.scheduled_for - now <= day
        and trip.requested_at < (trip.scheduled_for - day)
    ):
        return "day"
    return None


def _rider_reminder(*, trip_id: uuid.UUID, now: datetime) -> str | None:
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update(skip_locked=True)
            .filter(id=trip_id, status__in=[TripStatus.SCHEDULED, TripStatus.REQUESTED])
            .first()
        )
        if trip is None or trip.scheduled_for is None:
            return None
        kind = _rider_reminder_kind(trip, now=now)
        if kind is None:
            return None
        Trip.objects.filter(id=trip.id).update(rider_reminded_at=now)
        notify(
            user_id=trip.rider_id,
            event="reservation_reminder",
            context={**reservation_context(trip), "reminder": kind},
            dedup_key=f"reservation_reminder:{trip.id}:{kind}",
        )
    return kind


def _driver_reminder(*, trip_id: uuid.UUID, now: datetime) -> bool:
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update(skip_locked=True)
            .filter(
                id=trip_id,
                status=TripStatus.SCHEDULED,
                claimed_by__isnull=False,
                driver_reminded_at__isnull=True,
            )
            .first()
        )
        if trip is None:
            return False
        Trip.objects.filter(id=trip.id).update(driver_reminded_at=now)
        notify(
            user_id=trip.claimed_by_id,
            event="reservation_driver_reminder",
            context={**reservation_context(trip), "pickup_area": pickup_area_label(trip)},
            dedup_key=f"reservation_driver_reminder:{trip.id}:{trip.claimed_by_id}",
        )
    return True


def pickup_area_label(trip: Trip) -> str:
    """Where the pickup is, coarsely (about a kilometre): what a list or an SMS may say before the ride."""
    return f"{round(trip.pickup.y, 2):.2f}, {round(trip.pickup.x, 2):.2f}"


# -- staff --------------------------------------------------------------------------------------------------


def reservations_upcoming(*, at: datetime | None = None) -> QuerySet[Trip]:
    """Every reservation not yet under way, soonest window first (staff)."""
    now = at or timezone.now()
    return (
        Trip.objects.filter(status=TripStatus.SCHEDULED, pickup_window_end__gte=now)
        .select_related("rider", "claimed_by", "organisation")
        .order_by("pickup_window_start", "id")
    )


def _drivers_near(trip: Trip, *, policy: DispatchPolicy) -> bool | None:
    """Whether any online free driver is within the search radius of the pickup (None: Redis down)."""
    try:
        found = get_redis().geosearch(
            live.available_key(wav=trip.wheelchair_accessible),
            longitude=trip.pickup.x,
            latitude=trip.pickup.y,
            radius=policy.search_radius_m,
            unit="m",
            count=1,
        )
    except REDIS_UNREACHABLE:
        return None
    return bool(found)


def reservations_at_risk(*, at: datetime | None = None, limit: int = 200) -> list[tuple[Trip, list[str]]]:
    """Reservations that may not be served in their window, soonest first, each with why (staff):

    - `searching`: in dispatch (released) and no driver has taken it yet;
    - `rider_on_another_trip`: due, kept scheduled because its rider is on another trip;
    - `no_driver_near`: unclaimed, due within AT_RISK_LOOKAHEAD_S, and no free driver within the search
      radius of the pickup;
    - `window_open`: still scheduled though its window has opened;
    - `claimed_driver_warned`: its claimed driver was warned they are not on the way."""
    now = at or timezone.now()
    policy = dispatch_policy_in_force(now)
    lookahead = now + timedelta(seconds=AT_RISK_LOOKAHEAD_S)
    candidates = (
        Trip.objects.filter(scheduled_for__isnull=False, pickup_window_end__gte=now)
        .filter(
            Q(status=TripStatus.REQUESTED)
            | Q(status=TripStatus.SCHEDULED)
            & (
                Q(release_at__lte=lookahead)
                | Q(pickup_window_start__lte=now)
                | Q(claim_warned_at__isnull=False)
            )
        )
        .select_related("rider", "claimed_by", "organisation")
        .order_by("pickup_window_start", "id")
    )
    riders_on_a_trip = set(
        Trip.objects.filter(
            rider_id__in=candidates.values("rider_id"), status__in=sorted(OPEN_STATUSES)
        ).values_list("rider_id", flat=True)
    )
    at_risk: list[tuple[Trip, list[str]]] = []
    for trip in candidates[: limit * 2]:
        risks = []
        if trip.status == TripStatus.REQUESTED:
            risks.append("searching")
        else:
            if trip.release_at is not None and trip.release_at <= now and trip.rider_id in riders_on_a_trip:
                risks.append("rider_on_another_trip")
            if trip.claimed_by_id is None and _drivers_near(trip, policy=policy) is False:
                risks.append("no_driver_near")
            if trip.pickup_window_start is not None and trip.pickup_window_start <= now:
                risks.append("window_open")
            if trip.claim_warned_at is not None:
                risks.append("claimed_driver_warned")
        if risks:
            at_risk.append((trip, risks))
        if len(at_risk) >= limit:
            break
    return at_risk
