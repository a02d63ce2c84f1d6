"""The driver socket: only routes frames to dispatch services (the services do the work).

`location` frames never touch PostgreSQL: they are validated here and written to Redis in one round trip
(dispatch/services/locations.py). Every other frame is a command answered with `result` or `error`.
"""

from __future__ import annotations

import uuid
from typing import Any

from backend.concurrency import database_call
from dispatch.realtime import FrameError, Handler, JsonFrameConsumer
from dispatch.services import driving, locations, offers, presence


def _uuid_field(frame: dict[str, Any], key: str) -> uuid.UUID:
    raw = frame.get(key)
    try:
        if not isinstance(raw, str):
            raise ValueError
        return uuid.UUID(raw)
    except ValueError as exc:
        raise FrameError(f'"{key}" must be an id string.', details={"field": key}) from exc


def _trip_view(trip: Any, viewer_id: uuid.UUID) -> dict[str, Any]:
    from dispatch.serializers import trip_for

    return trip_for(trip, viewer_id=viewer_id)


class DriverConsumer(JsonFrameConsumer):
    required_role = "driver"
    silent_types = frozenset({"location"})

    async def has_role(self, user: Any) -> bool:
        return await database_call(lambda: bool(user.is_driver and hasattr(user, "driver_profile")))()

    async def on_connected(self) -> None:
        self.recorder = locations.LocationRecorder()
        await database_call(presence.presence_connected)(driver_id=self.user.id)

    async def on_disconnected(self, code: int) -> None:
        recorder = getattr(self, "recorder", None)
        if recorder is not None:
            await recorder.close()
        await database_call(presence.presence_disconnected)(driver_id=self.user.id)

    def handlers(self) -> dict[str, Handler]:
        return {
            "online": self.go_online,
            "offline": self.go_offline,
            "location": self.location,
            "offer.accept": self.offer_accept,
            "offer.decline": self.offer_decline,
            "trip.arrived": self.trip_arrived,
            "trip.start": self.trip_start,
            "trip.complete": self.trip_complete,
            "trip.cancel": self.trip_cancel,
        }

    async def go_online(self, frame: dict[str, Any]) -> dict[str, Any]:
        await database_call(presence.presence_go_online)(driver_id=self.user.id)
        return {"online": True}

    async def go_offline(self, frame: dict[str, Any]) -> dict[str, Any]:
        await database_call(presence.presence_go_offline)(driver_id=self.user.id)
        return {"online": False}

    async def location(self, frame: dict[str, Any]) -> None:
        fix = locations.fix_from_frame(frame)
        await self.recorder.record(driver_id=self.user.id, fix=fix)

    async def offer_accept(self, frame: dict[str, Any]) -> dict[str, Any]:
        offer_id = _uuid_field(frame, "offer_id")
        driver_id = self.user.id

        def accept() -> dict[str, Any]:
            return _trip_view(offers.offer_accept(driver_id=driver_id, offer_id=offer_id), driver_id)

        return {"trip": await database_call(accept)()}

    async def offer_decline(self, frame: dict[str, Any]) -> dict[str, Any]:
        offer_id = _uuid_field(frame, "offer_id")
        await database_call(offers.offer_decline)(driver_id=self.user.id, offer_id=offer_id)
        return {}

    async def _move(self, frame: dict[str, Any], move: Any, **extra: Any) -> dict[str, Any]:
        trip_id = _uuid_field(frame, "trip_id")
        driver_id = self.user.id

        def run() -> dict[str, Any]:
            return _trip_view(move(driver_id=driver_id, trip_id=trip_id, **extra), driver_id)

        return {"trip": await database_call(run)()}

    async def trip_arrived(self, frame: dict[str, Any]) -> dict[str, Any]:
        return await self._move(frame, driving.trip_arrive)

    async def trip_start(self, frame: dict[str, Any]) -> dict[str, Any]:
        return await self._move(frame, driving.trip_start)

    async def trip_complete(self, frame: dict[str, Any]) -> dict[str, Any]:
        return await self._move(frame, driving.trip_complete)

    async def trip_cancel(self, frame: dict[str, Any]) -> dict[str, Any]:
        reason = frame.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise FrameError('"reason" must be text of at most 500 characters.', details={"field": "reason"})
        return await self._move(frame, driving.trip_cancel_by_driver, reason=reason)
