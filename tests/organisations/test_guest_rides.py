"""Must show (issue 16): a guest rider booked by a coordinator is notified and never sees another
organisation's trips.

The coordinator books through the API for a guest known by name and phone; the SMS leaves through the
Twilio adapter (backend/notifications/sms.py) to a local HTTP server standing in for Twilio, which checks
the account's basic auth and the form fields; it carries a signed link that shows that one trip and
nothing else, and nothing of the other organisation is reachable with it. The guest's account has no
password anybody could sign in with.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from backend.accounts.models import User
from backend.notifications.models import Notification, NotificationStatus
from backend.organisations.guest_links import GUEST_LINK_MARGIN, guest_trip_token
from backend.organisations.models import OrganisationGuest
from dispatch.models import DriverPresence, Trip
from dispatch.selectors import trip_load
from dispatch.state import TripStatus
from tests.mobile_api.builders import assign, drive_to_completion
from tests.organisations.builders import booking
from tests.organisations.twilio_receiver import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN

pytestmark = pytest.mark.django_db

GUEST = {"name": "Maria Lopez", "phone": "+12125550188"}
GUEST_VIEW_KEYS = {"status", "scheduled_for", "window_start", "window_end", "driver"}


def _link_in(body: str) -> str:
    return next(word for word in body.split() if "/api/v1/guest/trips/" in word)


def _book_for_guest(world, capture_on_commit=None, guest=GUEST, **fields):
    """Book through the API; with `capture_on_commit` the after-commit work (the SMS) runs too."""

    def post():
        return world.client().post(world.trips_url, booking(guest=guest, **fields), format="json")

    if capture_on_commit is None:
        answer = post()
    else:
        with capture_on_commit(execute=True):
            answer = post()
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_a_guest_booked_by_a_coordinator_is_told_by_sms_and_sees_only_that_ride(
    clinic, agency, twilio, api_client, django_capture_on_commit_callbacks
):
    # The other organisation has a ride of its own, for a guest of its own.
    theirs = _book_for_guest(
        agency, django_capture_on_commit_callbacks, guest={"name": "Sam Other", "phone": "+12125550177"}
    )
    twilio.received.clear()

    trip = _book_for_guest(clinic, django_capture_on_commit_callbacks, reference="DIALYSIS-4471")
    assert trip["organisation"] == {
        "id": str(clinic.organisation.id),
        "name": clinic.organisation.name,
        "reference": "DIALYSIS-4471",
    }
    assert trip["booked_by"] == {
        "kind": "person",
        "id": str(clinic.coordinator.id),
        "name": clinic.coordinator.name,
    }
    assert trip["status"] == "scheduled" and trip["rider"]["name"] == GUEST["name"]

    # Exactly one SMS, to the guest, through Twilio's Messages endpoint with the account's credentials.
    (sms,) = twilio.received
    assert sms.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert sms.authorization == (TWILIO_SID, TWILIO_TOKEN)
    assert sms.content_type.startswith("application/x-www-form-urlencoded")
    assert set(sms.form) == {"To", "From", "Body"}
    assert sms.form["To"] == GUEST["phone"] and sms.form["From"] == TWILIO_FROM
    assert clinic.organisation.name in sms.form["Body"]
    link = _link_in(sms.form["Body"])
    sent = Notification.objects.get(event="trip_booked_for_you", to=GUEST["phone"])
    assert sent.status == NotificationStatus.SENT and sent.provider_reference.startswith("SM")

    # The link shows that trip, and only what a guest needs of it.
    shown = api_client.get(urlparse(link).path)
    assert shown.status_code == 200, shown.content
    assert shown["Cache-Control"].startswith("private, no-store")
    view = shown.json()
    assert set(view) == GUEST_VIEW_KEYS
    assert view["status"] == "scheduled" and view["driver"] is None
    assert view["window_start"] < view["scheduled_for"] < view["window_end"]

    # Nothing of the other organisation is reachable with it: not by changing the trip it names...
    token = urlparse(link).path.rsplit("/", 1)[1]
    forged = token.replace(trip["id"], theirs["id"])
    assert forged != token
    for attempt in (forged, token[:-1] + ("A" if token[-1] != "A" else "B"), str(uuid.uuid4())):
        refused = api_client.get(f"/api/v1/guest/trips/{attempt}")
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "guest_link_not_found"
    # ... nor by presenting it as a credential anywhere else.
    for headers in ({"HTTP_AUTHORIZATION": f"Bearer {token}"}, {"HTTP_X_API_KEY": token}):
        for path in (
            agency.trips_url,
            f"{agency.trips_url}/{theirs['id']}",
            clinic.trips_url,
            "/api/v1/trips",
        ):
            assert api_client.get(path, **headers).status_code == 401

    # The guest rides as a rider account nobody can sign in to.
    guest_user = User.objects.get(phone=GUEST["phone"])
    assert guest_user.is_rider and not guest_user.has_usable_password()
    assert OrganisationGuest.objects.filter(organisation=clinic.organisation, user=guest_user).exists()
    for password in ("", "password", GUEST["phone"], token):
        sign_in = api_client.post(
            "/api/v1/auth/token", {"phone": GUEST["phone"], "password": password}, format="json"
        )
        assert sign_in.status_code in (400, 401), sign_in.content
        assert "access" not in sign_in.json()


def test_the_link_shows_the_driver_while_on_the_way_and_expires_after_the_ride(
    clinic, twilio, api_client, django_capture_on_commit_callbacks
):
    trip = _book_for_guest(clinic, django_capture_on_commit_callbacks, ahead=None)
    link = urlparse(_link_in(twilio.received[-1].form["Body"])).path
    assigned = assign(trip_load(trip["id"]))
    DriverPresence.objects.update_or_create(
        driver_id=assigned.driver_id, defaults={"location": Point(-73.99, 40.75, srid=4326)}
    )

    on_the_way = api_client.get(link).json()
    assert on_the_way["status"] == "assigned"
    driver = on_the_way["driver"]
    assert driver["first_name"] == assigned.driver.name.split()[0]
    assert driver["vehicle"]["plate"] == assigned.vehicle.plate
    assert driver["location"] == {"lat": 40.75, "lng": -73.99}
    assert set(driver) == {"first_name", "vehicle", "location"}

    done = drive_to_completion(trip_load(trip["id"]))
    finished = api_client.get(link).json()
    assert finished["status"] == TripStatus.COMPLETED and finished["driver"]["location"] is None

    Trip.objects.filter(id=done.id).update(ended_at=timezone.now() - GUEST_LINK_MARGIN - timedelta(minutes=1))
    expired = api_client.get(link)
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "guest_link_expired"


def test_a_link_signed_for_a_trip_names_only_it(clinic, agency, api_client):
    """Each trip's link opens that trip; ids never stand in for a link."""
    ours = _book_for_guest(clinic)
    theirs = _book_for_guest(agency, guest={"name": "Sam", "phone": "+12125550177"})
    for trip in (ours, theirs):
        token = guest_trip_token(trip_id=uuid.UUID(trip["id"]))
        assert api_client.get(f"/api/v1/guest/trips/{token}").json()["status"] == trip["status"]
        assert api_client.get(f"/api/v1/guest/trips/{trip['id']}").status_code == 404
