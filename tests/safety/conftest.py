"""Safety test helpers: trips in the states the features care about, a driver's live fix, the staff map
socket (signed in by session cookie, as a browser is)."""

from __future__ import annotations

import time

import pytest

from dispatch.selectors import trip_load
from dispatch.services.transitions import trip_transition
from dispatch.state import TripStatus
from tests.mobile_api.builders import assign, requested_trip


def arrived_trip(rider=None, driver=None, **request_fields):
    """A trip its driver has reached the pickup of, made through the real services."""
    trip = assign(requested_trip(rider, **request_fields), driver)
    trip_transition(trip_id=trip.id, to=TripStatus.ARRIVED, actor_id=trip.driver_id)
    return trip_load(trip.id)


def live_fix(driver, lat: float, lng: float, *, heading: float = 90.0, age_s: float = 0.0) -> None:
    """Where the live store says the driver is (the hash every accepted fix updates)."""
    from backend.redis import get_redis
    from dispatch import live

    get_redis().hset(
        live.driver_key(driver.id),
        mapping={"lat": repr(lat), "lng": repr(lng), "h": repr(heading), "t": repr(time.time() - age_s)},
    )


@pytest.fixture
def map_socket_headers(transactional_db, client, staff_user) -> list[tuple[bytes, bytes]]:
    """What a staff member's browser sends with the live map's handshake: its origin and session cookie."""
    client.force_login(staff_user)
    session = client.cookies["sessionid"].value
    return [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session}".encode())]
