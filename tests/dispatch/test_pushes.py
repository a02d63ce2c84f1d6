"""Pushes after commit: from a server thread they are handed to the event loop (in commit order, without the
thread waiting); from plain sync code (Celery, commands) they are sent directly. Never before commit."""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from tests.dispatch.conftest import connect, receive_type

# The frames pushed here are numbered stand-ins that test the plumbing, not contract frames.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.synthetic_frames]


def _push_numbered(user_id, numbers: range) -> None:
    from dispatch.realtime import push_to_user

    with transaction.atomic():
        for n in numbers:
            push_to_user(user_id, {"type": "trip.updated", "n": n})


async def test_pushes_from_a_server_thread_arrive_after_commit_in_commit_order(seeded, rider):
    socket = await connect(rider, "/ws/rider/")
    await sync_to_async(_push_numbered)(rider.id, range(3))
    await sync_to_async(_push_numbered, thread_sensitive=False)(rider.id, range(3, 6))
    received = [(await receive_type(socket, "trip.updated"))["n"] for _ in range(6)]
    assert received == [0, 1, 2, 3, 4, 5]
    await socket.disconnect()


async def test_a_rolled_back_transaction_pushes_nothing(seeded, rider):
    from dispatch.realtime import push_to_user

    def push_then_fail() -> None:
        with transaction.atomic():
            push_to_user(rider.id, {"type": "trip.updated", "n": "never"})
            raise RuntimeError("rolled back")

    socket = await connect(rider, "/ws/rider/")
    with pytest.raises(RuntimeError):
        await sync_to_async(push_then_fail)()
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_pushes_from_plain_sync_code_outside_the_server_are_sent_directly(seeded, rider):
    from django.db import connection

    def celery_like_task() -> None:
        try:
            _push_numbered(rider.id, range(2))
        finally:
            connection.close()

    socket = await connect(rider, "/ws/rider/")
    worker = threading.Thread(target=celery_like_task)
    worker.start()
    await sync_to_async(worker.join)()
    received = [(await receive_type(socket, "trip.updated"))["n"] for _ in range(2)]
    assert received == [0, 1]
    await socket.disconnect()
