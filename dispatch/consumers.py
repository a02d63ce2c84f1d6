"""The driver socket: only routes frames to dispatch services (the services do the work).

`location` frames are validated here and written to Redis in one round trip (dispatch/services/locations.py);
the fix never touches PostgreSQL (the rider's countdown reads the trip at most every 30 s per trip). Every
other frame is a command answered with `result` or `error`.

Every socket has a frame budget (dispatch/frame_budget.py, in the socket's memory): a fix or a command over
its budget is answered `rate_limited` and dropped, and a socket that floods far past both is closed with
`CLOSE_FLOODING`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backend import metrics
from backend.accounts.models import User
from backend.concurrency import database_call
from backend.errors import DomainError
from dispatch.frame_budget import BudgetRates, SocketBudget, TokenBucket
from dispatch.models import SafetyAlertSource, Trip
from dispatch.realtime import MAX_FRAME_BYTES, FrameError, Handler, JsonFrameConsumer
from dispatch.safety_serializers import alert_for_raiser
from dispatch.serializers import trip_for
from dispatch.server_lease import server_lease
from dispatch.services import driving, locations, offers, presence, sos

# Closed for flooding: the client sent frames far past its budget (4000 + HTTP 429, like 4401 and 4403).
CLOSE_FLOODING = 4429


class FrameRateLimited(DomainError):
    code = "rate_limited"
    status = 429
    default_message = gettext_lazy("Too many frames: this one was dropped.")


# Translated only when a frame is refused: a fix arrives every 4 s from every driver, and a lookup per
# frame in the catalogue cost a few per cent of a socket server's CPU.
TOO_MANY_COMMANDS = gettext_lazy("Too many commands: this one was not carried out.")
TOO_MANY_FIXES = gettext_lazy("Too many location fixes: this one was dropped.")


def budget_rates() -> BudgetRates:
    return BudgetRates(
        fix_rate_per_s=settings.ROCHDALE_WS_FIX_RATE_PER_S,
        fix_burst=settings.ROCHDALE_WS_FIX_BURST,
        command_rate_per_s=settings.ROCHDALE_WS_COMMAND_RATE_PER_S,
        command_burst=settings.ROCHDALE_WS_COMMAND_BURST,
        flood_frames_per_s=settings.ROCHDALE_WS_FLOOD_FRAMES_PER_S,
        flood_burst=settings.ROCHDALE_WS_FLOOD_BURST,
    )


def _ref_of(text_data: str | None) -> str | None:
    """The valid `ref` of a raw frame, if any (parsed only for the one frame that closes a socket)."""
    if text_data is None or len(text_data) > MAX_FRAME_BYTES:
        return None
    try:
        frame = json.loads(text_data)
    except ValueError:
        return None
    ref = frame.get("ref") if isinstance(frame, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 64 else None


class BudgetedFrameConsumer(JsonFrameConsumer):
    """A JSON-frame socket with a frame budget (the driver and rider sockets)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = SocketBudget(budget_rates(), now=time.monotonic())
        self.flooded = False

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.flooded:  # frames already in flight when the close was sent
            return
        if not self.budget.frames.take(time.monotonic()):
            self.flooded = True
            await self.send_frame(
                {
                    "type": "error",
                    "ref": _ref_of(text_data),
                    "code": "flooding",
                    "message": _("Far too many frames: the socket is closed. Reconnect and slow down."),
                }
            )
            await self.close(code=CLOSE_FLOODING)
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    @staticmethod
    def spend(bucket: TokenBucket, *, budget: str, message: str | Promise) -> None:
        """Take one frame from `bucket`, or refuse this frame (`rate_limited`, with when to retry)."""
        if not bucket.take(time.monotonic()):
            raise FrameRateLimited(
                message, details={"budget": budget, "retry_after_s": round(bucket.retry_after_s(), 2)}
            )

    def within_command_budget(self, handler: Handler) -> Handler:
        async def budgeted(frame: dict[str, Any]) -> dict[str, Any] | None:
            self.spend(
                self.budget.commands,
                budget="command",
                message=TOO_MANY_COMMANDS,
            )
            return await handler(frame)

        return budgeted


def _uuid_field(frame: dict[str, Any], key: str) -> uuid.UUID:
    raw = frame.get(key)
    try:
        if not isinstance(raw, str):
            raise ValueError
        return uuid.UUID(raw)
    except ValueError as exc:
        raise FrameError(_('"%(key)s" must be an id string.') % {"key": key}, details={"field": key}) from exc


def _trip_view(trip: Trip, viewer_id: uuid.UUID) -> dict[str, Any]:
    return trip_for(trip, viewer_id=viewer_id)


class DriverConsumer(BudgetedFrameConsumer):
    required_role = "driver"
    silent_types = frozenset({"location"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        commands: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "online": self.go_online,
            "offline": self.go_offline,
            "offer.accept": self.offer_accept,
            "offer.decline": self.offer_decline,
            "trip.arrived": self.trip_arrived,
            "trip.start": self.trip_start,
            "trip.complete": self.trip_complete,
            "trip.cancel": self.trip_cancel,
            "sos": self.sos,
        }
        self.routes: dict[str, Handler] = {
            "location": self.location,
            **{frame_type: self.within_command_budget(handler) for frame_type, handler in commands.items()},
        }

    async def has_role(self, user: User) -> bool:
        return await database_call(lambda: bool(user.is_driver and hasattr(user, "driver_profile")))()

    async def on_connected(self) -> None:
        self.recorder = locations.LocationRecorder()
        # Held under this process's lease first, so a renewal racing the registration re-registers it.
        self.socket_id = uuid.uuid4().hex
        self.lease = server_lease()
        self.lease.attach(socket_id=self.socket_id, driver_id=self.user.id)
        await database_call(presence.presence_connected)(
            driver_id=self.user.id, server_id=self.lease.server_id, socket_id=self.socket_id
        )
        self.lease.registered(socket_id=self.socket_id)

    async def on_disconnected(self, code: int) -> None:
        recorder = getattr(self, "recorder", None)
        if recorder is not None:
            await recorder.close()
        lease = getattr(self, "lease", None)
        if lease is None:
            return
        lease.detach(socket_id=self.socket_id)
        await database_call(presence.presence_disconnected)(
            driver_id=self.user.id, server_id=lease.server_id, socket_id=self.socket_id
        )

    def handlers(self) -> dict[str, Handler]:
        return self.routes

    async def go_online(self, frame: dict[str, Any]) -> dict[str, Any]:
        await database_call(presence.presence_go_online)(driver_id=self.user.id)
        return {"online": True}

    async def go_offline(self, frame: dict[str, Any]) -> dict[str, Any]:
        await database_call(presence.presence_go_offline)(driver_id=self.user.id)
        return {"online": False}

    async def location(self, frame: dict[str, Any]) -> None:
        try:
            fix = locations.fix_from_frame(frame)
            # After validation: the budget counts the fixes that would be stored and forwarded (a flood of
            # invalid ones costs no I/O, and the socket-wide frame budget bounds it).
            self.spend(
                self.budget.fixes,
                budget="location",
                message=TOO_MANY_FIXES,
            )
            await self.recorder.record(driver_id=self.user.id, fix=fix)
        except DomainError as refused:  # by its code, a bounded set (docs/operations.md, "Metrics")
            metrics.observe_fix(refused.code)
            raise
        except Exception:
            metrics.observe_fix("error")
            raise
        metrics.observe_fix("stored")

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
        pin = frame.get("pin")
        if pin is not None and not (
            isinstance(pin, str) and len(pin) == 4 and pin.isascii() and pin.isdigit()
        ):
            raise FrameError(_('"pin" must be the ride\'s four digits, as text.'), details={"field": "pin"})
        return await self._move(frame, driving.trip_start, pin=pin)

    async def trip_complete(self, frame: dict[str, Any]) -> dict[str, Any]:
        return await self._move(frame, driving.trip_complete)

    async def trip_cancel(self, frame: dict[str, Any]) -> dict[str, Any]:
        reason = frame.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise FrameError(
                _('"reason" must be text of at most 500 characters.'), details={"field": "reason"}
            )
        return await self._move(frame, driving.trip_cancel_by_driver, reason=reason)

    async def sos(self, frame: dict[str, Any]) -> dict[str, Any]:
        """An SOS from the driver (docs/safety.md): their trip (`trip_id`, else their active one, else none
        while online) and where they are (`lat`, `lng`, else their last fix)."""
        client_key = frame.get("client_key")
        if not isinstance(client_key, str) or not 1 <= len(client_key) <= 128:
            raise FrameError(
                _('"client_key" must be text of 1 to 128 characters.'), details={"field": "client_key"}
            )
        trip_id = _uuid_field(frame, "trip_id") if frame.get("trip_id") is not None else None
        position = None
        if frame.get("lat") is not None or frame.get("lng") is not None:
            lat, lng, accuracy = frame.get("lat"), frame.get("lng"), frame.get("accuracy_m")
            if not (_number_in(lat, 90.0) and _number_in(lng, 180.0)):
                raise FrameError(_('"lat" and "lng" must be a place.'), details={"field": "lat"})
            if accuracy is not None and not _number_in(accuracy, 10_000.0, low=0.0):
                raise FrameError(
                    _('"accuracy_m" must be 0 to 10,000 metres.'), details={"field": "accuracy_m"}
                )
            position = sos.SosPosition(float(lat), float(lng), None if accuracy is None else float(accuracy))
        driver_id = self.user.id

        def raise_alert() -> dict[str, Any]:
            alert, _created = sos.sos_raise(
                user_id=driver_id,
                client_key=client_key,
                source=SafetyAlertSource.SOCKET,
                trip_id=trip_id,
                position=position,
            )
            return alert_for_raiser(alert)

        return {"alert": await database_call(raise_alert)()}


def _number_in(value: Any, high: float, *, low: float | None = None) -> bool:
    """A JSON number (not a boolean) within [low, high]; low defaults to -high."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return False
    return (-high if low is None else low) <= value <= high
