"""A claim is exclusive: twenty drivers claim one reservation at once, in twenty real threads on their own
database connections; exactly one wins and every other gets 409 `reservation_already_claimed`."""

from __future__ import annotations

import threading

import pytest

from backend.errors import Conflict
from tests.db_threads import WAIT_S, run_in_thread
from tests.scheduling.conftest import in_, make_reservation, sent

CLAIMANTS = 20


@pytest.mark.django_db(transaction=True)
def test_one_of_twenty_concurrent_claims_wins(area):
    from dispatch.models import Trip
    from dispatch.services.claims import reservation_claim
    from tests.factories import DriverFactory, RiderFactory

    rider = RiderFactory()
    trip = make_reservation(rider, scheduled_for=in_(86400))
    drivers = [DriverFactory() for _ in range(CLAIMANTS)]
    start = threading.Barrier(CLAIMANTS)

    def claim_for(driver):
        def work():
            start.wait(WAIT_S)
            return reservation_claim(driver_id=driver.id, trip_id=trip.id)

        return work

    runs = [run_in_thread(claim_for(driver)) for driver in drivers]
    for thread, _ in runs:
        thread.join(WAIT_S)
    outcomes = [outcome for _, outcome in runs]

    assert all(outcome.done.is_set() for outcome in outcomes)
    winners = [driver for driver, outcome in zip(drivers, outcomes, strict=True) if outcome.error is None]
    assert len(winners) == 1
    losers = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert len(losers) == CLAIMANTS - 1
    assert all(isinstance(error, Conflict) for error in losers), losers
    assert {error.code for error in losers} == {"reservation_already_claimed"}
    assert Trip.objects.get(id=trip.id).claimed_by_id == winners[0].id
    assert len(sent("reservation_claimed", rider)) == 1
