"""Recurring rides (docs/recurring.md): make a series, book its occurrences a few days ahead, skip one,
cancel the series.

A series (`RecurringRide`) is a weekly rule in the co-op's time zone; its dates and pickup instants come
from the pure rule in dispatch/scheduling/recurrence.py. Each occurrence becomes a scheduled trip through
`dispatch.services.trips.trip_request` once it is within the horizon: `ROCHDALE_RECURRING_HORIZON_DAYS`
(3 by default), never beyond the board's `max_ahead_days` and never sooner than its `min_lead_s`. Booking
an occurrence is idempotent: each occurrence is booked in a transaction of its own that first locks the
series row and looks for the occurrence's trip (and the unique (series, occurrence_date) backs it up), so
two runs at once book each occurrence once, and skipping or cancelling, which take the same lock, never
cross a booking half made.

An occurrence whose booking is refused (the organisation's hours, its maximum fare, the card, a quote that
fails) does not stop the others: it is logged, returned in the report, and kept in Redis until its date
has passed, so `GET /recurring-rides/{id}/occurrences` says why it is not booked. The next run tries it
again while it is still far enough ahead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from backend.accounts.models import User
from backend.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares.policy import ReservationRules
from backend.fares.selectors import policy_in_force
from backend.organisations.booking import BOOKER_ROLES, booking_check
from backend.organisations.models import OrganisationMembership
from backend.redis import REDIS_UNREACHABLE, get_redis
from dispatch.models import RecurringRide, RecurringRideStatus, Trip
from dispatch.scheduling.recurrence import Occurrence, Rule, RuleError, local_date_of, occurrences
from dispatch.services.booking_notices import rider_told_of_booking
from dispatch.services.estimates import Place, require_in_service_area, route_quote
from dispatch.services.trips import trip_cancel, trip_request
from dispatch.state import UPCOMING_STATUSES, TripStatus

logger = logging.getLogger(__name__)

# How far ahead a series may start, how long a dated one may run, and how many rides a counted one may
# hold: bounds on what one request can commit the co-op to (docs/recurring.md).
MAX_START_AHEAD_DAYS = 365
MAX_SPAN_DAYS = 731
MAX_COUNT = 1000
# The longest span of dates one occurrences request may list.
MAX_LISTED_DAYS = 92
LISTED_YEARS = 10
SERIES_CANCEL_REASON = "The recurring ride was cancelled."
SKIP_REASON = "This occurrence of the recurring ride was skipped."
_FAILURE_KEY = "recurring:failure:{series_id}:{day}"


@dataclass(frozen=True)
class OccurrenceBooked:
    series_id: uuid.UUID
    occurrence_date: date
    trip_id: uuid.UUID


@dataclass(frozen=True)
class OccurrenceFailed:
    series_id: uuid.UUID
    occurrence_date: date
    code: str
    message: str
    details: dict[str, object] = field(default_factory=dict)


@dataclass
class MaterialiseReport:
    """What one run did: occurrences booked, occurrences refused (with why), series that ended."""

    booked: list[OccurrenceBooked] = field(default_factory=list)
    failed: list[OccurrenceFailed] = field(default_factory=list)
    ended: list[uuid.UUID] = field(default_factory=list)

    def add(self, other: MaterialiseReport) -> None:
        self.booked.extend(other.booked)
        self.failed.extend(other.failed)
        self.ended.extend(other.ended)


@dataclass(frozen=True)
class OccurrenceView:
    """One date of a series as its rider or coordinator sees it."""

    occurrence: Occurrence
    # "booked" (a trip exists), "skipped", "upcoming" (to be booked), "not_booked" (tried and refused, or
    # past without a booking), "cancelled" (after the series was cancelled).
    state: str
    trip_id: uuid.UUID | None = None
    trip_status: str | None = None
    failure: dict[str, object] | None = None


# --- the rule of a series -----------------------------------------------------------------------------


def series_rule(series: RecurringRide) -> Rule:
    return Rule(
        weekdays=frozenset(series.weekdays),
        pickup_time=series.pickup_time,
        time_zone=series.time_zone,
        starts_on=series.starts_on,
        until=series.until,
        count=series.count,
        skipped=frozenset(series.skipped_dates),
    )


def _rules(at: datetime) -> ReservationRules:
    return policy_in_force(at).reservations


def _horizon(rules: ReservationRules, *, now: datetime) -> tuple[datetime, datetime]:
    """The pickup instants a run books: from the board's least lead time to the horizon."""
    days = min(settings.ROCHDALE_RECURRING_HORIZON_DAYS, rules.max_ahead_days)
    return now + timedelta(seconds=rules.min_lead_s), now + timedelta(days=days)


# --- who sees a series ------------------------------------------------------------------------------------


def recurring_rides_visible_to(*, user_id: uuid.UUID) -> QuerySet[RecurringRide]:
    """The series the user rides, and those of organisations they book for (an active admin or
    coordinator of an active organisation)."""
    booker_of = OrganisationMembership.objects.filter(
        user_id=user_id, is_active=True, organisation__is_active=True, role__in=sorted(BOOKER_ROLES)
    ).values("organisation_id")
    return RecurringRide.objects.select_related("rider").filter(
        Q(rider_id=user_id) | Q(organisation_id__isnull=False, organisation_id__in=booker_of)
    )


def recurring_ride_get_for(*, user_id: uuid.UUID, series_id: uuid.UUID, lock: bool = False) -> RecurringRide:
    """A series the user may see; NotFound `recurring_ride_not_found` for anyone else's, as for none."""
    rides = recurring_rides_visible_to(user_id=user_id)
    if lock:
        visible = rides.filter(id=series_id).values_list("id", flat=True).first()
        series = (
            RecurringRide.objects.select_for_update(of=("self",))
            .select_related("rider")
            .filter(id=visible)
            .first()
            if visible is not None
            else None
        )
    else:
        series = rides.filter(id=series_id).first()
    if series is None:
        raise NotFound(gettext("No such recurring ride."), code="recurring_ride_not_found")
    return series


# --- making a series --------------------------------------------------------------------------------------


def recurring_ride_create(
    *,
    booked_by_id: uuid.UUID,
    pickup: Place,
    dropoff: Place,
    weekdays: Iterable[int],
    pickup_time: time,
    starts_on: date,
    until: date | None = None,
    count: int | None = None,
    pickup_window_s: int | None = None,
    wheelchair_accessible: bool = False,
    rider_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    reference: str = "",
    now: datetime | None = None,
) -> tuple[RecurringRide, MaterialiseReport]:
    """Make a series for a rider (the booker themself, or, with `organisation_id`, one of the
    organisation's riders or guests booked by its coordinator) and book what falls in the horizon now.

    The time zone is the co-op's (`ROCHDALE_TIME_ZONE`). Raises InvalidInput `recurring_rule_invalid`
    (details `field`), `pickup_window_invalid`; Unprocessable `recurring_starts_in_past`,
    `recurring_starts_too_far_ahead`, `recurring_rule_empty`, `outside_service_area`; PermissionDenied
    `rider_role_required`, `booking_not_allowed`; and for an organisation's series the refusals of
    `backend.organisations.booking.booking_check` for the first date of each weekday."""
    now = now or timezone.now()
    rider_id = rider_id or booked_by_id
    reference = (reference or "").strip()[:80]
    if organisation_id is None and rider_id != booked_by_id:
        raise PermissionDenied(
            gettext("Only an organisation's coordinator books rides for someone else."),
            code="booking_not_allowed",
        )
    zone_name = settings.TIME_ZONE
    try:
        rule = Rule(
            weekdays=frozenset(weekdays),
            pickup_time=pickup_time,
            time_zone=zone_name,
            starts_on=starts_on,
            until=until,
            count=count,
        )
    except RuleError as exc:
        raise _rule_invalid(exc.field, exc.message) from exc
    if until is not None and (until - starts_on).days > MAX_SPAN_DAYS:
        raise _rule_invalid("until", f"must be within {MAX_SPAN_DAYS} days of starts_on")
    if count is not None and count > MAX_COUNT:
        raise _rule_invalid("count", f"must be at most {MAX_COUNT}")
    today = local_date_of(now, time_zone=zone_name)
    if starts_on < today:
        raise Unprocessable(
            gettext("A recurring ride starts today or later."),
            code="recurring_starts_in_past",
            details={"today": today.isoformat()},
        )
    if starts_on > today + timedelta(days=MAX_START_AHEAD_DAYS):
        raise Unprocessable(
            gettext("A recurring ride starts within %(max_start_ahead_days)s days.")
            % {"max_start_ahead_days": MAX_START_AHEAD_DAYS},
            code="recurring_starts_too_far_ahead",
            details={"latest": (today + timedelta(days=MAX_START_AHEAD_DAYS)).isoformat()},
        )
    rules = _rules(now)
    window_s = rules.default_window_s if pickup_window_s is None else pickup_window_s
    if isinstance(window_s, bool) or not isinstance(window_s, int) or not 0 <= window_s <= rules.max_window_s:
        raise InvalidInput(
            gettext("The pickup window is 0 to %(max_window_s)s seconds either side of the pickup time.")
            % {"max_window_s": rules.max_window_s},
            code="pickup_window_invalid",
            details={"max_window_s": rules.max_window_s},
        )
    earliest = now + timedelta(seconds=rules.min_lead_s)
    first_week = _first_bookable(rule, earliest=earliest, today=today)
    if not first_week:
        raise Unprocessable(
            gettext("This rule has no ride that can still be booked."), code="recurring_rule_empty"
        )
    require_in_service_area(pickup=pickup, dropoff=dropoff)
    if organisation_id is not None:
        quote = route_quote(
            pickup=pickup, dropoff=dropoff, wheelchair_accessible=wheelchair_accessible, at=now
        )
        # The organisation's rules for the first ride of each weekday: a series the organisation would
        # refuse every week is refused now, not once a week by the task.
        for occurrence in first_week:
            booking_check(
                organisation_id=organisation_id,
                rider_id=rider_id,
                booked_by_id=booked_by_id,
                booked_by_key_id=None,
                pickup=pickup.as_point(),
                dropoff=dropoff.as_point(),
                pickup_at=occurrence.at,
                fare_minor=quote.fare_minor,
                wheelchair_accessible=wheelchair_accessible,
                reference=reference,
            )
    if not User.objects.filter(id=rider_id, is_active=True, is_rider=True).exists():
        raise PermissionDenied(gettext("Only a rider account can ride."), code="rider_role_required")
    with transaction.atomic():
        series = RecurringRide.objects.create(
            rider_id=rider_id,
            organisation_id=organisation_id,
            booked_by_id=booked_by_id if booked_by_id != rider_id else None,
            pickup=pickup.as_point(),
            dropoff=dropoff.as_point(),
            wheelchair_accessible=wheelchair_accessible,
            reference=reference,
            weekdays=sorted(rule.weekdays),
            pickup_time=pickup_time,
            pickup_window_s=window_s,
            time_zone=zone_name,
            starts_on=starts_on,
            until=until,
            count=count,
            created_at=now,
        )
    report = recurring_ride_materialise(series_id=series.id, now=now)
    series.refresh_from_db()
    return series, report


def _rule_invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(
        gettext("The recurring rule is not valid: %(field_name)s %(message)s.")
        % {"field_name": field_name, "message": message},
        code="recurring_rule_invalid",
        details={"field": field_name, "message": message},
    )


def _first_bookable(rule: Rule, *, earliest: datetime, today: date) -> list[Occurrence]:
    """The rule's first bookable occurrence of each of its weekdays (within its first bookable week)."""
    first = next(
        (
            o
            for o in occurrences(rule, start=today, end=today + timedelta(days=MAX_START_AHEAD_DAYS + 8))
            if o.at >= earliest
        ),
        None,
    )
    if first is None:
        return []
    week_end = first.local_date + timedelta(days=6)
    return list(occurrences(rule, start=first.local_date, end=week_end))


# --- booking occurrences ----------------------------------------------------------------------------------


def recurring_rides_materialise(*, now: datetime | None = None) -> MaterialiseReport:
    """Book every active series' occurrences within the horizon; end series whose last date has passed.

    One series' or one occurrence's failure never stops the others (the Celery task
    `materialise_recurring_rides` runs this)."""
    now = now or timezone.now()
    _, horizon_end = _horizon(_rules(now), now=now)
    latest_local = local_date_of(horizon_end, time_zone=settings.TIME_ZONE) + timedelta(days=1)
    report = MaterialiseReport()
    due = (
        RecurringRide.objects.filter(status=RecurringRideStatus.ACTIVE, starts_on__lte=latest_local)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    for series_id in list(due):
        try:
            report.add(recurring_ride_materialise(series_id=series_id, now=now))
        except Exception:  # one broken series must not hold back every other one
            logger.exception("recurring ride %s: materialisation failed", series_id)
    return report


def recurring_ride_materialise(*, series_id: uuid.UUID, now: datetime | None = None) -> MaterialiseReport:
    """Book the series' occurrences from the board's least lead time to the horizon that have no trip yet
    (and are not skipped); each in its own transaction under the series' lock. Then end the series if
    its last date has passed."""
    now = now or timezone.now()
    report = MaterialiseReport()
    series = RecurringRide.objects.filter(id=series_id).first()
    if series is None or series.status != RecurringRideStatus.ACTIVE:
        return report
    earliest, horizon_end = _horizon(_rules(now), now=now)
    rule = series_rule(series)
    window = occurrences(
        rule,
        start=local_date_of(earliest, time_zone=series.time_zone),
        end=local_date_of(horizon_end, time_zone=series.time_zone),
    )
    attempted: date | None = None
    for occurrence in window:
        if not earliest <= occurrence.at <= horizon_end:
            continue
        attempted = occurrence.local_date
        try:
            outcome, trip_id = _occurrence_book(series_id=series_id, occurrence=occurrence, now=now)
        except DomainError as exc:
            failure = OccurrenceFailed(series_id, occurrence.local_date, exc.code, exc.message, exc.details)
        except Exception as exc:  # a quote or a provider failing: logged with its traceback, and recorded
            logger.exception("recurring ride %s on %s: booking failed", series_id, occurrence.local_date)
            failure = OccurrenceFailed(
                series_id,
                occurrence.local_date,
                "booking_failed",
                f"The booking failed ({type(exc).__name__}).",
            )
        else:
            if outcome == "stop":
                break
            if trip_id is not None:
                report.booked.append(OccurrenceBooked(series_id, occurrence.local_date, trip_id))
                _failure_forget(series_id, occurrence.local_date)
            continue
        logger.warning(
            "recurring ride %s on %s not booked: %s (%s)",
            series_id,
            failure.occurrence_date,
            failure.code,
            failure.message,
        )
        report.failed.append(failure)
        _failure_remember(failure, until=occurrence.at)
    _series_advance(series_id=series_id, attempted=attempted, now=now, report=report)
    return report


def _occurrence_book(
    *, series_id: uuid.UUID, occurrence: Occurrence, now: datetime
) -> tuple[str, uuid.UUID | None]:
    """Book one occurrence under the series' lock: ("booked", its trip id); ("done", None) when there is
    nothing to do (booked already, skipped); ("stop", None) when the series is no longer active."""
    with transaction.atomic():
        series = RecurringRide.objects.select_for_update().filter(id=series_id).first()
        if series is None or series.status != RecurringRideStatus.ACTIVE:
            return "stop", None
        if occurrence.local_date in series.skipped_dates:
            return "done", None
        if Trip.objects.filter(series_id=series_id, occurrence_date=occurrence.local_date).exists():
            return "done", None
        trip = trip_request(
            rider_id=series.rider_id,
            pickup=Place(lat=series.pickup.y, lng=series.pickup.x),
            dropoff=Place(lat=series.dropoff.y, lng=series.dropoff.x),
            wheelchair_accessible=series.wheelchair_accessible,
            at=now,
            scheduled_for=occurrence.at,
            pickup_window_s=series.pickup_window_s,
            organisation_id=series.organisation_id,
            booked_by_id=series.booked_by_id or series.rider_id,
            reference=series.reference,
            series_id=series.id,
            occurrence_date=occurrence.local_date,
        )
        if trip.booked_by_id is not None:
            # Booked by the organisation's coordinator: the rider (often a guest with no app) hears of each
            # ride with its link; a rider's own series is confirmed by trip_request.
            rider_told_of_booking(trip=trip)
        return "booked", trip.id


def _series_advance(
    *, series_id: uuid.UUID, attempted: date | None, now: datetime, report: MaterialiseReport
) -> None:
    """Record how far the series was tried, and end it once its last date is behind it."""
    with transaction.atomic():
        series = RecurringRide.objects.select_for_update().filter(id=series_id).first()
        if series is None or series.status != RecurringRideStatus.ACTIVE:
            return
        changed: list[str] = []
        if attempted is not None and (
            series.materialised_through is None or attempted > series.materialised_through
        ):
            series.materialised_through = attempted
            changed.append("materialised_through")
        last = series_rule(series).last_date()
        if last is not None and last < local_date_of(now, time_zone=series.time_zone):
            series.status = RecurringRideStatus.ENDED
            changed.append("status")
            report.ended.append(series_id)
        if changed:
            series.save(update_fields=changed)


# --- why an occurrence is not booked (Redis, until its date has passed) -----------------------------------


def _failure_key(series_id: uuid.UUID, day: date) -> str:
    return _FAILURE_KEY.format(series_id=series_id, day=day.isoformat())


def _failure_remember(failure: OccurrenceFailed, *, until: datetime) -> None:
    ttl = max(3600, int((until - timezone.now()).total_seconds()) + 86400)
    record = {
        "code": failure.code,
        "message": failure.message,
        "details": failure.details,
        "at": timezone.now().isoformat(),
    }
    try:
        get_redis().set(
            _failure_key(failure.series_id, failure.occurrence_date),
            json.dumps(record, default=str),
            ex=ttl,
        )
    except REDIS_UNREACHABLE:
        logger.warning(
            "recurring ride %s: Redis unreachable, failure kept only in the log", failure.series_id
        )


def _failure_forget(series_id: uuid.UUID, day: date) -> None:
    with contextlib.suppress(*REDIS_UNREACHABLE):
        get_redis().delete(_failure_key(series_id, day))


def _failures_of(series_id: uuid.UUID, days: list[date]) -> dict[date, dict[str, object]]:
    if not days:
        return {}
    try:
        raw = get_redis().mget([_failure_key(series_id, day) for day in days])
    except REDIS_UNREACHABLE:
        return {}
    return {day: json.loads(value) for day, value in zip(days, raw, strict=True) if value}


# --- reading a series' dates ------------------------------------------------------------------------------


def recurring_ride_occurrences(
    *, series: RecurringRide, start: date, end: date, now: datetime | None = None
) -> list[OccurrenceView]:
    """The series' dates from `start` to `end` (at most MAX_LISTED_DAYS), each with its trip or state.

    Raises InvalidInput `date_range_invalid`."""
    now = now or timezone.now()
    today = local_date_of(now, time_zone=series.time_zone)
    if (
        end < start
        or (end - start).days >= MAX_LISTED_DAYS
        or abs((start - today).days) > LISTED_YEARS * 366
        or abs((end - today).days) > LISTED_YEARS * 366
    ):
        raise InvalidInput(
            gettext(
                "`to` is on or after `from`, at most %(days)s days later, and both within "
                "%(listed_years)s years of today."
            )
            % {"days": MAX_LISTED_DAYS - 1, "listed_years": LISTED_YEARS},
            code="date_range_invalid",
            details={"max_days": MAX_LISTED_DAYS, "years": LISTED_YEARS},
        )
    listed = list(occurrences(series_rule(series), start=start, end=end, include_skipped=True))
    trips = {
        day: (trip_id, status)
        for trip_id, day, status in Trip.objects.filter(
            series_id=series.id, occurrence_date__range=(start, end)
        ).values_list("id", "occurrence_date", "status")
    }
    unbooked = [o.local_date for o in listed if o.local_date not in trips and not o.skipped]
    failures = _failures_of(series.id, unbooked)
    earliest = now + timedelta(seconds=_rules(now).min_lead_s)
    views: list[OccurrenceView] = []
    for occurrence in listed:
        trip_id, trip_status = trips.get(occurrence.local_date, (None, None))
        if occurrence.skipped:
            state = "skipped"
        elif trip_id is not None:
            state = "booked"
        elif series.status == RecurringRideStatus.CANCELLED and (
            series.cancelled_at is None or occurrence.at > series.cancelled_at
        ):
            state = "cancelled"
        elif (
            occurrence.at < earliest
            or occurrence.local_date in failures
            or (
                series.materialised_through is not None
                and occurrence.local_date <= series.materialised_through
            )
        ):
            state = "not_booked"
        else:
            state = "upcoming"
        views.append(
            OccurrenceView(
                occurrence=occurrence,
                state=state,
                trip_id=trip_id,
                trip_status=trip_status,
                failure=failures.get(occurrence.local_date) if state == "not_booked" else None,
            )
        )
    return views


# --- skipping one, cancelling all -------------------------------------------------------------------------


def _cancel_occurrence_trip(*, trip: Trip, series: RecurringRide, actor_id: uuid.UUID, reason: str) -> Trip:
    """Cancel one of the series' trips as the actor: its rider, or the organisation that booked it."""
    if actor_id == series.rider_id:
        return trip_cancel(trip_id=trip.id, actor_id=actor_id, reason=reason)
    return trip_cancel(
        trip_id=trip.id, actor_id=actor_id, reason=reason, organisation_id=series.organisation_id
    )


def recurring_ride_skip(
    *, series_id: uuid.UUID, actor_id: uuid.UUID, occurrence_date: date, now: datetime | None = None
) -> RecurringRide:
    """Skip one date of the series: its trip, if booked, is cancelled (the board's cancellation rules
    apply, as for any reservation); otherwise the date is never booked. Skipping a date twice is a no-op.

    Raises NotFound `recurring_ride_not_found`; Conflict `recurring_ride_not_active`, `occurrence_passed`,
    `trip_not_cancellable`; Unprocessable `not_an_occurrence`."""
    now = now or timezone.now()
    with transaction.atomic():
        series = recurring_ride_get_for(user_id=actor_id, series_id=series_id, lock=True)
        if occurrence_date in series.skipped_dates:
            return series
        if series.status != RecurringRideStatus.ACTIVE:
            raise Conflict(
                gettext("This recurring ride is %(status)s.") % {"status": series.status},
                code="recurring_ride_not_active",
                details={"status": series.status},
            )
        rule = series_rule(series)
        found = list(occurrences(rule, start=occurrence_date, end=occurrence_date))
        if not found:
            raise Unprocessable(
                gettext("The recurring ride has no ride on this date."),
                code="not_an_occurrence",
                details={"date": occurrence_date.isoformat()},
            )
        trip = series.trips.filter(occurrence_date=occurrence_date).first()
        if trip is not None and trip.status != TripStatus.CANCELLED:
            _cancel_occurrence_trip(trip=trip, series=series, actor_id=actor_id, reason=SKIP_REASON)
        elif trip is None and found[0].at <= now:
            raise Conflict(
                gettext("This ride's time has passed."),
                code="occurrence_passed",
                details={"date": occurrence_date.isoformat()},
            )
        series.skipped_dates = sorted({*series.skipped_dates, occurrence_date})
        series.save(update_fields=["skipped_dates"])
    _failure_forget(series_id, occurrence_date)
    return series


@dataclass(frozen=True)
class SeriesCancelled:
    series: RecurringRide
    cancelled_trip_ids: list[uuid.UUID]


def recurring_ride_cancel(*, series_id: uuid.UUID, actor_id: uuid.UUID) -> SeriesCancelled:
    """Cancel the series: no more occurrences are booked, and its reservations still `scheduled` are
    cancelled (the board's cancellation rules apply to each). A ride already in dispatch or under way is
    left alone; cancel it as a trip. Cancelling a cancelled series is a no-op.

    Raises NotFound `recurring_ride_not_found`; Conflict `recurring_ride_not_active` (it has ended)."""
    with transaction.atomic():
        series = recurring_ride_get_for(user_id=actor_id, series_id=series_id, lock=True)
        if series.status == RecurringRideStatus.CANCELLED:
            return SeriesCancelled(series, [])
        if series.status != RecurringRideStatus.ACTIVE:
            raise Conflict(
                gettext("This recurring ride is %(status)s.") % {"status": series.status},
                code="recurring_ride_not_active",
                details={"status": series.status},
            )
        series.status = RecurringRideStatus.CANCELLED
        series.cancelled_at = timezone.now()
        series.save(update_fields=["status", "cancelled_at"])
        cancelled: list[uuid.UUID] = []
        upcoming = series.trips.filter(status__in=sorted(UPCOMING_STATUSES)).order_by("scheduled_for")
        for trip in upcoming:
            try:
                with transaction.atomic():
                    _cancel_occurrence_trip(
                        trip=trip, series=series, actor_id=actor_id, reason=SERIES_CANCEL_REASON
                    )
            except Conflict as exc:  # it moved on meanwhile (dispatch started): leave it to its rider
                logger.info("recurring ride %s: trip %s left as it is (%s)", series_id, trip.id, exc.code)
                continue
            cancelled.append(trip.id)
    return SeriesCancelled(series, cancelled)
