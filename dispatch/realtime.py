"""Websocket plumbing shared by the driver and rider sockets, and the pushes services send after commit.

Pushes are best effort: the channel layer may drop them, so every client can resync from REST
(`GET /driver/state`, `GET /trips/{id}`), and the database stays the truth. While Redis (the channel
layer) is unreachable, pushes are dropped at once for a backoff interval after each failed try (one
`RedisOutage` per process, logged once per outage), and a socket handshake is refused with 1013 (try again
later); nothing waits on a dead Redis and nothing stops for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backend.accounts.languages import socket_language
from backend.accounts.models import User
from backend.errors import DomainError
from backend.redis import REDIS_UNREACHABLE, RedisOutage

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the server cannot take the socket now (Redis unreachable)
MAX_FRAME_BYTES = 8 * 1024

# One per process: every push path (the loops' queues, async pushes, sync pushes) shares what it learns.
channel_layer_outage = RedisOutage("pushes (channel layer)", logger=logger)


def user_group(user_id: uuid.UUID | str) -> str:
    return f"user.{user_id}"


# Every staff live-map socket (/ws/map/) listens here for SOS alerts (docs/safety.md).
STAFF_MAP_GROUP = "staff.map"


def push_to_user(user_id: uuid.UUID | str, frame: dict[str, Any]) -> None:
    """Send one frame to every socket of a user once the current transaction commits.

    In a thread that serves an event loop (a view or a socket command of the ASGI server) the frame is
    handed to that loop's push queue and the thread goes back to work at once, instead of waiting for a busy
    loop to publish it; elsewhere (Celery, commands) it is published here, synchronously."""
    push_to_group(user_group(user_id), frame)


def push_to_group(group: str, frame: dict[str, Any]) -> None:
    """`push_to_user` for any channel-layer group (the staff live map's, `STAFF_MAP_GROUP`)."""

    def _send() -> None:
        loop = _serving_loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(_enqueue, loop, group, frame)
            except RuntimeError:  # the loop closed since we looked (server shutting down): best effort
                logger.warning("push to %s dropped: its event loop is closed", group)
            return
        layer = get_channel_layer()
        if layer is None or not channel_layer_outage.may_try():
            return
        try:
            async_to_sync(layer.group_send)(group, {"type": "push", "frame": frame})
        except REDIS_UNREACHABLE as exc:
            channel_layer_outage.failed(exc)
        except Exception:
            logger.warning("push to %s failed", group, exc_info=True)
        else:
            channel_layer_outage.recovered()

    transaction.on_commit(_send)


def _serving_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop this worker thread was started from by `sync_to_async`, if any."""
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


# One queue and one sender task per event loop: frames to a user leave in the order their transactions
# committed, and no thread ever blocks on the loop.
_push_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Queue] = (
    weakref.WeakKeyDictionary()
)
_push_senders: set[asyncio.Task] = set()


def _enqueue(loop: asyncio.AbstractEventLoop, group: str, frame: dict[str, Any]) -> None:
    queue = _push_queues.get(loop)
    if queue is None:
        queue = _push_queues[loop] = asyncio.Queue()
        sender = loop.create_task(_send_pushes(queue))
        _push_senders.add(sender)
        sender.add_done_callback(_push_senders.discard)
    queue.put_nowait((group, frame))


async def _send_pushes(queue: asyncio.Queue) -> None:
    """The loop's push sender; it lives as long as the loop, whatever Redis does."""
    while True:
        group, frame = await queue.get()
        await _group_send(group, frame)


async def _group_send(group: str, frame: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None or not channel_layer_outage.may_try():
        return  # within an outage's backoff: dropped at once (clients resync from REST)
    try:
        await layer.group_send(group, {"type": "push", "frame": frame})
    except REDIS_UNREACHABLE as exc:
        channel_layer_outage.failed(exc)
    except Exception:
        logger.warning("push to %s failed", group, exc_info=True)
    else:
        channel_layer_outage.recovered()


async def apush_to_user(user_id: uuid.UUID | str, frame: dict[str, Any]) -> None:
    """The async form, for code already outside any transaction (consumers, the dispatch loop)."""
    await _group_send(user_group(user_id), frame)


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class FrameError(DomainError):
    code = "invalid_frame"
    default_message = gettext_lazy("The frame is not valid.")


class JsonFrameConsumer(AsyncWebsocketConsumer):
    """Authenticated JSON-frame socket that only routes by `type`.

    Subclasses set `required_role` and map frame types to handler coroutines in `handlers()`. A handler
    returns the extra fields of the `result` frame (or None when the frame type gets no answer, like
    `location`).
    """

    required_role: str = ""
    silent_types: frozenset[str] = frozenset()
    # The language of this socket's frames: the handshake's Accept-Language, else the user's setting, else
    # English (docs/languages.md); decided once the user is known, at connect (None: untranslated English).
    language: str | None = None

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Channels' consumer, but a socket opened while the channel layer's Redis is unreachable is
        refused (1013, try again later; logged once per outage) instead of raising: Channels subscribes
        the socket's own channel before anything else, so the failure lands here, not in `connect()`."""
        try:
            await super().__call__(scope, receive, send)
        except REDIS_UNREACHABLE as exc:
            channel_layer_outage.failed(exc)
            with contextlib.suppress(Exception):  # the socket may be gone already
                await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await self.has_role(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        self.language = socket_language(self.scope, user)
        # Once for the socket's life: this runs in the connection's own task, whose context every later
        # message of this socket is handled in (and `database_call` carries into its thread). Activating it
        # per message cost a few per cent of a socket server's CPU at a fix every 4 s per driver.
        if self.language is None:
            translation.deactivate_all()
        else:
            translation.activate(self.language)
        self.group = user_group(user.id)
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            # Register the socket (presence, grace cancelled) before the client sees it open, so anything
            # the client does next already finds it registered.
            await self.on_connected()
        except REDIS_UNREACHABLE as exc:
            channel_layer_outage.failed(exc)
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        await self.accept()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its hop to the shared sync thread to close old database connections
        before every message: that thread's connection is not ours (database work runs through
        `database_call`, which cleans up around each call), and the hop, once per location fix, queued every
        socket of the process behind one thread."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        # Every frame this socket sends (answers, errors, pushes) and every service its commands call speak
        # the socket's language, activated in this task's context at connect.
        await handler(message)

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "group"):
            return
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except REDIS_UNREACHABLE as exc:  # the subscription went with the connection anyway
            channel_layer_outage.failed(exc)
        # Called even when `on_connected` failed part-way: subclasses undo what they find was done.
        try:
            await self.on_disconnected(code)
        except REDIS_UNREACHABLE as exc:  # presence in PostgreSQL (and its leases) outlive the outage
            channel_layer_outage.failed(exc)

    async def has_role(self, user: User) -> bool:
        """Whether the user holds `required_role` (the `is_<role>` flag); subclasses may ask more."""
        return bool(self.required_role) and bool(getattr(user, f"is_{self.required_role}", False))

    async def on_connected(self) -> None:
        """Hook for subclasses (presence, resync)."""

    async def on_disconnected(self, code: int) -> None:
        """Hook for subclasses (presence grace)."""

    def handlers(self) -> dict[str, Handler]:
        return {}

    async def push(self, event: dict[str, Any]) -> None:
        await self.send_frame(event["frame"])

    async def send_frame(self, frame: dict[str, Any]) -> None:
        try:
            await self.send(text_data=json.dumps(frame))
        except OSError:
            # The client hung up before this frame (uvicorn raises ClientDisconnected, an OSError): what the
            # frame answered already happened, and the app resyncs from REST when it is back.
            logger.debug("socket closed before a %s frame could be sent", frame.get("type"))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        ref: str | None = None
        try:
            if text_data is None or len(text_data) > MAX_FRAME_BYTES:
                raise FrameError(_("Frames are JSON text of at most 8 KiB."))
            try:
                frame = json.loads(text_data)
            except ValueError as exc:
                raise FrameError(_("The frame is not valid JSON.")) from exc
            if not isinstance(frame, dict):
                raise FrameError(_('A frame is a JSON object with a "type".'))
            raw_ref = frame.get("ref")
            if raw_ref is not None:
                if not isinstance(raw_ref, str) or len(raw_ref) > 64:
                    raise FrameError(_('"ref" must be a string of at most 64 characters.'))
                ref = raw_ref
            frame_type = frame.get("type")
            handler = self.handlers().get(frame_type) if isinstance(frame_type, str) else None
            if handler is None:
                raise FrameError(
                    _("Unknown frame type."), code="unknown_type", details={"type": str(frame_type)[:40]}
                )
            result = await handler(frame)
            if frame_type not in self.silent_types:
                await self.send_frame({"type": "result", "ref": ref, "ok": True, **(result or {})})
        except DomainError as exc:
            await self.send_frame(
                {
                    "type": "error",
                    "ref": ref,
                    "code": exc.code,
                    "message": exc.message,
                    "details": exc.details,
                }
            )
        except Exception:
            logger.exception("websocket frame failed")
            await self.send_frame(
                {
                    "type": "error",
                    "ref": ref,
                    "code": "internal_error",
                    "message": _("Something went wrong on our side."),
                }
            )
