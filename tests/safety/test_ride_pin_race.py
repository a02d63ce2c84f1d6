"""The ride PIN under a real interleaving: a start checked while the trip is still `assigned` (no PIN asked
for yet, the move would be refused) must not go through because the trip reached `arrived` before the
start's UPDATE ran. Otherwise a driver who sends `trip.start` and `trip.arrive` at once (two sockets, two
server processes) starts the ride without its rider's PIN.

The main connection holds the trips table in SHARE mode, which lets the start's PIN check (SELECT ... FOR
UPDATE) through but stops its guarded UPDATE; while it waits, the same connection moves the trip to
`arrived` through the real service and commits, and the start's UPDATE then runs against the arrived trip.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from backend.errors import DomainError
from dispatch.models import Trip
from dispatch.services.driving import trip_arrive, trip_start
from tests.db_threads import WAIT_S, blocked_on_a_lock, poll, run_in_thread
from tests.factories import DriverFactory, RiderFactory
from tests.mobile_api.builders import assign, requested_trip

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_start_checked_before_the_arrival_does_not_skip_the_pin():
    rider, driver = RiderFactory(), DriverFactory()
    trip = assign(requested_trip(rider, ride_pin=True), driver)
    assert trip.status == "assigned" and len(trip.ride_pin) == 4

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'LOCK TABLE "{Trip._meta.db_table}" IN SHARE MODE')
        thread, started = run_in_thread(lambda: trip_start(driver_id=driver.id, trip_id=trip.id, pin=None))
        # Past its PIN check (which saw `assigned`), the start waits at its UPDATE.
        poll(lambda: blocked_on_a_lock(started.pid), "the start to wait at its UPDATE")
        trip_arrive(driver_id=driver.id, trip_id=trip.id)
    thread.join(WAIT_S)
    assert started.done.is_set()

    stored = Trip.objects.get(id=trip.id)
    assert stored.status == "arrived", "the ride started without the rider's PIN"
    assert isinstance(started.error, DomainError)
    # With the PIN, as the rider reads it out, it starts.
    assert trip_start(driver_id=driver.id, trip_id=trip.id, pin=stored.ride_pin).status == "in_progress"
