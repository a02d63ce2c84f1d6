"""The driver websocket through the real ASGI app, on real Redis and PostGIS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from tests.dispatch.conftest import CENTRE, connect, location_frame, receive_type, send

pytestmark = pytest.mark.django_db(transaction=True)


async def test_going_online_and_offline_is_answered_and_mirrored(seeded, driver):
    from dispatch.live import driver_live_state
    from dispatch.models import DriverPresence, PresenceSession

    socket = await connect(driver, "/ws/driver/")
    answer = await send(socket, {"type": "online"}, ref="a1")
    assert answer == {"type": "result", "ref": "a1", "ok": True, "online": True}
    presence = await sync_to_async(DriverPresence.objects.get)(driver_id=driver.id)
    assert presence.status == "online" and presence.connected
    assert (await sync_to_async(driver_live_state)(driver.id))["online"] == "1"

    answer = await send(socket, {"type": "offline"}, ref="a2")
    assert answer["ok"] is True and answer["online"] is False
    assert (await sync_to_async(DriverPresence.objects.get)(driver_id=driver.id)).status == "offline"
    sessions = await sync_to_async(list)(PresenceSession.objects.filter(driver_id=driver.id))
    assert len(sessions) == 1 and sessions[0].ended_at is not None
    await socket.disconnect()


async def test_an_unapproved_driver_cannot_go_online(seeded):
    from tests.factories import DriverFactory

    pending = await sync_to_async(DriverFactory)(profile__status="pending")
    socket = await connect(pending, "/ws/driver/")
    answer = await send(socket, {"type": "online"}, ref="x")
    assert answer["type"] == "error" and answer["code"] == "driver_not_approved" and answer["ref"] == "x"
    # The socket stays open and usable.
    assert (await send(socket, {"type": "offline"}, ref="y"))["ok"] is True
    await socket.disconnect()


BAD_FRAMES = [
    ("{not json", "invalid_frame", None),
    ("[1, 2]", "invalid_frame", None),
    ('{"type": "dance", "ref": "r1"}', "unknown_type", "r1"),
    ('{"ref": "r2"}', "unknown_type", "r2"),
    ('{"type": "offer.accept", "offer_id": 7, "ref": "r3"}', "invalid_frame", "r3"),
    ('{"type": "trip.start", "trip_id": "not-a-uuid", "ref": "r4"}', "invalid_frame", "r4"),
    (
        '{"type": "trip.cancel", "trip_id": "6a0d7c4e-55c1-4f7e-a3f1-0b5b8e1f2c33", "reason": 5, '
        '"ref": "r5"}',
        "invalid_frame",
        "r5",
    ),
    (
        '{"type": "offer.accept", "offer_id": "6a0d7c4e-55c1-4f7e-a3f1-0b5b8e1f2c33", "ref": "r6"}',
        "offer_not_open",
        "r6",
    ),
    (
        '{"type": "trip.arrived", "trip_id": "6a0d7c4e-55c1-4f7e-a3f1-0b5b8e1f2c33", "ref": "r7"}',
        "trip_not_found",
        "r7",
    ),
]

BAD_LOCATIONS = [
    {"lat": 91, "lng": 0},
    {"lat": 40.0, "lng": -181},
    {"lat": "40.7", "lng": -73.9},
    {"lat": True, "lng": -73.9},
    {"lat": float("nan"), "lng": -73.9},
    {"lat": 40.7, "lng": -73.9, "heading": 400},
    {"lat": 40.7, "lng": -73.9, "speed_mps": -1},
    {"lat": 40.7, "lng": -73.9, "accuracy_m": -3},
    {"lat": 40.7, "lng": -73.9, "recorded_at": "yesterday"},
    {"lat": 40.7, "lng": -73.9, "recorded_at": "2026-01-01T00:00:00"},
    {"lat": 40.7, "lng": -73.9, "recorded_at": None},
    {"lat": 40.7},
]


async def test_bad_frames_of_every_kind_get_an_error_and_the_socket_stays_open(seeded, driver):
    import json

    socket = await connect(driver, "/ws/driver/")
    for raw, code, ref in BAD_FRAMES:
        await socket.send_to(text_data=raw)
        error = await receive_type(socket, "error")
        assert (error["code"], error["ref"]) == (code, ref), raw
    for index, fields in enumerate(BAD_LOCATIONS):
        frame = {"type": "location", "recorded_at": _now().isoformat(), "ref": f"loc{index}", **fields}
        await socket.send_to(text_data=json.dumps(frame))
        error = await receive_type(socket, "error")
        assert (error["code"], error["ref"]) == ("invalid_location", f"loc{index}"), fields
    await socket.send_to(text_data="x" * 9000)
    assert (await receive_type(socket, "error"))["code"] == "invalid_frame"
    assert (await send(socket, {"type": "online"}, ref="still-open"))["ok"] is True
    await socket.disconnect()


def _now():
    return datetime.now(UTC)


async def test_stale_future_and_out_of_order_fixes_are_refused(seeded, driver):
    socket = await connect(driver, "/ws/driver/")
    await send(socket, {"type": "online"}, ref="on")
    await socket.send_json_to(location_frame(*CENTRE, at=_now() - timedelta(seconds=90)))
    assert (await receive_type(socket, "error"))["code"] == "fix_too_old"
    await socket.send_json_to(location_frame(*CENTRE, at=_now() + timedelta(minutes=5)))
    assert (await receive_type(socket, "error"))["code"] == "fix_in_future"

    first = _now() - timedelta(seconds=5)
    await socket.send_json_to(location_frame(*CENTRE, at=first))
    assert await socket.receive_nothing(timeout=0.3)  # a good fix gets no answer
    await socket.send_json_to(location_frame(*CENTRE, at=first - timedelta(seconds=2)))
    assert (await receive_type(socket, "error"))["code"] == "fix_out_of_order"
    assert (await send(socket, {"type": "offline"}, ref="open"))["ok"] is True
    await socket.disconnect()


async def test_an_impossible_jump_is_refused_for_matching_and_counted(seeded, driver):
    from dispatch.live import available_key, driver_live_state
    from dispatch.models import DriverPresence, LocationFix
    from dispatch.services.locations import flush_pending_fixes

    socket = await connect(driver, "/ws/driver/")
    await send(socket, {"type": "online"}, ref="on")
    start = _now() - timedelta(seconds=10)
    await socket.send_json_to(location_frame(*CENTRE, at=start))
    # 0.5 degrees of latitude (about 55 km) in 4 s is ~14 km/s.
    await socket.send_json_to(
        location_frame(CENTRE[0] + 0.5, CENTRE[1], at=start + timedelta(seconds=4), ref="j")
    )
    error = await receive_type(socket, "error")
    assert error["code"] == "implausible_jump" and error["ref"] == "j"
    state = await sync_to_async(driver_live_state)(driver.id)
    assert float(state["lat"]) == pytest.approx(CENTRE[0]) and state["jumps"] == "1"

    from backend.redis import get_redis

    position = await sync_to_async(get_redis().geopos)(available_key(), str(driver.id))
    assert position[0][1] == pytest.approx(CENTRE[0], abs=1e-4)
    # A plausible move afterwards is accepted.
    await socket.send_json_to(location_frame(CENTRE[0] + 0.001, CENTRE[1], at=start + timedelta(seconds=8)))
    assert await socket.receive_nothing(timeout=0.3)

    inserted = await sync_to_async(flush_pending_fixes)()
    assert inserted == 3
    presence = await sync_to_async(DriverPresence.objects.get)(driver_id=driver.id)
    assert presence.implausible_jumps == 1
    assert presence.location.y == pytest.approx(CENTRE[0] + 0.001)
    refused = await sync_to_async(LocationFix.objects.filter(driver_id=driver.id, accepted=False).count)()
    assert refused == 1
    await socket.disconnect()


async def test_a_rider_without_a_trip_gets_no_driver_location_and_a_rider_frame_is_refused(
    seeded, rider, driver
):
    rider_socket = await connect(rider, "/ws/rider/")
    driver_socket = await connect(driver, "/ws/driver/")
    await send(driver_socket, {"type": "online"}, ref="on")
    await driver_socket.send_json_to(location_frame(*CENTRE))
    assert await rider_socket.receive_nothing(timeout=0.3)
    await rider_socket.send_to(text_data='{"type": "location", "ref": "nope"}')
    assert (await receive_type(rider_socket, "error"))["code"] == "unknown_type"
    await rider_socket.disconnect()
    await driver_socket.disconnect()


async def _fix_rows(driver) -> int:
    from dispatch.models import LocationFix
    from dispatch.services.locations import flush_pending_fixes

    await sync_to_async(flush_pending_fixes)()
    return await sync_to_async(LocationFix.objects.filter(driver_id=driver.id).count)()


async def test_a_fix_flood_is_answered_rate_limited_and_dropped_and_the_socket_stays_open(
    seeded, driver, settings
):
    # A slow refill, so the count below does not depend on how fast this machine sends the flood.
    settings.ROCHDALE_WS_FIX_RATE_PER_S = 0.05
    settings.ROCHDALE_WS_FIX_BURST = 5
    socket = await connect(driver, "/ws/driver/")
    await send(socket, {"type": "online"}, ref="on")
    start = _now() - timedelta(seconds=30)
    flood = 40
    for index in range(flood):
        fix = location_frame(*CENTRE, at=start + timedelta(milliseconds=100 * index), ref=f"f{index}")
        await socket.send_json_to(fix)
    refused = [await receive_type(socket, "error") for _ in range(flood - 5)]
    assert {frame["code"] for frame in refused} == {"rate_limited"}
    assert [frame["ref"] for frame in refused] == [f"f{index}" for index in range(5, flood)]
    assert refused[0]["details"]["budget"] == "location" and refused[0]["details"]["retry_after_s"] > 0
    assert await socket.receive_nothing(timeout=0.2)
    # Only the burst was stored (nothing else reached the stream), and the socket still answers.
    assert await _fix_rows(driver) == 5
    assert (await send(socket, {"type": "online"}, ref="still-open"))["ok"] is True
    await socket.disconnect()


async def test_fixes_within_the_default_budget_are_all_stored(seeded, driver):
    # The demo's fastest simulated drivers send a fix about every second; the default budget keeps them all.
    socket = await connect(driver, "/ws/driver/")
    await send(socket, {"type": "online"}, ref="on")
    start = _now() - timedelta(seconds=30)
    for index in range(10):
        await socket.send_json_to(location_frame(*CENTRE, at=start + timedelta(seconds=index)))
    assert await socket.receive_nothing(timeout=0.3)
    assert await _fix_rows(driver) == 10
    await socket.disconnect()


async def test_a_command_flood_is_answered_rate_limited_and_the_socket_stays_open(seeded, driver, settings):
    settings.ROCHDALE_WS_COMMAND_RATE_PER_S = 0.05
    settings.ROCHDALE_WS_COMMAND_BURST = 3
    socket = await connect(driver, "/ws/driver/")
    for index in range(8):
        await socket.send_json_to({"type": "offline", "ref": f"c{index}"})
    answers = [await receive_type(socket, {"result", "error"}) for _ in range(8)]
    assert [answer["type"] for answer in answers] == ["result"] * 3 + ["error"] * 5
    assert {answer["code"] for answer in answers[3:]} == {"rate_limited"}
    assert [answer["ref"] for answer in answers[3:]] == [f"c{index}" for index in range(3, 8)]
    assert answers[3]["details"]["budget"] == "command"
    await socket.disconnect()


@pytest.mark.parametrize("path", ["/ws/driver/", "/ws/rider/"])
async def test_a_socket_that_keeps_flooding_is_closed_with_4429(seeded, driver, rider, settings, path):
    settings.ROCHDALE_WS_FLOOD_FRAMES_PER_S = 0.05
    settings.ROCHDALE_WS_FLOOD_BURST = 30
    socket = await connect(driver if path == "/ws/driver/" else rider, path)
    for index in range(60):
        await socket.send_json_to({"type": "dance", "ref": f"d{index}"})
    frames = []
    while True:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        frames.append(output["text"])
    assert output["code"] == 4429
    errors = [json.loads(text) for text in frames]
    # Every frame within the ceiling was answered; then one last error says why the socket closes.
    assert [error["code"] for error in errors] == ["unknown_type"] * 30 + ["flooding"]
    assert errors[-1]["ref"] == "d30"
