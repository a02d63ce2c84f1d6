"""Must show (issue 17): a wrong ride PIN keeps the trip from starting; the right one starts it.

The rider asks for a PIN at request (`ride_pin: true` on POST /trips) or always (PUT /me/safety); only the
rider's view of the trip shows the digits, never the driver's (REST, /driver/state, the socket's answers and
pushes). The driver starts the trip over their socket (`trip.start` with `pin`: the contract's only start;
there is no REST start) and the service behind it refuses a missing, wrong or locked-out PIN; wrong tries
are counted, audited and limited, and the rider (or staff) can lift the lock.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async

from dispatch.models import RiderSafetySettings, Trip
from dispatch.selectors import trip_load
from governance.models import AuditEntry
from tests.conftest import auth_client_for
from tests.dispatch.conftest import connect, receive_type, send
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.mobile_api.builders import DROPOFF, PICKUP, assign, ensure_service_area
from tests.safety.conftest import arrived_trip

pytestmark = pytest.mark.django_db(transaction=True)


def _request(rider, **extra) -> dict:
    ensure_service_area()
    answer = auth_client_for(rider).post(
        "/api/v1/trips",
        {"pickup": PICKUP, "dropoff": DROPOFF, **extra},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


def _wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 10_000:04d}"


def test_the_rider_asks_for_a_pin_and_only_the_riders_view_shows_it():
    rider, driver = RiderFactory(), DriverFactory()
    requested = _request(rider, ride_pin=True)
    pin = requested["ride_pin"]["pin"]
    assert len(pin) == 4 and pin.isdigit()
    assert requested["ride_pin"] == {"pin": pin, "attempts_left": 3, "locked": False}
    assign(Trip.objects.get(id=requested["id"]), driver)

    as_rider = auth_client_for(rider).get(f"/api/v1/trips/{requested['id']}").json()
    assert as_rider["ride_pin"]["pin"] == pin
    driver_client = auth_client_for(driver)
    as_driver = driver_client.get(f"/api/v1/trips/{requested['id']}").json()
    assert as_driver["ride_pin"] == {"pin": None, "attempts_left": 3, "locked": False}
    state = driver_client.get("/api/v1/driver/state").json()
    assert state["trip"]["ride_pin"]["pin"] is None
    for answer in (as_driver, state, driver_client.get("/api/v1/trips").json()):
        assert pin not in str(answer)

    without = _request(RiderFactory())
    assert without["ride_pin"] is None


def test_a_riders_standing_choice_gives_every_request_a_pin_unless_it_says_otherwise():
    rider = RiderFactory()
    client = auth_client_for(rider)
    assert client.get("/api/v1/me/safety").json() == {"ride_pin_always": False}
    assert client.put("/api/v1/me/safety", {"ride_pin_always": True}, format="json").json() == {
        "ride_pin_always": True
    }
    assert RiderSafetySettings.objects.get(rider=rider).ride_pin_always is True
    first = _request(rider)
    assert first["ride_pin"]["pin"] is not None
    client.post(f"/api/v1/trips/{first['id']}/cancel", {}, format="json")
    assert _request(rider, ride_pin=False)["ride_pin"] is None
    # A driver account has no rides to choose for.
    refused = auth_client_for(DriverFactory()).put(
        "/api/v1/me/safety", {"ride_pin_always": True}, format="json"
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "rider_role_required"


async def test_over_the_socket_a_wrong_pin_keeps_the_trip_from_starting_and_the_right_one_starts_it():
    rider, driver = await sync_to_async(RiderFactory)(), await sync_to_async(DriverFactory)()
    trip = await sync_to_async(arrived_trip)(rider, driver, ride_pin=True)
    pin = trip.ride_pin
    socket = await connect(driver, "/ws/driver/")
    rider_socket = await connect(rider, "/ws/rider/")
    try:
        missing = await send(socket, {"type": "trip.start", "trip_id": str(trip.id)}, ref="no-pin")
        assert missing["type"] == "error" and missing["code"] == "ride_pin_required"

        wrong = await send(
            socket, {"type": "trip.start", "trip_id": str(trip.id), "pin": _wrong(pin)}, ref="w"
        )
        assert wrong["type"] == "error" and wrong["code"] == "ride_pin_mismatch"
        assert wrong["details"] == {"attempts_left": 2}
        # The rider sees at once that a wrong PIN was tried; the driver's push never carries the digits.
        told = await receive_type(rider_socket, "trip.updated")
        assert told["trip"]["status"] == "arrived" and told["trip"]["ride_pin"]["attempts_left"] == 2
        assert told["trip"]["ride_pin"]["pin"] == pin
        pushed = await receive_type(socket, "trip.updated")
        assert pushed["trip"]["ride_pin"]["pin"] is None

        malformed = await send(socket, {"type": "trip.start", "trip_id": str(trip.id), "pin": 1234}, ref="m")
        assert malformed["code"] == "invalid_frame" and malformed["details"] == {"field": "pin"}

        stored = await sync_to_async(Trip.objects.get)(id=trip.id)
        assert stored.status == "arrived" and stored.ride_pin_failures == 1
        audited = await sync_to_async(list)(AuditEntry.objects.filter(kind="safety.ride_pin_mismatch"))
        assert [entry.payload["trip_id"] for entry in audited] == [str(trip.id)]
        assert audited[0].payload["driver_id"] == str(driver.id) and pin not in str(audited[0].payload)

        started = await send(socket, {"type": "trip.start", "trip_id": str(trip.id), "pin": pin}, ref="go")
        assert started["type"] == "result" and started["trip"]["status"] == "in_progress"
        assert started["trip"]["ride_pin"]["pin"] is None
    finally:
        await socket.disconnect()
        await rider_socket.disconnect()
    assert (await sync_to_async(Trip.objects.get)(id=trip.id)).status == "in_progress"


async def test_a_trip_without_a_pin_starts_as_before():
    rider, driver = await sync_to_async(RiderFactory)(), await sync_to_async(DriverFactory)()
    trip = await sync_to_async(arrived_trip)(rider, driver)
    socket = await connect(driver, "/ws/driver/")
    try:
        started = await send(socket, {"type": "trip.start", "trip_id": str(trip.id)}, ref="go")
        assert started["type"] == "result" and started["trip"]["status"] == "in_progress"
    finally:
        await socket.disconnect()


def test_three_wrong_pins_lock_the_start_until_the_rider_issues_a_new_one():
    from dispatch.services.driving import trip_start
    from dispatch.services.ride_pins import RidePinLocked, RidePinMismatch

    rider, driver = RiderFactory(), DriverFactory()
    trip = arrived_trip(rider, driver, ride_pin=True)
    pin = trip.ride_pin
    for left in (2, 1):
        with pytest.raises(RidePinMismatch) as refused:
            trip_start(driver_id=driver.id, trip_id=trip.id, pin=_wrong(pin))
        assert refused.value.details == {"attempts_left": left}
    with pytest.raises(RidePinLocked):
        trip_start(driver_id=driver.id, trip_id=trip.id, pin=_wrong(pin))
    # Locked: even the right PIN does not start it now.
    with pytest.raises(RidePinLocked):
        trip_start(driver_id=driver.id, trip_id=trip.id, pin=pin)
    locked = auth_client_for(rider).get(f"/api/v1/trips/{trip.id}").json()["ride_pin"]
    assert locked == {"pin": pin, "attempts_left": 0, "locked": True}
    assert AuditEntry.objects.filter(kind="safety.ride_pin_mismatch").count() == 3

    # The driver cannot lift it; the rider, who is there, issues a new PIN.
    assert auth_client_for(driver).post(f"/api/v1/trips/{trip.id}/ride-pin/reset").status_code == 404
    reset = auth_client_for(rider).post(f"/api/v1/trips/{trip.id}/ride-pin/reset")
    assert reset.status_code == 200, reset.content
    fresh = reset.json()["ride_pin"]
    assert fresh["pin"] != pin and fresh["attempts_left"] == 3 and fresh["locked"] is False
    assert AuditEntry.objects.filter(kind="safety.ride_pin_reset").count() == 1
    with pytest.raises(RidePinMismatch):
        trip_start(driver_id=driver.id, trip_id=trip.id, pin=pin)  # the old one is gone
    assert trip_start(driver_id=driver.id, trip_id=trip.id, pin=fresh["pin"]).status == "in_progress"
    late = auth_client_for(rider).post(f"/api/v1/trips/{trip.id}/ride-pin/reset")
    assert late.status_code == 409 and late.json()["error"]["code"] == "trip_already_started"


def test_staff_can_waive_a_pin_with_a_reason_and_the_trip_then_starts_without_one():
    from dispatch.services.driving import trip_start

    rider, driver, staff = RiderFactory(), DriverFactory(), StaffFactory()
    trip = arrived_trip(rider, driver, ride_pin=True)
    url = f"/api/v1/staff/trips/{trip.id}/ride-pin/waive"
    assert auth_client_for(rider).post(url, {"reason": "mine"}, format="json").status_code == 403
    no_reason = auth_client_for(staff).post(url, {"reason": " "}, format="json")
    assert no_reason.status_code == 400
    waived = auth_client_for(staff).post(
        url, {"reason": "The rider's phone died; confirmed by call"}, format="json"
    )
    assert waived.status_code == 200 and waived.json()["ride_pin"] is None
    entry = AuditEntry.objects.get(kind="safety.ride_pin_waived")
    assert entry.payload["staff_id"] == str(staff.id) and "phone died" in entry.payload["reason"]
    assert trip_start(driver_id=driver.id, trip_id=trip.id).status == "in_progress"
    assert trip_load(trip.id).ride_pin == ""
