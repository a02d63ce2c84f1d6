"""Redis killed with -9 for 10 s mid-run, then back empty: dispatch carries on without anyone's help.

Real processes on the test database and a private redis-server (no persistence, so it restarts empty like
a lost cache): the ASGI server (`python -m backend.serve`), the dispatch worker (`manage.py
dispatch_worker`), and three drivers on real websockets (tickets through REST, no Origin: native apps)
sending a fix every 0.5 s. The test process stands in for the `flush_locations` beat task (it calls the
same function) so PostgreSQL has the drivers' last fixes, as it would in production.

What must hold: the worker keeps its PID; `GET /api/v1/health` is 503 naming redis during the outage and
200 after; a ride request made 5 s after Redis returns gets an offer within 10 s, with no driver sending
offline or online again; then the fault-suite invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import websockets

from tests.e2e.test_dispatch_processes import DROPOFF, PICKUP, _command, _iso
from tests.faults.invariants import assert_invariants
from tests.faults.procs import RedisServer, dispatch_worker, private_redis
from tests.live_server import LiveServer, start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OUTAGE_S = 10.0
REQUEST_AFTER_RETURN_S = 5.0
OFFER_WITHIN_S = 10.0
FIX_INTERVAL_S = 0.5
DRIVERS = 3
METRES_PER_DEGREE = 111_195.0


@dataclass
class DriverApp:
    """A driver's app: online once, then a fix every 0.5 s; reconnects (without going online again) if
    its socket drops. Keeps every offer and error frame it receives."""

    token: str
    lat: float
    lng: float
    offers: list[tuple[float, dict]] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    onlines_sent: int = 0
    reconnects: int = 0
    fixes_sent: int = 0

    async def run(self, http: httpx.AsyncClient, ws_base: str, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while not stop.is_set():
            try:
                ticket = (await http.post("/api/v1/ws-ticket", headers=headers)).json()["ticket"]
                async with websockets.connect(f"{ws_base}/ws/driver/?ticket={ticket}") as socket:
                    if self.onlines_sent == 0:
                        assert (await _command(socket, {"type": "online"}, "on"))["ok"] is True
                        self.onlines_sent += 1
                    reader = asyncio.create_task(self._read(socket))
                    try:
                        while not stop.is_set() and not reader.done():
                            self.lat += 5.0 / METRES_PER_DEGREE  # 10 m/s north
                            fix = {"type": "location", "lat": self.lat, "lng": self.lng, "accuracy_m": 5}
                            await socket.send(json.dumps({**fix, "recorded_at": _iso(datetime.now(UTC))}))
                            self.fixes_sent += 1
                            await asyncio.sleep(FIX_INTERVAL_S)
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await reader
            except (OSError, KeyError, ValueError, httpx.HTTPError, websockets.ConnectionClosed):
                pass  # the ticket or the socket failed while Redis was down: try again, as an app would
            if not stop.is_set():
                self.reconnects += 1
                await asyncio.sleep(FIX_INTERVAL_S)

    async def _read(self, socket: websockets.ClientConnection) -> None:
        async for raw in socket:
            frame = json.loads(raw)
            if frame.get("type") == "offer":
                self.offers.append((time.monotonic(), frame))
            elif frame.get("type") == "error":
                self.errors[frame.get("code")] += 1


async def _health(http: httpx.AsyncClient) -> tuple[int, dict]:
    answer = await http.get("/api/v1/health")
    return answer.status_code, answer.json()


async def _scenario(
    server: LiveServer, redis_server: RedisServer, worker_pid: int, tokens: list[str], rider_token: str
) -> dict:
    from backend.redis import get_redis
    from dispatch.live import available_key
    from dispatch.services.locations import flush_pending_fixes

    apps = [
        DriverApp(token, PICKUP["lat"] + 0.002 * (n + 1), PICKUP["lng"]) for n, token in enumerate(tokens)
    ]
    stop = asyncio.Event()
    ws_base = f"ws://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        tasks = [asyncio.create_task(app.run(http, ws_base, stop)) for app in apps]
        try:

            async def all_available() -> bool:
                return len(await asyncio.to_thread(get_redis().zrange, available_key(), 0, -1)) == DRIVERS

            await _eventually(all_available, timeout_s=10, what="every driver online and available")
            await asyncio.sleep(1.0)
            assert await asyncio.to_thread(flush_pending_fixes) > 0  # the beat task's flush, once

            redis_server.kill()
            killed_at = time.monotonic()
            during = []
            while time.monotonic() - killed_at < OUTAGE_S:
                during.append(await _health(http))
                await asyncio.sleep(1.0)
            redis_server.start()  # same port, empty
            returned_at = time.monotonic()

            async def healthy() -> bool:
                return (await _health(http))[0] == 200

            await _eventually(healthy, timeout_s=5, what="health 200 after Redis returns")
            healthy_after_s = time.monotonic() - returned_at
            after = await _health(http)

            await asyncio.sleep(max(0.0, REQUEST_AFTER_RETURN_S - (time.monotonic() - returned_at)))
            rider = {"Authorization": f"Bearer {rider_token}", "Idempotency-Key": str(uuid.uuid4())}
            requested = await http.post(
                "/api/v1/trips", json={"pickup": PICKUP, "dropoff": DROPOFF}, headers=rider
            )
            assert requested.status_code == 201, requested.text
            trip_id = requested.json()["id"]
            requested_at = time.monotonic()

            async def offered() -> float | None:
                times = [at for app in apps for at, frame in app.offers if frame["trip_id"] == trip_id]
                return min(times) if times else None

            offer_at = await _eventually(offered, timeout_s=OFFER_WITHIN_S, what="an offer for the request")
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "health_during": during,
        "health_after": after,
        "healthy_after_s": healthy_after_s,
        "offer_after_request_s": offer_at - requested_at,
        "apps": apps,
    }


async def _eventually(check, *, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.1)


def test_redis_killed_for_ten_seconds_and_back_empty_dispatch_carries_on(settings, capsys):
    from rest_framework_simplejwt.tokens import RefreshToken

    from dispatch.models import DriverPresence, PresenceSession
    from tests.factories import DriverFactory, RiderFactory, square_service_area

    square_service_area()
    drivers = [DriverFactory() for _ in range(DRIVERS)]
    rider = RiderFactory()
    tokens = [str(RefreshToken.for_user(driver).access_token) for driver in drivers]
    rider_token = str(RefreshToken.for_user(rider).access_token)

    with private_redis() as redis_server:
        settings.REDIS_URL = redis_server.url(db=0)  # this process's flush and checks use it too
        env = {"REDIS_URL": redis_server.url(db=0)}
        with start_asgi_server(extra_env=env) as server, dispatch_worker(extra_env=env) as worker:
            pid = worker.pid
            try:
                outcome = asyncio.run(_scenario(server, redis_server, pid, tokens, rider_token))
            except BaseException:
                print(f"--- dispatch worker log ---\n{worker.log()}\n--- server log ---\n{server.log()}")
                raise
            assert worker.alive() and worker.pid == pid, worker.log()
            worker_log, server_log = worker.log(), server.log()

    assert outcome["health_during"], "no health answer during the outage"
    for status, body in outcome["health_during"]:
        assert status == 503 and body["redis"] == "down" and body["database"] == "ok", (status, body)
    assert outcome["health_after"] == (200, {"status": "ok", "database": "ok", "redis": "ok"})
    assert outcome["offer_after_request_s"] <= OFFER_WITHIN_S

    apps = outcome["apps"]
    assert [app.onlines_sent for app in apps] == [1] * DRIVERS  # nobody went online again
    assert all(app.errors["not_online"] == 0 for app in apps), [app.errors for app in apps]
    for driver in drivers:
        assert DriverPresence.objects.get(driver_id=driver.id).status == "online"
        assert PresenceSession.objects.filter(driver_id=driver.id).count() == 1  # never offline and back

    # The outage is logged once by the worker, not once per retry; it found the loss by its generation.
    assert worker_log.count("Redis unreachable") == 1, worker_log
    assert worker_log.count("Redis lost its data") == 1, worker_log
    assert "Traceback" not in worker_log, worker_log
    with capsys.disabled():
        refused = sum((app.errors for app in apps), Counter())
        print(
            f"\nredis outage: health 200 {outcome['healthy_after_s']:.1f} s after Redis returned; "
            f"offer {outcome['offer_after_request_s'] * 1000:.0f} ms after the request; "
            f"fix errors during the outage {dict(refused)}; socket reconnects "
            f"{[app.reconnects for app in apps]}; server log lines naming the outage "
            f"{server_log.count('Redis unreachable')}"
        )
    assert_invariants()
