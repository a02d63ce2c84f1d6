"""Fare estimates: the contract's answer, the policy and ETA model behind it, expiry, service areas, and the
rules for a trip that names an estimate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.fares.pricing import quote_fare, trip_floor
from backend.fares.selectors import policy_in_force
from dispatch.models import FareEstimate, ServiceArea, Trip
from dispatch.services.estimates import Place, route_estimate
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.mobile_api.builders import DROPOFF, OUTSIDE, PICKUP

pytestmark = pytest.mark.django_db


def _estimate(client, **body):
    return client.post(
        "/api/v1/fares/estimate", {"pickup": PICKUP, "dropoff": DROPOFF, **body}, format="json"
    )


def test_estimate_answers_the_contract_and_is_stored(rider, rider_client, service_area, settings):
    before = timezone.now()
    response = _estimate(rider_client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "estimate_id", "fare", "distance_m", "duration_s", "pickup_eta_s", "driver_pay_minimum",
        "policy_version", "breakdown", "expires_at", "route", "fees", "total",
    }  # fmt: skip
    policy = policy_in_force()
    route = route_estimate(pickup=Place(**PICKUP), dropoff=Place(**DROPOFF), at=timezone.now())
    distance_m, duration_s = route.distance_m, route.duration_s
    assert (body["distance_m"], body["duration_s"]) == (distance_m, duration_s)
    # No road graph here: the model's straight line, from pickup to dropoff.
    assert body["route"] == {
        "router": "model",
        "geometry": {
            "type": "LineString",
            "coordinates": [[PICKUP["lng"], PICKUP["lat"]], [DROPOFF["lng"], DROPOFF["lat"]]],
        },
    }
    assert body["fare"] == {
        "amount": quote_fare(policy, distance_m=distance_m, duration_s=duration_s).fare,
        "currency": "USD",
    }
    floor = trip_floor(policy, distance_m=distance_m, duration_s=duration_s, wheelchair_accessible=False)
    assert body["driver_pay_minimum"] == {"amount": floor, "currency": "USD"}
    assert body["policy_version"] == policy.version
    assert sum(line["amount"] for line in body["breakdown"]) == body["fare"]["amount"]
    # The default policy has no pass-through fees: the total is the fare.
    assert body["fees"] == [] and body["total"] == body["fare"]
    assert body["pickup_eta_s"] is None  # nobody is online
    assert body["expires_at"].endswith("Z")
    stored = FareEstimate.objects.get(id=body["estimate_id"])
    assert stored.rider_id == rider.id
    ttl = (stored.expires_at - before).total_seconds()
    assert settings.ROCHDALE_ESTIMATE_TTL_S - 5 <= ttl <= settings.ROCHDALE_ESTIMATE_TTL_S + 5


def test_a_wheelchair_accessible_estimate_has_the_wav_floor(rider_client, service_area):
    plain = _estimate(rider_client).json()
    wav = _estimate(rider_client, wheelchair_accessible=True).json()
    assert wav["fare"] == plain["fare"]
    assert wav["driver_pay_minimum"]["amount"] > plain["driver_pay_minimum"]["amount"]


@pytest.mark.parametrize(
    "places", [{"pickup": OUTSIDE}, {"dropoff": OUTSIDE}, {"pickup": OUTSIDE, "dropoff": OUTSIDE}]
)
def test_outside_every_active_area_answers_422(rider_client, service_area, places):
    response = _estimate(rider_client, **places)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "outside_service_area"
    assert set(error["details"]["places"]) == set(places)
    assert not FareEstimate.objects.exists()


def test_an_inactive_area_serves_nobody(rider_client, service_area):
    ServiceArea.objects.update(is_active=False)
    assert _estimate(rider_client).status_code == 422


def test_trips_outside_the_area_answer_422(rider_client, service_area, idem):
    response = rider_client.post(
        "/api/v1/trips", {"pickup": PICKUP, "dropoff": OUTSIDE}, format="json", **idem()
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "outside_service_area"


def _request(client, idem, estimate_id, **overrides):
    body = {"pickup": PICKUP, "dropoff": DROPOFF, "estimate_id": estimate_id, **overrides}
    return client.post("/api/v1/trips", body, format="json", **idem())


def test_a_trip_naming_its_estimate_carries_the_quote(rider_client, service_area, idem):
    estimate = _estimate(rider_client, wheelchair_accessible=True).json()
    # A few metres of GPS jitter is the same place.
    nudged = {"lat": PICKUP["lat"] + 0.00003, "lng": PICKUP["lng"]}
    response = _request(rider_client, idem, estimate["estimate_id"], pickup=nudged)
    assert response.status_code == 201, response.content
    trip = Trip.objects.get(id=response.json()["id"])
    assert trip.estimate_id is not None and str(trip.estimate_id) == estimate["estimate_id"]
    assert trip.fare_estimate_minor == estimate["fare"]["amount"]
    assert trip.estimated_distance_m == estimate["distance_m"]
    assert trip.policy_version_id == estimate["policy_version"]
    assert trip.wheelchair_accessible is True  # taken from the estimate


def test_someone_elses_estimate_is_refused(rider_client, service_area, idem):
    other = _estimate(auth_client_for(RiderFactory())).json()
    response = _request(rider_client, idem, other["estimate_id"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "estimate_not_found"


def test_an_unknown_estimate_is_refused(rider_client, service_area, idem):
    response = _request(rider_client, idem, "00000000-0000-4000-8000-000000000000")
    assert response.json()["error"]["code"] == "estimate_not_found"


def test_an_expired_estimate_is_refused(rider_client, service_area, idem):
    estimate = _estimate(rider_client).json()
    FareEstimate.objects.filter(id=estimate["estimate_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = _request(rider_client, idem, estimate["estimate_id"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "estimate_expired"


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"pickup": {"lat": 40.7590, "lng": -73.9855}}, ["pickup"]),  # ~110 m away
        ({"dropoff": {"lat": 40.7300, "lng": -73.9900}}, ["dropoff"]),
        ({"wheelchair_accessible": True}, ["wheelchair_accessible"]),
    ],
)
def test_a_trip_that_differs_from_its_estimate_is_refused(
    rider_client, service_area, idem, overrides, fields
):
    estimate = _estimate(rider_client).json()
    response = _request(rider_client, idem, estimate["estimate_id"], **overrides)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "estimate_mismatch"
    assert response.json()["error"]["details"]["fields"] == fields
    assert not Trip.objects.exists()
