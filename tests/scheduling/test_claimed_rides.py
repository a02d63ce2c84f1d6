"""A claimed reservation when its time comes: set off to its driver, or their warning, then re-dispatch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip
from tests.factories import RiderFactory
from tests.scheduling.conftest import in_, make_reservation, sent

pytestmark = pytest.mark.django_db

NEARBY = (CENTRE[0] + 0.005, CENTRE[1])  # about 550 m north of the pickup


def _claimed(rider, driver, *, scheduled_for, **fields):
    return make_reservation(
        rider, scheduled_for=scheduled_for, claimed_by=driver, claimed_at=in_(-3600), **fields
    )


def _pass(trip):
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services.reservations import reservation_dispatch

    outcome = reservation_dispatch(trip_id=trip.id, policy=dispatch_policy_in_force())
    trip.refresh_from_db()
    return outcome


def test_a_claimed_ride_goes_to_its_driver_at_their_own_lead_time(area, rider, driver):
    from backend.redis import get_redis
    from dispatch import live
    from dispatch.services.reservations import claimed_driver_readiness, reservations_dispatch_due

    driver_online_at(driver, *NEARBY)
    # Looked at from two hours before its window, though an unclaimed ride would wait for `release_at`.
    trip = _claimed(rider, driver, scheduled_for=in_(3600), release_at=in_(3000))
    make_reservation(rider, scheduled_for=in_(3700), release_at=in_(3000))
    readiness = claimed_driver_readiness(trip, at=timezone.now())
    assert readiness.free and readiness.eta_s is not None

    assert reservations_dispatch_due() == {"waiting": 1}  # an hour ahead, minutes away: not yet

    moved = timezone.now() + timedelta(seconds=readiness.eta_s + 300 - 5)
    type(trip).objects.filter(id=trip.id).update(
        scheduled_for=moved,
        pickup_window_start=moved - timedelta(seconds=900),
        pickup_window_end=moved + timedelta(seconds=900),
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert _pass(trip) == "assigned"

    assert trip.status == "assigned" and trip.driver_id == driver.id
    assert trip.vehicle_id == driver.driver_profile.active_vehicle.id
    assert trip.events.get(status="assigned").details["reason"] == "claimed_driver_set_off"
    [told] = sent("driver_assigned", rider)
    assert driver.name.split(" ")[0] in told.body  # the first name only, as the guest link shows it
    # The driver now holds the trip in Redis: no offers for anything else.
    assert get_redis().hget(live.driver_key(driver.id), "trip").decode() == str(trip.id)


def test_an_offline_driver_is_warned_once_then_the_ride_is_redispatched(area, rider, driver):
    trip = _claimed(rider, driver, scheduled_for=in_(1200))

    assert _pass(trip) == "warned"
    assert trip.claim_warned_at is not None and trip.status == "scheduled"
    assert _pass(trip) == "waiting"  # within the grace: no second warning
    [warning] = sent("reservation_at_risk", driver)
    assert "5 minutes" in warning.body

    type(trip).objects.filter(id=trip.id).update(claim_warned_at=timezone.now() - timedelta(seconds=301))
    assert _pass(trip) == "redispatched"

    assert trip.status == "requested" and trip.claimed_by_id is None and trip.claim_warned_at is None
    assert trip.events.get(status="requested").details == {"reason": "claim_dropped", "why": "offline"}
    assert len(sent("reservation_redispatched", rider)) == 1
    assert len(sent("reservation_redispatched", driver)) == 1


def test_a_warned_driver_who_comes_online_in_time_still_gets_the_ride(area, rider, driver):
    trip = _claimed(rider, driver, scheduled_for=in_(1200))
    assert _pass(trip) == "warned"

    driver_online_at(driver, *NEARBY)

    assert _pass(trip) == "assigned"
    assert trip.driver_id == driver.id


def test_a_busy_driver_who_could_no_longer_make_the_window_loses_the_claim_at_once(area, rider, driver):
    """On another trip across town at the window's very end: even now plus their ETA is too late."""
    driver_online_at(driver, CENTRE[0] + 0.09, CENTRE[1])  # about 10 km away
    make_trip(
        RiderFactory(), driver=driver, vehicle=driver.driver_profile.active_vehicle, status="in_progress"
    )
    trip = _claimed(rider, driver, scheduled_for=in_(-800))  # window closes in 100 s

    assert _pass(trip) == "redispatched"
    assert trip.claimed_by_id is None and trip.status == "requested"
    assert trip.events.get(status="requested").details["why"] == "would_miss_window"
    assert sent("reservation_at_risk", driver) == []


def test_a_driver_without_a_vehicle_fit_for_the_ride_is_warned_not_set_off(area, rider, driver):
    """No active vehicle, or a wheelchair-accessible ride and a car that is not: not ready, as if offline."""
    from backend.accounts.models import Vehicle
    from dispatch.services.reservations import claimed_driver_readiness
    from tests.factories import DriverFactory

    driver_online_at(driver, *NEARBY)
    wav_ride = _claimed(rider, driver, scheduled_for=in_(400), wav=True)  # due now, a minute away
    assert claimed_driver_readiness(wav_ride, at=timezone.now()).why == "vehicle_not_accessible"
    assert _pass(wav_ride) == "warned" and wav_ride.driver_id is None

    carless = DriverFactory()
    driver_online_at(carless, *NEARBY)
    Vehicle.objects.filter(driver_id=carless.id).update(is_active=False)
    ride = _claimed(RiderFactory(), carless, scheduled_for=in_(400))
    assert _pass(ride) == "warned" and ride.status == "scheduled"
    assert claimed_driver_readiness(ride, at=timezone.now()).why == "no_vehicle"
