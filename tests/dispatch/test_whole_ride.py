"""One whole ride over websockets through the ASGI app, the dispatch worker running in the test's loop."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from tests.conftest import auth_client_for
from tests.dispatch.conftest import CENTRE, connect, location_frame, receive_type, running_worker, send

pytestmark = pytest.mark.django_db(transaction=True)


async def _status_update(socket, status: str) -> dict:
    while True:
        frame = await receive_type(socket, "trip.updated")
        if frame["trip"]["status"] == status:
            return frame


async def test_a_whole_ride_over_websockets(seeded, rider, driver, settings):
    from backend.fares.models import JournalEntry
    from dispatch.models import LocationFix, Offer, Trip
    from tests.factories import square_service_area

    # The trail below is driven at test speed (two dozen fixes at once), past an app's frame budget.
    settings.ROCHDALE_WS_FIX_BURST = 100
    await sync_to_async(square_service_area)()
    driver_socket = await connect(driver, "/ws/driver/")
    rider_socket = await connect(rider, "/ws/rider/")
    assert (await send(driver_socket, {"type": "online"}, ref="on"))["ok"] is True
    # Recorded 25 s ago (fresh enough for offers), so the drive to the pickup is a plausible speed.
    await driver_socket.send_json_to(
        location_frame(
            CENTRE[0] + 0.003, CENTRE[1], at=datetime.now(UTC) - timedelta(seconds=25), accuracy_m=5.0
        )
    )
    assert await driver_socket.receive_nothing(timeout=0.2)

    async with running_worker():
        client = await sync_to_async(auth_client_for)(rider)
        response = await sync_to_async(client.post)(
            "/api/v1/trips",
            {"pickup": {"lat": CENTRE[0], "lng": CENTRE[1]}, "dropoff": {"lat": 40.7128, "lng": -74.0060}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        assert response.status_code == 201, response.content
        trip_id = response.json()["id"]

        offer = await receive_type(driver_socket, "offer")
        # With no road graph the offer names the straight line: the model's circuity is no measured drive.
        assert offer["trip_id"] == trip_id and 250 < offer["pickup_distance_m"] < 400
        accepted = await send(
            driver_socket, {"type": "offer.accept", "offer_id": offer["offer_id"]}, ref="acc"
        )
        assert accepted["ok"] is True and accepted["trip"]["status"] == "assigned"
        assert accepted["trip"]["pickup"] == {"lat": CENTRE[0], "lng": CENTRE[1]}
        assigned = await _status_update(rider_socket, "assigned")
        assert assigned["trip"]["driver"]["id"] == str(driver.id)

    # The rider sees the driver coming.
    await driver_socket.send_json_to(location_frame(CENTRE[0], CENTRE[1], heading=180.0, accuracy_m=5.0))
    seen = await receive_type(rider_socket, "driver.location")
    assert seen == {
        "type": "driver.location",
        "trip_id": trip_id,
        "lat": CENTRE[0],
        "lng": CENTRE[1],
        "heading": 180.0,
        # The countdown to the pickup: the driver is there (on the model, no distance is no time).
        "eta_s": 0,
        "eta_to": "pickup",
    }
    moved = await send(driver_socket, {"type": "trip.arrived", "trip_id": trip_id}, ref="arr")
    assert moved["trip"]["status"] == "arrived"
    await _status_update(rider_socket, "arrived")
    started = await send(driver_socket, {"type": "trip.start", "trip_id": trip_id}, ref="go")
    assert started["trip"]["status"] == "in_progress"

    # Twenty fixes 20 m apart (~0.00018 degrees of latitude), plus a standing wobble that must not count.
    step = 20.0 / 111_195.0
    for i in range(1, 21):
        await driver_socket.send_json_to(
            location_frame(CENTRE[0] - i * step, CENTRE[1], at=datetime.now(UTC), accuracy_m=5.0)
        )
    for wobble in (0.000005, -0.000005, 0.000004):
        await driver_socket.send_json_to(
            location_frame(CENTRE[0] - 20 * step + wobble, CENTRE[1], at=datetime.now(UTC), accuracy_m=5.0)
        )
    for _ in range(23):
        frame = await receive_type(rider_socket, {"driver.location", "error"})
        assert frame["type"] == "driver.location"
    done = await send(driver_socket, {"type": "trip.complete", "trip_id": trip_id}, ref="done")
    assert done["ok"] is True, done
    completed = await _status_update(rider_socket, "completed")
    assert completed["trip"]["fare"]["amount"] > 0 and completed["trip"]["driver_pay"]["amount"] > 0

    trip = await sync_to_async(Trip.objects.get)(id=trip_id)
    assert trip.status == "completed"
    assert 380 <= trip.measured_distance_m <= 402
    assert trip.measured_duration_s is not None
    entry = await sync_to_async(JournalEntry.objects.get)(key=f"trip:{trip_id}:fare")
    assert entry.trip_id == trip.id
    # Completion measured the trail from Redis without flushing; the batched flush (a beat task) then
    # writes the trip's history to PostGIS.
    from dispatch.services.locations import flush_pending_fixes

    await sync_to_async(flush_pending_fixes)()
    assert await sync_to_async(LocationFix.objects.filter(trip_id=trip_id).count)() >= 24
    assert (await sync_to_async(Offer.objects.get)(id=offer["offer_id"])).reason["rank"] == 1

    # Once completed, the rider no longer gets the driver's position.
    await driver_socket.send_json_to(location_frame(CENTRE[0], CENTRE[1] + 0.0002, accuracy_m=5.0))
    assert await rider_socket.receive_nothing(timeout=0.3)
    await driver_socket.disconnect()
    await rider_socket.disconnect()
