"""The single write path for a trip's status (the table lives in dispatch/state.py)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.cards.holds import cards_in_use
from backend.cards.tasks import release_trip_hold
from backend.errors import InvalidTransition, NotFound
from backend.request_context import bound_to_trip
from dispatch.models import Trip, TripEvent
from dispatch.realtime import push_to_user
from dispatch.selectors import trip_load
from dispatch.serializers import trip_for
from dispatch.state import FINAL_STATUSES, TripStatus, allowed_sources

_STAMPS = {
    TripStatus.ASSIGNED: "assigned_at",
    TripStatus.ARRIVED: "arrived_at",
    TripStatus.IN_PROGRESS: "started_at",
    TripStatus.COMPLETED: "completed_at",
}


@bound_to_trip  # its log lines name the trip
def trip_transition(
    *,
    trip_id: uuid.UUID,
    to: TripStatus,
    actor_id: uuid.UUID | None = None,
    guard: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    by_system: bool = False,
) -> Trip:
    """Move a trip to `to` if, and only if, its current status allows it, in one guarded UPDATE.

    `by_system` also allows the moves only the system makes (`dispatch.state.SYSTEM_TRANSITIONS`); riders'
    and drivers' paths never pass it.

    `guard` adds conditions to that UPDATE (e.g. `{"driver_id": me}` so only the trip's driver moves it);
    `fields` are written in the same UPDATE. Writes a TripEvent and sends `trip.updated` to both parties
    after commit. Raises InvalidTransition when the trip is not in an allowed status (or the guard fails),
    and NotFound when it does not exist.
    """
    now = timezone.now()
    updates: dict[str, Any] = {"status": to.value, **(fields or {})}
    if to in _STAMPS:
        updates.setdefault(_STAMPS[to], now)
    if to in FINAL_STATUSES:
        updates.setdefault("ended_at", now)
        updates.setdefault("next_dispatch_at", None)
    # No savepoint when called inside a caller's transaction (as most are): a refused move changes nothing
    # and is raised after the block, so there is never anything to roll back to, and a move costs two
    # round trips fewer.
    with transaction.atomic(savepoint=False):
        moved = Trip.objects.filter(
            id=trip_id,
            status__in=[s.value for s in allowed_sources(to, by_system=by_system)],
            **(guard or {}),
        ).update(**updates)
        if moved:
            TripEvent.objects.create(
                trip_id=trip_id, status=to.value, at=now, actor_id=actor_id, details=details or {}
            )
            trip = trip_load(trip_id)
            push_trip_updated(trip)
            if to in FINAL_STATUSES and to != TripStatus.COMPLETED and cards_in_use():
                # An unfulfilled or cancelled trip lets go of its card hold, unless a cancellation fee is
                # to be captured from it (the fee's capture is written in this same transaction).
                ended = str(trip_id)
                transaction.on_commit(lambda: release_trip_hold.delay(ended), robust=True)
    if not moved:
        current = Trip.objects.filter(id=trip_id).values_list("status", flat=True).first()
        if current is None:
            raise NotFound(_("No such trip."), code="trip_not_found")
        raise InvalidTransition(
            _("A trip that is %(current)s cannot become %(value)s.")
            % {"current": current, "value": to.value},
            details={"from": current, "to": to.value},
        )
    return trip


def push_trip_updated(trip: Trip) -> None:
    """Send each party its own view of the trip, after commit (best effort)."""
    push_to_user(trip.rider_id, {"type": "trip.updated", "trip": trip_for(trip, viewer_id=trip.rider_id)})
    if trip.driver_id:
        push_to_user(
            trip.driver_id, {"type": "trip.updated", "trip": trip_for(trip, viewer_id=trip.driver_id)}
        )
