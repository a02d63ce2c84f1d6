"""What a rider hears when a driver takes a ride someone booked for them: a guest has no app, so the SMS
carries the link to follow the ride; a rider who asked for a ride now watches the app and gets no SMS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from backend.notifications.models import Notification
from backend.organisations.guest_links import guest_trip_id
from backend.organisations.models import Organisation, OrganisationGuest, OrganisationMembership
from dispatch.models import Offer
from dispatch.services.estimates import Place
from dispatch.services.offers import offer_accept
from dispatch.services.trips import trip_request
from tests.factories import DriverFactory, RiderFactory, UserFactory
from tests.mobile_api.builders import DROPOFF, PICKUP

pytestmark = pytest.mark.django_db


def _offer(trip, driver) -> Offer:
    return Offer.objects.create(
        trip=trip,
        driver=driver,
        expires_at=timezone.now() + timedelta(seconds=15),
        pickup_distance_m=420,
        pickup_eta_s=95,
        rank=1,
        candidates_considered=1,
        idle_s=60,
        reason={"rule": "idle_within_eta_band"},
        dispatch_policy_version=1,
    )


def test_a_guest_hears_of_the_driver_with_the_link_to_follow_the_ride(service_area, settings):
    settings.ROCHDALE_PUBLIC_URL = "https://rides.coop.example"
    clinic = Organisation.objects.create(name="Clinic")
    coordinator = UserFactory()
    OrganisationMembership.objects.create(organisation=clinic, user=coordinator, role="coordinator")
    guest = RiderFactory(name="Maria Lopez")
    OrganisationGuest.objects.create(organisation=clinic, user=guest, name=guest.name, phone=guest.phone)
    trip = trip_request(
        rider_id=guest.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        organisation_id=clinic.id,
        booked_by_id=coordinator.id,
    )
    driver = DriverFactory(name="Joe Young")
    with TestCase.captureOnCommitCallbacks(execute=True):
        offer_accept(driver_id=driver.id, offer_id=_offer(trip, driver).id)
    [told] = Notification.objects.filter(user=guest, event="driver_assigned")
    assert told.channel == "sms" and told.to == guest.phone
    assert "Joe is on the way in a Toyota Camry" in told.body and "Young" not in told.body
    link = told.body.split()[-1]
    assert link.startswith("https://rides.coop.example/api/v1/guest/trips/")
    assert guest_trip_id(token=link.rsplit("/", 1)[1]) == trip.id


def test_a_rider_who_asked_for_a_ride_now_gets_no_sms_when_a_driver_takes_it(service_area):
    rider = RiderFactory()
    trip = trip_request(rider_id=rider.id, pickup=Place(**PICKUP), dropoff=Place(**DROPOFF))
    driver = DriverFactory()
    offer_accept(driver_id=driver.id, offer_id=_offer(trip, driver).id)
    assert not Notification.objects.filter(user=rider).exists()
