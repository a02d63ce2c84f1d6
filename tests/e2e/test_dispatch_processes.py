"""A ride through real processes: uvicorn serving the ASGI app and `manage.py dispatch_worker`, against the
test database, driven over HTTP (httpx) and real websockets (the `websockets` client library)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import websockets

from tests.live_server import REPO, _server_env, start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PICKUP = {"lat": 40.7580, "lng": -73.9855}
DROPOFF = {"lat": 40.7128, "lng": -74.0060}


@contextlib.contextmanager
def dispatch_worker_process():
    log_path = Path("/tmp") / f"rochdale-dispatch-worker-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "dispatch_worker", "--region", "default"],
            cwd=REPO,
            env=_server_env(None),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_for_worker(process, log_path: Path, timeout_s: float = 30) -> None:
    from backend.redis import get_redis
    from dispatch.live import worker_heartbeat_key

    deadline = time.monotonic() + timeout_s
    while not get_redis().exists(worker_heartbeat_key()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the dispatch worker did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _next(socket, wanted: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(
            await asyncio.wait_for(socket.recv(), timeout=max(0.1, deadline - time.monotonic()))
        )
        if frame["type"] == wanted:
            return frame


async def _command(socket, frame: dict, ref: str) -> dict:
    await socket.send(json.dumps({**frame, "ref": ref}))
    while True:
        answer = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        if answer.get("ref") == ref and answer["type"] in ("result", "error"):
            return answer


async def _ride(base: str, ws_base: str, rider_token: str, driver_token: str) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        rider_headers = {"Authorization": f"Bearer {rider_token}"}
        driver_headers = {"Authorization": f"Bearer {driver_token}"}
        rider_ticket = (await http.post("/api/v1/ws-ticket", headers=rider_headers)).json()["ticket"]
        driver_ticket = (await http.post("/api/v1/ws-ticket", headers=driver_headers)).json()["ticket"]
        origin = {"Origin": "http://localhost"}
        async with (
            websockets.connect(
                f"{ws_base}/ws/driver/?ticket={driver_ticket}", additional_headers=origin
            ) as driver,
            websockets.connect(
                f"{ws_base}/ws/rider/?ticket={rider_ticket}", additional_headers=origin
            ) as rider,
        ):
            assert (await _command(driver, {"type": "online"}, "on"))["ok"] is True
            now = datetime.now(UTC)
            await driver.send(
                json.dumps(
                    {
                        "type": "location",
                        "lat": PICKUP["lat"] + 0.003,
                        "lng": PICKUP["lng"],
                        "recorded_at": _iso(now - timedelta(seconds=20)),
                        "accuracy_m": 5,
                    }
                )
            )
            await asyncio.sleep(0.3)
            response = await http.post(
                "/api/v1/trips",
                json={"pickup": PICKUP, "dropoff": DROPOFF},
                headers={**rider_headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert response.status_code == 201, response.text
            trip_id = response.json()["id"]
            offer = await _next(driver, "offer")
            assert offer["trip_id"] == trip_id
            accepted = await _command(driver, {"type": "offer.accept", "offer_id": offer["offer_id"]}, "acc")
            assert accepted["ok"] is True and accepted["trip"]["status"] == "assigned"
            while (await _next(rider, "trip.updated"))["trip"]["status"] != "assigned":
                pass
            await driver.send(
                json.dumps(
                    {"type": "location", **PICKUP, "recorded_at": _iso(datetime.now(UTC)), "accuracy_m": 5}
                )
            )
            location = await _next(rider, "driver.location")
            assert location["trip_id"] == trip_id and location["lat"] == PICKUP["lat"]
            for ref, kind in (("a", "trip.arrived"), ("s", "trip.start")):
                assert (await _command(driver, {"type": kind, "trip_id": trip_id}, ref))["ok"] is True
            step = 20.0 / 111_195.0
            for i in range(1, 11):
                await driver.send(
                    json.dumps(
                        {
                            "type": "location",
                            "lat": PICKUP["lat"] - i * step,
                            "lng": PICKUP["lng"],
                            "recorded_at": _iso(datetime.now(UTC)),
                            "accuracy_m": 5,
                        }
                    )
                )
            await asyncio.sleep(0.3)
            done = await _command(driver, {"type": "trip.complete", "trip_id": trip_id}, "c")
            assert done["ok"] is True, done
            while True:
                update = await _next(rider, "trip.updated")
                if update["trip"]["status"] == "completed":
                    break
            state = (await http.get("/api/v1/driver/state", headers=driver_headers)).json()
            assert {key: state[key] for key in ("online", "offer", "trip")} == {
                "online": True,
                "offer": None,
                "trip": None,
            }
            assert state["eligibility"]["eligible"] is True
            history = (await http.get("/api/v1/driver/offers", headers=driver_headers)).json()
            assert history["results"][0]["status"] == "accepted"
            return update["trip"]


def test_a_ride_through_uvicorn_and_the_dispatch_worker(settings):
    import importlib

    from django.apps import apps
    from rest_framework_simplejwt.tokens import RefreshToken

    from dispatch.models import Trip
    from tests.factories import DriverFactory, RiderFactory, square_service_area

    importlib.import_module("backend.fares.migrations.0002_seed_default_policy").seed_default_policy(
        apps, None
    )
    importlib.import_module("dispatch.migrations.0003_seed_dispatch_policy").seed(apps, None)
    square_service_area()
    rider, driver = RiderFactory(), DriverFactory()
    rider_token = str(RefreshToken.for_user(rider).access_token)
    driver_token = str(RefreshToken.for_user(driver).access_token)

    with start_asgi_server() as server, dispatch_worker_process() as (worker, log_path):
        _wait_for_worker(worker, log_path)
        trip = asyncio.run(_ride(server.url, f"ws://127.0.0.1:{server.port}", rider_token, driver_token))
    assert trip["fare"]["amount"] > 0 and trip["driver"]["location"] is None
    stored = Trip.objects.get(id=trip["id"])
    assert stored.status == "completed" and 170 <= stored.measured_distance_m <= 205
