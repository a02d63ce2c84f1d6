"""Drivers claiming rides booked ahead from a list (docs/scheduling.md): what a driver may see, claim and
give back.

A driver sees the unclaimed reservations whose window opens within the board's `claim_horizon_s`, whose
pickup lies in the service area they are in (their last known position; every active area when they have
none), wheelchair-accessible ones only with a wheelchair-accessible active vehicle, and their own claims.
They must be approved and eligible (documents and hours, dispatch/services/eligibility.py).

The database decides a race: a claim is one guarded UPDATE (`WHERE claimed_by IS NULL AND
status = 'scheduled'`), so of any number of drivers claiming one ride exactly one wins and the others get
409 `reservation_already_claimed`. One driver's claims are serialised on their driver profile row, so
`max_claims_per_driver` and "no two claims whose windows (plus the ride) overlap" hold under concurrent
claims too. The rider is told who claimed their ride (`reservation_claimed`, with the driver's first name,
and `trip.updated`).

A driver may give a claim back until `claim_release_until_s` before its pickup time (409
`claim_release_too_late` after), at most MAX_RELEASES_PER_DAY times in any 24 hours (409
`claim_release_limit_reached`). What happens when its time comes is dispatch/services/reservations.py's.

Riders' addresses (a home, a clinic) are not the list's to give away: until a claim can no longer be given
back, the list and the claim show the pickup and dropoff only as their 0.01° cell (about a kilometre) and the
distance from the driver to the pickup's cell centre to the kilometre, so no position a driver reports
tells them more than the cell. The exact places show once the claim is binding, and on the trip once it is
set off to them. Every claim and give-back is in the audit log (`reservation.claimed`,
`reservation.claim_released`), which the give-back limit counts.

Which rules: what a driver may do now (the horizon, how many claims) is the policy in force; what concerns
the ride (until when a claim may be given back) is the ride's own policy version, as its fare is.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import DriverProfile, User, Vehicle
from backend.errors import Conflict, NotFound, PermissionDenied
from backend.fares.money import money
from backend.fares.pricing import driver_pay
from backend.fares.selectors import policy_in_force, policy_of
from backend.notifications.services import notify
from backend.timestamps import wire_timestamp
from dispatch.matching.geo import haversine_m
from dispatch.models import DriverPresence, ServiceArea, Trip
from dispatch.selectors import trip_load
from dispatch.services.booking_notices import reservation_context
from dispatch.services.eligibility import driver_eligibility, eligibility_refusal
from dispatch.services.reservations import claim_clear
from dispatch.services.transitions import push_trip_updated
from dispatch.state import TripStatus
from governance.audit import audit_append
from governance.selectors import audit_entries

logger = logging.getLogger(__name__)

# A place shown before the ride is the driver's is rounded to this many decimals (about a kilometre).
AREA_DECIMALS = 2
# The distance from the driver to a pickup's cell centre is shown to the nearest this many metres.
DISTANCE_STEP_M = 1000
# A driver may give back at most this many claims in any RELEASE_PERIOD_S (each one texts the rider).
MAX_RELEASES_PER_DAY = 3
RELEASE_PERIOD_S = 86400
AUDIT_CLAIMED = "reservation.claimed"
AUDIT_RELEASED = "reservation.claim_released"


def _not_found() -> NotFound:
    return NotFound(_("No such reservation."), code="reservation_not_found")


def _approved_profile(driver_id: uuid.UUID, *, lock: bool = False) -> DriverProfile:
    rows = DriverProfile.objects.filter(user_id=driver_id, user__is_driver=True, user__is_active=True)
    profile = (rows.select_for_update() if lock else rows).first()
    if profile is None:
        raise _not_found()
    if not profile.is_approved:
        raise PermissionDenied(
            _("Your driver account is not approved yet, so you cannot claim rides."),
            code="driver_not_approved",
        )
    return profile


def _driver_position(driver_id: uuid.UUID) -> Point | None:
    presence = DriverPresence.objects.filter(driver_id=driver_id).only("location").first()
    return presence.location if presence is not None else None


def _claimable(driver_id: uuid.UUID, *, now: datetime, position: Point | None) -> QuerySet[Trip]:
    """Reservations this driver may claim or holds, claimed or not (the caller tells claimed apart)."""
    rules = policy_in_force(now).reservations
    wav = Vehicle.objects.filter(driver_id=driver_id, is_active=True, wheelchair_accessible=True).exists()
    found = Trip.objects.filter(
        status=TripStatus.SCHEDULED,
        pickup_window_end__gt=now,
        pickup_window_start__lte=now + timedelta(seconds=rules.claim_horizon_s),
    ).exclude(rider_id=driver_id)
    if not wav:
        found = found.filter(wheelchair_accessible=False)
    if position is not None:
        # The pickup lies in an active service area the driver is in.
        found = found.filter(
            Exists(
                ServiceArea.objects.filter(is_active=True, area__intersects=position).filter(
                    area__intersects=OuterRef("pickup")
                )
            )
        )
    return found


def driver_reservations(*, driver_id: uuid.UUID, at: datetime | None = None) -> QuerySet[Trip]:
    """What the driver's list shows: the reservations they may claim and their own claims, soonest first.

    Raises NotFound for a caller who is not a driver, PermissionDenied `driver_not_approved`, and the first
    eligibility problem's code (`document_missing`, ...) for a driver who may not work."""
    now = at or timezone.now()
    _approved_profile(driver_id)
    problems = driver_eligibility(driver_id=driver_id, at=now)
    if problems:
        raise eligibility_refusal(problems)
    mine = Q(claimed_by_id=driver_id)
    claimable = _claimable(driver_id, now=now, position=_driver_position(driver_id)).filter(
        claimed_by__isnull=True
    )
    return (
        Trip.objects.filter(Q(id__in=claimable.values("id")) | (mine & Q(status=TripStatus.SCHEDULED)))
        .select_related("policy_version")
        .order_by("pickup_window_start", "id")
    )


def reservation_claim(*, driver_id: uuid.UUID, trip_id: uuid.UUID, at: datetime | None = None) -> Trip:
    """Claim a reservation for the driver; claiming one's own claim again answers it unchanged.

    Raises NotFound `reservation_not_found` (not a driver, or not a reservation this driver may see),
    PermissionDenied `driver_not_approved` and the eligibility codes, Conflict
    `reservation_already_claimed` (another driver has it: whoever loses a race gets this),
    `claim_limit_reached`, `claims_overlap`."""
    now = at or timezone.now()
    with transaction.atomic():
        # Serialises this driver's claims, so the limit and the overlap rule see every claim they made.
        _approved_profile(driver_id, lock=True)
        trip = (
            _claimable(driver_id, now=now, position=_driver_position(driver_id))
            .filter(id=trip_id)
            .select_related("policy_version")
            .first()
        )
        if trip is None:
            raise _not_found()
        if trip.claimed_by_id == driver_id:
            return trip
        if trip.claimed_by_id is not None:
            raise _already_claimed()
        problems = driver_eligibility(
            driver_id=driver_id, at=now, wheelchair_accessible=trip.wheelchair_accessible
        )
        if problems:
            raise eligibility_refusal(problems)
        _refuse_beyond_limits(driver_id, trip=trip, now=now)
        claimed = Trip.objects.filter(
            id=trip.id, status=TripStatus.SCHEDULED, claimed_by__isnull=True
        ).update(claimed_by_id=driver_id, claimed_at=now, claim_warned_at=None, driver_reminded_at=None)
        if not claimed:
            raise _already_claimed()
        trip = trip_load(trip.id)
        driver_name = User.objects.filter(id=driver_id).values_list("name", flat=True).first() or ""
        notify(
            user_id=trip.rider_id,
            event="reservation_claimed",
            context={**reservation_context(trip), "driver_name": (driver_name.split() or [""])[0]},
            dedup_key=f"reservation_claimed:{trip.id}:{driver_id}:{now.timestamp()}",
        )
        push_trip_updated(trip)
        # Last: the audit head is the last lock an act takes (governance/audit.py).
        audit_append(kind=AUDIT_CLAIMED, payload={"trip_id": trip.id, "driver_id": driver_id})
    logger.info("reservation %s claimed by driver %s", trip.id, driver_id)
    return trip


def _already_claimed() -> Conflict:
    return Conflict(_("Another driver has claimed this ride."), code="reservation_already_claimed")


def _busy_until(trip: Trip) -> datetime:
    assert trip.pickup_window_end is not None
    return trip.pickup_window_end + timedelta(seconds=trip.estimated_duration_s)


def _refuse_beyond_limits(driver_id: uuid.UUID, *, trip: Trip, now: datetime) -> None:
    rules = policy_in_force(now).reservations
    held = list(
        Trip.objects.filter(claimed_by_id=driver_id, status=TripStatus.SCHEDULED).only(
            "id", "pickup_window_start", "pickup_window_end", "estimated_duration_s", "scheduled_for"
        )
    )
    if len(held) >= rules.max_claims_per_driver:
        raise Conflict(
            _("You may hold at most %(max_claims_per_driver)s claims at once.")
            % {"max_claims_per_driver": rules.max_claims_per_driver},
            code="claim_limit_reached",
            details={"max_claims_per_driver": rules.max_claims_per_driver},
        )
    assert trip.pickup_window_start is not None
    for other in held:
        assert other.pickup_window_start is not None
        if other.pickup_window_start < _busy_until(trip) and trip.pickup_window_start < _busy_until(other):
            raise Conflict(
                _("You have claimed another ride at that time."),
                code="claims_overlap",
                details={"trip_id": str(other.id), "scheduled_for": wire_timestamp(other.scheduled_for)},
            )


def release_until(trip: Trip) -> datetime:
    """Until when the driver who claimed `trip` may give it back (the ride's own policy)."""
    assert trip.scheduled_for is not None
    rules = policy_of(trip.policy_version).reservations
    return trip.scheduled_for - timedelta(seconds=rules.claim_release_until_s)


def reservation_release(*, driver_id: uuid.UUID, trip_id: uuid.UUID, at: datetime | None = None) -> Trip:
    """Give a claimed reservation back; the rider is told another driver will be found.

    Raises NotFound `reservation_not_found` (not this driver's claim, or no such reservation), Conflict
    `claim_release_too_late` (less than `claim_release_until_s` before the pickup time) and
    `claim_release_limit_reached` (MAX_RELEASES_PER_DAY in the last RELEASE_PERIOD_S)."""
    now = at or timezone.now()
    with transaction.atomic():
        # Serialises this driver's claims and give-backs (the lock order of reservation_claim), so the
        # limit counts every give-back they made.
        if not DriverProfile.objects.select_for_update().filter(user_id=driver_id).exists():
            raise _not_found()
        trip = (
            Trip.objects.select_for_update()
            .filter(id=trip_id, claimed_by_id=driver_id, status=TripStatus.SCHEDULED)
            .select_related("policy_version")
            .first()
        )
        if trip is None:
            raise _not_found()
        until = release_until(trip)
        if now > until:
            raise Conflict(
                _("This ride starts too soon to be given back; if you cannot make it, tell the co-op."),
                code="claim_release_too_late",
                details={"release_until": wire_timestamp(until)},
            )
        _refuse_beyond_release_limit(driver_id, now=now)
        claim_stamp = trip.claimed_at.timestamp() if trip.claimed_at else 0
        claim_clear(trip_id=trip.id, driver_id=driver_id)
        trip = trip_load(trip.id)
        notify(
            user_id=trip.rider_id,
            event="reservation_redispatched",
            context={
                **reservation_context(trip),
                "detail": "The driver who was to take it cannot; another driver will.",
            },
            dedup_key=f"reservation_released:{trip.id}:{driver_id}:{claim_stamp}",
        )
        push_trip_updated(trip)
        audit_append(kind=AUDIT_RELEASED, payload={"trip_id": trip.id, "driver_id": driver_id})
    logger.info("reservation %s given back by driver %s", trip.id, driver_id)
    return trip


def _refuse_beyond_release_limit(driver_id: uuid.UUID, *, now: datetime) -> None:
    period = timedelta(seconds=RELEASE_PERIOD_S)
    released = list(
        audit_entries()
        .filter(kind=AUDIT_RELEASED, payload__driver_id=str(driver_id), at__gt=now - period)
        .order_by("-at")
        .values_list("at", flat=True)[:MAX_RELEASES_PER_DAY]
    )
    if len(released) >= MAX_RELEASES_PER_DAY:
        raise Conflict(
            _(
                "You may give back at most %(max_releases_per_day)s claims a day; if you cannot make "
                "this ride, tell the co-op."
            )
            % {"max_releases_per_day": MAX_RELEASES_PER_DAY},
            code="claim_release_limit_reached",
            details={
                "max_releases_per_day": MAX_RELEASES_PER_DAY,
                "next_release_at": wire_timestamp(released[-1] + period),
            },
        )


def _area(point: Point) -> dict[str, float]:
    """The centre of the 0.01° cell `point` is in."""
    return {"lat": round(point.y, AREA_DECIMALS), "lng": round(point.x, AREA_DECIMALS)}


def reservation_document(
    trip: Trip, *, driver_id: uuid.UUID, origin: Point | None, at: datetime | None = None
) -> dict[str, Any]:
    """One line of the driver's list. The places are their cells until the driver's claim can no longer be
    given back; `origin` is the driver's last known position, for how far the pickup's cell is."""
    assert trip.pickup_window_start is not None and trip.pickup_window_end is not None
    now = at or timezone.now()
    mine = trip.claimed_by_id == driver_id
    exact = mine and now > release_until(trip)
    pickup_area = _area(trip.pickup)
    pay = driver_pay(
        policy_of(trip.policy_version),
        fare_minor=trip.fare_estimate_minor,
        distance_m=trip.estimated_distance_m,
        duration_s=trip.estimated_duration_s,
        wheelchair_accessible=trip.wheelchair_accessible,
    )
    away = None
    if origin is not None:
        metres = haversine_m(origin.y, origin.x, pickup_area["lat"], pickup_area["lng"])
        away = int(round(metres / DISTANCE_STEP_M) * DISTANCE_STEP_M)
    return {
        "id": str(trip.id),
        "scheduled_for": wire_timestamp(trip.scheduled_for),
        "window_start": wire_timestamp(trip.pickup_window_start),
        "window_end": wire_timestamp(trip.pickup_window_end),
        "pickup_area": pickup_area,
        "dropoff_area": _area(trip.dropoff),
        "pickup": {"lat": trip.pickup.y, "lng": trip.pickup.x} if exact else None,
        "dropoff": {"lat": trip.dropoff.y, "lng": trip.dropoff.x} if exact else None,
        "wheelchair_accessible": trip.wheelchair_accessible,
        "distance_m": trip.estimated_distance_m,
        "duration_s": trip.estimated_duration_s,
        "pickup_distance_m": away,
        "fare_estimate": money(trip.fare_estimate_minor, trip.currency),
        "driver_pay": money(pay.pay, trip.currency),
        "claimed_by_you": mine,
        "claimed_at": wire_timestamp(trip.claimed_at) if mine and trip.claimed_at else None,
        "release_until": wire_timestamp(release_until(trip)) if mine else None,
    }


def driver_origin(*, driver_id: uuid.UUID) -> Point | None:
    """The driver's last known position (the presence row), for `reservation_document`."""
    return _driver_position(driver_id)
