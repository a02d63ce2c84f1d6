"""Recurring rides over HTTP (mobile_api/views_recurring.py): a rider's own series, a coordinator's for a
guest, the rule's refusals, skipping one date, cancelling the series, and who sees what."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from backend.errors import Unprocessable
from dispatch.models import RecurringRide, RecurringRideStatus, Trip
from dispatch.services.estimates import Place
from dispatch.services.recurring import recurring_ride_create, recurring_rides_materialise
from dispatch.state import TripStatus
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.mobile_api.builders import DROPOFF, OUTSIDE, PICKUP
from tests.recurring.builders import guest_of, member_of, organisation

pytestmark = pytest.mark.django_db
URL = "/api/v1/recurring-rides"


def _today() -> date:
    return timezone.now().astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def _body(**extra) -> dict:
    return {
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "pickup_time": "12:00",
        "starts_on": (_today() + timedelta(days=1)).isoformat(),
        "count": 10,
        **extra,
    }


def _create(client, idem, **extra):
    return client.post(URL, _body(**extra), format="json", **idem())


def test_a_rider_makes_a_series_and_the_first_days_are_booked_at_once(
    rider, rider_client, service_area, idem
):
    response = _create(rider_client, idem, pickup_window_s=600, reference="physio")
    assert response.status_code == 201, response.json()
    body = response.json()
    series = body["recurring_ride"]
    assert series["status"] == "active" and series["rider"]["id"] == str(rider.id)
    assert series["time_zone"] == settings.TIME_ZONE and series["pickup_time"] == "12:00"
    assert series["organisation_id"] is None and series["booked_by_id"] is None
    # Ten daily rides from tomorrow: the last is nine days after the first.
    assert series["last_date"] == (_today() + timedelta(days=10)).isoformat()
    # Booked within the three-day horizon: tomorrow's and the day after's noon at least.
    booked = Trip.objects.filter(series_id=series["id"]).order_by("occurrence_date")
    assert [b["trip_id"] for b in body["booked"]] == [str(t.id) for t in booked]
    assert booked.count() >= 2 and body["not_booked"] == []
    first = booked[0]
    assert first.status == TripStatus.SCHEDULED and first.reference == "physio"
    local = first.scheduled_for.astimezone(ZoneInfo(settings.TIME_ZONE))
    assert (local.date(), local.hour, local.minute) == (_today() + timedelta(days=1), 12, 0)

    listed = rider_client.get(URL).json()["results"]
    assert [s["id"] for s in listed] == [series["id"]]
    assert rider_client.get(f"{URL}/{series['id']}").json() == series

    dates = rider_client.get(f"{URL}/{series['id']}/occurrences").json()
    assert dates["from"] == _today().isoformat()
    states = {o["date"]: (o["state"], o["trip"]) for o in dates["occurrences"]}
    assert len(states) == 10
    assert states[first.occurrence_date.isoformat()] == (
        "booked",
        {"id": str(first.id), "status": "scheduled"},
    )
    assert states[series["last_date"]] == ("upcoming", None)


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"until": "2099-01-01"}, 400, "recurring_rule_invalid"),  # with count: one end, not both
        (
            {"count": None, "until": (date.today() - timedelta(days=400)).isoformat()},
            400,
            "recurring_rule_invalid",
        ),
        ({"starts_on": (date.today() - timedelta(days=3)).isoformat()}, 422, "recurring_starts_in_past"),
        (
            {"starts_on": (date.today() + timedelta(days=400)).isoformat()},
            422,
            "recurring_starts_too_far_ahead",
        ),
        ({"pickup_window_s": 7200}, 400, "pickup_window_invalid"),
        ({"weekdays": [1, 1]}, 400, "invalid_input"),
        ({"weekdays": [8]}, 400, "invalid_input"),
        ({"pickup_time": "7.30"}, 400, "invalid_input"),
        ({"dropoff": OUTSIDE}, 422, "outside_service_area"),
        ({"rider_id": "00000000-0000-4000-8000-000000000001"}, 403, "booking_not_allowed"),
    ],
)
def test_a_series_that_cannot_be_is_refused_with_a_code(
    rider_client, service_area, idem, extra, status, code
):
    response = _create(rider_client, idem, **extra)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert not RecurringRide.objects.exists() and not Trip.objects.exists()


def test_a_rule_with_no_ride_left_to_book_is_refused(rider, service_area):
    # One ride, at 10:30 today, asked for at 10:00: nearer than the board's least lead time (an hour).
    now = datetime(2027, 3, 12, 15, 0, tzinfo=UTC)
    with pytest.raises(Unprocessable) as refused:
        recurring_ride_create(
            booked_by_id=rider.id,
            pickup=Place(**PICKUP),
            dropoff=Place(**DROPOFF),
            weekdays=[5],
            pickup_time=time(10, 30),
            starts_on=date(2027, 3, 12),
            count=1,
            now=now,
        )
    assert refused.value.code == "recurring_rule_empty"
    assert not RecurringRide.objects.exists()


def test_a_coordinator_books_a_series_for_a_guest_and_organisations_stay_apart(service_area, idem):
    clinic = organisation()
    coordinator = member_of(clinic)
    guest = guest_of(clinic)
    other_clinic = organisation("Westside Clinic")
    other_coordinator = member_of(other_clinic)
    coordinator_client = auth_client_for(coordinator)

    guest_row = guest.guest_of.get(organisation=clinic)
    response = _create(coordinator_client, idem, organisation_id=str(clinic.id), guest_id=str(guest_row.id))
    assert response.status_code == 201, response.json()
    series = response.json()["recurring_ride"]
    # The rider as the clinic knows them: its guest's id and the name it gave, never the account behind it.
    assert (series["organisation_id"], series["booked_by_id"], series["rider"]) == (
        str(clinic.id),
        str(coordinator.id),
        {"id": str(guest_row.id), "name": guest_row.name},
    )
    assert RecurringRide.objects.get(id=series["id"]).rider_id == guest.id
    trips = Trip.objects.filter(series_id=series["id"])
    assert trips.exists() and {t.payer for t in trips} == {"organisation"}

    # The clinic's coordinators see it; the other clinic's and a stranger do not, as if it did not exist.
    colleague = auth_client_for(member_of(clinic, role="admin"))
    assert [s["id"] for s in colleague.get(URL).json()["results"]] == [series["id"]]
    for outsider in (auth_client_for(other_coordinator), auth_client_for(RiderFactory())):
        assert outsider.get(URL).json()["results"] == []
        for path in ("", "/occurrences"):
            assert outsider.get(f"{URL}/{series['id']}{path}").status_code == 404
        skip = outsider.post(f"{URL}/{series['id']}/skip", {"date": series["starts_on"]}, format="json")
        assert skip.json()["error"]["code"] == "recurring_ride_not_found"
        assert outsider.post(f"{URL}/{series['id']}/cancel").status_code == 404
    assert RecurringRide.objects.get().status == RecurringRideStatus.ACTIVE

    # Booking for someone who does not ride on the clinic's account, or for a clinic one is not in.
    stranger = RiderFactory()
    refused = _create(coordinator_client, idem, organisation_id=str(clinic.id), rider_id=str(stranger.id))
    assert refused.json()["error"]["code"] == "rider_not_in_organisation"
    refused = _create(
        auth_client_for(other_coordinator), idem, organisation_id=str(clinic.id), rider_id=str(guest.id)
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "organisation_not_found")
    # Nor by the clinic's guest id: another clinic's coordinator learns nothing of its guests.
    refused = _create(
        auth_client_for(other_coordinator), idem, organisation_id=str(clinic.id), guest_id=str(guest_row.id)
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "organisation_not_found")
    # A rider of the clinic may not book on its account when only coordinators book.
    member = member_of(clinic, role="rider", user=RiderFactory())
    refused = _create(auth_client_for(member), idem, organisation_id=str(clinic.id))
    assert refused.json()["error"]["code"] == "organisation_booking_not_allowed"
    assert RecurringRide.objects.count() == 1


def test_skipping_a_booked_date_cancels_its_trip_and_a_later_date_is_never_booked(
    rider, rider_client, service_area, idem
):
    series = _create(rider_client, idem).json()["recurring_ride"]
    booked = Trip.objects.filter(series_id=series["id"]).order_by("occurrence_date").first()
    later = date.fromisoformat(series["last_date"])

    for day in (booked.occurrence_date, later):
        response = rider_client.post(f"{URL}/{series['id']}/skip", {"date": day.isoformat()}, format="json")
        assert response.status_code == 200, response.json()
    assert response.json()["skipped_dates"] == [booked.occurrence_date.isoformat(), later.isoformat()]
    booked.refresh_from_db()
    assert (booked.status, booked.cancelled_by) == (TripStatus.CANCELLED, "rider")
    # Skipping again changes nothing; a date that is not one of the rule's is refused.
    again = rider_client.post(f"{URL}/{series['id']}/skip", {"date": later.isoformat()}, format="json")
    assert again.json()["skipped_dates"] == response.json()["skipped_dates"]
    beyond = rider_client.post(
        f"{URL}/{series['id']}/skip", {"date": (later + timedelta(days=1)).isoformat()}, format="json"
    )
    assert (beyond.status_code, beyond.json()["error"]["code"]) == (422, "not_an_occurrence")

    # The task reaching the skipped dates books neither (the count still counts them).
    recurring_rides_materialise(now=timezone.now() + timedelta(days=9))
    assert not Trip.objects.filter(series_id=series["id"], occurrence_date=later).exists()
    assert Trip.objects.filter(series_id=series["id"], occurrence_date=booked.occurrence_date).count() == 1
    dates = rider_client.get(
        f"{URL}/{series['id']}/occurrences", {"from": series["starts_on"], "to": series["last_date"]}
    ).json()["occurrences"]
    assert len(dates) == 10
    assert [
        o["state"] for o in dates if o["date"] in (booked.occurrence_date.isoformat(), later.isoformat())
    ] == [
        "skipped",
        "skipped",
    ]


def test_cancelling_the_series_cancels_its_reservations_and_books_no_more(service_area, idem):
    clinic = organisation()
    coordinator = member_of(clinic)
    guest = guest_of(clinic)
    client = auth_client_for(coordinator)
    series = _create(client, idem, organisation_id=str(clinic.id), rider_id=str(guest.id)).json()[
        "recurring_ride"
    ]
    reservations = set(Trip.objects.filter(series_id=series["id"]).values_list("id", flat=True))

    response = client.post(f"{URL}/{series['id']}/cancel", **idem())
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["recurring_ride"]["status"] == "cancelled" and body["recurring_ride"]["cancelled_at"]
    assert {str(i) for i in reservations} == set(body["cancelled_trip_ids"])
    assert set(Trip.objects.filter(series_id=series["id"]).values_list("status", flat=True)) == {"cancelled"}
    # Cancelled on the organisation's side (the trips are its bookings), free this far ahead.
    assert {t.cancelled_by for t in Trip.objects.filter(series_id=series["id"])} == {"rider"}

    recurring_rides_materialise(now=timezone.now() + timedelta(days=5))
    assert set(Trip.objects.filter(series_id=series["id"]).values_list("id", flat=True)) == reservations
    # Cancelling again changes nothing; skipping a date of a cancelled series is refused.
    assert client.post(f"{URL}/{series['id']}/cancel").json()["cancelled_trip_ids"] == []
    skip = client.post(f"{URL}/{series['id']}/skip", {"date": series["last_date"]}, format="json")
    assert (skip.status_code, skip.json()["error"]["code"]) == (409, "recurring_ride_not_active")
    states = {o["state"] for o in client.get(f"{URL}/{series['id']}/occurrences").json()["occurrences"]}
    assert states <= {"booked", "cancelled"}


def test_an_occurrences_range_is_bounded(rider_client, service_area, idem):
    series = _create(rider_client, idem).json()["recurring_ride"]
    path = f"{URL}/{series['id']}/occurrences"
    too_long = rider_client.get(path, {"from": "2027-01-01", "to": "2027-06-01"})
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "date_range_invalid")
    reversed_range = rider_client.get(path, {"from": "2027-01-10", "to": "2027-01-01"})
    assert reversed_range.json()["error"]["code"] == "date_range_invalid"
    garbled = rider_client.get(path, {"from": "tomorrow"})
    assert (garbled.status_code, garbled.json()["error"]["code"]) == (400, "invalid_input")


def test_dates_at_the_end_of_the_calendar_are_answered_not_crashed_on(rider_client, service_area, idem):
    # Daily at 23:00 until cancelled: 9999-12-31 23:00 in New York would be in year 10000 in UTC.
    series = _create(rider_client, idem, count=None, pickup_time="23:00").json()["recurring_ride"]
    far = rider_client.get(f"{URL}/{series['id']}/occurrences", {"from": "9999-12-30"})
    assert (far.status_code, far.json()["error"]["code"]) == (400, "date_range_invalid")
    skip = rider_client.post(f"{URL}/{series['id']}/skip", {"date": "9999-12-31"}, format="json")
    assert (skip.status_code, skip.json()["error"]["code"]) == (422, "not_an_occurrence")
    skip = rider_client.post(f"{URL}/{series['id']}/skip", {"date": "9999-12-30"}, format="json")
    assert skip.status_code == 200 and "9999-12-30" in skip.json()["skipped_dates"]
