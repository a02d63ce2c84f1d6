"""The driver socket: routes frames to dispatch services (see dispatch/services.py)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from dispatch.realtime import Handler, JsonFrameConsumer


class DriverConsumer(JsonFrameConsumer):
    required_role = "driver"
    silent_types = frozenset({"location"})

    async def has_role(self, user: Any) -> bool:
        return await database_sync_to_async(lambda: bool(user.is_driver and hasattr(user, "driver_profile")))()

    def handlers(self) -> dict[str, Handler]:
        return {}
