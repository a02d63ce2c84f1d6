"""Stopping the server with sockets open is quiet: what Ctrl-C in `make run` does to it.

honcho answers Ctrl-C by sending SIGTERM to every process at once, so the server goes while the simulated
drivers' sockets are still sending fixes and receiving pushes. uvicorn then closes each socket with 1012
(service restart) and the consumers' last sends meet a closed socket (uvicorn's `ClientDisconnected`): that
is the end of a connection, not an error, and the stop must print no traceback and end promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.live_server import start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOCKETS = 6


async def _drive_until_closed(ws_base: str, ticket: str, ready: asyncio.Event) -> int | None:
    """Go online and send fixes until the server closes the socket; the close code it gave."""
    async with websockets.connect(f"{ws_base}/ws/driver/?ticket={ticket}") as socket:
        await socket.send(json.dumps({"type": "online", "ref": "on"}))
        ready.set()
        try:
            while True:
                await socket.send(
                    json.dumps({"type": "location", "lat": 40.758, "lng": -73.9855, "ts": time.time()})
                )
                # A fix a second, as an app sends them (faster trips the socket's frame budget), reading
                # acks and pushes meanwhile.
                deadline = time.monotonic() + 1.0
                while (left := deadline - time.monotonic()) > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(socket.recv(), timeout=left)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


async def _sockets_then_stop(
    base: str, ws_base: str, tokens: list[str], stop: Callable[[], None]
) -> list[int | None]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        answers = [
            await http.post("/api/v1/ws-ticket", headers={"Authorization": f"Bearer {token}"})
            for token in tokens
        ]
    tickets = [answer.json()["ticket"] for answer in answers]
    readies = [asyncio.Event() for _ in tickets]
    drivers = [
        asyncio.create_task(_drive_until_closed(ws_base, ticket, ready))
        for ticket, ready in zip(tickets, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), timeout=10)
    await asyncio.sleep(2.5)  # fixes, their acks and pushes in flight on every socket
    await asyncio.to_thread(stop)
    return await asyncio.wait_for(asyncio.gather(*drivers), timeout=15)


def test_sigterm_with_busy_sockets_closes_them_as_a_restart_and_logs_no_traceback():
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import DriverFactory

    tokens = [str(RefreshToken.for_user(DriverFactory()).access_token) for _ in range(SOCKETS)]
    with start_asgi_server() as server:
        stopped_after: list[float] = []

        def stop() -> None:
            started = time.monotonic()
            server.process.terminate()  # SIGTERM, as honcho sends it
            server.process.wait(timeout=15)
            stopped_after.append(time.monotonic() - started)

        codes = asyncio.run(_sockets_then_stop(server.url, f"ws://127.0.0.1:{server.port}", tokens, stop))
        log = server.log()

    assert codes == [1012] * SOCKETS, (codes, log)
    assert stopped_after[0] < 10, log
    for sign in ("Traceback", "ClientDisconnected", "Exception in ASGI application", "ERROR"):
        assert sign not in log, log
