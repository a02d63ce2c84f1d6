"""A dropped driver socket keeps its place for the grace period; reconnecting cancels the grace."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.dispatch.conftest import CENTRE, connect, location_frame, send

pytestmark = pytest.mark.django_db(transaction=True)


async def test_reconnect_within_grace_keeps_online_and_beyond_grace_goes_offline(seeded, driver, settings):
    from backend.redis import get_redis
    from dispatch.live import GRACE_KEY, available_key
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
    assert await sync_to_async(get_redis().zscore)(GRACE_KEY, str(driver.id)) is None
    settings.ROCHDALE_PRESENCE_GRACE_S = 0
    assert await sync_to_async(sweep_presence)() == 0
    assert await status() == "online"

    await socket.disconnect()  # dropped again, now with no grace at all
    assert await sync_to_async(sweep_presence)() == 1
    assert await status() == "offline"
    assert await sync_to_async(get_redis().geopos)(available_key(), str(driver.id)) == [None]
    sessions = await sync_to_async(list)(PresenceSession.objects.filter(driver_id=driver.id))
    assert len(sessions) == 1 and sessions[0].ended_at is not None
