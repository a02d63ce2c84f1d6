"""The rider socket: server-to-rider pushes only (`trip.updated`, `driver.location`).

It has the driver socket's frame budget: a rider app sends nothing, so every frame is answered
`unknown_type`, and a client that floods it is closed like a flooding driver socket.
"""

from __future__ import annotations

from dispatch.consumers import BudgetedFrameConsumer


class RiderConsumer(BudgetedFrameConsumer):
    required_role = "rider"
