"""Must show (issue 17): a share-trip link shows the trip while it runs, and 404s after it ends.

The rider makes the link over the API; an anonymous client (the friend) reads the JSON and the page. What
the friend sees is the trip's progress and nothing else; every way a link stops working (the trip ended,
expired, revoked, made up) answers the very same 404; the link is limited per real client IP.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dispatch.models import TripShareLink
from dispatch.selectors import trip_load
from dispatch.services.transitions import trip_transition
from dispatch.state import TripStatus
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory
from tests.mobile_api.builders import assigned_trip, drive_to_completion, requested_trip
from tests.safety.conftest import live_fix

pytestmark = pytest.mark.django_db

SHARED_KEYS = {
    "status",
    "driver",
    "car",
    "eta",
    "pickup_area",
    "dropoff_area",
    "scheduled_for",
    "link_expires_at",
    "updated_at",
}


def _share(rider, trip, **body) -> dict:
    answer = auth_client_for(rider).post(f"/api/v1/trips/{trip.id}/share-links", body, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _unknown_token_answer():
    return APIClient().get("/api/v1/shared/trips/this-is-no-token-of-ours-at-all-0000000000000")


def test_a_link_shows_the_running_trip_to_anyone_holding_it_and_nothing_else():
    rider = RiderFactory(name="Ada Lovelace Rider")
    driver = DriverFactory(name="Grace Hopper")
    trip = assigned_trip(rider, driver)
    live_fix(driver, 40.7611, -73.9800, heading=181.0)
    link = _share(rider, trip)
    assert link["url"].endswith(f"/share/{link['token']}") and link["active"] is True

    friend = APIClient()
    seen = friend.get(f"/api/v1/shared/trips/{link['token']}")

    assert seen.status_code == 200, seen.content
    body = seen.json()
    assert set(body) == SHARED_KEYS
    assert body["status"] == "assigned"
    vehicle = driver.driver_profile.active_vehicle
    assert body["driver"] == {
        "first_name": "Grace",
        "vehicle": {"make": vehicle.make, "model": vehicle.model, "plate": vehicle.plate},
    }
    assert body["car"]["lat"] == pytest.approx(40.7611) and body["car"]["heading"] == 181
    # On the ETA model (no road graph in tests) the car, about 450 m away, is a minute or two out.
    assert body["eta"]["to"] == "pickup" and 0 < body["eta"]["seconds"] < 600
    # The places only to the district: two decimals of a degree.
    assert body["pickup_area"] == {"lat": 40.76, "lng": -73.99}
    text = seen.content.decode()
    for private in (rider.name, "Ada", rider.phone, str(rider.id), driver.phone, "Hopper", "fare"):
        assert private not in text
    assert seen["Cache-Control"] == "private, no-store, max-age=0"
    assert seen["Referrer-Policy"] == "no-referrer"

    page = friend.get(f"/share/{link['token']}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Grace" in html and vehicle.plate in html and rider.phone not in html and "Ada" not in html
    assert "default-src 'none'" in page["Content-Security-Policy"]


def test_the_car_is_not_shown_while_it_waits_at_the_pickup_nor_from_a_stale_fix():
    rider, driver = RiderFactory(), DriverFactory()
    trip = assigned_trip(rider, driver)
    live_fix(driver, 40.7611, -73.9800, age_s=600)
    token = _share(rider, trip)["token"]
    assert APIClient().get(f"/api/v1/shared/trips/{token}").json()["car"] is None

    live_fix(driver, 40.7580, -73.9855)
    trip_transition(trip_id=trip.id, to=TripStatus.ARRIVED, actor_id=driver.id)
    waiting = APIClient().get(f"/api/v1/shared/trips/{token}").json()
    assert waiting["status"] == "arrived" and waiting["car"] is None and waiting["eta"] is None

    trip_transition(trip_id=trip.id, to=TripStatus.IN_PROGRESS, actor_id=driver.id)
    riding = APIClient().get(f"/api/v1/shared/trips/{token}").json()
    assert riding["status"] == "in_progress" and riding["car"] is not None
    assert riding["eta"]["to"] == "dropoff"


def test_the_link_404s_once_the_trip_ends_with_the_same_body_as_a_made_up_token():
    rider, driver = RiderFactory(), DriverFactory()
    trip = assigned_trip(rider, driver)
    token = _share(rider, trip)["token"]
    friend = APIClient()
    assert friend.get(f"/api/v1/shared/trips/{token}").status_code == 200

    drive_to_completion(trip_load(trip.id))

    ended = friend.get(f"/api/v1/shared/trips/{token}")
    unknown = _unknown_token_answer()
    assert ended.status_code == unknown.status_code == 404
    assert ended.json() == unknown.json()
    assert ended.json()["error"]["code"] == "share_link_not_found"
    page = friend.get(f"/share/{token}")
    assert page.status_code == 404 and "no longer shared" in page.content.decode()
    # And the rider cannot make a new one for the ended trip.
    again = auth_client_for(rider).post(f"/api/v1/trips/{trip.id}/share-links", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "share_trip_ended"


def test_a_cancelled_trip_a_revoked_link_and_an_expired_one_answer_the_same_404():
    rider = RiderFactory()
    trip = requested_trip(rider)
    revoked, expired, kept = (_share(rider, trip) for _ in range(3))
    client = auth_client_for(rider)

    answer = client.post(f"/api/v1/trips/{trip.id}/share-links/{revoked['id']}/revoke", format="json")
    assert answer.status_code == 200 and answer.json()["active"] is False
    an_hour_ago = timezone.now() - timedelta(hours=1)
    TripShareLink.objects.filter(id=expired["id"]).update(
        created_at=an_hour_ago - timedelta(hours=4), expires_at=an_hour_ago
    )

    unknown = _unknown_token_answer().json()
    for link in (revoked, expired):
        gone = APIClient().get(f"/api/v1/shared/trips/{link['token']}")
        assert gone.status_code == 404 and gone.json() == unknown
    assert APIClient().get(f"/api/v1/shared/trips/{kept['token']}").json()["status"] == "requested"

    client.post(f"/api/v1/trips/{trip.id}/cancel", {}, format="json")
    cancelled = APIClient().get(f"/api/v1/shared/trips/{kept['token']}")
    assert cancelled.status_code == 404 and cancelled.json() == unknown


def test_only_a_digest_of_the_token_is_kept_and_the_list_never_shows_tokens():
    rider = RiderFactory()
    trip = requested_trip(rider)
    link = _share(rider, trip, expires_in_s=900)
    stored = TripShareLink.objects.get(id=link["id"])
    assert stored.token_sha256 == hashlib.sha256(link["token"].encode()).hexdigest()
    assert link["token"] not in json.dumps(list(TripShareLink.objects.values()), default=str)
    assert (stored.expires_at - stored.created_at) == timedelta(seconds=900)

    listed = auth_client_for(rider).get(f"/api/v1/trips/{trip.id}/share-links").json()
    assert [row["id"] for row in listed["results"]] == [link["id"]]
    assert "token" not in listed["results"][0] and link["token"] not in json.dumps(listed)


def test_a_few_links_per_trip_at_most_and_a_lifetime_in_range():
    rider = RiderFactory()
    trip = requested_trip(rider)
    for _ in range(3):
        _share(rider, trip)
    client = auth_client_for(rider)
    fourth = client.post(f"/api/v1/trips/{trip.id}/share-links", {}, format="json")
    assert fourth.status_code == 409
    assert fourth.json()["error"] == {
        "code": "share_link_limit",
        "message": fourth.json()["error"]["message"],
        "details": {"max": 3},
    }
    too_long = client.post(f"/api/v1/trips/{trip.id}/share-links", {"expires_in_s": 7 * 86400}, format="json")
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "invalid_input"


def test_nobody_but_the_trips_rider_makes_or_sees_its_links():
    rider, driver, stranger = RiderFactory(), DriverFactory(), RiderFactory()
    trip = assigned_trip(rider, driver)
    link = _share(rider, trip)
    for outsider in (driver, stranger):
        client = auth_client_for(outsider)
        made = client.post(f"/api/v1/trips/{trip.id}/share-links", {}, format="json")
        assert made.status_code == 404 and made.json()["error"]["code"] == "trip_not_found"
        listed = client.get(f"/api/v1/trips/{trip.id}/share-links")
        assert listed.status_code == 404
        revoked = client.post(f"/api/v1/trips/{trip.id}/share-links/{link['id']}/revoke", format="json")
        assert revoked.status_code == 404 and revoked.json()["error"]["code"] == "share_link_not_found"
    assert APIClient().get(f"/api/v1/shared/trips/{link['token']}").status_code == 200


def test_the_link_is_limited_per_real_client_ip_whatever_x_forwarded_for_says(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "shared_trip_ip": "3/min",
        },
    }
    rider = RiderFactory()
    token = _share(rider, requested_trip(rider))["token"]
    friend = APIClient()
    answers = [
        friend.get(f"/api/v1/shared/trips/{token}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}") for n in range(3)
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    limited = friend.get(f"/api/v1/shared/trips/{token}", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    page = friend.get(f"/share/{token}")  # the page counts on the same limit
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1


def test_a_spanish_reader_gets_the_page_and_the_same_refusal_code():
    rider = RiderFactory()
    token = _share(rider, requested_trip(rider))["token"]
    english = _unknown_token_answer().json()["error"]
    spanish = (
        APIClient()
        .get("/api/v1/shared/trips/this-is-no-token-of-ours-at-all-0000000000000", HTTP_ACCEPT_LANGUAGE="es")
        .json()["error"]
    )
    assert spanish["code"] == english["code"] == "share_link_not_found"
    assert APIClient().get(f"/share/{token}", HTTP_ACCEPT_LANGUAGE="es").status_code == 200
