"""Access cases for the safety routes (mobile_api/urls_safety.py, docs/safety.md): a trip's share links, SOS
and ride PIN are its rider's (SOS: and its driver's); the staff alert and waive routes refuse everyone else
before the id is looked at."""

from __future__ import annotations

from dispatch.services.share_links import share_link_create
from dispatch.services.sos import sos_raise
from tests.access_cases import AccessCase, Arranged, register, register_not_an_object
from tests.factories import StaffFactory
from tests.mobile_api.builders import assigned_trip, requested_trip
from tests.safety.conftest import arrived_trip

_SOS = {"client_key": "access-case", "position": {"lat": 40.7601, "lng": -73.9822}}


def _trip_of_rider() -> Arranged:
    trip = assigned_trip()
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id}, body={})


def _trip_sos_by_rider() -> Arranged:
    trip = assigned_trip()
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id}, body=_SOS)


def _trip_sos_by_driver() -> Arranged:
    trip = assigned_trip()
    return Arranged(owner=trip.driver, kwargs={"trip_id": trip.id}, body=_SOS)


def _share_link() -> Arranged:
    trip = requested_trip()
    link, _token = share_link_create(rider_id=trip.rider_id, trip_id=trip.id)
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id, "link_id": link.id})


def _trip_with_pin() -> Arranged:
    trip = arrived_trip(ride_pin=True)
    return Arranged(owner=trip.rider, kwargs={"trip_id": trip.id})


def _trip_with_pin_for_staff() -> Arranged:
    trip = arrived_trip(ride_pin=True)
    return Arranged(
        owner=StaffFactory(), kwargs={"trip_id": trip.id}, body={"reason": "Rider's phone is dead"}
    )


def _alert(body: dict | None = None):
    def arrange() -> Arranged:
        trip = assigned_trip()
        alert, _created = sos_raise(
            user_id=trip.rider_id, client_key="access-case", source="api", trip_id=trip.id
        )
        return Arranged(owner=StaffFactory(), kwargs={"alert_id": alert.id}, body=body)

    return arrange


register(
    "trip-share-links",
    AccessCase(_trip_of_rider, "get", 200, label="list"),
    AccessCase(_trip_of_rider, "post", 201, label="create"),
)
register("trip-share-link-revoke", AccessCase(_share_link, "post", 200))
register(
    "trip-sos",
    AccessCase(_trip_sos_by_rider, "post", 201, label="rider"),
    AccessCase(_trip_sos_by_driver, "post", 201, label="driver"),
)
register("trip-ride-pin-reset", AccessCase(_trip_with_pin, "post", 200))
register("staff-trip-ride-pin-waive", AccessCase(_trip_with_pin_for_staff, "post", 200, outsider_status=403))
register("staff-safety-alert", AccessCase(_alert(), "get", 200, outsider_status=403))
register("staff-safety-alert-acknowledge", AccessCase(_alert({}), "post", 200, outsider_status=403))
register(
    "staff-safety-alert-resolve",
    AccessCase(_alert({"note": "Spoke to the rider"}), "post", 200, outsider_status=403),
)
register_not_an_object(
    "shared-trip",
    "the path holds a share link's token, the credential itself (no account signs in): an unknown, revoked "
    "or expired one, or one whose trip ended, answers 404 share_link_not_found "
    "(tests/safety/test_share_links.py)",
)
