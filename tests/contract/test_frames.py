"""The frame checker catches drift: a missing field, a wrong type, an undocumented code, type or answer.

The last tests send drifted frames through the real sockets (the real channel layer and consumer) with a
recorder of their own, and see them reported; they are marked `synthetic_frames` so that the suite-wide
recorder (tests/conftest.py) does not fail them for the drift they cause on purpose.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.contract.frames import DOCUMENT_PATH, FrameRecorder, repository_contract

DRIVER = "/ws/driver/"
RIDER = "/ws/rider/"


def _example(message: str) -> dict:
    messages = yaml.safe_load(DOCUMENT_PATH.read_text())["components"]["messages"]
    return copy.deepcopy(messages[message]["examples"][0]["payload"])


def test_a_documented_offer_passes() -> None:
    assert repository_contract().server_frame_problems(DRIVER, _example("offer")) == []


def test_an_offer_missing_a_field_is_reported() -> None:
    offer = _example("offer")
    del offer["expires_at"]
    assert repository_contract().server_frame_problems(DRIVER, offer) == [
        "(the frame): 'expires_at' is a required property"
    ]


def test_money_as_a_float_is_reported() -> None:
    offer = _example("offer")
    offer["fare"]["amount"] = 23.07
    assert repository_contract().server_frame_problems(DRIVER, offer) == [
        "fare/amount: 23.07 is not of type 'integer'"
    ]


def test_an_undocumented_field_is_reported() -> None:
    located = _example("driverLocation") | {"speed_mps": 8.0}
    (problem,) = repository_contract().server_frame_problems(RIDER, located)
    assert "'speed_mps' was unexpected" in problem


def test_a_trip_timestamp_without_z_is_reported() -> None:
    updated = _example("tripUpdated")
    updated["trip"]["requested_at"] = "2026-11-21T14:03:00+00:00"
    (problem,) = repository_contract().server_frame_problems(RIDER, updated)
    assert problem.startswith("trip/requested_at: '2026-11-21T14:03:00+00:00' does not match")


def test_an_undocumented_error_code_is_reported() -> None:
    error = {"type": "error", "ref": None, "code": "out_of_coffee", "message": "Sorry."}
    (problem,) = repository_contract().server_frame_problems(DRIVER, error)
    assert problem.startswith("code: 'out_of_coffee' is not one of [")


def test_a_driver_only_code_on_the_rider_socket_is_reported() -> None:
    error = {"type": "error", "ref": None, "code": "offer_not_open", "message": "No.", "details": {}}
    assert repository_contract().server_frame_problems(DRIVER, error) == []
    (problem,) = repository_contract().server_frame_problems(RIDER, error)
    assert "'offer_not_open' is not one of" in problem


def test_a_frame_the_socket_does_not_carry_is_reported() -> None:
    assert repository_contract().server_frame_problems(RIDER, _example("offer")) == [
        "'offer' is not a frame the document lets the server send on /ws/rider/"
    ]


def test_an_answer_must_be_the_one_its_command_declares_and_echo_its_ref() -> None:
    contract = repository_contract()
    online = {"type": "online", "ref": "a1"}
    assert contract.server_frame_problems(DRIVER, _example("presenceResult"), answering=online) == []

    declined = {"type": "result", "ref": "a1", "ok": True}  # offer.decline's answer, not online's
    problems = contract.server_frame_problems(DRIVER, declined, answering=online)
    assert problems == ["(the frame): 'online' is a required property"]

    wrong_ref = _example("presenceResult") | {"ref": "someone-else"}
    assert contract.server_frame_problems(DRIVER, wrong_ref, answering=online) == [
        "ref: answers 'a1', the frame carries 'someone-else'"
    ]
    unanswerable = {"type": "location", "lat": 1, "lng": 2, "recorded_at": "2026-11-21T14:03:00Z"}
    assert contract.server_frame_problems(DRIVER, _example("presenceResult"), answering=unanswerable) == [
        "'result' is not a frame the document lets the server send on /ws/driver/ in answer to 'location'"
    ]


def test_an_accepted_client_frame_the_document_refuses_is_reported() -> None:
    contract = repository_contract()
    assert contract.client_frame_problems(DRIVER, _example("location")) == []
    fix = _example("location")
    del fix["recorded_at"]
    assert contract.client_frame_problems(DRIVER, fix) == [
        "(the frame): 'recorded_at' is a required property"
    ]
    assert contract.client_frame_problems(DRIVER, {"type": "dance"}) == [
        "'dance' is not a client frame the document lists on /ws/driver/"
    ]


@pytest.mark.synthetic_frames
@pytest.mark.django_db(transaction=True)
async def test_a_drifted_push_through_the_real_rider_socket_is_reported(
    monkeypatch: pytest.MonkeyPatch, rider
) -> None:
    from channels.layers import get_channel_layer

    from dispatch.realtime import user_group
    from tests.dispatch.conftest import connect

    recorder = FrameRecorder().install(monkeypatch)
    socket = await connect(rider, RIDER)
    good = _example("driverLocation")
    drifted = {key: value for key, value in good.items() if key != "lng"}
    for frame in (good, drifted):
        await get_channel_layer().group_send(user_group(rider.id), {"type": "push", "frame": frame})
        assert await socket.receive_json_from(timeout=5) == frame  # the real consumer still sends it
    await socket.disconnect()

    assert recorder.server_frames == 2
    (drift,) = recorder.drifts
    assert (drift.address, drift.direction) == (RIDER, "server")
    assert drift.problems == ("(the frame): 'lng' is a required property",)
    assert "Socket frames drifted from docs/asyncapi.yaml" in recorder.report()


@pytest.mark.django_db(transaction=True)
async def test_real_answers_of_the_driver_socket_are_checked_against_their_command(
    monkeypatch: pytest.MonkeyPatch, driver
) -> None:
    from tests.dispatch.conftest import connect, send

    recorder = FrameRecorder().install(monkeypatch)
    socket = await connect(driver, DRIVER)
    assert (await send(socket, {"type": "online"}, ref="on"))["ok"] is True
    error = await send(socket, {"type": "offer.accept", "offer_id": "nope"}, ref="bad")
    assert error["code"] == "invalid_frame"
    await socket.disconnect()

    assert recorder.drifts == []
    # Both answers were checked; `online` was accepted (so checked as a client frame), the accept was not.
    assert (recorder.server_frames, recorder.client_frames) == (2, 1)
