"""Access cases for the account and rider routes (mobile_api/urls_accounts.py, urls_trips.py)."""

from __future__ import annotations

from backend.accounts.models import DriverStatus
from tests.access_cases import AccessCase, Arranged, register
from tests.factories import DriverFactory, StaffFactory
from tests.mobile_api.builders import completed_trip, requested_trip


def _trip_read() -> Arranged:
    trip = requested_trip()
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id})


def _trip_cancel() -> Arranged:
    trip = requested_trip()
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id}, body={"reason": "changed my mind"})


def _trip_rate() -> Arranged:
    trip = completed_trip()
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id}, body={"stars": 5})


def _trip_rate_as_driver() -> Arranged:
    trip = completed_trip()
    return Arranged(owner=trip.driver, kwargs={"trip_id": trip.id}, body={"stars": 4})


def _trip_tip() -> Arranged:
    trip = completed_trip()
    return Arranged(
        owner=trip.rider,
        kwargs={"trip_id": trip.id},
        body={"amount": {"amount": 100, "currency": trip.currency}},
    )


def _driver_approve() -> Arranged:
    driver = DriverFactory(profile__status=DriverStatus.PENDING)
    return Arranged(owner=StaffFactory(), kwargs={"driver_id": driver.id})


register("trip-detail", AccessCase(_trip_read, "get", 200))
register("trip-cancel", AccessCase(_trip_cancel, "post", 200))
register(
    "trip-rating",
    AccessCase(_trip_rate, "post", 201, label="rider"),
    AccessCase(_trip_rate_as_driver, "post", 201, label="driver"),
)
register("trip-tip", AccessCase(_trip_tip, "post", 201, idempotency_key=True))
# Staff routes refuse everyone else before looking at the id, so an outsider gets 403, not 404.
register("staff-driver-approve", AccessCase(_driver_approve, "post", 200, outsider_status=403))
