"""The driver moving their trip: arrived, started, completed (measured and paid), or cancelled before start.

Every move goes through `trip_transition` with the guard `driver_id=me`, so a driver can move only their
own trip and only along the status machine. Completion measures the route driven with the rider aboard
from the location trail (PostGIS rows plus the fixes not yet flushed, flushed first) and posts the fare in
the same transaction as the move.

The distance the fare and the pay floor use is the trail map-matched onto the road graph (Valhalla's
`trace_attributes`, docs/roads.md), after jitter and refused fixes are dropped as before; where no road graph
is built, or matching fails or answers something implausible, the trail's own geodesic length is used and the
trip records which (`Trip.distance_source`).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from geopy.distance import geodesic

from backend.errors import InvalidTransition, NotFound
from backend.redis import get_redis
from dispatch import live
from dispatch.models import DriverPresence, LocationFix, Trip
from dispatch.money.settlement import completion_fields, trip_completion_settle
from dispatch.roads.choice import road_router
from dispatch.roads.engine import RoutingError
from dispatch.services.remaining_eta import forget_countdown
from dispatch.services.ride_notices import driver_arriving_notify
from dispatch.services.ride_pins import ride_pin_check
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_cancel
from dispatch.state import TripStatus

logger = logging.getLogger(__name__)

# A fix this inaccurate says nothing about the route; segments shorter than the fixes' own uncertainty
# (or a few metres) are GPS jitter of a standing car, not driving.
MAX_USABLE_ACCURACY_M = 100.0
MIN_SEGMENT_M = 5.0
# A map match this far from the trail's own length has matched the wrong roads (a parallel street, a loop
# the car never drove); the geodesic trail is the safer measure then.
MATCH_PLAUSIBLE_RATIO = (0.7, 1.5)
MATCH_PLAUSIBLE_SLACK_M = 200.0

DISTANCE_MAP_MATCHED = "map_matched"
DISTANCE_GEODESIC = "geodesic"
DISTANCE_ESTIMATE = "estimate"


@dataclass(frozen=True, slots=True)
class TrailPoint:
    lat: float
    lng: float
    recorded_at: datetime
    accuracy_m: float | None


@dataclass(frozen=True, slots=True)
class TrailMeasure:
    distance_m: int
    source: str  # DISTANCE_MAP_MATCHED or DISTANCE_GEODESIC
    fallback_reason: str | None = None


def usable_trail(points: Iterable[TrailPoint]) -> tuple[list[TrailPoint], int]:
    """The trail's kept points, in time order, and how many fixes were usable at all.

    Fixes worse than MAX_USABLE_ACCURACY_M are dropped. A point is kept only once it is farther from the
    last kept point than either fix's accuracy (and at least MIN_SEGMENT_M), so a car standing at a light
    adds nothing however much its fix wanders."""
    kept: list[TrailPoint] = []
    usable = 0
    for point in sorted(points, key=lambda p: p.recorded_at):
        if point.accuracy_m is not None and point.accuracy_m > MAX_USABLE_ACCURACY_M:
            continue
        usable += 1
        if not kept:
            kept.append(point)
            continue
        anchor = kept[-1]
        step = geodesic((anchor.lat, anchor.lng), (point.lat, point.lng)).meters
        threshold = max(MIN_SEGMENT_M, anchor.accuracy_m or 0.0, point.accuracy_m or 0.0)
        if step >= threshold:
            kept.append(point)
    return kept, usable


def _geodesic_m(kept: list[TrailPoint]) -> float:
    return sum(geodesic((a.lat, a.lng), (b.lat, b.lng)).meters for a, b in itertools.pairwise(kept))


def trail_distance_m(points: Iterable[TrailPoint]) -> int | None:
    """Geodesic length of a trail with jitter filtered out; None with fewer than two usable fixes."""
    kept, usable = usable_trail(points)
    if usable < 2:
        return None
    return round(_geodesic_m(kept))


def trail_measure(points: Iterable[TrailPoint]) -> TrailMeasure | None:
    """The trail's road length, map-matched where the router can, else its geodesic length (recorded as
    such, with why); None when there are fewer than two usable fixes."""
    kept, usable = usable_trail(points)
    if usable < 2:
        return None
    straight = _geodesic_m(kept)
    if len(kept) < 2:  # usable fixes, but the car never moved beyond its jitter
        return TrailMeasure(round(straight), DISTANCE_GEODESIC, "standing_still")
    try:
        matched = _matched_across_gaps(kept)
    except RoutingError as error:
        return TrailMeasure(round(straight), DISTANCE_GEODESIC, error.reason)
    except ValueError as error:  # a stored fix the router refuses: the fare still completes, on the trail
        logger.warning("map match refused the trail: %s", error)
        return TrailMeasure(round(straight), DISTANCE_GEODESIC, "invalid_trail")
    low, high = MATCH_PLAUSIBLE_RATIO
    if not (low * straight - MATCH_PLAUSIBLE_SLACK_M <= matched <= high * straight + MATCH_PLAUSIBLE_SLACK_M):
        logger.warning("map match of %.0f m trail gave %d m: using the trail's own length", straight, matched)
        return TrailMeasure(round(straight), DISTANCE_GEODESIC, "implausible_match")
    return TrailMeasure(matched, DISTANCE_MAP_MATCHED)


def _matched_across_gaps(kept: list[TrailPoint]) -> int:
    """The trail map-matched piece by piece: where two fixes are more than ROCHDALE_MATCH_GAP_M apart (a
    tunnel, the app asleep) the matcher may break and count nothing across the gap, so each stretch between
    gaps is matched alone and each gap is bridged by the road route between its two fixes."""
    router = road_router()
    stretches: list[list[TrailPoint]] = [[kept[0]]]
    bridges = 0
    for before, after in itertools.pairwise(kept):
        gap = geodesic((before.lat, before.lng), (after.lat, after.lng)).meters
        if gap > settings.ROCHDALE_MATCH_GAP_M:
            bridge = router.route((before.lat, before.lng), (after.lat, after.lng), after.recorded_at)
            bridges += bridge.distance_m
            stretches.append([after])
        else:
            stretches[-1].append(after)
    matched = sum(
        router.matched_length_m([(p.lat, p.lng) for p in stretch])
        for stretch in stretches
        if len(stretch) > 1
    )
    return matched + bridges


def trip_trail(
    *, trip_id: uuid.UUID, driver_id: uuid.UUID, since: datetime, until: datetime
) -> list[TrailPoint]:
    """The trip's accepted fixes between `since` and `until` (refused jumps never count).

    Two sources, merged by time: the rows the batched flush has written to PostGIS, and this trip's entries
    of the driver's trail in Redis, which holds the fixes the flush has not reached yet. Completing a trip
    therefore never waits for, or does the work of, the region-wide flush; if Redis lost the list, the rows
    still count."""
    points: dict[datetime, TrailPoint] = {}
    rows = LocationFix.objects.filter(
        trip_id=trip_id, accepted=True, recorded_at__gte=since, recorded_at__lte=until
    ).values_list("point", "recorded_at", "accuracy_m")
    for point, recorded_at, accuracy in rows:
        # A flush retried after a crash may have inserted a fix twice: one point per instant.
        points.setdefault(recorded_at, TrailPoint(point.y, point.x, recorded_at, accuracy))
    for raw in get_redis().lrange(live.trail_key(driver_id), 0, -1):
        on_trip, stamp, lat, lng, accuracy = raw.decode().split(",")
        if on_trip != str(trip_id):
            continue
        recorded_at = datetime.fromtimestamp(float(stamp), tz=UTC)
        if since <= recorded_at <= until:
            points.setdefault(
                recorded_at,
                TrailPoint(float(lat), float(lng), recorded_at, float(accuracy) if accuracy else None),
            )
    return [points[moment] for moment in sorted(points)]


def _own_trip(
    trip_id: uuid.UUID, to: TripStatus, driver_id: uuid.UUID, *, guard: dict[str, object] | None = None
) -> Trip:
    trip = trip_transition(
        trip_id=trip_id, to=to, actor_id=driver_id, guard={**(guard or {}), "driver_id": driver_id}
    )
    transaction.on_commit(lambda: forget_countdown(trip_id))
    return trip


def trip_arrive(*, driver_id: uuid.UUID, trip_id: uuid.UUID) -> Trip:
    """The driver is at the pickup; the rider is told after commit (dispatch/services/ride_notices.py)."""
    with transaction.atomic():
        trip = _own_trip(trip_id, TripStatus.ARRIVED, driver_id)
        driver_arriving_notify(trip=trip)
    return trip


def trip_start(*, driver_id: uuid.UUID, trip_id: uuid.UUID, pin: str | None = None) -> Trip:
    """The rider is aboard; from here the trail is measured. A trip with a ride PIN starts only with it
    (`pin`, dispatch/services/ride_pins.py): a wrong one is refused, counted and audited."""
    accepted_pin = ride_pin_check(driver_id=driver_id, trip_id=trip_id, pin=pin)
    # The move finds the PIN that was checked, or none: a trip that arrived (or got a new PIN) after the
    # check is refused, and the driver's next start is checked again.
    return _own_trip(trip_id, TripStatus.IN_PROGRESS, driver_id, guard={"ride_pin": accepted_pin})


def trip_complete(*, driver_id: uuid.UUID, trip_id: uuid.UUID) -> Trip:
    """Measure the trip from its trail, price it and post the fare, all in one transaction."""
    trip = Trip.objects.select_related("policy_version").filter(id=trip_id, driver_id=driver_id).first()
    if trip is None:
        raise NotFound(_("No such trip."), code="trip_not_found")
    if trip.status != TripStatus.IN_PROGRESS or trip.started_at is None:
        raise InvalidTransition(
            _("A trip that is %(status)s cannot become completed.") % {"status": trip.status},
            details={"from": trip.status, "to": TripStatus.COMPLETED.value},
        )
    now = timezone.now()
    # Map matching runs before the transaction: it holds no lock while the engine works.
    measured = trail_measure(
        trip_trail(trip_id=trip.id, driver_id=driver_id, since=trip.started_at, until=now)
    )
    if measured is not None:
        distance_m, source = measured.distance_m, measured.source
        duration_s = max(int((now - trip.started_at).total_seconds()), 0)
    else:
        distance_m, source = trip.estimated_distance_m, DISTANCE_ESTIMATE
        duration_s = trip.estimated_duration_s
    details = {
        "measured": measured is not None,
        "distance_m": distance_m,
        "duration_s": duration_s,
        "distance_source": source,
    }
    if measured is not None and measured.fallback_reason:
        details["match_fallback_reason"] = measured.fallback_reason
    with transaction.atomic():
        fields = completion_fields(trip=trip, distance_m=distance_m, duration_s=duration_s)
        done = trip_transition(
            trip_id=trip.id,
            to=TripStatus.COMPLETED,
            actor_id=driver_id,
            guard={"driver_id": driver_id},
            fields={**fields, "completed_at": now, "distance_source": source},
            details=details,
        )
        trip_completion_settle(trip=done)
        DriverPresence.objects.filter(driver_id=driver_id).update(idle_since=now)
    transaction.on_commit(lambda: live.driver_release(driver_id=driver_id, trip_id=trip.id))
    transaction.on_commit(lambda: get_redis().delete(live.trail_key(driver_id)))
    transaction.on_commit(lambda: forget_countdown(trip.id))
    return done


def trip_cancel_by_driver(*, driver_id: uuid.UUID, trip_id: uuid.UUID, reason: str = "") -> Trip:
    """The driver cancels before the rider is aboard (assigned or arrived)."""
    if not Trip.objects.filter(id=trip_id, driver_id=driver_id).exists():
        raise NotFound(_("No such trip."), code="trip_not_found")
    # trip_cancel applies the status machine, withdraws offers and frees the driver after commit.
    trip = trip_cancel(trip_id=trip_id, actor_id=driver_id, cancelled_by="driver", reason=reason)
    DriverPresence.objects.filter(driver_id=driver_id).update(idle_since=timezone.now())
    return trip
