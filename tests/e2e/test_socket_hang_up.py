"""A client that hangs up before its answer is an ordinary event, not a server error.

Apps close their socket whenever they like (backgrounded, Ctrl-C in the simulator, a train entering a
tunnel). Over a real uvicorn server, answering a command whose socket already closed raises
`ClientDisconnected`; the command's effect stands (the app resyncs from REST) and nothing is logged as a
failure."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.live_server import start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def _online_then_hang_up(base: str, ws_base: str, token: str, sockets: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(sockets):
            ticket = (await http.post("/api/v1/ws-ticket", headers=headers)).json()["ticket"]
            socket = await websockets.connect(f"{ws_base}/ws/driver/?ticket={ticket}")
            # Send a command and close at once: the server answers a socket that is gone.
            await socket.send(json.dumps({"type": "online", "ref": "on"}))
            await socket.close()


def test_a_command_whose_socket_closed_before_the_answer_logs_no_error():
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import DriverFactory

    driver = DriverFactory()
    token = str(RefreshToken.for_user(driver).access_token)
    with start_asgi_server() as server:
        asyncio.run(_online_then_hang_up(server.url, f"ws://127.0.0.1:{server.port}", token, sockets=5))
        deadline = time.monotonic() + 5
        while "offline" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        log = server.log()
    assert "websocket frame failed" not in log, log
    assert "Traceback" not in log, log
