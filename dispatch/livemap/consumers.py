"""`/ws/map/`: pushes a snapshot of the city about once a second to signed-in staff.

Browsers send the session cookie with the handshake, so this route alone authenticates by Django session
(`map_socket_application` wraps it); the origin is checked by the project's AllowedHostsOriginValidator.
As on the map's pages, the session must have given its second factor (django-otp's device in the session,
checked as its middleware checks it: the device exists, is confirmed and is the user's; docs/sign-in.md).

A trip's route is sent once per connection: the consumer remembers the route keys the page has, and later
snapshots carry the key alone (dispatch/livemap/snapshot.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.auth import get_user
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.middleware import BaseMiddleware
from channels.sessions import SessionMiddlewareStack
from django.contrib.sessions.backends.base import SessionBase
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from backend.accounts.models import User
from backend.concurrency import database_call
from backend.redis import REDIS_UNREACHABLE
from dispatch.livemap.snapshot import build_snapshot
from dispatch.realtime import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, STAFF_MAP_GROUP

logger = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 1.0


class SessionUserMiddleware(BaseMiddleware):
    """Replaces whatever user an outer middleware set with the session's user."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = await get_user(scope)
        return await super().__call__(scope, receive, send)


class MapConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not (user.is_active and user.is_staff):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await database_call(_second_factor_verified)(self.scope.get("session"), user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # SOS alerts arrive on the staff group the moment they are raised (docs/safety.md); each snapshot
        # also lists the alerts not yet resolved, so a map that missed a push still shows them.
        try:
            await self.channel_layer.group_add(STAFF_MAP_GROUP, self.channel_name)
            self.listening = True
        except REDIS_UNREACHABLE:
            logger.warning("live map without SOS pushes: the channel layer is unreachable")
        await self.accept()
        self.routes_sent: frozenset[str] = frozenset()
        self.pusher = asyncio.create_task(self.push_snapshots())

    async def disconnect(self, code: int) -> None:
        pusher = getattr(self, "pusher", None)
        if pusher is not None:
            pusher.cancel()
        if getattr(self, "listening", False):
            with contextlib.suppress(*REDIS_UNREACHABLE):
                await self.channel_layer.group_discard(STAFF_MAP_GROUP, self.channel_name)

    async def push(self, event: dict[str, Any]) -> None:
        """A frame sent to the staff group (`dispatch.realtime.push_to_group`): an `sos` or `sos.updated`."""
        await self.send(text_data=json.dumps(event["frame"]))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The map only listens."""

    async def push_snapshots(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                snapshot = await database_call(build_snapshot)(self.routes_sent)
                await self.send(text_data=json.dumps(snapshot))
                # The page keeps the routes of the trips in this snapshot and forgets the rest; so do we.
                self.routes_sent = frozenset(
                    trip["route_key"] for trip in snapshot["trips"] if trip["route_key"]
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("live map snapshot failed")
            await asyncio.sleep(max(0.1, SNAPSHOT_INTERVAL_S - (loop.time() - started)))


def _second_factor_verified(session: SessionBase | None, user: User) -> bool:
    """Whether the session passed the TOTP step with a device still the user's (a reset removes it)."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def map_socket_application() -> Any:
    return SessionMiddlewareStack(SessionUserMiddleware(MapConsumer.as_asgi()))
