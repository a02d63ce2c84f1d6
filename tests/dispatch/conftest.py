"""Dispatch test helpers: seeded policies, trips made directly, driver sockets, and a running worker.

Every dispatch test runs twice: on the single Redis (REDIS_URL) and on a Redis Cluster of three nodes of
the suite's own (tests/faults/procs.py), so that each key a script or a transaction touches is shown to
share its hash tag (`[redis-cluster]` in the test id; `-m "not redis_cluster"` runs the single ones). A
test that starts its own Redis to kill it (`@pytest.mark.own_redis`) runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

ORIGIN = (b"origin", b"http://localhost")
CENTRE = (40.7580, -73.9855)


REDIS_TOPOLOGIES = ["redis", pytest.param("redis-cluster", marks=pytest.mark.redis_cluster)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_topology" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("own_redis"):
        metafunc.parametrize("redis_topology", REDIS_TOPOLOGIES, indirect=True)


@pytest.fixture(scope="session")
def private_cluster():
    """The suite's Redis Cluster, started on first use and stopped at the end of the session."""
    from tests.faults.procs import private_redis_cluster

    with private_redis_cluster() as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def redis_topology(request: pytest.FixtureRequest, settings) -> str:
    """Which Redis this test's code talks to: "redis" (REDIS_URL) or "redis-cluster" (an emptied cluster)."""
    topology = getattr(request, "param", "redis")
    if topology == "redis-cluster":
        cluster = request.getfixturevalue("private_cluster")
        settings.ROCHDALE_REDIS_CLUSTER_URL = cluster.url()
        from backend.redis import get_redis

        get_redis().flushall()
    return topology


@pytest.fixture
def seeded(db):
    """Fare policy v1 and dispatch policy v1 (a transactional test's flush removes migration seeds)."""
    from django.apps import apps

    importlib.import_module("backend.fares.migrations.0002_seed_default_policy").seed_default_policy(
        apps, None
    )
    importlib.import_module("dispatch.migrations.0003_seed_dispatch_policy").seed(apps, None)


def iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat().replace("+00:00", "Z")


def location_frame(lat: float, lng: float, *, at: datetime | None = None, **extra) -> dict:
    return {"type": "location", "lat": lat, "lng": lng, "recorded_at": iso(at), **extra}


def make_trip(rider, *, lat: float = CENTRE[0], lng: float = CENTRE[1], wav: bool = False, **fields):
    """A requested trip written directly (the rider API's own path is tested by its owner)."""
    from django.contrib.gis.geos import Point

    from backend.fares.models import FarePolicyVersion
    from dispatch.models import Trip, TripEvent

    policy = FarePolicyVersion.objects.order_by("-version").first()
    trip = Trip.objects.create(
        rider=rider,
        pickup=Point(lng, lat, srid=4326),
        dropoff=Point(lng + 0.02, lat + 0.02, srid=4326),
        wheelchair_accessible=wav,
        policy_version=policy,
        currency="USD",
        fare_estimate_minor=1500,
        estimated_distance_m=3000,
        estimated_duration_s=600,
        **fields,
    )
    TripEvent.objects.create(trip=trip, status="requested")
    return trip


def driver_online_at(driver, lat: float, lng: float, *, age_s: float = 0.0) -> None:
    """Put a driver online with a fix, through the real services (sync)."""
    import time

    from django.test import TestCase

    from dispatch.services import locations, presence

    with TestCase.captureOnCommitCallbacks(execute=True):
        presence.presence_go_online(driver_id=driver.id)
    fix = locations.Fix(lat, lng, None, None, 5.0, time.time() - age_s)

    async def record() -> None:
        recorder = locations.LocationRecorder()
        try:
            await recorder.record(driver_id=driver.id, fix=fix)
        finally:
            await recorder.close()

    asyncio.run(record())


async def adriver_online_at(driver, lat: float, lng: float, *, age_s: float = 0.0) -> None:
    import time

    from dispatch.services import locations, presence

    await sync_to_async(presence.presence_go_online)(driver_id=driver.id)
    recorder = locations.LocationRecorder()
    try:
        await recorder.record(
            driver_id=driver.id, fix=locations.Fix(lat, lng, None, None, 5.0, time.time() - age_s)
        )
    finally:
        await recorder.close()


async def ticket_for(user) -> str:
    from backend.accounts.tickets import ticket_issue

    ticket, _ = await sync_to_async(ticket_issue)(user_id=user.id)
    return ticket


async def connect(user, path: str):
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    communicator = WebsocketCommunicator(
        application, f"{path}?ticket={await ticket_for(user)}", headers=[ORIGIN]
    )
    connected, code = await communicator.connect()
    assert connected, code
    return communicator


async def send(communicator, frame: dict, *, ref: str | None = None) -> dict | None:
    """Send a frame; for commands, wait for its result/error (skipping pushes, which are returned later)."""
    if ref is not None:
        frame = {**frame, "ref": ref}
    await communicator.send_json_to(frame)
    if ref is None:
        return None
    return await receive_type(communicator, {"result", "error"}, ref=ref)


async def receive_type(communicator, types: set[str] | str, *, ref: str | None = None, timeout: float = 5.0):
    """The next frame of one of `types` (others are skipped)."""
    wanted = {types} if isinstance(types, str) else types
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no {wanted} frame within {timeout} s")
        frame = await communicator.receive_json_from(timeout=remaining)
        if frame.get("type") in wanted and (ref is None or frame.get("ref") == ref):
            return frame


@contextlib.asynccontextmanager
async def running_worker(**kwargs):
    """The dispatch worker's loop as a task in the test's event loop."""
    from dispatch.worker import DispatchWorker

    worker = DispatchWorker(**kwargs)
    task = asyncio.get_running_loop().create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), timeout=10)
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, timeout=10)


def region_lease():
    """The default region's dispatch lease, held by the test itself (every dispatch round needs one)."""
    from dispatch.services.leases import lease_acquire

    lease = lease_acquire(region="default", holder="test:the test process")
    assert lease is not None, "another holder has the default region's lease"
    return lease


def seconds_ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
