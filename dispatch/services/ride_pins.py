"""The ride PIN (docs/safety.md): four digits the rider asked for at request (or always, by their standing
choice), shown in the rider's own view of the trip only, which the driver must send with `trip.start`.

A wrong PIN is refused (`ride_pin_mismatch`) and counted on the trip in its own committed transaction,
with an audit entry; after ROCHDALE_RIDE_PIN_MAX_FAILURES wrong tries the start is locked
(`ride_pin_locked`) until the rider issues a new PIN (`ride_pin_reset`, the rider is there to read it out)
or staff waive it (`ride_pin_waive`, with a reason). Both parties get `trip.updated` after every wrong try,
so the rider sees at once that a wrong PIN was entered. Four digits are 10,000 guesses: the lock, not the
length, is what keeps a driver from starting a ride without its rider.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import Conflict, DomainError, NotFound, PermissionDenied
from dispatch.models import RiderSafetySettings, Trip
from dispatch.selectors import trip_load
from dispatch.services.transitions import push_trip_updated
from dispatch.state import TripStatus
from governance.audit import audit_append

RIDE_PIN_DIGITS = 4
# A PIN may be issued again or waived until the rider is aboard.
NOT_STARTED_STATUSES = frozenset(
    {TripStatus.SCHEDULED, TripStatus.REQUESTED, TripStatus.ASSIGNED, TripStatus.ARRIVED}
)

AUDIT_MISMATCH = "safety.ride_pin_mismatch"
AUDIT_RESET = "safety.ride_pin_reset"
AUDIT_WAIVED = "safety.ride_pin_waived"


class RidePinRequired(DomainError):
    code = "ride_pin_required"
    status = 400


class RidePinMismatch(DomainError):
    code = "ride_pin_mismatch"
    status = 403


class RidePinLocked(DomainError):
    code = "ride_pin_locked"
    status = 409


def ride_pin_new() -> str:
    """Four digits from the operating system's CSPRNG, leading zeros kept."""
    return f"{secrets.randbelow(10**RIDE_PIN_DIGITS):0{RIDE_PIN_DIGITS}d}"


def ride_pin_for_request(*, rider_id: uuid.UUID, asked: bool | None) -> str:
    """The new trip's PIN: one when the request asked for it (`ride_pin: true`), or, when the request
    did not say, when the rider's standing choice is a PIN on every ride; "" otherwise."""
    wanted = (
        asked
        if asked is not None
        else RiderSafetySettings.objects.filter(rider_id=rider_id, ride_pin_always=True).exists()
    )
    return ride_pin_new() if wanted else ""


def ride_pin_check(*, driver_id: uuid.UUID, trip_id: uuid.UUID, pin: str | None) -> str:
    """Refuse the start of the driver's arrived trip unless `pin` is its ride PIN; returns the PIN the start
    may go ahead under ("" when none was checked), which the start's guarded UPDATE must still find on the
    trip: the check commits before the move, and a trip that was not `arrived` when checked (so no PIN was
    asked for) may be by the time the move runs.

    Does nothing for a trip without a PIN, or one that is not the driver's or not arrived (the move itself
    then answers `trip_not_found` or `invalid_transition`, exactly as without a PIN). Raises
    RidePinRequired without a PIN, RidePinLocked once the wrong tries are used up, RidePinMismatch
    (`details.attempts_left`) for a wrong one, which is counted and audited first. Must not run inside a
    caller's transaction: the count of a wrong try has to survive the refusal it causes."""
    outer_transaction = connection.in_atomic_block
    limit = settings.ROCHDALE_RIDE_PIN_MAX_FAILURES
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update()
            .filter(id=trip_id, driver_id=driver_id)
            .only("id", "status", "ride_pin", "ride_pin_failures")
            .first()
        )
        if trip is None or not trip.ride_pin or trip.status != TripStatus.ARRIVED:
            return ""
        if trip.ride_pin_failures >= limit:
            raise RidePinLocked(_locked_message())
        if not pin:
            raise RidePinRequired(_("This ride has a PIN: ask the rider for it and send it with the start."))
        if secrets.compare_digest(pin.encode(), trip.ride_pin.encode()):
            return trip.ride_pin
        if outer_transaction:
            raise RuntimeError("a wrong ride PIN must be counted in its own transaction (see ride_pin_check)")
        failures = trip.ride_pin_failures + 1
        Trip.objects.filter(id=trip.id).update(ride_pin_failures=failures)
        audit_append(
            kind=AUDIT_MISMATCH,
            payload={
                "trip_id": str(trip.id),
                "driver_id": str(driver_id),
                "failures": failures,
                "locked": failures >= limit,
            },
        )
        push_trip_updated(trip_load(trip.id))
    if failures >= limit:
        raise RidePinLocked(_locked_message())
    raise RidePinMismatch(
        _("That is not the ride's PIN. %(left)d tries left.") % {"left": limit - failures},
        details={"attempts_left": limit - failures},
    )


def _locked_message() -> str:
    return _(
        "Too many wrong PINs: the start is locked. The rider can issue a new PIN in their app, or call the "
        "co-op."
    )


def ride_pin_reset(*, rider_id: uuid.UUID, trip_id: uuid.UUID) -> Trip:
    """The rider issues a new PIN for their trip that has not started, which also lifts a lock (they are
    there to read it out). Raises NotFound `trip_not_found` for anyone else's trip, Conflict
    `ride_pin_not_set` for a trip without a PIN and `trip_already_started` once the rider is aboard."""
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update()
            .filter(id=trip_id, rider_id=rider_id)
            .only("id", "status", "ride_pin", "ride_pin_failures")
            .first()
        )
        if trip is None:
            raise NotFound(_("No such trip."), code="trip_not_found")
        _require_pin_not_started(trip)
        fresh = ride_pin_new()
        while fresh == trip.ride_pin:  # a "new" PIN equal to the old one would read as nothing changed
            fresh = ride_pin_new()
        Trip.objects.filter(id=trip.id).update(ride_pin=fresh, ride_pin_failures=0)
        audit_append(
            kind=AUDIT_RESET,
            payload={"trip_id": str(trip.id), "rider_id": str(rider_id), "failures": trip.ride_pin_failures},
        )
        updated = trip_load(trip.id)
        push_trip_updated(updated)
    return updated


def ride_pin_waive(*, staff_id: uuid.UUID, trip_id: uuid.UUID, reason: str) -> Trip:
    """Staff take the PIN off a trip that has not started (the rider's phone died, the rider asked them
    to), with a reason, audited. Raises NotFound `trip_not_found`, Conflict `ride_pin_not_set` and
    `trip_already_started`."""
    with transaction.atomic():
        trip = (
            Trip.objects.select_for_update()
            .filter(id=trip_id)
            .only("id", "status", "ride_pin", "ride_pin_failures")
            .first()
        )
        if trip is None:
            raise NotFound(_("No such trip."), code="trip_not_found")
        _require_pin_not_started(trip)
        Trip.objects.filter(id=trip.id).update(ride_pin="", ride_pin_failures=0)
        audit_append(
            kind=AUDIT_WAIVED,
            payload={
                "trip_id": str(trip.id),
                "staff_id": str(staff_id),
                "reason": reason,
                "failures": trip.ride_pin_failures,
            },
        )
        updated = trip_load(trip.id)
        push_trip_updated(updated)
    return updated


def _require_pin_not_started(trip: Trip) -> None:
    if not trip.ride_pin:
        raise Conflict(_("This trip has no ride PIN."), code="ride_pin_not_set")
    if trip.status not in NOT_STARTED_STATUSES:
        raise Conflict(
            _("The ride has started or ended: its PIN no longer matters."),
            code="trip_already_started",
            details={"status": trip.status},
        )


def rider_safety_settings_get(*, rider_id: uuid.UUID) -> RiderSafetySettings:
    """The rider's standing choices (the defaults, unsaved, when they never chose)."""
    return RiderSafetySettings.objects.filter(rider_id=rider_id).first() or RiderSafetySettings(
        rider_id=rider_id
    )


def rider_safety_settings_update(*, rider_id: uuid.UUID, ride_pin_always: bool) -> RiderSafetySettings:
    """Set whether every trip the rider requests gets a ride PIN unless the request says otherwise.
    Raises PermissionDenied `rider_role_required` for an account that is not a rider."""
    if not User.objects.filter(id=rider_id, is_rider=True).exists():
        raise PermissionDenied(_("Only a rider account can do this."), code="rider_role_required")
    chosen, _created = RiderSafetySettings.objects.update_or_create(
        rider_id=rider_id, defaults={"ride_pin_always": ride_pin_always, "updated_at": timezone.now()}
    )
    return chosen
