import pytest
from channels.testing import WebsocketCommunicator

from backend.asgi import application

ORIGIN = (b"origin", b"http://localhost")


async def _ticket_for(user):
    from asgiref.sync import sync_to_async

    from backend.accounts.tickets import ticket_issue

    ticket, _ = await sync_to_async(ticket_issue)(user_id=user.id)
    return ticket


@pytest.mark.django_db(transaction=True)
@pytest.mark.synthetic_frames  # pushes a stand-in `ping` frame through the real channel layer
async def test_rider_socket_accepts_a_valid_ticket_and_receives_pushes_over_redis(rider):
    from channels.layers import get_channel_layer

    from dispatch.realtime import user_group

    ticket = await _ticket_for(rider)
    communicator = WebsocketCommunicator(application, f"/ws/rider/?ticket={ticket}", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert connected
    # A push through the real Redis channel layer reaches the socket.
    await get_channel_layer().group_send(user_group(rider.id), {"type": "push", "frame": {"type": "ping"}})
    assert await communicator.receive_json_from(timeout=5) == {"type": "ping"}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_ticket_works_only_once(rider):
    ticket = await _ticket_for(rider)
    first = WebsocketCommunicator(application, f"/ws/rider/?ticket={ticket}", headers=[ORIGIN])
    assert (await first.connect())[0]
    await first.disconnect()
    second = WebsocketCommunicator(application, f"/ws/rider/?ticket={ticket}", headers=[ORIGIN])
    connected, code = await second.connect()
    assert not connected
    assert code == 4401


@pytest.mark.django_db(transaction=True)
async def test_missing_ticket_and_foreign_origin_are_refused(rider):
    no_ticket = WebsocketCommunicator(application, "/ws/rider/", headers=[ORIGIN])
    connected, code = await no_ticket.connect()
    assert not connected and code == 4401

    ticket = await _ticket_for(rider)
    foreign = WebsocketCommunicator(
        application, f"/ws/rider/?ticket={ticket}", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await foreign.connect()
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_wrong_role_is_refused(rider):
    ticket = await _ticket_for(rider)
    communicator = WebsocketCommunicator(application, f"/ws/driver/?ticket={ticket}", headers=[ORIGIN])
    connected, code = await communicator.connect()
    assert not connected and code == 4403


# Native apps (OkHttp, dart:io, URLSession) send no Origin header: the ticket is the credential, so a
# handshake without one is accepted on a valid ticket; an Origin naming a foreign host is still refused.
TICKET_SOCKETS = [("/ws/driver/", "driver"), ("/ws/rider/", "rider")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "role"), TICKET_SOCKETS)
async def test_a_native_app_without_origin_is_accepted_on_a_valid_ticket(path, role, rider, driver):
    user = {"rider": rider, "driver": driver}[role]
    communicator = WebsocketCommunicator(application, f"{path}?ticket={await _ticket_for(user)}")
    connected, code = await communicator.connect()
    assert connected, code
    if role == "driver":
        await communicator.send_json_to({"type": "offline", "ref": "native"})
        answer = await communicator.receive_json_from(timeout=5)
        assert answer["type"] == "result" and answer["ref"] == "native" and answer["ok"] is True
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "role"), TICKET_SOCKETS)
@pytest.mark.parametrize("ticket", ["", "not-a-ticket"])
async def test_without_origin_a_missing_or_bad_ticket_is_still_refused(path, role, ticket):
    communicator = WebsocketCommunicator(application, f"{path}?ticket={ticket}")
    connected, code = await communicator.connect()
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "role"), TICKET_SOCKETS)
@pytest.mark.parametrize("origin", [b"https://evil.example", b"null", b"http://localhost.evil.example"])
async def test_a_foreign_origin_is_refused_even_with_a_valid_ticket(path, role, origin, rider, driver):
    user = {"rider": rider, "driver": driver}[role]
    ticket = await _ticket_for(user)
    foreign = WebsocketCommunicator(application, f"{path}?ticket={ticket}", headers=[(b"origin", origin)])
    connected, _ = await foreign.connect()
    assert not connected
    # Refused before the ticket was looked at: the same ticket still opens the socket from the app.
    native = WebsocketCommunicator(application, f"{path}?ticket={ticket}")
    assert (await native.connect())[0]
    await native.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_staff_map_socket_still_needs_an_allowed_origin():
    # /ws/map/ authenticates by session cookie, which a browser attaches on its own: there the Origin is
    # the defence against cross-site use, so a handshake without one stays refused.
    communicator = WebsocketCommunicator(application, "/ws/map/")
    connected, _ = await communicator.connect()
    assert not connected
