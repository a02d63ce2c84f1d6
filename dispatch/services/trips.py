"""A rider's trip from request to rating: request, cancel, rate, tip.

Every status move goes through `trip_transition` (the only writer of Trip.status); money goes through
dispatch/money/settlement.py in the same transaction as the move. The database decides races: one open trip
per rider is a partial unique index, one rating per party per trip a unique constraint, and a cancellation
or tip locks the trip row so the fee and the tip cap are decided on the state they change.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from backend.accounts.models import User
from backend.cards.holds import cards_in_use, hold_attach, hold_for_trip_request, hold_void
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
from backend.fares.pricing import authorization_amount, rider_charge
from backend.fares.selectors import policy_of
from dispatch import live
from dispatch.matching.geo import haversine_m
from dispatch.models import FareEstimate, Rating, RatingRole, Tip, Trip, TripCancelledBy, TripEvent
from dispatch.money.fees import fee_facts
from dispatch.money.settlement import cancellation_fields, post_cancellation_fee, post_tip
from dispatch.selectors import trip_get_for, trip_load
from dispatch.services.dispatching import trip_requested
from dispatch.services.estimates import Place, require_in_service_area, route_quote
from dispatch.services.offers import offers_withdraw_for_trip
from dispatch.services.transitions import push_trip_updated, trip_transition
from dispatch.state import OPEN_STATUSES, TripStatus, allowed_sources

logger = logging.getLogger(__name__)

# A trip naming an estimate must start and end where the estimate did, give or take GPS jitter.
ESTIMATE_MATCH_TOLERANCE_M = 10.0
CANCEL_REASON_MAX_LENGTH = 500
RATING_COMMENT_MAX_LENGTH = 1000
# A rider may tip in total up to the whole fare of the trip (100 %): generous, and bounded, so a mistyped
# amount cannot move an absurd sum. See docs/api.md.
TIP_MAX_SHARE_OF_FARE = 1

CancelledBy = Literal["rider", "driver", "system"]


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
            "This estimate does not exist or is not yours; ask for a new one.", code="estimate_not_found"
        )
    if estimate.expires_at <= now:
        raise Unprocessable(
            "This estimate has expired; ask for a new one.",
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
            "This trip is not the one the estimate was for; ask for a new estimate.",
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
) -> Trip:
    """Request a trip for a rider; dispatch starts once the transaction commits.

    With `estimate_id` the trip carries that estimate's quote (and its policy version): it must be the
    rider's own, unexpired, for the same places (within ESTIMATE_MATCH_TOLERANCE_M) and the same
    wheelchair flag. Without, the route is quoted now under the policy in force.
    Where the co-op takes cards, the quoted total plus the board's margin is authorised on the rider's
    card first (backend/cards/holds.py), and a trip is never created on a refused card.
    Raises PermissionDenied `rider_role_required`, Unprocessable `outside_service_area`,
    `estimate_not_found`, `estimate_expired`, `estimate_mismatch`, Conflict `trip_in_progress`, and
    PaymentRequired `payment_overdue`, `payment_method_required`, `payment_declined`,
    `payment_authentication_required`.
    """
    now = at or timezone.now()
    if not User.objects.filter(id=rider_id, is_active=True, is_rider=True).exists():
        raise PermissionDenied("Only a rider account can request trips.", code="rider_role_required")
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
    _refuse_if_trip_open(rider_id)
    _refuse_if_overdue(rider_id)
    hold = (
        hold_for_trip_request(
            rider_id=rider_id,
            amount_minor=_hold_amount(quoted, pickup=pickup, dropoff=dropoff, wav=wav),
            currency=quoted["currency"],
        )
        if cards_in_use()
        else None
    )
    try:
        trip = _trip_create(
            rider_id=rider_id, pickup=pickup, dropoff=dropoff, wav=wav, now=now, quoted=quoted, hold=hold
        )
    except BaseException:
        if hold is not None:
            # Nothing was taken; let go at once of the money held for a trip that does not exist (the row
            # may roll back with the caller's transaction, so from the copy in hand, not by a task).
            hold_void(hold=hold)
        raise
    return trip


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


def _refuse_if_trip_open(rider_id: uuid.UUID, *, cause: Exception | None = None) -> None:
    """Conflict `trip_in_progress` when the rider has an open trip (checked before a card is held; the
    partial unique index decides a race, and its error comes here too)."""
    open_trip = (
        Trip.objects.filter(rider_id=rider_id, status__in=[s.value for s in OPEN_STATUSES])
        .values_list("id", flat=True)
        .first()
    )
    if open_trip is not None:
        raise Conflict(
            "You already have a trip in progress.",
            code="trip_in_progress",
            details={"trip_id": str(open_trip)},
        ) from cause


def _refuse_if_overdue(rider_id: uuid.UUID) -> None:
    overdue = list(overdue_captures(rider_id=rider_id).values_list("amount_minor", "currency"))
    if overdue:
        raise PaymentRequired(
            "A charge of an earlier trip could not be collected; pay it before requesting a trip.",
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
    hold: CardHold | None,
) -> Trip:
    with transaction.atomic():
        try:
            with transaction.atomic():
                trip = Trip.objects.create(
                    rider_id=rider_id,
                    status=TripStatus.REQUESTED,
                    pickup=pickup.as_point(),
                    dropoff=dropoff.as_point(),
                    wheelchair_accessible=wav,
                    requested_at=now,
                    search_deadline=now + timedelta(seconds=settings.ROCHDALE_SEARCH_BUDGET_S),
                    next_dispatch_at=now,
                    **quoted,
                )
        except IntegrityError as exc:
            if _constraint_name(exc) != "one_open_trip_per_rider":
                raise
            _refuse_if_trip_open(rider_id, cause=exc)
            raise
        TripEvent.objects.create(trip=trip, status=TripStatus.REQUESTED.value, at=now, actor_id=rider_id)
        hold_attach(hold=hold, trip_id=trip.id)
        trip = trip_load(trip.id)
        push_trip_updated(trip)
        trip_id = trip.id
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


def trip_cancel(
    *,
    trip_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    cancelled_by: CancelledBy | None = None,
    reason: str = "",
) -> Trip:
    """Cancel a trip that has not started, as its rider, its driver or the system.

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
        if trip is None or (cancelled_by != TripCancelledBy.SYSTEM and role is None):
            raise NotFound("No such trip.", code="trip_not_found")
        if cancelled_by is None:
            cancelled_by = role
        elif cancelled_by != TripCancelledBy.SYSTEM and cancelled_by != role:
            raise PermissionDenied(f"Only the trip's {cancelled_by} may cancel it as {cancelled_by}.")
        by_system = cancelled_by == TripCancelledBy.SYSTEM
        if TripStatus(trip.status) not in allowed_sources(TripStatus.CANCELLED, by_system=by_system):
            raise Conflict(
                f"A trip that is {trip.status} can no longer be cancelled.",
                code="trip_not_cancellable",
                details={"status": trip.status},
            )
        now = timezone.now()
        guard = {"rider_id": actor_id} if cancelled_by == "rider" else {}
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
                "This trip can no longer be cancelled.", code="trip_not_cancellable", details=exc.details
            ) from exc
        post_cancellation_fee(trip=cancelled)
        offers_withdraw_for_trip(trip_id=trip.id)
        if cancelled.driver_id is not None:
            # The driver is free again and stops sharing their location with this rider, at once rather
            # than at the presence sweeper's next pass.
            driver_id, ended_trip_id = cancelled.driver_id, cancelled.id
            transaction.on_commit(lambda: live.driver_release(driver_id=driver_id, trip_id=ended_trip_id))
    return cancelled


def trip_rate(*, trip_id: uuid.UUID, author_id: uuid.UUID, stars: int, comment: str = "") -> Rating:
    """The trip's rider rates the driver, or its driver rates the rider: once each, after completion.

    Raises NotFound `trip_not_found`, InvalidInput `stars_out_of_range`, Conflict `trip_not_completed`
    and `already_rated`."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidInput("Stars are a whole number from 1 to 5.", code="stars_out_of_range")
    trip = trip_get_for(user_id=author_id, trip_id=trip_id)
    role = _party_role(trip, author_id)
    if trip.status != TripStatus.COMPLETED:
        raise Conflict(
            "A trip can be rated once it is completed.",
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
        raise Conflict("You have already rated this trip.", code="already_rated") from exc


def trip_tip(*, trip_id: uuid.UUID, rider_id: uuid.UUID, amount_minor: int, currency: str) -> Tip:
    """The trip's rider tips its driver; all of it goes to the driver (ledger entry `tip:{id}`).

    Tips on one trip add up to at most TIP_MAX_SHARE_OF_FARE of its fare. Raises NotFound
    `trip_not_found`, PermissionDenied `only_rider_may_tip`, Conflict `trip_not_completed`, InvalidInput
    `tip_amount_invalid`, Unprocessable `currency_mismatch` and `tip_too_large`."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 1:
        raise InvalidInput("A tip is a positive amount in minor units.", code="tip_amount_invalid")
    with transaction.atomic():
        visible = trip_get_for(user_id=rider_id, trip_id=trip_id)
        trip = Trip.objects.select_for_update().get(id=visible.id)
        if trip.rider_id != rider_id:
            raise PermissionDenied("Only the trip's rider can tip its driver.", code="only_rider_may_tip")
        if trip.status != TripStatus.COMPLETED or trip.driver_id is None or trip.fare_minor is None:
            raise Conflict(
                "A trip can be tipped once it is completed.",
                code="trip_not_completed",
                details={"status": trip.status},
            )
        if currency != trip.currency:
            raise Unprocessable(
                f"This trip is paid in {trip.currency}.",
                code="currency_mismatch",
                details={"currency": trip.currency},
            )
        already = Tip.objects.filter(trip_id=trip.id).aggregate(total=Sum("amount_minor"))["total"] or 0
        room = trip.fare_minor * TIP_MAX_SHARE_OF_FARE - already
        if amount_minor > room:
            raise Unprocessable(
                "Tips on a trip add up to at most its fare.",
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
