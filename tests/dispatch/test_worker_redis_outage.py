"""The long-lived loops against a Redis that dies or forgets: they wait, reconnect, and rebuild.

The dispatch worker, the fix pipeline, the push queue, the location flush and the health check. The Redis
that dies is the test's own redis-server (tests/faults/procs.py), killed with -9 and restarted empty on
the same port; the worker runs as a task in the test's event loop, against the test database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async

from tests.dispatch.conftest import CENTRE, adriver_online_at, make_trip
from tests.faults.procs import RedisServer, private_redis

pytestmark = pytest.mark.own_redis

# The worker and the fix path read PostgreSQL from other threads: they need committed rows.
in_database = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(settings) -> RedisServer:
    """A private redis-server the test may kill; every Redis client of the test process points at it."""
    with private_redis() as server:
        settings.REDIS_URL = server.url(db=0)
        yield server


async def eventually[T](check: Callable[[], Awaitable[T]], *, timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = await check()
            if value:
                return value
        except Exception as exc:  # the thing checked may be down
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what} (last error: {last_error!r})")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def worker_task(*, wait_ready: bool = True) -> AsyncIterator[tuple[object, asyncio.Task]]:
    from dispatch.worker import DispatchWorker

    worker = DispatchWorker()
    task = asyncio.get_running_loop().create_task(worker.run())
    if wait_ready:
        await asyncio.wait_for(worker.ready.wait(), timeout=10)
    try:
        yield worker, task
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, timeout=10)  # raises what killed the worker, if anything did


def _redis():
    from backend.redis import get_redis

    return get_redis()


async def _hash(driver) -> dict[str, str]:
    from dispatch.live import driver_live_state

    return await sync_to_async(driver_live_state)(driver.id)


async def _go_online_with_a_flushed_fix(driver) -> None:
    """Online through the real services, with a fix the batched flush has written to PostGIS."""
    from dispatch.services.locations import flush_pending_fixes

    await adriver_online_at(driver, *CENTRE)
    assert await sync_to_async(flush_pending_fixes)() == 1


@in_database
async def test_the_worker_outlives_a_redis_kill_and_beats_again_when_redis_returns(seeded, own_redis):
    from dispatch.live import worker_heartbeat_key

    async with worker_task() as (_worker, task):
        own_redis.kill()
        await asyncio.sleep(1.5)  # several stream reads and heartbeats against a dead Redis
        assert not task.done(), task.exception()
        own_redis.start()
        await eventually(
            sync_to_async(lambda: _redis().exists(worker_heartbeat_key())),
            timeout_s=5,
            what="the worker's heartbeat in the restarted Redis",
        )
        assert not task.done()


@in_database
async def test_a_worker_started_while_redis_is_down_waits_for_it(seeded, own_redis):
    own_redis.kill()
    async with worker_task(wait_ready=False) as (worker, task):
        await asyncio.sleep(1.0)
        assert not task.done(), task.exception()
        own_redis.start()
        await asyncio.wait_for(worker.ready.wait(), timeout=5)


@in_database
async def test_redis_back_empty_the_worker_rebuilds_online_drivers_and_their_next_fixes_keep_them_available(
    seeded, own_redis, rider, driver
):
    from dispatch.live import available_key
    from dispatch.models import Offer
    from dispatch.services.dispatching import trip_requested
    from dispatch.services.locations import Fix, LocationRecorder

    await _go_online_with_a_flushed_fix(driver)
    async with worker_task() as (worker, task):
        assert str(driver.id) in worker.index
        own_redis.kill()
        await asyncio.sleep(0.5)
        own_redis.start()  # empty: no driver hash, no geo set, no streams, no generation

        async def restored() -> bool:
            state = await _hash(driver)
            return state.get("online") == "1" and "lat" in state and str(driver.id) in worker.index

        await eventually(restored, timeout_s=5, what="the online driver re-marked in Redis and indexed")
        near = await sync_to_async(_redis().geosearch)(
            available_key(), longitude=CENTRE[1], latitude=CENTRE[0], radius=100, unit="m"
        )
        assert [member.decode() for member in near] == [str(driver.id)]

        # Their next fix lands on the complete record: still online, still available.
        await LocationRecorder().record(
            driver_id=driver.id, fix=Fix(CENTRE[0] + 0.0002, CENTRE[1], None, None, 5.0, time.time())
        )
        state = await _hash(driver)
        assert state["online"] == "1" and float(state["lat"]) == pytest.approx(CENTRE[0] + 0.0002)
        await asyncio.sleep(0.3)  # the worker reads the fix from the new stream
        assert worker.index.position(str(driver.id))[0] == pytest.approx(CENTRE[0] + 0.0002)

        trip = await sync_to_async(make_trip)(rider)
        await sync_to_async(trip_requested)(trip_id=trip.id, pickup=CENTRE, wheelchair_accessible=False)
        offer = await eventually(
            sync_to_async(lambda: Offer.objects.filter(trip_id=trip.id).first()),
            timeout_s=5,
            what="an offer for a trip requested after Redis came back",
        )
        assert offer.driver_id == driver.id
        assert not task.done()


@in_database
async def test_data_lost_without_a_disconnect_is_detected_by_the_generation_not_by_key_counts(seeded, driver):
    """FLUSHDB keeps every connection open; a socket reconnecting writes a partial hash at once. The
    worker still sees the generation gone and restores the online driver from PostgreSQL."""
    from dispatch.live import driver_key

    await _go_online_with_a_flushed_fix(driver)
    async with worker_task() as (worker, _task):
        client = _redis()
        await sync_to_async(client.flushdb)()
        await sync_to_async(client.hincrby)(driver_key(driver.id), "conns", 1)  # a reconnecting socket

        async def restored() -> bool:
            state = await _hash(driver)
            return state.get("online") == "1" and "lat" in state

        await eventually(restored, timeout_s=5, what="the online driver's record restored")
        assert (await _hash(driver))["conns"] == "1"  # what was written since the loss is kept
        assert str(driver.id) in worker.index


# -- the pieces every loop shares --------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_with_jitter_and_starts_over_after_a_reset():
    from backend.redis import Backoff

    backoff = Backoff(first_s=0.1, cap_s=2.0)
    delays = [backoff.next_delay_s() for _ in range(10)]
    ceilings = [min(2.0, 0.1 * 2**n) for n in range(10)]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    assert max(delays) <= 2.0 and delays[-1] >= 1.0  # capped, never collapsing to nothing
    jittered = {round(Backoff(first_s=0.1, cap_s=2.0).next_delay_s(), 6) for _ in range(20)}
    assert len(jittered) > 1  # processes that lost Redis together do not retry in step
    backoff.reset()
    assert backoff.next_delay_s() <= 0.1


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(caplog):
    import logging

    from redis.exceptions import ConnectionError as RedisConnectionError

    from backend.redis import RedisOutage

    outage = RedisOutage("something", logger=logging.getLogger("tests.outage"), first_s=10.0, cap_s=10.0)
    assert outage.may_try() and not outage.down
    with caplog.at_level(logging.WARNING, logger="tests.outage"):
        for _ in range(50):
            outage.failed(RedisConnectionError("refused"))
        assert outage.down and not outage.may_try()  # inside the backoff: callers refuse at once
        outage.recovered()
        outage.recovered()
    lines = [record.getMessage() for record in caplog.records if record.name == "tests.outage"]
    assert len(lines) == 2, lines
    assert "Redis unreachable" in lines[0] and "reachable again" in lines[1] and "50 failed tries" in lines[1]
    assert outage.may_try() and outage.outages == 1


# -- the other loops -----------------------------------------------------------------------------------------


def _warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@in_database
async def test_fixes_while_redis_is_down_are_refused_as_unavailable_and_the_outage_logged_once(
    seeded, own_redis, driver, caplog
):
    from backend.errors import ServiceUnavailable
    from dispatch.live import driver_live_state
    from dispatch.services.locations import Fix, LocationRecorder

    await adriver_online_at(driver, *CENTRE, age_s=30)
    recorder = LocationRecorder()
    own_redis.kill()
    refused = 0
    for i in range(20):
        fix = Fix(CENTRE[0] + i * 0.0001, CENTRE[1], None, None, 5.0, time.time() - 20 + i)
        with pytest.raises(ServiceUnavailable) as unavailable:
            await recorder.record(driver_id=driver.id, fix=fix)
        assert unavailable.value.code == "service_unavailable"
        refused += 1
        await asyncio.sleep(0.02)
    assert refused == 20
    assert len(_warnings(caplog, "location fixes: Redis unreachable")) == 1

    own_redis.start()  # empty: the next fix restores the online driver from PostgreSQL, then lands

    async def stored() -> bool:
        try:
            await recorder.record(
                driver_id=driver.id, fix=Fix(CENTRE[0] + 0.003, CENTRE[1], None, None, 5.0, time.time())
            )
        except ServiceUnavailable:
            return False
        return True

    await eventually(stored, timeout_s=5, what="a fix stored once Redis is back")
    state = await sync_to_async(driver_live_state)(driver.id)
    assert state["online"] == "1" and float(state["lat"]) == pytest.approx(CENTRE[0] + 0.003)
    assert len(_warnings(caplog, "location fixes: Redis reachable again")) == 1


@in_database
async def test_the_push_queue_outlives_a_redis_kill_and_delivers_again_when_redis_returns(
    own_redis, settings, monkeypatch, caplog
):
    import logging
    import uuid

    from channels.layers import get_channel_layer

    from backend.redis import RedisOutage
    from dispatch import realtime

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [own_redis.url()], "prefix": "outage-test"},
        }
    }
    monkeypatch.setattr(
        realtime, "channel_layer_outage", RedisOutage("pushes (channel layer)", logger=realtime.logger)
    )
    layer = get_channel_layer()
    channel = await layer.new_channel()
    user_id = uuid.uuid4()
    group = realtime.user_group(user_id)
    await layer.group_add(group, channel)
    loop = asyncio.get_running_loop()

    async def pushed(number: int) -> bool:
        realtime._enqueue(loop, group, {"type": "test", "n": number})
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
        except TimeoutError:
            return False
        return message["frame"]["n"] == number

    assert await pushed(1)
    senders = set(realtime._push_senders)
    own_redis.kill()
    with caplog.at_level(logging.WARNING, logger="dispatch.realtime"):
        for number in range(2, 30):
            realtime._enqueue(loop, group, {"type": "test", "n": number})
            await asyncio.sleep(0.03)
        assert senders and not any(sender.done() for sender in senders)
        own_redis.start()
        counter = iter(range(100, 10_000))
        await eventually(lambda: pushed(next(counter)), timeout_s=10, what="a push delivered after Redis")
    assert not any(sender.done() for sender in senders)
    assert len(_warnings(caplog, "pushes (channel layer): Redis unreachable")) == 1
    await layer.flush()


@in_database
def test_the_flush_and_the_health_check_answer_while_redis_is_down(own_redis, client, caplog, monkeypatch):
    from backend import health
    from backend.redis import RedisOutage
    from dispatch.services import locations
    from dispatch.services.locations import flush_pending_fixes

    monkeypatch.setattr(health, "_redis_outage", RedisOutage("health check", logger=health.logger))
    monkeypatch.setattr(locations, "_flush_outage", RedisOutage("location flush", logger=locations.logger))

    assert client.get("/api/v1/health").status_code == 200
    own_redis.kill()
    for _ in range(3):
        assert flush_pending_fixes(wait_s=0.1) == 0
        answer = client.get("/api/v1/health")
        assert answer.status_code == 503
        assert answer.json() == {"status": "degraded", "database": "ok", "redis": "down"}
    assert len(_warnings(caplog, "location flush: Redis unreachable")) == 1
    assert len(_warnings(caplog, "health check: Redis unreachable")) == 1
    own_redis.start()
    assert flush_pending_fixes(wait_s=0.1) == 0
    assert client.get("/api/v1/health").json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_a_library_logging_every_retry_with_a_traceback_is_cut_to_one_line():
    import logging

    from redis.exceptions import ConnectionError as RedisConnectionError

    from backend.redis import RepeatedRedisErrorFilter

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    library = logging.getLogger("tests.chatty_library")
    library.propagate = False
    library.addHandler(handler)
    library.addFilter(RepeatedRedisErrorFilter(quiet_s=60))
    try:
        for _ in range(30):
            try:
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
            except RedisConnectionError:
                library.exception("Unexpected exception in receive task")
        try:
            raise ValueError("not an outage")
        except ValueError:
            library.exception("something else broke")
    finally:
        library.removeHandler(handler)
    assert len(records) == 2
    outage, other = records
    assert outage.exc_info is None and "Redis unreachable" in outage.getMessage()
    assert "Connection refused" in outage.getMessage() and "not logged again for 60 s" in outage.getMessage()
    assert other.exc_info is not None  # anything else keeps its traceback


@in_database
async def test_a_handshake_while_the_channel_layer_is_down_is_refused_to_try_again_later(
    seeded, driver, settings, monkeypatch
):
    """Tickets live in the main Redis; the channel layer here has its own, dead one."""
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application
    from backend.redis import RedisOutage
    from dispatch import realtime
    from tests.dispatch.conftest import ORIGIN, ticket_for

    with private_redis() as layer_redis:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [layer_redis.url()], "prefix": "handshake-test"},
            }
        }
        monkeypatch.setattr(
            realtime, "channel_layer_outage", RedisOutage("pushes (channel layer)", logger=realtime.logger)
        )
        layer_redis.kill()
        socket = WebsocketCommunicator(
            application, f"/ws/driver/?ticket={await ticket_for(driver)}", headers=[ORIGIN]
        )
        connected, code = await socket.connect()
        assert (connected, code) == (False, realtime.CLOSE_TRY_AGAIN_LATER)
        assert realtime.channel_layer_outage.down
        await socket.disconnect()
