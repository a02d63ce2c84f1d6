"""Cancelling a ride booked ahead (docs/scheduling.md): free until the board's notice period before the
pickup time, the policy's cancellation fee after it; the driver who had claimed it gets the driver's part,
and with no driver yet the co-op keeps the whole fee."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.fares.ledger import balance_minor, ledger_verify
from backend.fares.models import AccountKind, JournalEntry
from backend.fares.pricing import cancellation_split
from backend.fares.selectors import policy_in_force
from dispatch.models import Trip
from dispatch.services.estimates import Place
from dispatch.services.trips import trip_cancel, trip_request
from tests.factories import DriverFactory, RiderFactory
from tests.mobile_api.builders import DROPOFF, PICKUP

pytestmark = pytest.mark.django_db


def _booked(rider, *, pickup_in: timedelta):
    """Booked three hours ago for `pickup_in` from now (well within the board's limits at booking)."""
    return trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        at=timezone.now() - timedelta(hours=3),
        scheduled_for=timezone.now() + pickup_in,
    )


def test_cancelling_before_the_notice_period_is_free(service_area):
    rider = RiderFactory()
    trip = _booked(rider, pickup_in=timedelta(hours=2, minutes=5))
    cancelled = trip_cancel(trip_id=trip.id, actor_id=rider.id)
    assert cancelled.status == "cancelled" and cancelled.cancellation_fee_minor is None
    assert not JournalEntry.objects.filter(trip=trip).exists()


def test_a_late_cancellation_of_an_unclaimed_reservation_pays_the_coop_the_whole_fee(service_area):
    rider = RiderFactory()
    trip = _booked(rider, pickup_in=timedelta(hours=1))
    fee = cancellation_split(policy_in_force()).fee
    cancelled = trip_cancel(trip_id=trip.id, actor_id=rider.id)
    assert cancelled.cancellation_fee_minor == fee > 0
    entry = JournalEntry.objects.get(key=f"trip:{trip.id}:cancellation")
    assert entry.metadata["driver"] == 0 and entry.metadata["coop"] == fee
    assert balance_minor(kind=AccountKind.RIDER_RECEIVABLE, owner_id=rider.id, currency="USD") == fee
    assert ledger_verify().ok


def test_a_late_cancellation_of_a_claimed_reservation_pays_the_claiming_driver_their_part(service_area):
    rider, driver = RiderFactory(), DriverFactory()
    trip = _booked(rider, pickup_in=timedelta(minutes=90))
    Trip.objects.filter(id=trip.id).update(claimed_by=driver, claimed_at=timezone.now())
    split = cancellation_split(policy_in_force())
    trip_cancel(trip_id=trip.id, actor_id=rider.id)
    assert balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD") == split.driver
    assert balance_minor(kind=AccountKind.COOP_REVENUE, owner_id=None, currency="USD") == split.coop
    assert ledger_verify().ok


def test_no_fee_when_the_coop_is_the_one_late_or_the_rider_changed_their_mind_at_once(service_area):
    rider = RiderFactory()
    # The window has opened and no driver has the ride: the co-op failed, the rider owes nothing.
    trip = trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        at=timezone.now() - timedelta(hours=3),
        scheduled_for=timezone.now() + timedelta(minutes=5),
        pickup_window_s=900,
    )
    assert trip_cancel(trip_id=trip.id, actor_id=rider.id).cancellation_fee_minor is None
    # Booked just now for an hour ahead (inside the notice period from the start), and cancelled at once.
    soon = trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        scheduled_for=timezone.now() + timedelta(hours=1, minutes=5),
    )
    assert trip_cancel(trip_id=soon.id, actor_id=rider.id).cancellation_fee_minor is None
    assert not JournalEntry.objects.filter(kind="cancellation_fee").exists()
