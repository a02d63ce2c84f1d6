"""Quotes, dispatch and fares on real roads: the Helsinki extract, Valhalla in-process (roads_fixtures.py).

The places are the ones the router tests use (tests/roads/helsinki.py says what is there); these tests check
that what the services do with them is what a rider, a driver and the fare policy expect.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone

from tests.dispatch.conftest import driver_online_at, make_trip
from tests.roads.helsinki import (
    CROW_NEARER,
    NORTH,
    RANK_TARGET,
    ROAD_NEARER,
    SOUTH,
    distance_m,
    jittered,
    path_length_m,
    sampled_every,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def helsinki_area(db):
    """The co-op serves central Helsinki (the extract's bounding box, a little grown)."""
    from dispatch.models import ServiceArea

    ring = [(24.93, 60.16), (24.96, 60.16), (24.96, 60.182), (24.93, 60.182), (24.93, 60.16)]
    ServiceArea.objects.update(is_active=False)
    return ServiceArea.objects.create(name="Helsinki centre", area=MultiPolygon(Polygon(ring, srid=4326)))


def _estimate(client, pickup, dropoff):
    return client.post(
        "/api/v1/fares/estimate",
        {"pickup": {"lat": pickup[0], "lng": pickup[1]}, "dropoff": {"lat": dropoff[0], "lng": dropoff[1]}},
        format="json",
    )


def test_a_quote_across_a_detour_prices_the_road_distance(valhalla_router, helsinki_area, rider_client, idem):
    from backend.fares.pricing import quote_fare
    from backend.fares.selectors import policy_in_force

    response = _estimate(rider_client, SOUTH, NORTH)

    assert response.status_code == 200, response.content
    body = response.json()
    road = valhalla_router.route(SOUTH, NORTH, timezone.now())
    straight = distance_m(SOUTH, NORTH)
    # Round the one-way grid and the railway station: far more than the model's 1.3 x the straight line.
    assert body["distance_m"] == road.distance_m > 1.4 * straight
    assert body["duration_s"] == road.duration_s
    policy = policy_in_force()
    fare = quote_fare(policy, distance_m=road.distance_m, duration_s=road.duration_s).fare
    assert body["fare"] == {"amount": fare, "currency": policy.currency}
    route = body["route"]
    assert route["router"] == "valhalla"
    coordinates = route["geometry"]["coordinates"]
    assert len(coordinates) > 50
    assert path_length_m([(lat, lng) for lng, lat in coordinates]) == pytest.approx(road.distance_m, rel=0.02)

    # The trip that names the estimate keeps its route; the rider sees it.
    trip = rider_client.post(
        "/api/v1/trips",
        {
            "pickup": {"lat": SOUTH[0], "lng": SOUTH[1]},
            "dropoff": {"lat": NORTH[0], "lng": NORTH[1]},
            "estimate_id": body["estimate_id"],
        },
        format="json",
        **idem(),
    )
    assert trip.status_code == 201, trip.content
    assert trip.json()["route"] == route
    assert rider_client.get(f"/api/v1/trips/{trip.json()['id']}").json()["route"] == route


def test_without_tiles_the_quote_still_answers_on_the_model_and_the_fallback_is_counted(
    settings, tmp_path, helsinki_area, rider_client
):
    from dispatch.roads.routers import fallback_counts
    from tests.roads_fixtures import use_router

    use_router(settings, "valhalla", ROCHDALE_ROADS_DIR=tmp_path, ROCHDALE_ROADS_CITY="nowhere")

    response = _estimate(rider_client, SOUTH, NORTH)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["route"]["router"] == "model"
    assert body["distance_m"] == pytest.approx(1.3 * distance_m(SOUTH, NORTH), abs=2)
    assert fallback_counts() == {"valhalla:route:no_tiles": 1}


def test_a_pickup_eta_is_the_road_eta_of_the_soonest_nearby_driver(
    valhalla_router, helsinki_area, rider_client
):
    from dispatch.eta_model import eta_parameters
    from tests.factories import DriverFactory

    crow, road = DriverFactory(), DriverFactory()
    driver_online_at(crow, *CROW_NEARER)
    driver_online_at(road, *ROAD_NEARER)

    body = _estimate(rider_client, RANK_TARGET, NORTH).json()

    drive = valhalla_router.route(ROAD_NEARER, RANK_TARGET, timezone.now())
    assert body["pickup_eta_s"] == pytest.approx(eta_parameters().pickup_overhead_s + drive.duration_s, abs=1)


def test_a_driver_nearer_as_the_crow_flies_but_farther_by_road_is_offered_the_trip_after_the_other(
    valhalla_router, seeded, rider
):
    """The sweeper's round (no dispatch worker alive) ranks by road through the same `by_road` the worker
    uses. The Vilhonkatu driver has waited longer and is nearer in a straight line: on the model they win;
    on the roads the Keskuskatu driver, minutes sooner, does."""
    from dispatch.models import Offer
    from dispatch.services.dispatching import sweep_dispatch
    from tests.factories import DriverFactory

    crow, road = DriverFactory(), DriverFactory()
    driver_online_at(crow, *CROW_NEARER)
    time.sleep(1.1)  # so the Vilhonkatu driver has idled longer: fairness would favour them
    driver_online_at(road, *ROAD_NEARER)
    trip = make_trip(
        rider, lat=RANK_TARGET[0], lng=RANK_TARGET[1], requested_at=timezone.now() - timedelta(seconds=5)
    )

    assert sweep_dispatch()["rounds"] == 1

    offer = Offer.objects.get(trip=trip)
    assert offer.driver_id == road.id
    reason = offer.reason
    assert reason["router"] == "valhalla"
    assert reason["straight_line_m"] == pytest.approx(distance_m(ROAD_NEARER, RANK_TARGET), abs=2)
    assert reason["road_distance_m"] == offer.pickup_distance_m
    assert reason["road_distance_m"] > reason["straight_line_m"]
    assert reason["candidates_considered"] == 2
    # The loser's road ETA is outside the fairness window of the winner's: road ETAs decided.
    crow_drive = valhalla_router.route(CROW_NEARER, RANK_TARGET, timezone.now())
    assert crow_drive.duration_s + 30 > offer.pickup_eta_s + reason["eta_window_s"]


def test_on_the_model_the_same_drivers_rank_the_other_way(seeded, rider):
    from dispatch.models import Offer
    from dispatch.services.dispatching import sweep_dispatch
    from tests.factories import DriverFactory

    crow, road = DriverFactory(), DriverFactory()
    driver_online_at(crow, *CROW_NEARER)
    time.sleep(1.1)
    driver_online_at(road, *ROAD_NEARER)
    trip = make_trip(
        rider, lat=RANK_TARGET[0], lng=RANK_TARGET[1], requested_at=timezone.now() - timedelta(seconds=5)
    )

    sweep_dispatch()

    offer = Offer.objects.get(trip=trip)
    assert offer.driver_id == crow.id and offer.reason["router"] == "model"


def _drive(trip, points, *, started_at, spacing_s: float = 3.0) -> None:
    """The trip's trail as the location path keeps it in Redis, a fix every `spacing_s` seconds."""
    from backend.redis import get_redis
    from dispatch.live import trail_key

    start = started_at.timestamp() + 1
    get_redis().rpush(
        trail_key(trip.driver_id),
        *[f"{trip.id},{start + index * spacing_s},{lat},{lng},8" for index, (lat, lng) in enumerate(points)],
    )


def _trip_on_the_road(rider, driver, *, started_ago_s: int):
    from django.contrib.gis.geos import Point

    trip = make_trip(
        rider,
        lat=SOUTH[0],
        lng=SOUTH[1],
        driver=driver,
        vehicle=driver.driver_profile.active_vehicle,
        status="in_progress",
        started_at=timezone.now() - timedelta(seconds=started_ago_s),
    )
    trip.dropoff = Point(NORTH[1], NORTH[0], srid=4326)
    trip.save(update_fields=["dropoff"])
    return trip


def test_the_fare_is_priced_on_the_map_matched_trail(valhalla_router, seeded, rider, driver):
    from backend.fares.pricing import quote_fare
    from backend.fares.selectors import policy_of
    from dispatch.services.driving import trip_complete

    road = valhalla_router.route(SOUTH, NORTH, timezone.now())
    trail = jittered(sampled_every(road.geometry, 20.0), sigma_m=8.0, seed=5)
    trip = _trip_on_the_road(rider, driver, started_ago_s=len(trail) * 3 + 5)
    _drive(trip, trail, started_at=trip.started_at)

    done = trip_complete(driver_id=driver.id, trip_id=trip.id)

    assert done.distance_source == "map_matched"
    assert done.measured_distance_m == pytest.approx(road.distance_m, rel=0.03)
    # The noisy trail's own length is farther off than the match.
    assert abs(path_length_m(trail) - road.distance_m) > 2 * abs(done.measured_distance_m - road.distance_m)
    policy = policy_of(done.policy_version)
    assert (
        done.fare_minor
        >= quote_fare(policy, distance_m=done.measured_distance_m, duration_s=done.measured_duration_s).fare
        - 1
    )
    event = done.events.get(status="completed")
    assert event.details["distance_source"] == "map_matched"


def test_without_a_road_graph_the_fare_uses_the_geodesic_trail_and_says_so(seeded, rider, driver):
    from dispatch.services.driving import trail_distance_m, trip_complete, trip_trail

    trail = sampled_every([SOUTH, NORTH], 50.0)
    trip = _trip_on_the_road(rider, driver, started_ago_s=len(trail) * 3 + 5)
    _drive(trip, trail, started_at=trip.started_at)
    geodesic_m = trail_distance_m(
        trip_trail(trip_id=trip.id, driver_id=driver.id, since=trip.started_at, until=timezone.now())
    )

    done = trip_complete(driver_id=driver.id, trip_id=trip.id)

    assert done.distance_source == "geodesic"
    assert done.measured_distance_m == geodesic_m
    event = done.events.get(status="completed")
    assert event.details["match_fallback_reason"] == "no_road_graph"


def test_a_driver_sees_no_route_of_an_ended_trip(valhalla_router, seeded, rider, driver):
    """The path is as telling as the places: once the trip has ended, the driver's history shows neither."""
    from dispatch.serializers import trip_for
    from dispatch.services.estimates import route_line

    road = valhalla_router.route(SOUTH, NORTH, timezone.now())
    trip = _trip_on_the_road(rider, driver, started_ago_s=60)
    trip.route_geometry, trip.router = route_line(road.geometry), road.router
    trip.save(update_fields=["route_geometry", "router"])
    assert trip_for(trip, viewer_id=driver.id)["route"]["router"] == "valhalla"

    trip.status = "completed"
    trip.save(update_fields=["status"])

    assert trip_for(trip, viewer_id=driver.id)["route"] is None
    assert trip_for(trip, viewer_id=rider.id)["route"]["router"] == "valhalla"
    assert uuid.UUID(trip_for(trip, viewer_id=rider.id)["id"]) == trip.id


@pytest.mark.django_db(transaction=True)  # the countdown reads the trip from a pool thread
def test_the_riders_countdown_is_the_road_eta_to_the_next_place_refreshed_not_per_fix(
    valhalla_router, seeded, rider, driver, settings
):
    import asyncio

    from dispatch.services import remaining_eta as countdowns

    trip = _trip_on_the_road(rider, driver, started_ago_s=60)
    trip.status = "assigned"
    trip.save(update_fields=["status"])
    countdowns._known.clear()
    to_pickup = valhalla_router.legs_to([ROAD_NEARER], SOUTH, timezone.now())[0]

    first = asyncio.run(countdowns.remaining_eta(str(trip.id), ROAD_NEARER))
    assert first == countdowns.Countdown(eta_s=to_pickup.duration_s, to="pickup")
    # Within the refresh interval a fix from elsewhere is not routed again: the last ETA counts down.
    again = asyncio.run(countdowns.remaining_eta(str(trip.id), NORTH))
    assert again.to == "pickup" and to_pickup.duration_s - 1 <= again.eta_s <= to_pickup.duration_s

    settings.ROCHDALE_REMAINING_ETA_REFRESH_S = 0
    trip.status = "in_progress"
    trip.save(update_fields=["status"])
    to_dropoff = valhalla_router.legs_to([ROAD_NEARER], NORTH, timezone.now())[0]
    assert asyncio.run(countdowns.remaining_eta(str(trip.id), ROAD_NEARER)) == countdowns.Countdown(
        eta_s=to_dropoff.duration_s, to="dropoff"
    )
    trip.status = "completed"
    trip.save(update_fields=["status"])
    assert asyncio.run(countdowns.remaining_eta(str(trip.id), ROAD_NEARER)) is None


@pytest.mark.django_db(transaction=True)
def test_the_countdown_ends_when_the_driver_arrives_not_at_the_next_refresh(
    valhalla_router, seeded, rider, driver
):
    import asyncio

    from dispatch.services import remaining_eta as countdowns
    from dispatch.services.driving import trip_arrive

    trip = _trip_on_the_road(rider, driver, started_ago_s=60)
    trip.status, trip.started_at = "assigned", None
    trip.save(update_fields=["status", "started_at"])
    countdowns._known.clear()
    assert asyncio.run(countdowns.remaining_eta(str(trip.id), ROAD_NEARER)).to == "pickup"

    trip_arrive(driver_id=driver.id, trip_id=trip.id)

    assert asyncio.run(countdowns.remaining_eta(str(trip.id), SOUTH)) is None


@pytest.mark.django_db(transaction=True)
def test_a_countdown_that_cannot_be_computed_is_none_and_not_retried_before_the_refresh(seeded):
    """The countdown is a courtesy: whatever fails computing it, the fix it rides on goes through."""
    import asyncio

    from dispatch.services import remaining_eta as countdowns

    countdowns._known.clear()
    assert asyncio.run(countdowns.remaining_eta("not-a-trip-id", SOUTH)) is None
    assert countdowns._known["not-a-trip-id"].countdown is None  # remembered: the next fix does not retry


def test_a_gap_in_the_trail_is_bridged_by_the_road_not_dropped(valhalla_router, seeded, settings):
    """A tunnel or an app asleep leaves fixes far apart; the drive across the gap still counts."""
    from dispatch.services.driving import TrailPoint, trail_measure

    settings.ROCHDALE_MATCH_GAP_M = 300
    road = valhalla_router.route(SOUTH, NORTH, timezone.now())
    trail = sampled_every(road.geometry, 20.0)
    along = [path_length_m(trail[: index + 1]) for index in range(len(trail))]
    middle = road.distance_m / 2
    gapped = [point for point, at in zip(trail, along, strict=True) if abs(at - middle) > 300]
    assert len(gapped) < len(trail) - 20
    start = timezone.now() - timedelta(minutes=10)
    points = [
        TrailPoint(lat, lng, start + timedelta(seconds=3 * index), 5.0)
        for index, (lat, lng) in enumerate(gapped)
    ]

    measure = trail_measure(points)

    assert measure is not None and measure.source == "map_matched"
    assert measure.distance_m == pytest.approx(road.distance_m, rel=0.03)
