"""Access cases for claiming and giving back a reservation (mobile_api/urls_reservations.py).

- `driver-reservation-claim`: a wheelchair-accessible reservation, claimable only by a driver with a
  wheelchair-accessible vehicle (the owner); a rider and an ordinary driver cannot see it, and get the 404
  of an id that does not exist.
- `driver-reservation-release`: the owner's own claim; anyone else (a rider, another driver) gets 404.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.access_cases import AccessCase, Arranged, register
from tests.factories import DriverFactory, RiderFactory


def _reservation(**fields):
    from tests.mobile_api.builders import ensure_service_area
    from tests.scheduling.conftest import make_reservation

    ensure_service_area()
    return make_reservation(RiderFactory(), scheduled_for=timezone.now() + timedelta(days=1), **fields)


def _claimable() -> Arranged:
    driver = DriverFactory(profile__wheelchair_accessible=True)
    return Arranged(owner=driver, kwargs={"trip_id": _reservation(wav=True).id})


def _claimed() -> Arranged:
    driver = DriverFactory()
    trip = _reservation(claimed_by=driver, claimed_at=timezone.now())
    return Arranged(owner=driver, kwargs={"trip_id": trip.id})


register("driver-reservation-claim", AccessCase(_claimable, "post", 200))
register("driver-reservation-release", AccessCase(_claimed, "post", 200))
