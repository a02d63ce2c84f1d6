"""The rider socket: server-to-rider pushes only (`trip.updated`, `driver.location`)."""

from __future__ import annotations

from dispatch.realtime import JsonFrameConsumer


class RiderConsumer(JsonFrameConsumer):
    required_role = "rider"
