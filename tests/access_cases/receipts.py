"""Access cases for receipts and staff refunds (mobile_api/urls_trips.py, `trip-receipt`,
`staff-trip-refunds`)."""

from __future__ import annotations

from tests.access_cases import AccessCase, Arranged, register, register_not_an_object
from tests.factories import StaffFactory
from tests.mobile_api.builders import completed_trip


def _receipt() -> Arranged:
    trip = completed_trip()
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id})


def _refunds_list() -> Arranged:
    trip = completed_trip()
    return Arranged(owner=StaffFactory(), kwargs={"trip_id": trip.id})


def _refund() -> Arranged:
    trip = completed_trip()
    return Arranged(
        owner=StaffFactory(),
        kwargs={"trip_id": trip.id},
        body={"amount": {"amount": 100, "currency": trip.currency}, "reason": "Longer route"},
    )


# The receipt is the rider's payment record: for anyone else (the trip's driver too, tests/receipts/) the
# trip does not exist.
register("trip-receipt", AccessCase(_receipt, "get", 200))
# Staff routes refuse everyone else before looking at the id, so an outsider gets 403, not 404.
register(
    "staff-trip-refunds",
    AccessCase(_refunds_list, "get", 200, outsider_status=403, label="list"),
    AccessCase(_refund, "post", 201, outsider_status=403, label="refund"),
)

_OWN_STATEMENT = (
    "the year is not an object: a driver's statement is always the caller's own (tests/receipts/"
    "test_statements.py: another driver's figures never appear, riders get 403)"
)
for _route in ("driver-statement", "driver-statement-csv", "driver-statement-pdf"):
    register_not_an_object(_route, _OWN_STATEMENT)
