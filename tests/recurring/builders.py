"""Organisations, their people and recurring rides for the recurring-ride tests (rows made directly; the
series' bookings go through the real services)."""

from __future__ import annotations

from datetime import date, time

from django.conf import settings
from django.contrib.gis.geos import Point

from backend.organisations.models import (
    Organisation,
    OrganisationGuest,
    OrganisationMembership,
    OrganisationRole,
)
from dispatch.models import RecurringRide
from tests.factories import RiderFactory, UserFactory
from tests.mobile_api.builders import DROPOFF, PICKUP


def organisation(name: str = "Eastside Dialysis", **policy) -> Organisation:
    return Organisation.objects.create(name=name, kind="clinic", **policy)


def member_of(org: Organisation, role: str = OrganisationRole.COORDINATOR, user=None):
    user = user or UserFactory()
    OrganisationMembership.objects.create(organisation=org, user=user, role=role)
    return user


def guest_of(org: Organisation, name: str = "Ada Guest"):
    """Someone the organisation books for who has no app: a rider account without a usable password."""
    user = RiderFactory(name=name)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    OrganisationGuest.objects.create(organisation=org, user=user, name=name, phone=user.phone)
    return user


def series_row(rider, *, weekdays=(1, 2, 3, 4, 5, 6, 7), starts_on: date, **fields) -> RecurringRide:
    """A series as the service would make it, without booking anything yet."""
    return RecurringRide.objects.create(
        rider=rider,
        pickup=Point(PICKUP["lng"], PICKUP["lat"], srid=4326),
        dropoff=Point(DROPOFF["lng"], DROPOFF["lat"], srid=4326),
        weekdays=list(weekdays),
        pickup_time=fields.pop("pickup_time", time(7, 30)),
        pickup_window_s=fields.pop("pickup_window_s", 900),
        time_zone=fields.pop("time_zone", settings.TIME_ZONE),
        starts_on=starts_on,
        **fields,
    )
