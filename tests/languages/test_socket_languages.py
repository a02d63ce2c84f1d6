"""Websocket frames speak the socket's language: the handshake's Accept-Language, else the user's setting,
else English (docs/languages.md); the codes are the same in every language."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from backend.accounts.tickets import ticket_issue
from backend.asgi import application
from tests.factories import DriverFactory, RiderFactory

ORIGIN = (b"origin", b"http://localhost")


async def _socket(user, path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    ticket, _ = await sync_to_async(ticket_issue)(user_id=user.id)
    communicator = WebsocketCommunicator(application, f"{path}?ticket={ticket}", headers=[ORIGIN, *headers])
    connected, code = await communicator.connect()
    assert connected, code
    return communicator


async def _error_frame(communicator: WebsocketCommunicator, text: str) -> dict:
    await communicator.send_to(text_data=text)
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["type"] == "error"
    return frame


@pytest.mark.django_db(transaction=True)
async def test_a_driver_sockets_error_frames_follow_the_handshakes_accept_language():
    driver = await sync_to_async(DriverFactory)()
    spanish = await _socket(driver, "/ws/driver/", (b"accept-language", b"es-419,es;q=0.9"))
    english = await _socket(driver, "/ws/driver/")

    unknown = json.dumps({"type": "teleport", "ref": "r1"})
    frame_es = await _error_frame(spanish, unknown)
    frame_en = await _error_frame(english, unknown)
    assert (frame_en["code"], frame_en["message"]) == ("unknown_type", "Unknown frame type.")
    assert (frame_es["code"], frame_es["message"]) == ("unknown_type", "Tipo de mensaje desconocido.")
    assert frame_es["ref"] == frame_en["ref"] == "r1"

    # A command refused by a service (a trip that is not the driver's) is Spanish too: the service runs
    # in the socket's language.
    move = json.dumps(
        {"type": "trip.arrived", "ref": "r2", "trip_id": "00000000-0000-0000-0000-000000000000"}
    )
    refused_es, refused_en = await _error_frame(spanish, move), await _error_frame(english, move)
    assert refused_es["code"] == refused_en["code"] == "trip_not_found"
    assert (refused_en["message"], refused_es["message"]) == ("No such trip.", "No existe ese viaje.")

    not_json = await _error_frame(spanish, "{not json")
    assert (not_json["code"], not_json["message"]) == ("invalid_frame", "El mensaje no es JSON válido.")
    await spanish.disconnect()
    await english.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_riders_socket_follows_the_riders_setting_without_a_header():
    rider = await sync_to_async(RiderFactory)(language="es")
    socket = await _socket(rider, "/ws/rider/")
    frame = await _error_frame(socket, json.dumps({"type": "hello"}))
    assert (frame["code"], frame["message"]) == ("unknown_type", "Tipo de mensaje desconocido.")
    await socket.disconnect()

    # The handshake's own header wins over the setting.
    english = await _socket(rider, "/ws/rider/", (b"accept-language", b"en"))
    frame = await _error_frame(english, json.dumps({"type": "hello"}))
    assert frame["message"] == "Unknown frame type."
    await english.disconnect()
