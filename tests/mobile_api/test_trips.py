"""Trips over HTTP: request, read, list, cancel (fees, offers), ratings, tips, and server-owned fields."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind, JournalEntry
from backend.fares.pricing import cancellation_split
from backend.fares.selectors import policy_in_force
from dispatch.models import Offer, OfferStatus, Rating, Tip, Trip, TripEvent
from dispatch.state import TripStatus
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory
from tests.mobile_api.builders import (
    DROPOFF,
    PICKUP,
    assigned_trip,
    completed_trip,
    requested_trip,
    started_trip,
)

pytestmark = pytest.mark.django_db
TRIP = {"pickup": PICKUP, "dropoff": DROPOFF}


def test_a_trip_request_answers_201_with_the_trip(rider, rider_client, service_area, idem):
    response = rider_client.post("/api/v1/trips", TRIP, format="json", **idem())
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "requested" and body["driver"] is None and body["fare"] is None
    assert body["pickup"] == PICKUP and body["dropoff"] == DROPOFF
    assert body["fare_estimate"]["amount"] > 0 and body["cancelled_by"] is None
    trip = Trip.objects.get(id=body["id"])
    assert trip.next_dispatch_at is not None and trip.search_deadline > trip.requested_at
    assert list(TripEvent.objects.filter(trip=trip).values_list("status", "actor_id")) == [
        ("requested", rider.id)
    ]


def test_a_new_trip_is_handed_to_dispatch_after_commit(
    rider_client, service_area, idem, django_capture_on_commit_callbacks
):
    from backend.redis import get_redis
    from dispatch import live

    with django_capture_on_commit_callbacks(execute=True):
        trip_id = rider_client.post("/api/v1/trips", TRIP, format="json", **idem()).json()["id"]
    events = get_redis().xrange(live.events_key())
    assert any(fields.get(b"trip") == trip_id.encode() for _, fields in events)


def test_one_open_trip_per_rider(rider, rider_client, service_area, idem):
    existing = requested_trip(rider)
    response = rider_client.post("/api/v1/trips", TRIP, format="json", **idem())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "trip_in_progress"
    assert response.json()["error"]["details"]["trip_id"] == str(existing.id)


def test_a_driver_only_account_cannot_request(driver_client, service_area, idem):
    response = driver_client.post("/api/v1/trips", TRIP, format="json", **idem())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "rider_role_required"


def test_server_fields_in_a_request_are_ignored(rider, rider_client, service_area, idem):
    intruder = DriverFactory()
    other_rider = RiderFactory()
    body = {
        **TRIP,
        "status": "completed",
        "fare": {"amount": 1, "currency": "USD"},
        "fare_estimate": {"amount": 1, "currency": "USD"},
        "fare_minor": 1,
        "driver": str(intruder.id),
        "driver_id": str(intruder.id),
        "driver_pay": {"amount": 999999, "currency": "USD"},
        "rider": str(other_rider.id),
        "rider_id": str(other_rider.id),
        "id": "00000000-0000-4000-8000-000000000001",
        "cancelled_by": "system",
        "requested_at": "2000-01-01T00:00:00Z",
        "policy_version": 99,
    }
    response = rider_client.post("/api/v1/trips", body, format="json", **idem())
    assert response.status_code == 201
    trip = Trip.objects.get(id=response.json()["id"])
    assert str(trip.id) != body["id"]
    assert trip.status == "requested" and trip.driver_id is None and trip.rider_id == rider.id
    assert trip.fare_minor is None and trip.driver_pay_minor is None and trip.cancelled_by is None
    assert trip.fare_estimate_minor > 1 and trip.requested_at.year > 2000 and trip.policy_version_id == 1


def test_server_fields_in_a_rating_or_tip_are_ignored(service_area, idem):
    trip = completed_trip()
    client = auth_client_for(trip.rider)
    client.post(
        f"/api/v1/trips/{trip.id}/rating", {"stars": 4, "author_role": "driver", "trip": "x"}, format="json"
    )
    assert Rating.objects.get(trip=trip).author_role == "rider"
    client.post(
        f"/api/v1/trips/{trip.id}/tip",
        {"amount": {"amount": 100, "currency": "USD"}, "driver": str(RiderFactory().id), "rider": "x"},
        format="json",
        **idem(),
    )
    assert Tip.objects.get(trip=trip).driver_id == trip.driver_id


def test_reading_a_trip_shows_the_driver_and_location_to_the_rider(service_area):
    from django.contrib.gis.geos import Point

    from dispatch.models import DriverPresence

    trip = assigned_trip()
    DriverPresence.objects.create(driver=trip.driver, location=Point(-73.99, 40.75, srid=4326))
    body = auth_client_for(trip.rider).get(f"/api/v1/trips/{trip.id}").json()
    assert body["status"] == "assigned"
    assert body["driver"]["id"] == str(trip.driver_id)
    assert body["driver"]["location"] == {"lat": 40.75, "lng": -73.99}
    assert body["driver"]["vehicle"]["plate"]
    as_driver = auth_client_for(trip.driver).get(f"/api/v1/trips/{trip.id}").json()
    assert as_driver["driver"]["location"] is None


def test_lists_hold_the_callers_trips_only_newest_first_paginated(service_area):
    rider, driver = RiderFactory(), DriverFactory()
    ridden = []
    for _ in range(5):
        ridden.append(completed_trip(rider, driver))
    requested_trip()  # somebody else's
    client = auth_client_for(rider)
    first = client.get("/api/v1/trips?page_size=2").json()
    assert [t["id"] for t in first["results"]] == [str(ridden[4].id), str(ridden[3].id)]
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    assert [t["id"] for t in second["results"] + third["results"]] == [
        str(t.id) for t in reversed(ridden[:3])
    ]
    assert third["next"] is None
    driven = auth_client_for(driver).get("/api/v1/trips").json()
    assert {t["id"] for t in driven["results"]} == {str(t.id) for t in ridden}
    assert auth_client_for(RiderFactory()).get("/api/v1/trips").json() == {"results": [], "next": None}


def test_page_size_is_capped_at_100(rider, rider_client, service_area):
    for _ in range(3):
        completed_trip(rider)
    body = rider_client.get("/api/v1/trips?page_size=100000").json()
    assert len(body["results"]) == 3
    garbled = rider_client.get("/api/v1/trips?cursor=garbage")
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "invalid_cursor"


def test_a_rider_cancels_free_before_assignment(rider, rider_client, service_area):
    trip = requested_trip(rider)
    body = rider_client.post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json").json()
    assert (
        body["status"] == "cancelled" and body["cancelled_by"] == "rider" and body["cancellation_fee"] is None
    )
    assert [e["status"] for e in body["events"]] == ["requested", "cancelled"]
    assert not JournalEntry.objects.filter(key=f"trip:{trip.id}:cancellation").exists()


def test_a_rider_cancels_free_within_the_free_period_after_assignment(service_area):
    trip = assigned_trip()
    body = auth_client_for(trip.rider).post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json").json()
    assert body["cancellation_fee"] is None


def test_a_late_rider_cancellation_pays_the_fee_to_the_driver(service_area):
    policy = policy_in_force()
    late = timezone.now() - timedelta(seconds=policy.rider.free_cancellation_s + 5)
    trip = assigned_trip(assigned_at=late)
    response = auth_client_for(trip.rider).post(
        f"/api/v1/trips/{trip.id}/cancel", {"reason": "Driver is too far"}, format="json"
    )
    assert response.status_code == 200
    split = cancellation_split(policy)
    assert response.json()["cancellation_fee"] == {"amount": split.fee, "currency": "USD"}
    assert (
        balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=trip.driver_id, currency="USD")
        == split.driver
    )
    stored = Trip.objects.get(id=trip.id)
    assert stored.cancel_reason == "Driver is too far" and stored.cancelled_by == "rider"


def test_a_driver_cancels_through_the_same_route_without_a_fee(service_area):
    late = timezone.now() - timedelta(hours=1)
    trip = assigned_trip(assigned_at=late)
    body = auth_client_for(trip.driver).post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json").json()
    assert (
        body["status"] == "cancelled"
        and body["cancelled_by"] == "driver"
        and body["cancellation_fee"] is None
    )


def test_cancelling_withdraws_open_offers(rider, rider_client, service_area):
    trip = requested_trip(rider)
    driver = DriverFactory()
    offer = Offer.objects.create(
        trip=trip,
        driver=driver,
        expires_at=timezone.now() + timedelta(seconds=15),
        pickup_distance_m=500,
        pickup_eta_s=90,
        rank=1,
        candidates_considered=1,
    )
    rider_client.post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json")
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN


@pytest.mark.parametrize("make", [started_trip, completed_trip])
def test_a_started_or_finished_trip_cannot_be_cancelled(service_area, make):
    trip = make()
    response = auth_client_for(trip.rider).post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "trip_not_cancellable"
    assert Trip.objects.get(id=trip.id).status == trip.status


def test_a_cancelled_trip_cannot_be_cancelled_again(rider, rider_client, service_area):
    trip = requested_trip(rider)
    rider_client.post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json")
    again = rider_client.post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "trip_not_cancellable"


def test_each_party_rates_once_after_completion(service_area):
    trip = completed_trip()
    rider, driver = auth_client_for(trip.rider), auth_client_for(trip.driver)
    assert rider.post(f"/api/v1/trips/{trip.id}/rating", {"stars": 5}, format="json").status_code == 201
    by_driver = driver.post(f"/api/v1/trips/{trip.id}/rating", {"stars": 3, "comment": "Late"}, format="json")
    assert by_driver.status_code == 201 and by_driver.json()["author_role"] == "driver"
    again = rider.post(f"/api/v1/trips/{trip.id}/rating", {"stars": 1}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_rated"
    assert sorted(Rating.objects.filter(trip=trip).values_list("author_role", "stars")) == [
        ("driver", 3),
        ("rider", 5),
    ]


def test_an_unfinished_trip_cannot_be_rated(service_area):
    trip = assigned_trip()
    response = auth_client_for(trip.rider).post(
        f"/api/v1/trips/{trip.id}/rating", {"stars": 5}, format="json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "trip_not_completed"


@pytest.mark.parametrize("stars", [0, 6, -1, 2.5, "five", None, True])
def test_stars_are_1_to_5(service_area, stars):
    trip = completed_trip()
    response = auth_client_for(trip.rider).post(
        f"/api/v1/trips/{trip.id}/rating", {"stars": stars}, format="json"
    )
    assert response.status_code == 400
    assert "stars" in response.json()["error"]["details"]


def test_a_tip_goes_wholly_to_the_driver_and_is_bounded_by_the_fare(service_area, idem):
    trip = completed_trip()
    client = auth_client_for(trip.rider)
    url = f"/api/v1/trips/{trip.id}/tip"
    first = client.post(
        url, {"amount": {"amount": trip.fare_minor - 1, "currency": "USD"}}, format="json", **idem()
    )
    assert first.status_code == 201
    assert (
        balance_minor(kind=AccountKind.TIPS_HELD, owner_id=trip.driver_id, currency="USD")
        == trip.fare_minor - 1
    )
    too_much = client.post(url, {"amount": {"amount": 2, "currency": "USD"}}, format="json", **idem())
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "tip_too_large"
    assert too_much.json()["error"]["details"]["max"] == {"amount": 1, "currency": "USD"}
    assert (
        client.post(url, {"amount": {"amount": 1, "currency": "USD"}}, format="json", **idem()).status_code
        == 201
    )
    assert Tip.objects.filter(trip=trip).count() == 2


def test_a_tip_replayed_with_its_key_is_paid_once(service_area, idem):
    trip = completed_trip()
    client = auth_client_for(trip.rider)
    headers = idem()
    for _ in range(3):
        response = client.post(
            f"/api/v1/trips/{trip.id}/tip",
            {"amount": {"amount": 250, "currency": "USD"}},
            format="json",
            **headers,
        )
        assert response.status_code == 201
    assert balance_minor(kind=AccountKind.TIPS_HELD, owner_id=trip.driver_id, currency="USD") == 250


def test_tips_need_a_key(service_area):
    trip = completed_trip()
    response = auth_client_for(trip.rider).post(
        f"/api/v1/trips/{trip.id}/tip", {"amount": {"amount": 250, "currency": "USD"}}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        ({"amount": 0, "currency": "USD"}, 400, "invalid_input"),
        ({"amount": -5, "currency": "USD"}, 400, "invalid_input"),
        ({"amount": 1.5, "currency": "USD"}, 400, "invalid_input"),
        ({"amount": 100, "currency": "EUR"}, 422, "currency_mismatch"),
        ({"amount": 100, "currency": "XYZ"}, 400, "invalid_input"),
        (100, 400, "invalid_input"),
    ],
)
def test_tip_amounts_are_validated(service_area, idem, amount, status, code):
    trip = completed_trip()
    response = auth_client_for(trip.rider).post(
        f"/api/v1/trips/{trip.id}/tip", {"amount": amount}, format="json", **idem()
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Tip.objects.exists()


def test_only_the_rider_tips_and_only_a_completed_trip(service_area, idem):
    trip = completed_trip()
    by_driver = auth_client_for(trip.driver).post(
        f"/api/v1/trips/{trip.id}/tip",
        {"amount": {"amount": 100, "currency": "USD"}},
        format="json",
        **idem(),
    )
    assert by_driver.status_code == 403 and by_driver.json()["error"]["code"] == "only_rider_may_tip"
    open_trip = assigned_trip()
    early = auth_client_for(open_trip.rider).post(
        f"/api/v1/trips/{open_trip.id}/tip",
        {"amount": {"amount": 100, "currency": "USD"}},
        format="json",
        **idem(),
    )
    assert early.status_code == 409 and early.json()["error"]["code"] == "trip_not_completed"
    assert open_trip.status == TripStatus.ASSIGNED
