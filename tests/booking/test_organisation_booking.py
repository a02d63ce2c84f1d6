"""Booking on an organisation's account (backend/organisations/booking.py through trip_request): who may
book, for whom, and the organisation's rules (hours, area, most a ride may cost, wheelchair rides, a
reference); an organisation's trip is billed to it and holds no card."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone

from backend.errors import InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.organisations.models import (
    ApiKeyScope,
    BookingRule,
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationMembership,
    OrganisationRole,
)
from backend.organisations.rules import allowed_hours_problems, pickup_time_allowed
from dispatch.models import TripPayer
from dispatch.services.estimates import Place
from dispatch.services.trips import trip_request
from tests.factories import RiderFactory, UserFactory
from tests.mobile_api.builders import DROPOFF, PICKUP

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def clinic(db, service_area):
    organisation = Organisation.objects.create(name="Harlem Dialysis Center", kind="clinic")
    coordinator = UserFactory(name="Coordinator")
    OrganisationMembership.objects.create(
        organisation=organisation, user=coordinator, role=OrganisationRole.COORDINATOR
    )
    patient = RiderFactory(name="Patient")
    OrganisationMembership.objects.create(
        organisation=organisation, user=patient, role=OrganisationRole.RIDER
    )
    return organisation, coordinator, patient


def _book(organisation, rider, *, by=None, key=None, ahead=timedelta(days=1), wav=False, reference="CC-12"):
    return trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        wheelchair_accessible=wav,
        scheduled_for=timezone.now() + ahead if ahead else None,
        organisation_id=organisation.id,
        booked_by_id=by.id if by else None,
        booked_by_key_id=key.id if key else None,
        reference=reference,
    )


def test_a_coordinator_books_for_a_rider_of_the_organisation_and_the_organisation_pays(clinic):
    organisation, coordinator, patient = clinic
    trip = _book(organisation, patient, by=coordinator)
    assert trip.rider_id == patient.id and trip.booked_by_id == coordinator.id
    assert trip.organisation_id == organisation.id and trip.payer == TripPayer.ORGANISATION
    assert trip.reference == "CC-12" and trip.status == "scheduled"
    # A ride now, too.
    now = _book(organisation, patient, by=coordinator, ahead=None)
    assert now.status == "requested" and now.payer == TripPayer.ORGANISATION


def test_a_guest_rides_on_the_account_and_an_api_key_with_write_scope_books(clinic):
    organisation, _, _ = clinic
    guest = RiderFactory(name="Guest")
    OrganisationGuest.objects.create(organisation=organisation, user=guest, name="Guest", phone=guest.phone)
    key = OrganisationApiKey.objects.create(
        organisation=organisation, name="broker", prefix="abcd1234", key_hash="0" * 64, scopes=["trips:write"]
    )
    trip = _book(organisation, guest, key=key)
    assert trip.booked_by_key_id == key.id and trip.booked_by_id is None


def test_who_may_book_is_the_organisations_to_say(clinic):
    organisation, _, patient = clinic
    stranger = UserFactory()
    with pytest.raises(NotFound) as not_in_it:
        _book(organisation, patient, by=stranger)
    assert not_in_it.value.code == "organisation_not_found"
    # A rider of the organisation books for themself only when the organisation lets its riders book.
    with pytest.raises(PermissionDenied) as refused:
        _book(organisation, patient, by=patient)
    assert refused.value.code == "organisation_booking_not_allowed"
    Organisation.objects.filter(id=organisation.id).update(booking_rule=BookingRule.MEMBERS)
    assert _book(organisation, patient, by=patient).payer == TripPayer.ORGANISATION
    # A revoked key or one that may only read books nothing.
    reader = OrganisationApiKey.objects.create(
        organisation=organisation,
        name="r",
        prefix="read0001",
        key_hash="0" * 64,
        scopes=[ApiKeyScope.TRIPS_READ],
    )
    revoked = OrganisationApiKey.objects.create(
        organisation=organisation,
        name="w",
        prefix="gone0001",
        key_hash="0" * 64,
        scopes=[ApiKeyScope.TRIPS_WRITE],
        revoked_at=timezone.now(),
    )
    for key in (reader, revoked):
        with pytest.raises(PermissionDenied):
            _book(organisation, patient, key=key, ahead=timedelta(days=2))


def test_a_rider_who_is_not_on_the_account_is_refused(clinic):
    organisation, coordinator, _ = clinic
    with pytest.raises(Unprocessable) as refused:
        _book(organisation, RiderFactory(), by=coordinator)
    assert refused.value.code == "rider_not_in_organisation"


def test_the_organisations_rules_refuse_with_their_codes(clinic):
    organisation, coordinator, patient = clinic
    tomorrow_7am = (timezone.now().astimezone(NEW_YORK) + timedelta(days=1)).replace(
        hour=7, minute=0, second=0, microsecond=0
    )
    weekday = tomorrow_7am.isoweekday()
    Organisation.objects.filter(id=organisation.id).update(
        allowed_hours=[{"weekdays": [weekday], "from": "08:00", "to": "18:00"}]
    )
    with pytest.raises(Unprocessable) as hours:
        trip_request(
            rider_id=patient.id,
            pickup=Place(**PICKUP),
            dropoff=Place(**DROPOFF),
            scheduled_for=tomorrow_7am,
            organisation_id=organisation.id,
            booked_by_id=coordinator.id,
        )
    assert hours.value.code == "organisation_hours"
    Organisation.objects.filter(id=organisation.id).update(allowed_hours=[])

    # An area around the pickup only: the dropoff is outside it.
    lat, lng = PICKUP["lat"], PICKUP["lng"]
    around_pickup = MultiPolygon(
        Polygon.from_bbox((lng - 0.01, lat - 0.01, lng + 0.01, lat + 0.01)), srid=4326
    )
    Organisation.objects.filter(id=organisation.id).update(allowed_area=around_pickup)
    with pytest.raises(Unprocessable) as area:
        _book(organisation, patient, by=coordinator)
    assert area.value.code == "organisation_area" and area.value.details == {"outside": ["dropoff"]}
    Organisation.objects.filter(id=organisation.id).update(allowed_area=None, max_fare_minor=100)
    with pytest.raises(Unprocessable) as fare:
        _book(organisation, patient, by=coordinator)
    assert fare.value.code == "organisation_max_fare" and fare.value.details["max_fare"] == 100
    Organisation.objects.filter(id=organisation.id).update(
        max_fare_minor=None, wav_allowed=False, reference_required=True
    )
    with pytest.raises(Unprocessable) as wav:
        _book(organisation, patient, by=coordinator, wav=True)
    assert wav.value.code == "organisation_wav_not_allowed"
    with pytest.raises(InvalidInput) as reference:
        _book(organisation, patient, by=coordinator, reference="  ")
    assert reference.value.code == "reference_required"


def test_only_the_rider_books_their_own_rides_without_an_organisation(clinic):
    _, coordinator, patient = clinic
    with pytest.raises(PermissionDenied) as refused:
        trip_request(
            rider_id=patient.id, pickup=Place(**PICKUP), dropoff=Place(**DROPOFF), booked_by_id=coordinator.id
        )
    assert refused.value.code == "booking_not_allowed"


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (datetime(2027, 3, 5, 21, 59), False),  # Friday, before the night slot
        (datetime(2027, 3, 5, 22, 0), True),  # Friday night
        (datetime(2027, 3, 6, 5, 59), True),  # early Saturday, the same slot
        (datetime(2027, 3, 6, 6, 0), False),  # the slot's end is exclusive
        (datetime(2027, 3, 6, 22, 30), False),  # Saturday night is not in it
        (datetime(2027, 3, 8, 9, 0), True),  # Monday, the day slot
        (datetime(2027, 3, 8, 17, 0), False),
    ],
)
def test_allowed_hours_include_overnight_slots(local, allowed):
    slots = [
        {"weekdays": [5], "from": "22:00", "to": "06:00"},
        {"weekdays": [1, 2, 3, 4, 5], "from": "08:00", "to": "17:00"},
    ]
    assert pickup_time_allowed(slots, local) is allowed
    assert pickup_time_allowed([], local) is True


def test_allowed_hours_are_validated_slot_by_slot():
    assert allowed_hours_problems([{"weekdays": [1], "from": "08:00", "to": "17:00"}]) == []
    assert allowed_hours_problems("weekdays") == ["must be a list of {weekdays, from, to} slots"]
    problems = allowed_hours_problems(
        [{"weekdays": [0, 1], "from": "8:00", "to": "17:00"}, {"weekdays": [1], "from": "08:00"}]
    )
    assert problems == [
        "slot 0: weekdays must be distinct ISO weekdays, 1 (Monday) to 7 (Sunday)",
        'slot 0: from must be a time "HH:MM"',
        "slot 1: must have exactly weekdays, from and to",
    ]


def test_a_refusal_never_tells_an_organisation_about_the_riders_other_rides(clinic):
    """The rider's own ride (or another organisation's) stands in the way: the coordinator hears that the
    rider is busy, never which ride or when."""
    from backend.errors import Conflict

    organisation, coordinator, patient = clinic
    own = trip_request(
        rider_id=patient.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        scheduled_for=timezone.now() + timedelta(days=1),
    )
    with pytest.raises(Conflict) as clash:
        _book(organisation, patient, by=coordinator, ahead=own.scheduled_for - timezone.now())
    assert clash.value.code == "reservation_overlaps" and clash.value.details == {}
    # The organisation's own booking it may be told about.
    booked = _book(organisation, patient, by=coordinator, ahead=timedelta(days=2))
    with pytest.raises(Conflict) as again:
        _book(organisation, patient, by=coordinator, ahead=booked.scheduled_for - timezone.now())
    assert again.value.details["trip_id"] == str(booked.id)
    # Riding now on their own account: the organisation learns only that the rider is busy.
    trip_request(rider_id=patient.id, pickup=Place(**PICKUP), dropoff=Place(**DROPOFF))
    with pytest.raises(Conflict) as busy:
        _book(organisation, patient, by=coordinator, ahead=None)
    assert busy.value.code == "trip_in_progress" and busy.value.details == {}
    assert busy.value.message == "This rider is on a ride now."
