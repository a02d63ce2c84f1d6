"""Drivers claiming reservations from their list: what they see, the limits, giving a claim back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import auth_client_for
from tests.dispatch.conftest import CENTRE
from tests.scheduling.conftest import in_, make_reservation, sent

pytestmark = pytest.mark.django_db

LIST = "/api/v1/driver/reservations"


def claim_url(trip) -> str:
    return f"/api/v1/driver/reservations/{trip.id}/claim"


def release_url(trip) -> str:
    return f"/api/v1/driver/reservations/{trip.id}/release"


def test_the_list_shows_places_coarsely_until_the_drivers_claim_can_no_longer_be_given_back(
    area, rider, driver, driver_client
):
    from tests.factories import DriverFactory

    tomorrow = make_reservation(rider, scheduled_for=in_(86400))
    soon = make_reservation(rider, scheduled_for=in_(7200))
    make_reservation(rider, scheduled_for=in_(5 * 86400))  # beyond the 3-day claim horizon
    make_reservation(rider, scheduled_for=in_(3 * 3600), wav=True)  # needs a wheelchair-accessible vehicle
    make_reservation(rider, scheduled_for=in_(4 * 3600), claimed_by=DriverFactory(), claimed_at=in_(-60))
    mine = make_reservation(rider, scheduled_for=in_(30 * 3600), claimed_by=driver, claimed_at=in_(-60))
    # Less than two hours ahead: the claim can no longer be given back, so the ride is the driver's.
    committed = make_reservation(rider, scheduled_for=in_(5400), claimed_by=driver, claimed_at=in_(-60))

    response = driver_client.get(LIST)

    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["id"] for item in body["results"]] == [
        str(committed.id),
        str(soon.id),
        str(tomorrow.id),
        str(mine.id),
    ]
    offered = body["results"][2]
    assert offered["pickup"] is None and offered["claimed_by_you"] is False
    assert offered["pickup_area"] == {"lat": round(CENTRE[0], 2), "lng": round(CENTRE[1], 2)}
    assert offered["fare_estimate"] == {"amount": 1500, "currency": "USD"}
    assert offered["distance_m"] == 3000 and offered["pickup_distance_m"] is None
    assert offered["driver_pay"]["amount"] > 0
    own = body["results"][3]
    assert own["claimed_by_you"] is True and own["release_until"] is not None
    assert own["pickup"] is None and own["dropoff"] is None
    held = body["results"][0]
    assert held["pickup"] == {"lat": CENTRE[0], "lng": CENTRE[1]} and held["dropoff"] is not None


def test_a_wheelchair_accessible_vehicle_sees_wheelchair_reservations(area, rider):
    from tests.factories import DriverFactory

    wav = make_reservation(rider, scheduled_for=in_(3 * 3600), wav=True)
    client = auth_client_for(DriverFactory(profile__wheelchair_accessible=True))

    assert [item["id"] for item in client.get(LIST).json()["results"]] == [str(wav.id)]


def test_a_driver_elsewhere_sees_only_the_reservations_of_the_service_area_they_are_in(area, rider, driver):
    from django.contrib.gis.geos import Point

    from dispatch.models import DriverPresence
    from tests.factories import square_service_area

    square_service_area("Boston", lat=42.36, lng=-71.06)
    here = make_reservation(rider, scheduled_for=in_(7200))
    boston = make_reservation(rider, scheduled_for=in_(7300), lat=42.36, lng=-71.06)
    # Elsewhere in the same 0.01° cell: 1.7 km from the driver where the first is 1.4 km.
    nearby = make_reservation(rider, scheduled_for=in_(7400), lat=42.3641, lng=-71.0568)
    DriverPresence.objects.create(driver=driver, location=Point(-71.05, 42.35, srid=4326))

    body = auth_client_for(driver).get(LIST).json()

    assert [item["id"] for item in body["results"]] == [str(boston.id), str(nearby.id)]
    assert here.id  # in New York: not this driver's area
    # The distance is to the cell's centre, to the kilometre: positions a driver claims to be at tell
    # them the cell (which the list shows anyway), never where in it the pickup is.
    first, second = body["results"]
    assert first["pickup_area"] == second["pickup_area"] == {"lat": 42.36, "lng": -71.06}
    assert first["pickup_distance_m"] == second["pickup_distance_m"] == 1000


def test_only_approved_drivers_see_the_list(area, rider_client):
    from backend.accounts.models import DriverStatus
    from tests.factories import DriverFactory

    assert rider_client.get(LIST).json()["error"]["code"] == "driver_role_required"
    pending = auth_client_for(DriverFactory(profile__status=DriverStatus.PENDING))
    response = pending.get(LIST)
    assert response.status_code == 403 and response.json()["error"]["code"] == "driver_not_approved"


def test_a_claim_is_confirmed_to_the_rider_with_the_drivers_first_name_and_shown_on_their_trip(
    area, rider, rider_client, driver, driver_client
):
    from governance.models import AuditEntry

    type(driver).objects.filter(id=driver.id).update(name="Amina Okafor")
    trip = make_reservation(rider, scheduled_for=in_(86400))

    response = driver_client.post(claim_url(trip))

    assert response.status_code == 200, response.content
    # Still free to give back: the places stay coarse.
    assert response.json()["claimed_by_you"] is True and response.json()["pickup"] is None
    trip.refresh_from_db()
    assert trip.claimed_by_id == driver.id and trip.claimed_at is not None
    [confirmation] = sent("reservation_claimed", rider)
    assert "Amina" in confirmation.body and "Okafor" not in confirmation.body
    [claimed] = AuditEntry.objects.filter(kind="reservation.claimed")
    assert claimed.payload == {"trip_id": str(trip.id), "driver_id": str(driver.id)}
    assert rider_client.get(f"/api/v1/trips/{trip.id}").json()["reservation"]["claimed"] is True
    # Claiming it again changes nothing and tells nobody twice.
    assert driver_client.post(claim_url(trip)).status_code == 200
    assert len(sent("reservation_claimed", rider)) == 1


def test_another_drivers_claim_is_a_conflict_and_an_unknown_id_is_not_found(area, rider, driver_client):
    import uuid

    from tests.factories import DriverFactory

    trip = make_reservation(rider, scheduled_for=in_(86400), claimed_by=DriverFactory(), claimed_at=in_(-5))

    taken = driver_client.post(claim_url(trip))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "reservation_already_claimed"
    unknown = driver_client.post(f"/api/v1/driver/reservations/{uuid.uuid4()}/claim")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "reservation_not_found"
    # Giving back someone else's claim: as if there were no such reservation.
    assert driver_client.post(release_url(trip)).json() == unknown.json()


def test_a_driver_holds_at_most_four_claims(area, rider, driver_client):
    trips = [make_reservation(rider, scheduled_for=in_(3600 * (3 + 3 * n))) for n in range(5)]

    for trip in trips[:4]:
        assert driver_client.post(claim_url(trip)).status_code == 200

    refused = driver_client.post(claim_url(trips[4]))
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "claim_limit_reached",
        "message": "You may hold at most 4 claims at once.",
        "details": {"max_claims_per_driver": 4},
    }


def test_two_claims_of_one_driver_may_not_overlap_window_and_ride(area, rider, driver_client):
    """A 10-minute ride picked up at 12:00 (window 11:45 to 12:15) keeps the driver until 12:25: a pickup
    window opening at 12:20 overlaps it, one opening at 12:30 does not."""
    first = make_reservation(rider, scheduled_for=in_(86400))
    clash = make_reservation(rider, scheduled_for=first.scheduled_for + timedelta(minutes=35))
    after = make_reservation(rider, scheduled_for=first.scheduled_for + timedelta(minutes=45))
    assert driver_client.post(claim_url(first)).status_code == 200

    refused = driver_client.post(claim_url(clash))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "claims_overlap"
    assert refused.json()["error"]["details"]["trip_id"] == str(first.id)
    assert driver_client.post(claim_url(after)).status_code == 200


def test_a_claim_is_given_back_until_two_hours_before_and_not_after(area, rider, driver, driver_client):
    from dispatch.models import Trip

    trip = make_reservation(rider, scheduled_for=in_(86400), claimed_by=driver, claimed_at=in_(-60))
    late = make_reservation(rider, scheduled_for=in_(7000), claimed_by=driver, claimed_at=in_(-60))

    response = driver_client.post(release_url(trip))

    assert response.status_code == 200, response.content
    assert response.json()["claimed_by_you"] is False and response.json()["pickup"] is None
    assert Trip.objects.get(id=trip.id).claimed_by_id is None
    assert len(sent("reservation_redispatched", rider)) == 1
    refused = driver_client.post(release_url(late))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "claim_release_too_late"
    assert refused.json()["error"]["details"]["release_until"].endswith("Z")
    assert Trip.objects.get(id=late.id).claimed_by_id == driver.id


def test_a_driver_without_the_regulators_documents_may_not_claim(area, rider, driver_client, settings):
    """Under New York's profile a driver with no documents is refused with the first problem, as when
    going online (dispatch/services/eligibility.py)."""
    settings.ROCHDALE_REGULATOR_PROFILE = "nyc_tlc"
    trip = make_reservation(rider, scheduled_for=in_(86400))

    refused = driver_client.post(claim_url(trip))

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "document_missing"
    assert driver_client.get(LIST).json()["error"]["code"] == "document_missing"


def test_a_driver_gives_back_at_most_three_claims_a_day(area, rider, driver, driver_client):
    """Claiming and giving back over and over would text the rider each time (and walk the list)."""
    from governance.models import AuditEntry

    trip = make_reservation(rider, scheduled_for=in_(86400))
    for _ in range(3):
        assert driver_client.post(claim_url(trip)).status_code == 200
        assert driver_client.post(release_url(trip)).status_code == 200
    assert driver_client.post(claim_url(trip)).status_code == 200

    refused = driver_client.post(release_url(trip))

    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "claim_release_limit_reached"
    assert error["details"]["max_releases_per_day"] == 3 and error["details"]["next_release_at"].endswith("Z")
    trip.refresh_from_db()
    assert trip.claimed_by_id == driver.id
    kinds = list(AuditEntry.objects.filter(kind__startswith="reservation.").values_list("kind", flat=True))
    assert kinds == ["reservation.claimed", "reservation.claim_released"] * 3 + ["reservation.claimed"]
