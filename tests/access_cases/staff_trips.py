"""Access case for staff closing a trip (mobile_api/urls_trips.py, `staff-trip-close`)."""

from __future__ import annotations

from tests.access_cases import AccessCase, Arranged, register
from tests.factories import StaffFactory
from tests.mobile_api.builders import assigned_trip


def _trip_close() -> Arranged:
    trip = assigned_trip()
    return Arranged(
        owner=StaffFactory(),
        kwargs={"trip_id": trip.id},
        body={"decision": "no_charge", "reason": "The driver cannot be reached"},
    )


# Staff routes refuse everyone else before looking at the id, so an outsider gets 403, not 404; the trip's
# own rider and driver are outsiders here too (tests/dispatch/test_abandoned_trips.py checks them).
register("staff-trip-close", AccessCase(_trip_close, "post", 200, outsider_status=403))
