"""The rider socket: server-to-rider pushes only (`trip.updated`, `driver.location`).

It has the driver socket's frame budget: a rider app sends nothing, so every frame is answered
`unknown_type`, and a client that floods it is closed like a flooding driver socket.
"""

from __future__ import annotations

import time
from typing import Any

from django.utils.dateparse import parse_datetime

from backend import metrics
from dispatch.consumers import BudgetedFrameConsumer


class RiderConsumer(BudgetedFrameConsumer):
    required_role = "rider"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.assigned_seen: set[str] = set()  # trips whose assignment this socket has timed

    async def push(self, event: dict[str, Any]) -> None:
        await super().push(event)
        observe_assigned_push(event["frame"], seen=self.assigned_seen)


def observe_assigned_push(frame: dict[str, Any], *, seen: set[str]) -> None:
    """The first `trip.updated` of a trip as `assigned` this socket sent: the accept-to-rider latency, from
    the `assigned` event's time (stamped in the accepting transaction) to now, once per trip and socket."""
    trip = frame.get("trip") if frame.get("type") == "trip.updated" else None
    if not isinstance(trip, dict) or trip.get("status") != "assigned" or trip.get("id") in seen:
        return
    seen.add(trip["id"])
    for event in trip.get("events") or ():
        if event.get("status") == "assigned":
            assigned_at = parse_datetime(event["at"])
            if assigned_at is not None:
                elapsed = time.time() - assigned_at.timestamp()
                metrics.accept_to_rider_notified_seconds.observe(max(0.0, elapsed))
            return
