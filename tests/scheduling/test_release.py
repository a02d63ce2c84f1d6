"""When an unclaimed reservation enters dispatch, and which drivers its rounds may offer it to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip
from tests.scheduling.conftest import in_, make_reservation

pytestmark = pytest.mark.django_db


def _policy():
    from dispatch.policy import dispatch_policy_in_force

    return dispatch_policy_in_force()


def test_with_nobody_near_it_enters_dispatch_as_early_as_the_farthest_driver_offered_would_need(area, rider):
    """No ETA to go by: it starts `max_pickup_eta_s` (20 min) before the arrival target, which is the
    board's margin (5 min) before the pickup time."""
    from dispatch.services.reservations import reservation_dispatch, reservations_dispatch_due

    later = make_reservation(rider, scheduled_for=in_(1500 + 60))
    due = make_reservation(rider, scheduled_for=in_(1500 - 60), window_s=600)

    assert reservation_dispatch(trip_id=later.id, policy=_policy()) == "waiting"
    assert reservations_dispatch_due() == {"waiting": 1, "released": 1}
    due.refresh_from_db()
    assert due.status == "requested" and due.next_dispatch_at is not None
    assert due.events.get(status="requested").details["eta_of"] == "no_driver_near"


def test_a_rider_on_another_trip_keeps_the_reservation_until_that_trip_ends(area, rider):
    from dispatch.services.reservations import reservations_at_risk, reservations_dispatch_due
    from dispatch.services.transitions import trip_transition
    from dispatch.state import TripStatus

    reservation = make_reservation(rider, scheduled_for=in_(600))
    ride_now = make_trip(rider)

    assert reservations_dispatch_due() == {"rider_busy": 1}
    reservation.refresh_from_db()
    assert reservation.status == "scheduled"
    [(shown, risks)] = reservations_at_risk()
    assert shown.id == reservation.id and "rider_on_another_trip" in risks

    trip_transition(trip_id=ride_now.id, to=TripStatus.UNFULFILLED)

    assert reservations_dispatch_due() == {"released": 1}
    reservation.refresh_from_db()
    assert reservation.status == "requested"


def test_reservations_stuck_at_the_head_do_not_starve_the_others(area, rider):
    """More reservations kept back (their rider is on another trip) than a page holds: the pass pages on
    and still releases the one behind them."""
    from dispatch.services.reservations import reservations_dispatch_due
    from tests.factories import RiderFactory

    make_trip(rider)
    for minutes in (5, 6, 7):
        make_reservation(rider, scheduled_for=in_(minutes * 60))
    behind = make_reservation(RiderFactory(), scheduled_for=in_(900))

    assert reservations_dispatch_due(limit=2) == {"rider_busy": 3, "released": 1}
    behind.refresh_from_db()
    assert behind.status == "requested"


def test_a_nearby_drivers_eta_sets_the_lead_time(area, rider, driver):
    """A driver a minute or two away: the reservation waits until that ETA before the arrival target."""
    from dispatch.services.reservations import first_offer_eta_s, reservation_dispatch

    driver_online_at(driver, CENTRE[0] + 0.005, CENTRE[1])
    trip = make_reservation(rider, scheduled_for=in_(1200))
    eta = first_offer_eta_s(trip, policy=_policy())
    assert eta is not None and eta < 400

    assert reservation_dispatch(trip_id=trip.id, policy=_policy()) == "waiting"

    from dispatch.models import Trip

    # Five seconds past the moment: the arrival target (pickup time less the 300 s margin) less the ETA.
    moved = timezone.now() + timedelta(seconds=eta + 300 - 5)
    Trip.objects.filter(id=trip.id).update(
        scheduled_for=moved,
        pickup_window_start=moved - timedelta(seconds=900),
        pickup_window_end=moved + timedelta(seconds=900),
    )
    assert reservation_dispatch(trip_id=trip.id, policy=_policy()) == "released"


def _ranked(*etas: int):
    from dispatch.services.dispatching import Candidate, RankedCandidate

    return [
        RankedCandidate(Candidate(f"d{rank}", 100.0 * rank, eta, 0, 0.0), rank, {"rank": rank})
        for rank, eta in enumerate(etas, start=1)
    ]


def test_a_reservations_round_drops_drivers_who_would_be_late_and_puts_those_arriving_in_the_window_first():
    from backend.timestamps import wire_timestamp
    from dispatch.services.dispatching import in_pickup_window

    now = timezone.now()
    start, end = now + timedelta(seconds=300), now + timedelta(seconds=900)

    kept = in_pickup_window(_ranked(60, 400, 1000, 890), start=start, end=end, at=now)

    # 60 s would be early (and wait), 1000 s late; 400 and 890 arrive inside, in the fairness order.
    assert [(choice.candidate.driver_id, choice.rank) for choice in kept] == [("d2", 1), ("d4", 2), ("d1", 3)]
    assert kept[0].reason["pickup_window"] == {
        "start": wire_timestamp(start),
        "end": wire_timestamp(end),
        "arrives_at": wire_timestamp(now + timedelta(seconds=400)),
        "arrives_in_window": True,
    }
    assert kept[2].reason["pickup_window"]["arrives_in_window"] is False
