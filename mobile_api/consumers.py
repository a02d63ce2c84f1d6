"""The rider socket: server-to-rider pushes only (`trip.updated`, `driver.location`)."""

from __future__ import annotations

from typing import Any

from dispatch.realtime import JsonFrameConsumer


class RiderConsumer(JsonFrameConsumer):
    required_role = "rider"

    async def has_role(self, user: Any) -> bool:
        return bool(user.is_rider)
