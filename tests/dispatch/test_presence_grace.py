"""A dropped driver socket keeps its place for the grace period; reconnecting cancels the grace."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dispatch.live import driver_key, driver_prefix
from dispatch.services.presence import driver_sockets_key
from tests.dispatch.conftest import CENTRE, connect, location_frame, send

pytestmark = pytest.mark.django_db(transaction=True)


async def test_reconnect_within_grace_keeps_online_and_beyond_grace_goes_offline(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.live import available_key, grace_key
    from dispatch.models import DriverPresence, PresenceSession
    from dispatch.services.presence import sweep_presence

    async def status() -> str:
        return (await sync_to_async(DriverPresence.objects.get)(driver_id=driver.id)).status

    socket = await connect(driver, "/ws/driver/")
    await send(socket, {"type": "online"}, ref="on")
    await socket.send_json_to(location_frame(*CENTRE))
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()
    # Dropped: still online during the grace period, and a sweep changes nothing.
    assert await sync_to_async(sweep_presence)() == 0
    assert await status() == "online"
    assert not (await sync_to_async(DriverPresence.objects.get)(driver_id=driver.id)).connected

    socket = await connect(driver, "/ws/driver/")  # reconnect cancels the grace
    assert await sync_to_async(get_redis().zscore)(grace_key(), str(driver.id)) is None
    settings.ROCHDALE_PRESENCE_GRACE_S = 0
    assert await sync_to_async(sweep_presence)() == 0
    assert await status() == "online"

    await socket.disconnect()  # dropped again, now with no grace at all
    assert await sync_to_async(sweep_presence)() == 1
    assert await status() == "offline"
    assert await sync_to_async(get_redis().geopos)(available_key(), str(driver.id)) == [None]
    sessions = await sync_to_async(list)(PresenceSession.objects.filter(driver_id=driver.id))
    assert len(sessions) == 1 and sessions[0].ended_at is not None


# Server leases: a server process that dies (kill -9) never closes its sockets; its lease runs out instead,
# and the sweep closes them through the same grace.


def _lease_seen(server_id: str, seconds_ago: float) -> None:
    """Make `server_id` look last renewed `seconds_ago` (a dead server renews no more)."""
    import time

    from backend.redis import get_redis
    from dispatch.services.presence import server_leases_key

    get_redis().zadd(server_leases_key(), {server_id: time.time() - seconds_ago})


def _online(driver) -> None:
    from django.test import TestCase

    from dispatch.services import presence

    with TestCase.captureOnCommitCallbacks(execute=True):
        presence.presence_go_online(driver_id=driver.id)


def _row(driver):
    from dispatch.models import DriverPresence

    return DriverPresence.objects.get(driver_id=driver.id)


def test_a_dead_servers_sockets_start_the_grace_from_its_missed_renewal(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.live import grace_key
    from dispatch.services.presence import (
        dead_servers_key,
        presence_connected,
        server_leases_key,
        server_sockets_key,
        sweep_presence,
    )

    _online(driver)
    presence_connected(driver_id=driver.id, server_id="web-1", socket_id="s1")
    assert sweep_presence() == 0 and _row(driver).connected  # the lease is fresh: nothing happens

    _lease_seen("web-1", settings.ROCHDALE_SERVER_LEASE_S + 2)
    last_seen = get_redis().zscore(server_leases_key(), "web-1")
    assert sweep_presence() == 0  # closed, but within the grace: still online
    row = _row(driver)
    assert row.status == "online" and not row.connected
    # The grace runs from when the server missed its renewal, as if the socket had closed then.
    missed_renewal = last_seen + settings.ROCHDALE_SERVER_LEASE_RENEW_S
    assert row.disconnected_at.timestamp() == pytest.approx(missed_renewal, abs=1e-3)
    assert get_redis().zscore(grace_key(), str(driver.id)) == pytest.approx(
        missed_renewal + settings.ROCHDALE_PRESENCE_GRACE_S, abs=1e-3
    )
    client = get_redis()
    assert client.hget(driver_key(driver.id), "conns") == b"0"
    assert not client.exists(server_sockets_key("web-1")) and not client.hlen(dead_servers_key())
    assert client.zscore(server_leases_key(), "web-1") is None

    settings.ROCHDALE_PRESENCE_GRACE_S = 0  # the grace runs out: offline, as after a clean disconnect
    client.zadd(grace_key(), {str(driver.id): 0})
    assert sweep_presence() == 1
    assert _row(driver).status == "offline"


def test_a_server_dead_for_longer_than_the_grace_takes_its_drivers_offline_in_one_sweep(
    seeded, driver, settings
):
    from dispatch.models import PresenceSession
    from dispatch.services.presence import presence_connected, sweep_presence

    _online(driver)
    presence_connected(driver_id=driver.id, server_id="web-1", socket_id="s1")
    _lease_seen("web-1", settings.ROCHDALE_PRESENCE_GRACE_S + 5)
    assert sweep_presence() == 1
    row = _row(driver)
    assert row.status == "offline" and not row.connected
    assert PresenceSession.objects.get(driver_id=driver.id).ended_at is not None


def test_a_driver_who_reconnected_to_a_live_server_keeps_their_place(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.live import grace_key
    from dispatch.services.presence import presence_connected, presence_disconnected, sweep_presence

    _online(driver)
    presence_connected(driver_id=driver.id, server_id="web-1", socket_id="old")
    presence_connected(driver_id=driver.id, server_id="web-2", socket_id="new")
    _lease_seen("web-1", settings.ROCHDALE_PRESENCE_GRACE_S + 5)
    assert sweep_presence() == 0
    row = _row(driver)
    assert row.status == "online" and row.connected
    assert get_redis().zscore(grace_key(), str(driver.id)) is None
    assert get_redis().hget(driver_key(driver.id), "conns") == b"1"
    # What scans the driver hashes (the live map, the worker's rebuild) finds only hashes there.
    assert {get_redis().type(key) for key in get_redis().scan_iter(match=f"{driver_prefix()}*")} == {b"hash"}
    # Its one socket left closes cleanly: now the grace starts.
    presence_disconnected(driver_id=driver.id, server_id="web-2", socket_id="new")
    assert not _row(driver).connected and get_redis().zscore(grace_key(), str(driver.id)) is not None


def test_a_socket_is_closed_once_whether_its_server_or_the_sweep_gets_there_first(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.services.presence import presence_connected, presence_disconnected, sweep_presence

    _online(driver)
    presence_connected(driver_id=driver.id, server_id="web-1", socket_id="a")
    presence_connected(driver_id=driver.id, server_id="web-1", socket_id="b")
    _lease_seen("web-1", settings.ROCHDALE_SERVER_LEASE_S + 2)
    sweep_presence()
    # The server's own disconnects arrive late (it was stalled, not dead): nothing is closed twice.
    presence_disconnected(driver_id=driver.id, server_id="web-1", socket_id="a")
    presence_disconnected(driver_id=driver.id, server_id="web-1", socket_id="b")
    sweep_presence()
    assert get_redis().hget(driver_key(driver.id), "conns") == b"0"
    assert get_redis().scard(driver_sockets_key(driver.id)) == 0


async def test_a_live_server_taken_for_dead_registers_its_sockets_again(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.live import grace_key
    from dispatch.server_lease import server_lease
    from dispatch.services.presence import sweep_presence

    settings.ROCHDALE_SERVER_LEASE_RENEW_S = 3600  # renewed only when the test says so
    socket = await connect(driver, "/ws/driver/")
    await send(socket, {"type": "online"}, ref="on")
    lease = server_lease()
    # Its loop stalled past the lease: a sweep closes its socket.
    await sync_to_async(_lease_seen)(lease.server_id, settings.ROCHDALE_SERVER_LEASE_S + 1)
    await sync_to_async(sweep_presence)()
    row = await sync_to_async(_row)(driver)
    assert row.status == "online" and not row.connected
    # Its next renewal sees its sockets gone and registers them again: connected, no grace.
    await lease.renew()
    row = await sync_to_async(_row)(driver)
    assert row.status == "online" and row.connected
    client = get_redis()
    assert await sync_to_async(client.zscore)(grace_key(), str(driver.id)) is None
    assert await sync_to_async(client.hget)(driver_key(driver.id), "conns") == b"1"
    await socket.disconnect()
    assert await sync_to_async(client.hget)(driver_key(driver.id), "conns") == b"0"
    assert not (await sync_to_async(_row)(driver)).connected


async def test_sockets_are_registered_again_after_redis_lost_them(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.server_lease import server_lease
    from dispatch.services.presence import sweep_presence

    settings.ROCHDALE_SERVER_LEASE_RENEW_S = 3600
    socket = await connect(driver, "/ws/driver/")
    client = get_redis()
    await sync_to_async(client.flushdb)()
    await server_lease().renew()
    assert await sync_to_async(client.scard)(driver_sockets_key(driver.id)) == 1
    # A later crash of this server is still found: its sockets are registered under its lease again.
    await sync_to_async(_lease_seen)(server_lease().server_id, settings.ROCHDALE_SERVER_LEASE_S + 1)
    await sync_to_async(sweep_presence)()
    assert await sync_to_async(client.scard)(driver_sockets_key(driver.id)) == 0
    await socket.disconnect()
