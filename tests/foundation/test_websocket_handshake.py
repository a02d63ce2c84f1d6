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
