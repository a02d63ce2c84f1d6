"""A rider's trip from request to rating: request (now, or booked ahead), cancel, rate, tip.

Every status move goes through `trip_transition` (the only writer of Trip.status); money goes through
dispatch/money/settlement.py in the same transaction as the move. The database decides races: one open trip
per rider is a partial unique index, one rating per party per trip a unique constraint, and a cancellation
or tip locks the trip row so the fee and the tip cap are decided on the state they change.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext

from backend.accounts.models import User
from backend.cards.holds import (
    RESERVATION_HOLD_AHEAD,
    card_on_file_require,
    cards_in_use,
    hold_attach,
    hold_for_trip_request,
    hold_void,
)
from backend.cards.models import CardHold
from backend.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    Unprocessable,
)
from backend.fares.money import money
from backend.fares.payments import overdue_captures
from backend.fares.policy import ReservationRules
from backend.fares.pricing import authorization_amount, rider_charge
from backend.fares.selectors import policy_of
from backend.notifications.services import notify
from backend.organisations.booking import booking_check
from backend.request_context import bound_to_trip
from dispatch import live
from dispatch.matching.geo import haversine_m
from dispatch.models import (
    FareEstimate,
    Rating,
    RatingRole,
    Tip,
    Trip,
    TripCancelledBy,
    TripEvent,
    TripPayer,
)
from dispatch.money.fees import fee_facts
from dispatch.money.settlement import cancellation_fields, post_cancellation_fee, post_tip
from dispatch.selectors import trip_get_for, trip_load
from dispatch.services.booking_notices import reservation_context
from dispatch.services.dispatching import trip_requested
from dispatch.services.estimates import Place, require_in_service_area, route_quote
from dispatch.services.offers import offers_withdraw_for_trip
from dispatch.services.ride_pins import ride_pin_for_request
from dispatch.services.transitions import push_trip_updated, trip_transition
from dispatch.state import OPEN_STATUSES, UPCOMING_STATUSES, TripStatus, allowed_sources

logger = logging.getLogger(__name__)

# A trip naming an estimate must start and end where the estimate did, give or take GPS jitter.
ESTIMATE_MATCH_TOLERANCE_M = 10.0
CANCEL_REASON_MAX_LENGTH = 500
RATING_COMMENT_MAX_LENGTH = 1000
# A rider may tip in total up to the whole fare of the trip (100 %): generous, and bounded, so a mistyped
# amount cannot move an absurd sum. See docs/api.md.
TIP_MAX_SHARE_OF_FARE = 1

CancelledBy = Literal["rider", "driver", "system"]
# Until the reservation's dispatch recomputes it from the road ETAs of the drivers around the pickup
# (dispatch/services/reservations.py), it is due this long before its window opens.
FIRST_RELEASE_LEAD_S = 1200


@dataclass(frozen=True)
class Booking:
    """Who books a ride for whom, when it is not the rider booking now for themself.

    `scheduled_for` books ahead (with `pickup_window_s` either side, the board's default when None);
    `organisation_id` books on an organisation's account, by `booked_by_id` (a person) or
    `booked_by_key_id` (the organisation's API key); `series_id` and `occurrence_date` name the recurring
    ride the trip is one occurrence of."""

    scheduled_for: datetime | None = None
    pickup_window_s: int | None = None
    organisation_id: uuid.UUID | None = None
    booked_by_id: uuid.UUID | None = None
    booked_by_key_id: uuid.UUID | None = None
    reference: str = ""
    series_id: uuid.UUID | None = None
    occurrence_date: date | None = None


def _constraint_name(exc: IntegrityError) -> str:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""


def _estimate_for_request(
    *,
    rider_id: uuid.UUID,
    estimate_id: uuid.UUID,
    pickup: Place,
    dropoff: Place,
    wheelchair_accessible: bool | None,
    now: datetime,
) -> FareEstimate:
    estimate = (
        FareEstimate.objects.select_related("policy_version")
        .filter(id=estimate_id, rider_id=rider_id)
        .first()
    )
    if estimate is None:
        raise Unprocessable(
            gettext("This estimate does not exist or is not yours; ask for a new one."),
            code="estimate_not_found",
        )
    if estimate.expires_at <= now:
        raise Unprocessable(
            gettext("This estimate has expired; ask for a new one."),
            code="estimate_expired",
            details={"expired_at": estimate.expires_at.isoformat()},
        )
    mismatched = [
        name
        for name, place, point in (
            ("pickup", pickup, estimate.pickup),
            ("dropoff", dropoff, estimate.dropoff),
        )
        if haversine_m(place.lat, place.lng, point.y, point.x) > ESTIMATE_MATCH_TOLERANCE_M
    ]
    if wheelchair_accessible is not None and wheelchair_accessible != estimate.wheelchair_accessible:
        mismatched.append("wheelchair_accessible")
    if mismatched:
        raise Unprocessable(
            gettext("This trip is not the one the estimate was for; ask for a new estimate."),
            code="estimate_mismatch",
            details={"fields": mismatched},
        )
    return estimate


def trip_request(
    *,
    rider_id: uuid.UUID,
    pickup: Place,
    dropoff: Place,
    wheelchair_accessible: bool | None = None,
    estimate_id: uuid.UUID | None = None,
    at: datetime | None = None,
    scheduled_for: datetime | None = None,
    pickup_window_s: int | None = None,
    organisation_id: uuid.UUID | None = None,
    booked_by_id: uuid.UUID | None = None,
    booked_by_key_id: uuid.UUID | None = None,
    reference: str = "",
    series_id: uuid.UUID | None = None,
    occurrence_date: date | None = None,
    ride_pin: bool | None = None,
) -> Trip:
    """Request a trip for a rider; dispatch starts once the transaction commits.

    `ride_pin`: give the trip a ride PIN (docs/safety.md), or not; None follows the rider's standing choice.

    With `scheduled_for` the ride is booked ahead instead (docs/scheduling.md): quoted now under the policy
    in force, within the board's reservation rules (how far ahead, how close, how wide a pickup window),
    created `scheduled`, and dispatched later by dispatch/services/reservations.py. With `organisation_id`
    it is booked on that organisation's account (docs/organisations.md) by `booked_by_id` or
    `booked_by_key_id`, checked against the organisation's rules (backend/organisations/booking.py), and
    billed to it: no card is held and nothing is owed by the rider.

    With `estimate_id` the trip carries that estimate's quote (and its policy version): it must be the
    rider's own, unexpired, for the same places (within ESTIMATE_MATCH_TOLERANCE_M) and the same
    wheelchair flag. Without, the route is quoted now under the policy in force.
    Where the co-op takes cards, the quoted total plus the board's margin is authorised on the rider's
    card first (backend/cards/holds.py), and a trip is never created on a refused card.
    Raises PermissionDenied `rider_role_required`, Unprocessable `outside_service_area`,
    `estimate_not_found`, `estimate_expired`, `estimate_mismatch`, Conflict `trip_in_progress`, and
    PaymentRequired `payment_overdue`, `payment_method_required`, `payment_declined`,
    `payment_authentication_required`; for a booking ahead InvalidInput `pickup_window_invalid`,
    Unprocessable `scheduled_too_soon`, `scheduled_too_far_ahead`, Conflict `reservation_overlaps`; for an
    organisation's booking the refusals of `backend.organisations.booking.booking_check`.
    """
    booking = Booking(
        scheduled_for=scheduled_for,
        pickup_window_s=pickup_window_s,
        organisation_id=organisation_id,
        booked_by_id=booked_by_id,
        booked_by_key_id=booked_by_key_id,
        reference=(reference or "").strip(),
        series_id=series_id,
        occurrence_date=occurrence_date,
    )
    now = at or timezone.now()
    if not User.objects.filter(id=rider_id, is_active=True, is_rider=True).exists():
        raise PermissionDenied(gettext("Only a rider account can request trips."), code="rider_role_required")
    require_in_service_area(pickup=pickup, dropoff=dropoff)
    if estimate_id is not None:
        estimate = _estimate_for_request(
            rider_id=rider_id,
            estimate_id=estimate_id,
            pickup=pickup,
            dropoff=dropoff,
            wheelchair_accessible=wheelchair_accessible,
            now=now,
        )
        wav = estimate.wheelchair_accessible
        quoted = {
            "estimate": estimate,
            "policy_version": estimate.policy_version,
            "currency": estimate.currency,
            "fare_estimate_minor": estimate.fare_minor,
            "estimated_distance_m": estimate.distance_m,
            "estimated_duration_s": estimate.duration_s,
            "route_geometry": estimate.route_geometry,
            "router": estimate.router,
        }
    else:
        wav = bool(wheelchair_accessible)
        quote = route_quote(pickup=pickup, dropoff=dropoff, wheelchair_accessible=wav, at=now)
        quoted = {
            "estimate": None,
            "policy_version": quote.policy_version,
            "currency": quote.currency,
            "fare_estimate_minor": quote.fare_minor,
            "estimated_distance_m": quote.distance_m,
            "estimated_duration_s": quote.duration_s,
            "route_geometry": quote.route_geometry,
            "router": quote.route.router,
        }
    booked = _booking_fields(
        booking, rider_id=rider_id, pickup=pickup, dropoff=dropoff, wav=wav, now=now, quoted=quoted
    )
    booked["ride_pin"] = ride_pin_for_request(rider_id=rider_id, asked=ride_pin)
    # Who may see which trip stands in the way: the rider all of theirs, an organisation's booker only the
    # organisation's own (a stranger's schedule is never told to another organisation, docs/organisations.md).
    shown_to = _RefusalAudience(
        self_booked=booking.booked_by_key_id is None and booking.booked_by_id in (None, rider_id),
        organisation_id=booking.organisation_id,
    )
    if booking.scheduled_for is None:
        _refuse_if_trip_open(rider_id, shown_to=shown_to)
    else:
        _refuse_if_reservation_overlaps(
            rider_id,
            start=cast(datetime, booked["pickup_window_start"]),
            end=cast(datetime, booked["pickup_window_end"]),
            quoted=quoted,
            shown_to=shown_to,
        )
    paid_by_rider = booked["payer"] == TripPayer.RIDER
    if paid_by_rider:
        _refuse_if_overdue(rider_id)
    by_card = paid_by_rider and cards_in_use()
    hold_later = booking.scheduled_for is not None and booking.scheduled_for - now > RESERVATION_HOLD_AHEAD
    if by_card and hold_later:
        # Authorised when the pickup comes within RESERVATION_HOLD_AHEAD (reservation_holds.py); a card to
        # authorise then is needed now.
        card_on_file_require(rider_id=rider_id)
    hold = (
        hold_for_trip_request(
            rider_id=rider_id,
            amount_minor=_hold_amount(quoted, pickup=pickup, dropoff=dropoff, wav=wav),
            currency=quoted["currency"],
        )
        if by_card and not hold_later
        else None
    )
    try:
        trip = _trip_create(
            rider_id=rider_id,
            pickup=pickup,
            dropoff=dropoff,
            wav=wav,
            now=now,
            quoted=quoted,
            booked=booked,
            hold=hold,
            confirm=booking.scheduled_for is not None
            and booking.booked_by_key_id is None
            and booking.booked_by_id in (None, rider_id),
        )
    except BaseException:
        if hold is not None:
            # Nothing was taken; let go at once of the money held for a trip that does not exist (the row
            # may roll back with the caller's transaction, so from the copy in hand, not by a task).
            hold_void(hold=hold)
        raise
    return trip


def _booking_fields(
    booking: Booking,
    *,
    rider_id: uuid.UUID,
    pickup: Place,
    dropoff: Place,
    wav: bool,
    now: datetime,
    quoted: dict[str, object],
) -> dict[str, object]:
    """The trip's reservation and organisation fields, after the board's and the organisation's rules."""
    fields: dict[str, object] = {
        "status": TripStatus.REQUESTED,
        "payer": TripPayer.RIDER,
        "reference": booking.reference[:80],
        "series_id": booking.series_id,
        "occurrence_date": booking.occurrence_date,
        "booked_by_id": booking.booked_by_id if booking.booked_by_id != rider_id else None,
        "booked_by_key_id": booking.booked_by_key_id,
    }
    if booking.scheduled_for is not None:
        rules = policy_of(quoted["policy_version"]).reservations
        start, end = reservation_window(
            rules, scheduled_for=booking.scheduled_for, window_s=booking.pickup_window_s, now=now
        )
        fields.update(
            status=TripStatus.SCHEDULED,
            scheduled_for=booking.scheduled_for,
            pickup_window_start=start,
            pickup_window_end=end,
            release_at=max(now, start - timedelta(seconds=FIRST_RELEASE_LEAD_S + rules.dispatch_margin_s)),
        )
    if booking.organisation_id is not None:
        booking_check(
            organisation_id=booking.organisation_id,
            rider_id=rider_id,
            booked_by_id=booking.booked_by_id,
            booked_by_key_id=booking.booked_by_key_id,
            pickup=pickup.as_point(),
            dropoff=dropoff.as_point(),
            pickup_at=booking.scheduled_for or now,
            fare_minor=int(quoted["fare_estimate_minor"]),
            wheelchair_accessible=wav,
            reference=booking.reference,
        )
        fields.update(organisation_id=booking.organisation_id, payer=TripPayer.ORGANISATION)
    elif booking.booked_by_id not in (None, rider_id) or booking.booked_by_key_id is not None:
        raise PermissionDenied(
            gettext("Only the rider may book their own rides."), code="booking_not_allowed"
        )
    return fields


def reservation_window(
    rules: ReservationRules, *, scheduled_for: datetime, window_s: int | None, now: datetime
) -> tuple[datetime, datetime]:
    """The pickup window of a ride booked ahead for `scheduled_for`, within the board's rules.

    Raises InvalidInput `scheduled_for_invalid`, `pickup_window_invalid`; Unprocessable
    `scheduled_too_soon`, `scheduled_too_far_ahead`."""
    if scheduled_for.tzinfo is None:
        raise InvalidInput(
            gettext("scheduled_for needs a time zone offset (e.g. 2027-03-01T07:30:00-05:00)."),
            code="scheduled_for_invalid",
        )
    half = rules.default_window_s if window_s is None else window_s
    if isinstance(half, bool) or not isinstance(half, int) or not 0 <= half <= rules.max_window_s:
        raise InvalidInput(
            gettext("The pickup window is 0 to %(max_window_s)s seconds either side of the pickup time.")
            % {"max_window_s": rules.max_window_s},
            code="pickup_window_invalid",
            details={"max_window_s": rules.max_window_s},
        )
    earliest = now + timedelta(seconds=rules.min_lead_s)
    if scheduled_for < earliest:
        raise Unprocessable(
            gettext("Rides are booked at least %(minutes)s minutes ahead; request one now instead.")
            % {"minutes": rules.min_lead_s // 60},
            code="scheduled_too_soon",
            details={"earliest": earliest.isoformat(), "min_lead_s": rules.min_lead_s},
        )
    latest = now + timedelta(days=rules.max_ahead_days)
    if scheduled_for > latest:
        raise Unprocessable(
            gettext("Rides are booked at most %(max_ahead_days)s days ahead.")
            % {"max_ahead_days": rules.max_ahead_days},
            code="scheduled_too_far_ahead",
            details={"latest": latest.isoformat(), "max_ahead_days": rules.max_ahead_days},
        )
    window = timedelta(seconds=half)
    return scheduled_for - window, scheduled_for + window


@dataclass(frozen=True)
class _RefusalAudience:
    """Who reads a refusal that names another trip of the rider."""

    self_booked: bool
    organisation_id: uuid.UUID | None

    def may_see(self, trip_organisation_id: uuid.UUID | None) -> bool:
        return self.self_booked or (
            self.organisation_id is not None and trip_organisation_id == self.organisation_id
        )


_SELF = _RefusalAudience(self_booked=True, organisation_id=None)


def _refuse_if_reservation_overlaps(
    rider_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    quoted: dict[str, object],
    shown_to: _RefusalAudience = _SELF,
) -> None:
    """Conflict `reservation_overlaps` when the rider already has a reservation whose ride could still be
    under way in this one's window (a booking made twice, or two that cannot both happen). The clashing
    trip is named only to whom may see it."""
    ride = timedelta(seconds=int(quoted["estimated_duration_s"]))
    clash = (
        Trip.objects.filter(
            rider_id=rider_id,
            status__in=sorted(UPCOMING_STATUSES),
            pickup_window_start__lt=end + ride,
            pickup_window_end__gt=start - ride,
        )
        .values_list("id", "scheduled_for", "organisation_id")
        .first()
    )
    if clash is not None:
        shown = shown_to.may_see(clash[2])
        raise Conflict(
            gettext("This rider already has a ride booked at that time."),
            code="reservation_overlaps",
            details={"trip_id": str(clash[0]), "scheduled_for": clash[1].isoformat()} if shown else {},
        )


def trip_hold_amount(trip: Trip) -> int:
    """What a card hold for `trip` covers, from its quote (a reservation's hold is placed after booking)."""
    quoted = {
        "policy_version": trip.policy_version,
        "fare_estimate_minor": trip.fare_estimate_minor,
        "route_geometry": trip.route_geometry,
    }
    pickup = Place(lat=trip.pickup.y, lng=trip.pickup.x)
    dropoff = Place(lat=trip.dropoff.y, lng=trip.dropoff.x)
    return _hold_amount(quoted, pickup=pickup, dropoff=dropoff, wav=trip.wheelchair_accessible)


def _hold_amount(quoted: dict[str, object], *, pickup: Place, dropoff: Place, wav: bool) -> int:
    """What a card hold covers: the quoted fare and its pass-through fees, plus the board's margin."""
    policy = policy_of(quoted["policy_version"])
    charge = rider_charge(
        policy,
        fare_minor=quoted["fare_estimate_minor"],
        facts=fee_facts(
            policy=policy,
            pickup=pickup.as_point(),
            dropoff=dropoff.as_point(),
            route=quoted["route_geometry"],
            wheelchair_accessible=wav,
        ),
    )
    return authorization_amount(policy, quoted_total_minor=charge.total)


def _refuse_if_trip_open(
    rider_id: uuid.UUID, *, cause: Exception | None = None, shown_to: _RefusalAudience = _SELF
) -> None:
    """Conflict `trip_in_progress` when the rider has an open trip (checked before a card is held; the
    partial unique index decides a race, and its error comes here too). The open trip is named only to
    whom may see it."""
    open_trip = (
        Trip.objects.filter(rider_id=rider_id, status__in=[s.value for s in OPEN_STATUSES])
        .values_list("id", "organisation_id")
        .first()
    )
    if open_trip is not None:
        shown = shown_to.may_see(open_trip[1])
        raise Conflict(
            gettext("You already have a trip in progress.")
            if shown_to.self_booked
            else gettext("This rider is on a ride now."),
            code="trip_in_progress",
            details={"trip_id": str(open_trip[0])} if shown else {},
        ) from cause


def _refuse_if_overdue(rider_id: uuid.UUID) -> None:
    overdue = list(overdue_captures(rider_id=rider_id).values_list("amount_minor", "currency"))
    if overdue:
        raise PaymentRequired(
            gettext("A charge of an earlier trip could not be collected; pay it before requesting a trip."),
            code="payment_overdue",
            details={"amount": sum(amount for amount, _ in overdue), "currency": overdue[0][1]},
        )


def _trip_create(
    *,
    rider_id: uuid.UUID,
    pickup: Place,
    dropoff: Place,
    wav: bool,
    now: datetime,
    quoted: dict[str, object],
    booked: dict[str, object],
    hold: CardHold | None,
    confirm: bool,
) -> Trip:
    scheduled = booked["status"] == TripStatus.SCHEDULED
    dispatch_fields = (
        {}
        if scheduled
        else {
            "search_deadline": now + timedelta(seconds=settings.ROCHDALE_SEARCH_BUDGET_S),
            "next_dispatch_at": now,
        }
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                trip = Trip.objects.create(
                    rider_id=rider_id,
                    pickup=pickup.as_point(),
                    dropoff=dropoff.as_point(),
                    wheelchair_accessible=wav,
                    requested_at=now,
                    **dispatch_fields,
                    **booked,
                    **quoted,
                )
        except IntegrityError as exc:
            name = _constraint_name(exc)
            if name == "one_open_trip_per_rider":
                shown_to = _RefusalAudience(
                    self_booked=booked["booked_by_id"] is None and booked["booked_by_key_id"] is None,
                    organisation_id=cast("uuid.UUID | None", booked.get("organisation_id")),
                )
                _refuse_if_trip_open(rider_id, cause=exc, shown_to=shown_to)
            elif name == "one_trip_per_series_occurrence":
                raise Conflict(
                    gettext("This occurrence of the recurring ride is booked already."),
                    code="occurrence_already_booked",
                ) from exc
            raise
        TripEvent.objects.create(
            trip=trip,
            status=str(booked["status"]),
            at=now,
            actor_id=booked["booked_by_id"] or rider_id,
            details={"organisation_id": str(trip.organisation_id)} if trip.organisation_id else {},
        )
        hold_attach(hold=hold, trip_id=trip.id)
        trip = trip_load(trip.id)
        push_trip_updated(trip)
        trip_id = trip.id
        if scheduled:
            if confirm:
                notify(
                    user_id=rider_id,
                    event="reservation_confirmed",
                    context=reservation_context(trip),
                    dedup_key=f"reservation_confirmed:{trip_id}",
                )
        else:
            transaction.on_commit(
                lambda: trip_requested(
                    trip_id=trip_id, pickup=(pickup.lat, pickup.lng), wheelchair_accessible=wav
                ),
                robust=True,
            )
    return trip


def _party_role(trip: Trip, user_id: uuid.UUID | None) -> CancelledBy | None:
    if user_id is not None and trip.rider_id == user_id:
        return "rider"
    if user_id is not None and trip.driver_id == user_id:
        return "driver"
    return None


@bound_to_trip  # its log lines name the trip
def trip_cancel(
    *,
    trip_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    cancelled_by: CancelledBy | None = None,
    reason: str = "",
    organisation_id: uuid.UUID | None = None,
) -> Trip:
    """Cancel a trip that has not started, as its rider, its driver or the system.

    With `organisation_id` the organisation that booked the trip cancels it, on its rider's side: the caller
    has already checked that the actor (or the API key, `actor_id` None) may act for the organisation; a
    trip the organisation did not book answers NotFound like one that does not exist. A reservation
    (`scheduled`) may be cancelled the same way; the driver who claimed it is told.

    `cancelled_by` defaults to the actor's part in the trip. A rider cancelling more than the policy's
    `free_cancellation_s` after a driver was assigned pays the cancellation fee (posted to the ledger in the
    same transaction). Open offers for the trip are withdrawn. The system (staff closing a trip whose
    driver vanished, `dispatch/services/abandoned.py`) may also cancel an in-progress trip, without a fee
    (`dispatch.state.SYSTEM_TRANSITIONS`); `actor_id` is then the staff member, or None for a rule.
    Raises NotFound `trip_not_found` (also for a trip that is not the actor's) and Conflict
    `trip_not_cancellable` (in progress, completed, or otherwise ended).
    """
    reason = (reason or "")[:CANCEL_REASON_MAX_LENGTH]
    with transaction.atomic():
        trip = Trip.objects.select_for_update().filter(id=trip_id).first()
        role = _party_role(trip, actor_id) if trip is not None else None
        if organisation_id is not None and trip is not None:
            role = "rider" if trip.organisation_id == organisation_id else None
        if trip is None or (cancelled_by != TripCancelledBy.SYSTEM and role is None):
            raise NotFound(gettext("No such trip."), code="trip_not_found")
        if cancelled_by is None:
            cancelled_by = role
        elif cancelled_by != TripCancelledBy.SYSTEM and cancelled_by != role:
            raise PermissionDenied(
                gettext("Only the trip's %(cancelled_by)s may cancel it as %(cancelled_by)s.")
                % {"cancelled_by": cancelled_by}
            )
        by_system = cancelled_by == TripCancelledBy.SYSTEM
        if TripStatus(trip.status) not in allowed_sources(TripStatus.CANCELLED, by_system=by_system):
            raise Conflict(
                gettext("A trip that is %(status)s can no longer be cancelled.") % {"status": trip.status},
                code="trip_not_cancellable",
                details={"status": trip.status},
            )
        now = timezone.now()
        guard = {"rider_id": actor_id} if cancelled_by == "rider" else {}
        if organisation_id is not None:
            guard = {"organisation_id": organisation_id}
        if cancelled_by == "driver":
            guard = {"driver_id": actor_id}
        try:
            cancelled = trip_transition(
                trip_id=trip.id,
                to=TripStatus.CANCELLED,
                actor_id=actor_id,
                guard=guard,
                fields={
                    "cancelled_by": cancelled_by,
                    "cancel_reason": reason,
                    **cancellation_fields(trip=trip, cancelled_by=cancelled_by, at=now),
                },
                details={"cancelled_by": cancelled_by, "reason": reason},
                by_system=by_system,
            )
        except InvalidTransition as exc:
            raise Conflict(
                gettext("This trip can no longer be cancelled."),
                code="trip_not_cancellable",
                details=exc.details,
            ) from exc
        post_cancellation_fee(trip=cancelled)
        offers_withdraw_for_trip(trip_id=trip.id)
        if trip.status == TripStatus.SCHEDULED and trip.claimed_by_id is not None:
            notify(
                user_id=trip.claimed_by_id,
                event="reservation_cancelled",
                context={**reservation_context(trip), "detail": "You need not go to this pickup."},
                dedup_key=f"reservation_cancelled:{trip.id}:driver",
            )
        if cancelled.driver_id is not None:
            # The driver is free again and stops sharing their location with this rider, at once rather
            # than at the presence sweeper's next pass.
            driver_id, ended_trip_id = cancelled.driver_id, cancelled.id
            transaction.on_commit(lambda: live.driver_release(driver_id=driver_id, trip_id=ended_trip_id))
    return cancelled


@bound_to_trip  # its log lines name the trip
def trip_rate(*, trip_id: uuid.UUID, author_id: uuid.UUID, stars: int, comment: str = "") -> Rating:
    """The trip's rider rates the driver, or its driver rates the rider: once each, after completion.

    Raises NotFound `trip_not_found`, InvalidInput `stars_out_of_range`, Conflict `trip_not_completed`
    and `already_rated`."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidInput(gettext("Stars are a whole number from 1 to 5."), code="stars_out_of_range")
    trip = trip_get_for(user_id=author_id, trip_id=trip_id)
    role = _party_role(trip, author_id)
    if trip.status != TripStatus.COMPLETED:
        raise Conflict(
            gettext("A trip can be rated once it is completed."),
            code="trip_not_completed",
            details={"status": trip.status},
        )
    try:
        with transaction.atomic():
            return Rating.objects.create(
                trip_id=trip.id,
                author_id=author_id,
                author_role=RatingRole.RIDER if role == "rider" else RatingRole.DRIVER,
                stars=stars,
                comment=(comment or "")[:RATING_COMMENT_MAX_LENGTH],
            )
    except IntegrityError as exc:
        if _constraint_name(exc) != "one_rating_per_party_per_trip":
            raise
        raise Conflict(gettext("You have already rated this trip."), code="already_rated") from exc


@bound_to_trip  # its log lines name the trip
def trip_tip(*, trip_id: uuid.UUID, rider_id: uuid.UUID, amount_minor: int, currency: str) -> Tip:
    """The trip's rider tips its driver; all of it goes to the driver (ledger entry `tip:{id}`).

    Tips on one trip add up to at most TIP_MAX_SHARE_OF_FARE of its fare. Raises NotFound
    `trip_not_found`, PermissionDenied `only_rider_may_tip`, Conflict `trip_not_completed`, InvalidInput
    `tip_amount_invalid`, Unprocessable `currency_mismatch` and `tip_too_large`."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 1:
        raise InvalidInput(gettext("A tip is a positive amount in minor units."), code="tip_amount_invalid")
    with transaction.atomic():
        visible = trip_get_for(user_id=rider_id, trip_id=trip_id)
        trip = Trip.objects.select_for_update().get(id=visible.id)
        if trip.rider_id != rider_id:
            raise PermissionDenied(
                gettext("Only the trip's rider can tip its driver."), code="only_rider_may_tip"
            )
        if trip.status != TripStatus.COMPLETED or trip.driver_id is None or trip.fare_minor is None:
            raise Conflict(
                gettext("A trip can be tipped once it is completed."),
                code="trip_not_completed",
                details={"status": trip.status},
            )
        if currency != trip.currency:
            raise Unprocessable(
                gettext("This trip is paid in %(currency)s.") % {"currency": trip.currency},
                code="currency_mismatch",
                details={"currency": trip.currency},
            )
        already = Tip.objects.filter(trip_id=trip.id).aggregate(total=Sum("amount_minor"))["total"] or 0
        room = trip.fare_minor * TIP_MAX_SHARE_OF_FARE - already
        if amount_minor > room:
            raise Unprocessable(
                gettext("Tips on a trip add up to at most its fare."),
                code="tip_too_large",
                details={"max": money(max(room, 0), trip.currency)},
            )
        tip = Tip.objects.create(
            trip_id=trip.id,
            rider_id=rider_id,
            driver_id=trip.driver_id,
            amount_minor=amount_minor,
            currency=trip.currency,
        )
        post_tip(tip=tip)
    return tip
