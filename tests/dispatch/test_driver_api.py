"""`GET /driver/state` and `GET /driver/offers`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import auth_client_for
from tests.dispatch.conftest import driver_online_at, make_trip

pytestmark = pytest.mark.django_db


def _offer(trip, driver, **fields):
    from dispatch.models import Offer

    defaults = {
        "expires_at": timezone.now() + timedelta(seconds=15),
        "pickup_distance_m": 420,
        "pickup_eta_s": 95,
        "rank": 1,
        "candidates_considered": 3,
        "idle_s": 300,
        "reason": {"rule": "idle_within_eta_band", "explanation": "You were the fastest."},
        "dispatch_policy_version": 1,
    }
    return Offer.objects.create(trip=trip, driver=driver, **{**defaults, **fields})


def test_driver_state_shows_online_the_open_offer_and_the_active_trip(seeded, driver, driver_client, rider):
    from dispatch.services.offers import offer_accept

    # With the regulator profile `none` (the default) nothing keeps a driver from work (docs/compliance.md).
    nothing_required = {"eligible": True, "problems": [], "wheelchair_accessible_problems": None, "hours": []}
    assert driver_client.get("/api/v1/driver/state").json() == {
        "online": False,
        "offer": None,
        "trip": None,
        "eligibility": nothing_required,
    }
    driver_online_at(driver, 40.76, -73.98)
    trip = make_trip(rider)
    offer = _offer(trip, driver)
    state = driver_client.get("/api/v1/driver/state").json()
    assert state["online"] is True and state["trip"] is None
    assert state["offer"]["offer_id"] == str(offer.id) and state["offer"]["trip_id"] == str(trip.id)
    assert state["offer"]["fare"] == {"amount": 1500, "currency": "USD"}
    assert set(state["offer"]) >= {
        "pickup",
        "dropoff",
        "pickup_distance_m",
        "pickup_eta_s",
        "trip_distance_m",
        "trip_duration_s",
        "driver_pay",
        "expires_at",
    }
    offer_accept(driver_id=driver.id, offer_id=offer.id)
    state = driver_client.get("/api/v1/driver/state").json()
    assert (
        state["offer"] is None
        and state["trip"]["id"] == str(trip.id)
        and state["trip"]["status"] == "assigned"
    )


def test_an_expired_offer_is_not_in_the_state(seeded, driver, driver_client, rider):
    _offer(make_trip(rider), driver, expires_at=timezone.now() - timedelta(seconds=1))
    assert driver_client.get("/api/v1/driver/state").json()["offer"] is None


def test_offer_history_is_the_drivers_own_paginated_with_reasons(seeded, driver, driver_client):
    from tests.factories import DriverFactory, RiderFactory

    other = DriverFactory()
    mine = [_offer(make_trip(RiderFactory()), driver, status="declined") for _ in range(3)]
    _offer(make_trip(RiderFactory()), other)
    page = driver_client.get("/api/v1/driver/offers?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    rest = driver_client.get(page["next"]).json()
    assert rest["next"] is None
    seen = [item["offer_id"] for item in page["results"] + rest["results"]]
    assert sorted(seen) == sorted(str(o.id) for o in mine)
    item = page["results"][0]
    assert item["reason"]["explanation"] == "You were the fastest."
    assert item["rank"] == 1 and item["candidates_considered"] == 3 and item["status"] == "declined"


def test_riders_cannot_use_driver_routes(seeded, rider):
    client = auth_client_for(rider)
    for path in ("/api/v1/driver/state", "/api/v1/driver/offers"):
        response = client.get(path)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "driver_role_required"


@pytest.mark.django_db
def test_an_estimate_quotes_the_pickup_eta_of_the_nearest_available_driver(seeded):
    """`pickup_eta_s` comes from the live positions: null with nobody near, then the nearest free driver's
    ETA by the shared model, and the nearer of two drivers wins."""
    from django.utils import timezone

    from dispatch.eta_model import pickup_eta_s
    from dispatch.matching.geo import destination_point
    from tests.conftest import auth_client_for
    from tests.dispatch.conftest import CENTRE, driver_online_at
    from tests.factories import DriverFactory, RiderFactory, square_service_area

    square_service_area()
    rider_client = auth_client_for(RiderFactory())
    body = {
        "pickup": {"lat": CENTRE[0], "lng": CENTRE[1]},
        "dropoff": {"lat": CENTRE[0] + 0.02, "lng": CENTRE[1] + 0.01},
    }
    alone = rider_client.post("/api/v1/fares/estimate", body, format="json")
    assert alone.status_code == 200, alone.content
    assert alone.json()["pickup_eta_s"] is None

    far = destination_point(CENTRE[0], CENTRE[1], 90.0, 2000.0)
    near = destination_point(CENTRE[0], CENTRE[1], 0.0, 600.0)
    driver_online_at(DriverFactory(), *far)
    driver_online_at(DriverFactory(), *near)
    quoted = rider_client.post("/api/v1/fares/estimate", body, format="json").json()["pickup_eta_s"]

    expected = pickup_eta_s(600.0, at=timezone.now())
    assert quoted is not None and abs(quoted - expected) <= 2
    assert quoted < pickup_eta_s(2000.0, at=timezone.now())
