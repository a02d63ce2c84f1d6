"""Organisations to book with, made through the services (backend/organisations/services.py): used by
tests/organisations/ and the access cases (tests/access_cases/organisations.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from backend.organisations import services
from backend.organisations.models import Organisation, OrganisationRole
from tests.conftest import auth_client_for
from tests.factories import RiderFactory, StaffFactory, UserFactory
from tests.mobile_api.builders import DROPOFF, PICKUP


@dataclass
class World:
    """One organisation with an admin, a coordinator and a rider who has the app."""

    organisation: Organisation
    admin: object
    coordinator: object
    rider: object

    def client(self, who: str = "coordinator"):
        return auth_client_for(getattr(self, who))

    @property
    def trips_url(self) -> str:
        return f"/api/v1/organisations/{self.organisation.id}/trips"


def make_world(name: str, **policy) -> World:
    staff = StaffFactory()
    organisation = services.organisation_create(by=staff, name=name, changes={"kind": "clinic", **policy})
    admin, coordinator, rider = (
        UserFactory(name=f"{name} admin"),
        UserFactory(name=f"{name} desk"),
        RiderFactory(),
    )
    for user, role in ((admin, OrganisationRole.ADMIN), (coordinator, OrganisationRole.COORDINATOR)):
        services.member_add(organisation_id=organisation.id, by=staff, phone=user.phone, role=role)
    services.member_add(
        organisation_id=organisation.id, by=staff, phone=rider.phone, role=OrganisationRole.RIDER
    )
    return World(organisation=organisation, admin=admin, coordinator=coordinator, rider=rider)


def booking(*, ahead: timedelta | None = timedelta(days=1), **fields) -> dict:
    """A booking body: ahead by a day unless `ahead` is None (a ride now)."""
    body = {"pickup": PICKUP, "dropoff": DROPOFF, "reference": "CC-100", **fields}
    if ahead is not None:
        body["scheduled_for"] = (timezone.now() + ahead).isoformat()
    return body
