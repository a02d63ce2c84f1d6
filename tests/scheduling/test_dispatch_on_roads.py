"""A ride booked ahead enters dispatch at its road-ETA lead time, and its driver arrives inside the window:
on real roads (the Helsinki extract, Valhalla in-process; tests/roads_fixtures.py).

Two drivers near the pickup on Kaisaniemenkatu (tests/roads/helsinki.py): one on Keskuskatu drives straight
there (about 80 s), one on Vilhonkatu is nearer as the crow flies but its one-way streets send it round the
station (about 5 minutes). The window is two minutes wide, so only the first can make it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dispatch.conftest import driver_online_at
from tests.roads.helsinki import CROW_NEARER, RANK_TARGET, ROAD_NEARER
from tests.scheduling.conftest import in_, make_reservation

pytestmark = pytest.mark.django_db

HALF_WINDOW_S = 60


@pytest.fixture
def helsinki_area(db):
    from django.contrib.gis.geos import MultiPolygon, Polygon

    from dispatch.models import ServiceArea
    from tests.mobile_api.builders import ensure_fare_policy

    ensure_fare_policy()
    ring = [(24.93, 60.16), (24.96, 60.16), (24.96, 60.182), (24.93, 60.182), (24.93, 60.16)]
    return ServiceArea.objects.create(name="Helsinki centre", area=MultiPolygon(Polygon(ring, srid=4326)))


def test_a_reservation_is_dispatched_so_that_the_drivers_road_eta_lands_in_the_window(
    valhalla_router, helsinki_area, rider
):
    from dispatch.eta_model import pickup_eta_by_road_s
    from dispatch.models import Offer, Trip
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services.dispatching import sweep_dispatch
    from dispatch.services.offers import offer_decline
    from dispatch.services.reservations import reservation_dispatch
    from tests.factories import DriverFactory

    near, round_the_station = DriverFactory(), DriverFactory()
    driver_online_at(near, *ROAD_NEARER)
    driver_online_at(round_the_station, *CROW_NEARER)
    [leg] = valhalla_router.legs_to([ROAD_NEARER], RANK_TARGET, timezone.now())
    near_eta = pickup_eta_by_road_s(leg.duration_s)
    [far_leg] = valhalla_router.legs_to([CROW_NEARER], RANK_TARGET, timezone.now())
    assert pickup_eta_by_road_s(far_leg.duration_s) - near_eta > 2 * HALF_WINDOW_S  # the premise
    policy = dispatch_policy_in_force()
    # A window narrower than the board's margin: dispatch aims for the window's start. Its start is a
    # minute after the near driver's road ETA from now: not due yet.
    trip = make_reservation(
        rider,
        scheduled_for=in_(near_eta + 60 + HALF_WINDOW_S),
        window_s=HALF_WINDOW_S,
        lat=RANK_TARGET[0],
        lng=RANK_TARGET[1],
    )

    assert reservation_dispatch(trip_id=trip.id, policy=policy) == "waiting"
    assert Trip.objects.get(id=trip.id).status == "scheduled"

    # Now its window opens five seconds after the near driver could be there: due.
    shift = timedelta(seconds=65)
    Trip.objects.filter(id=trip.id).update(
        scheduled_for=trip.scheduled_for - shift,
        pickup_window_start=trip.pickup_window_start - shift,
        pickup_window_end=trip.pickup_window_end - shift,
    )
    assert reservation_dispatch(trip_id=trip.id, policy=policy) == "released"
    released = Trip.objects.get(id=trip.id)
    assert released.status == "requested"
    assert released.search_deadline == released.pickup_window_end
    event = released.events.get(status="requested")
    assert event.details["eta_s"] == near_eta and event.details["eta_of"] == "first_candidate"

    assert sweep_dispatch()["rounds"] == 1

    offer = Offer.objects.get(trip=trip)
    assert offer.driver_id == near.id
    assert offer.pickup_eta_s == near_eta and offer.reason["router"] == "valhalla"
    arrival = offer.created_at + timedelta(seconds=offer.pickup_eta_s)
    assert released.pickup_window_start <= arrival <= released.pickup_window_end
    assert offer.reason["pickup_window"]["arrives_in_window"] is True

    # The near driver declines: the other would reach the pickup minutes after the window closes, so the
    # trip is offered to nobody rather than to a driver who would be late.
    offer_decline(driver_id=near.id, offer_id=offer.id)
    Trip.objects.filter(id=trip.id).update(next_dispatch_at=timezone.now() - timedelta(seconds=1))
    sweep_dispatch()

    assert not Offer.objects.filter(trip=trip, driver=round_the_station).exists()
    assert Trip.objects.get(id=trip.id).status == "requested"
