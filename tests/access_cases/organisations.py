"""Access cases for the organisation routes (mobile_api/urls_organisations.py).

An organisation exists only for its members (and its API keys, tests/organisations/test_api_keys.py): a
rider or driver outside it gets the 404 `organisation_not_found` of an id that does not exist, on every
route under it. Staff routes refuse non-staff with 403 before the id is looked at. The guest link takes a
signed token, not an id: tests/organisations/test_guest_rides.py shows it opens its one trip only.
"""

from __future__ import annotations

import itertools
import uuid

from backend.organisations import services
from tests.access_cases import AccessCase, Arranged, register, register_not_an_object
from tests.factories import RiderFactory, StaffFactory, UserFactory
from tests.mobile_api.builders import ensure_service_area
from tests.organisations.builders import World, booking, make_world

_names = itertools.count()


def _world() -> World:
    ensure_service_area()
    return make_world(f"Access Clinic {next(_names)} {uuid.uuid4().hex[:6]}")


def _org(world: World, **extra) -> dict:
    return {"organisation_id": world.organisation.id, **extra}


def _staff_organisation() -> Arranged:
    return Arranged(owner=StaffFactory(), kwargs=_org(_world()))


def _staff_organisation_patch() -> Arranged:
    return Arranged(owner=StaffFactory(), kwargs=_org(_world()), body={"reference_required": True})


def _members() -> Arranged:
    world = _world()
    return Arranged(owner=world.admin, kwargs=_org(world))


def _member_add() -> Arranged:
    world = _world()
    return Arranged(
        owner=world.admin, kwargs=_org(world), body={"phone": UserFactory().phone, "role": "coordinator"}
    )


def _member_remove() -> Arranged:
    world = _world()
    return Arranged(owner=world.admin, kwargs=_org(world, user_id=world.coordinator.id))


def _guests() -> Arranged:
    world = _world()
    return Arranged(owner=world.coordinator, kwargs=_org(world))


def _guest_add() -> Arranged:
    world = _world()
    return Arranged(
        owner=world.coordinator, kwargs=_org(world), body={"name": "Ana Guest", "phone": "+12125550166"}
    )


def _api_keys() -> Arranged:
    world = _world()
    return Arranged(owner=world.admin, kwargs=_org(world))


def _api_key_create() -> Arranged:
    world = _world()
    return Arranged(owner=world.admin, kwargs=_org(world), body={"name": "system", "scopes": ["trips:read"]})


def _api_key_revoke() -> Arranged:
    world = _world()
    issued = services.api_key_create(
        organisation_id=world.organisation.id, by=world.admin, name="system", scopes=["trips:read"]
    )
    return Arranged(owner=world.admin, kwargs=_org(world, key_id=issued.key.id))


def _trips() -> Arranged:
    world = _world()
    return Arranged(owner=world.coordinator, kwargs=_org(world))


def _trip_book() -> Arranged:
    world = _world()
    return Arranged(owner=world.coordinator, kwargs=_org(world), body=booking(rider_id=str(world.rider.id)))


def _booked_trip() -> tuple[World, str]:
    world = _world()
    answer = world.client().post(world.trips_url, booking(rider_id=str(world.rider.id)), format="json")
    assert answer.status_code == 201, answer.content
    return world, answer.json()["id"]


def _trip() -> Arranged:
    world, trip_id = _booked_trip()
    return Arranged(owner=world.coordinator, kwargs=_org(world, trip_id=trip_id))


def _trip_as_its_rider() -> Arranged:
    world, trip_id = _booked_trip()
    return Arranged(owner=world.rider, kwargs=_org(world, trip_id=trip_id))


def _trip_cancel() -> Arranged:
    world, trip_id = _booked_trip()
    return Arranged(owner=world.coordinator, kwargs=_org(world, trip_id=trip_id), body={"reason": "moved"})


STAFF_ONLY = 403
register("staff-organisation", AccessCase(_staff_organisation, "get", 200, outsider_status=STAFF_ONLY))
register(
    "staff-organisation",
    AccessCase(_staff_organisation_patch, "patch", 200, outsider_status=STAFF_ONLY, label="patch"),
)
register("staff-organisation-trips", AccessCase(_staff_organisation, "get", 200, outsider_status=STAFF_ONLY))
register(
    "organisation-members",
    AccessCase(_members, "get", 200, label="list"),
    AccessCase(_member_add, "post", 201, label="add"),
)
register("organisation-member", AccessCase(_member_remove, "delete", 204))
register(
    "organisation-guests",
    AccessCase(_guests, "get", 200, label="list"),
    AccessCase(_guest_add, "post", 201, label="add"),
)
register(
    "organisation-api-keys",
    AccessCase(_api_keys, "get", 200, label="list"),
    AccessCase(_api_key_create, "post", 201, label="create"),
)
register("organisation-api-key-revoke", AccessCase(_api_key_revoke, "post", 200))
register(
    "organisation-trips",
    AccessCase(_trips, "get", 200, label="list"),
    AccessCase(_trip_book, "post", 201, label="book"),
)
register(
    "organisation-trip",
    AccessCase(_trip, "get", 200, label="coordinator"),
    AccessCase(_trip_as_its_rider, "get", 200, label="its rider"),
)
register("organisation-trip-cancel", AccessCase(_trip_cancel, "post", 200))
register_not_an_object(
    "guest-trip",
    "the path holds a signed token, the credential itself (no account signs in): a tampered or made-up one "
    "answers 404 guest_link_not_found (tests/organisations/test_guest_rides.py)",
)


# --- The invited person's own routes: the invitation is of their phone or their account; anyone else (a
# fresh rider or driver) has none for that organisation and gets 404 invitation_not_found, as for an
# organisation that does not exist.


def _member_invitation() -> Arranged:
    world = _world()
    invitee = UserFactory()
    services.member_add(
        organisation_id=world.organisation.id, by=world.admin, phone=invitee.phone, role="coordinator"
    )
    return Arranged(owner=invitee, kwargs=_org(world))


def _guest_invitation() -> Arranged:
    world = _world()
    holder = RiderFactory()
    services.guest_add(
        organisation_id=world.organisation.id, name="Pat", phone=holder.phone, by=world.coordinator
    )
    return Arranged(owner=holder, kwargs=_org(world))


register("me-organisation-accept", AccessCase(_member_invitation, "post", 200))
register("me-organisation-decline", AccessCase(_member_invitation, "post", 204))
register("me-organisation-guest-accept", AccessCase(_guest_invitation, "post", 200))
register("me-organisation-guest-decline", AccessCase(_guest_invitation, "post", 204))
