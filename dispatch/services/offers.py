"""Offers: one trip offered to one driver until `expires_at`; accepted, declined, expired or withdrawn.

The database decides every race: accepting is one conditional UPDATE (`status='open' AND expires_at > now()`
for this driver), so of any number of concurrent accepts exactly one wins, and a late or foreign one gets
`offer_not_open`. Pushes and the dispatch worker's events go out after commit.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from backend import metrics
from backend.accounts.models import Vehicle
from backend.errors import Conflict
from backend.fares.money import money
from backend.fares.pricing import driver_pay
from backend.fares.selectors import policy_of
from backend.redis import get_redis
from backend.request_context import bound_to_trip
from backend.timestamps import wire_timestamp
from dispatch import live
from dispatch.models import Offer, OfferStatus, Trip
from dispatch.realtime import push_to_user
from dispatch.services.booking_notices import driver_assigned_notify
from dispatch.services.transitions import trip_transition
from dispatch.state import TripStatus

logger = logging.getLogger(__name__)


def offer_document(offer: Offer, trip: Trip | None = None) -> dict[str, Any]:
    """The contract's offer (as pushed in the `offer` frame and returned by `GET /driver/state`)."""
    trip = trip or offer.trip
    pay = driver_pay(
        policy_of(trip.policy_version),
        fare_minor=trip.fare_estimate_minor,
        distance_m=trip.estimated_distance_m,
        duration_s=trip.estimated_duration_s,
        wheelchair_accessible=trip.wheelchair_accessible,
    )
    return {
        "offer_id": str(offer.id),
        "trip_id": str(trip.id),
        "pickup": {"lat": trip.pickup.y, "lng": trip.pickup.x},
        "dropoff": {"lat": trip.dropoff.y, "lng": trip.dropoff.x},
        "pickup_distance_m": offer.pickup_distance_m,
        "pickup_eta_s": offer.pickup_eta_s,
        "trip_distance_m": trip.estimated_distance_m,
        "trip_duration_s": trip.estimated_duration_s,
        "fare": money(trip.fare_estimate_minor, trip.currency),
        "driver_pay": money(pay.pay, trip.currency),
        "wheelchair_accessible": trip.wheelchair_accessible,
        "expires_at": wire_timestamp(offer.expires_at),
    }


def offer_history_item(offer: Offer) -> dict[str, Any]:
    """One line of a driver's own offer history, with why they were chosen."""
    return {
        "offer_id": str(offer.id),
        "trip_id": str(offer.trip_id),
        "status": offer.status,
        "created_at": wire_timestamp(offer.created_at),
        "expires_at": wire_timestamp(offer.expires_at),
        "responded_at": wire_timestamp(offer.responded_at) if offer.responded_at else None,
        "pickup_distance_m": offer.pickup_distance_m,
        "pickup_eta_s": offer.pickup_eta_s,
        "rank": offer.rank,
        "candidates_considered": offer.candidates_considered,
        "idle_s": offer.idle_s,
        "dispatch_policy_version": offer.dispatch_policy_version,
        "reason": offer.reason,
    }


def open_offer_for_driver(*, driver_id: uuid.UUID) -> Offer | None:
    return (
        Offer.objects.select_related("trip", "trip__policy_version")
        .filter(driver_id=driver_id, status=OfferStatus.OPEN, expires_at__gt=timezone.now())
        .first()
    )


def _not_open() -> Conflict:
    return Conflict(gettext("This offer is no longer open to you."), code="offer_not_open")


_CLOSE_OFFER = (
    "UPDATE dispatch_offer SET status = %s, responded_at = %s "
    "WHERE id = %s AND status = 'open' AND {condition} RETURNING trip_id, driver_id"
)


def _close_offer(
    *, offer_id: uuid.UUID, to: OfferStatus, now: datetime, driver_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Close an open offer in one conditional UPDATE; returns its (trip id, driver id), or None when it was
    not open (for `driver_id`: not theirs, or past its expiry; for nobody: not yet expired).

    The RETURNING clause saves the read-back every answer to an offer would otherwise need."""
    if driver_id is not None:
        condition, extra = "driver_id = %s AND expires_at > %s", [driver_id, now]
    else:
        condition, extra = "expires_at <= %s", [now]
    with connection.cursor() as cursor:
        cursor.execute(_CLOSE_OFFER.format(condition=condition), [to.value, now, offer_id, *extra])
        row = cursor.fetchone()
    if row:
        transaction.on_commit(lambda: metrics.observe_offer(to.value))
    return (row[0], row[1]) if row else None


def offer_accept(*, driver_id: uuid.UUID, offer_id: uuid.UUID) -> Trip:
    """Take the offered trip. Exactly one accept of an open, unexpired offer of this driver wins."""
    now = timezone.now()
    try:
        with transaction.atomic():
            won = _close_offer(offer_id=offer_id, to=OfferStatus.ACCEPTED, now=now, driver_id=driver_id)
            if won is None:
                raise _not_open()
            trip_id = won[0]
            active = Vehicle.objects.filter(driver_id=driver_id, is_active=True)  # one at most, by constraint
            vehicle_id = active.values_list("id", flat=True).first()
            trip = trip_transition(
                trip_id=trip_id,
                to=TripStatus.ASSIGNED,
                actor_id=driver_id,
                guard={"driver__isnull": True},
                fields={"driver_id": driver_id, "vehicle_id": vehicle_id, "next_dispatch_at": None},
                details={"offer_id": str(offer_id)},
            )
            driver_assigned_notify(trip=trip)
    except IntegrityError as exc:  # the driver already has an active trip (one_active_trip_per_driver)
        logger.info("accept of %s refused by a constraint: %s", offer_id, exc)
        raise _not_open() from exc
    except Conflict as exc:
        if exc.code == "offer_not_open":
            raise
        raise _not_open() from exc
    transaction.on_commit(lambda: mirror_assigned(driver_id, trip))
    return trip


def mirror_assigned(driver_id: uuid.UUID, trip: Trip) -> None:
    """Redis and the dispatch worker learn the driver holds `trip` (call after commit of the assignment:
    an accepted offer, or a reservation going to the driver who claimed it)."""
    client = get_redis()
    pipe = client.pipeline(transaction=True)
    pipe.hset(live.driver_key(driver_id), mapping={"trip": str(trip.id), "rider": str(trip.rider_id)})
    pipe.zrem(live.available_key(), str(driver_id))
    pipe.zrem(live.available_key(wav=True), str(driver_id))
    pipe.sadd(live.on_trip_key(), str(driver_id))
    pipe.execute()
    live.post_event("accept", d=driver_id, trip=trip.id)


def offer_decline(*, driver_id: uuid.UUID, offer_id: uuid.UUID) -> None:
    """Turn the offer down; the trip goes to the next candidate at once."""
    now = timezone.now()
    with transaction.atomic():
        declined = _close_offer(offer_id=offer_id, to=OfferStatus.DECLINED, now=now, driver_id=driver_id)
        if declined is None:
            raise _not_open()
        trip_id = declined[0]
        Trip.objects.filter(id=trip_id, status=TripStatus.REQUESTED).update(next_dispatch_at=now)
    transaction.on_commit(lambda: live.post_event("decline", d=driver_id, trip=trip_id, offer=offer_id))


def offer_expire(*, offer_id: uuid.UUID) -> uuid.UUID | None:
    """Close an offer whose time ran out. Returns its trip id when this call expired it (None when it had
    already been answered, withdrawn or expired by someone else)."""
    now = timezone.now()
    with transaction.atomic():
        expired = _close_offer(offer_id=offer_id, to=OfferStatus.EXPIRED, now=now)
        if expired is None:
            return None
        trip_id, driver_id = expired
        Trip.objects.filter(id=trip_id, status=TripStatus.REQUESTED).update(next_dispatch_at=now)
        push_to_user(driver_id, {"type": "offer.expired", "offer_id": str(offer_id)})
    return trip_id


@bound_to_trip  # its log lines name the trip
def offers_withdraw_for_trip(*, trip_id: uuid.UUID) -> None:
    """Withdraw the trip's open offer (the rider cancelled); its driver gets `offer.withdrawn` on commit."""
    now = timezone.now()
    with transaction.atomic():
        withdrawn = list(
            Offer.objects.select_for_update()
            .filter(trip_id=trip_id, status=OfferStatus.OPEN)
            .values_list("id", "driver_id")
        )
        if not withdrawn:
            return
        Offer.objects.filter(id__in=[offer_id for offer_id, _ in withdrawn]).update(
            status=OfferStatus.WITHDRAWN, responded_at=now
        )
        for offer_id, driver_id in withdrawn:
            push_to_user(driver_id, {"type": "offer.withdrawn", "offer_id": str(offer_id)})
        transaction.on_commit(lambda: metrics.observe_offer(OfferStatus.WITHDRAWN.value, len(withdrawn)))
    transaction.on_commit(
        lambda: [
            live.post_event("withdraw", d=driver_id, trip=trip_id, offer=offer_id)
            for offer_id, driver_id in withdrawn
        ]
    )
