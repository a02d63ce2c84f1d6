"""The trip status machine, defined once.

Every move goes through `dispatch.services.transitions.trip_transition`, which applies it with a guarded
`UPDATE ... WHERE status IN (allowed sources)` and writes a TripEvent; the database refuses unknown statuses
with a check constraint. Nothing else writes `Trip.status`.

`TRANSITIONS` are the contract's moves, which a rider or driver may make. `SYSTEM_TRANSITIONS` add the moves
only the system makes (staff closing a trip whose driver vanished, `dispatch/services/abandoned.py`): a
contract extension, recorded in docs/api.md.

A ride booked ahead (docs/scheduling.md) starts `scheduled`: not open, so a rider may hold several
reservations and still ride now. Only the system moves it on: to `requested` when its dispatch is due, or
straight to `assigned` when the driver who claimed it is set off towards the pickup. Its rider (or the
organisation that booked it) and the system may cancel it.
"""

from __future__ import annotations

from enum import StrEnum


class TripStatus(StrEnum):
    SCHEDULED = "scheduled"
    REQUESTED = "requested"
    ASSIGNED = "assigned"
    ARRIVED = "arrived"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    UNFULFILLED = "unfulfilled"
    CANCELLED = "cancelled"


TRANSITIONS: dict[TripStatus, frozenset[TripStatus]] = {
    TripStatus.ASSIGNED: frozenset({TripStatus.REQUESTED}),
    TripStatus.ARRIVED: frozenset({TripStatus.ASSIGNED}),
    TripStatus.IN_PROGRESS: frozenset({TripStatus.ARRIVED}),
    TripStatus.COMPLETED: frozenset({TripStatus.IN_PROGRESS}),
    TripStatus.UNFULFILLED: frozenset({TripStatus.REQUESTED}),
    TripStatus.CANCELLED: frozenset(
        {TripStatus.SCHEDULED, TripStatus.REQUESTED, TripStatus.ASSIGNED, TripStatus.ARRIVED}
    ),
}

# An in-progress trip whose driver vanished may be ended without a fare, by staff (cancelled_by "system").
# Never a rider's or a driver's move: once the rider is aboard, only completion or the system ends a trip.
# A reservation enters dispatch (`requested`) or goes to the driver who claimed it (`assigned`) only when the
# system decides its time has come (dispatch/services/reservations.py).
SYSTEM_TRANSITIONS: dict[TripStatus, frozenset[TripStatus]] = {
    TripStatus.CANCELLED: frozenset({TripStatus.IN_PROGRESS}),
    TripStatus.REQUESTED: frozenset({TripStatus.SCHEDULED}),
    TripStatus.ASSIGNED: frozenset({TripStatus.SCHEDULED}),
}

OPEN_STATUSES = frozenset(
    {TripStatus.REQUESTED, TripStatus.ASSIGNED, TripStatus.ARRIVED, TripStatus.IN_PROGRESS}
)
DRIVER_ACTIVE_STATUSES = frozenset({TripStatus.ASSIGNED, TripStatus.ARRIVED, TripStatus.IN_PROGRESS})
# Booked ahead and not yet under way: kept apart from OPEN_STATUSES (a rider may hold many reservations).
UPCOMING_STATUSES = frozenset({TripStatus.SCHEDULED})
# Not yet in a driver's hands: a trip in one of these carries no driver (a claim is `Trip.claimed_by`).
DRIVERLESS_STATUSES = frozenset(
    {TripStatus.SCHEDULED, TripStatus.REQUESTED, TripStatus.UNFULFILLED, TripStatus.CANCELLED}
)
FINAL_STATUSES = frozenset({TripStatus.COMPLETED, TripStatus.UNFULFILLED, TripStatus.CANCELLED})
# While the trip is in one of these, the rider may see the driver's position and the driver the pickup.
LOCATION_SHARING_STATUSES = DRIVER_ACTIVE_STATUSES


def allowed_sources(target: TripStatus, *, by_system: bool = False) -> frozenset[TripStatus]:
    """The statuses a trip may move to `target` from; empty for a status nothing moves into.

    `by_system` adds the moves only the system makes (SYSTEM_TRANSITIONS)."""
    sources = TRANSITIONS.get(target, frozenset())
    if by_system:
        sources = sources | SYSTEM_TRANSITIONS.get(target, frozenset())
    return sources
