"""The lease a socket server holds for the driver sockets it owns (dispatch/services/presence.py says why).

One lease per event loop, that is per server process (tests run a loop per test, so each gets its own):
its id names the process, and a task on the loop renews it every `ROCHDALE_SERVER_LEASE_RENEW_S` while
the process holds driver sockets. The renewal is one pipelined round trip on the loop's own asyncio
client, so it depends only on the loop answering, never on the database thread pool. When the renewal
finds fewer sockets registered than the process holds (a sweep took the process for dead while its loop
was stalled, or Redis lost the registrations), it registers them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref

import redis.asyncio as aioredis
from django.conf import settings

from backend.concurrency import database_call
from backend.redis import get_async_redis
from dispatch.services import presence

logger = logging.getLogger(__name__)


class ServerLease:
    def __init__(self) -> None:
        self.server_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sockets: dict[str, uuid.UUID] = {}
        # Held but not yet registered in Redis (the registration is on its way): not a shortfall.
        self.registering: set[str] = set()
        self.keeper: asyncio.Task | None = None

    def attach(self, *, socket_id: str, driver_id: uuid.UUID) -> None:
        """Hold `socket_id` under this lease (before it is registered in Redis), renewing from now on."""
        self.sockets[socket_id] = driver_id
        self.registering.add(socket_id)
        if self.keeper is None or self.keeper.done():
            self.keeper = asyncio.get_running_loop().create_task(self._keep())

    def registered(self, *, socket_id: str) -> None:
        """The socket's registration in Redis is done."""
        self.registering.discard(socket_id)

    def detach(self, *, socket_id: str) -> None:
        """Stop holding `socket_id` (before it is unregistered, so no renewal registers it again)."""
        self.sockets.pop(socket_id, None)
        self.registering.discard(socket_id)
        if not self.sockets and self.keeper is not None:
            # Nothing left to hold: the lease lapses and a sweep finds nothing under it.
            self.keeper.cancel()
            self.keeper = None

    async def renew(self) -> None:
        """Renew the lease once; register the held sockets again if Redis lost track of any."""
        client = get_async_redis()
        try:
            await self._renew(client)
        finally:
            await client.aclose()

    async def _keep(self) -> None:
        client = get_async_redis()
        try:
            while self.sockets:
                try:
                    await self._renew(client)
                except Exception:  # Redis down: keep trying; the sweep cannot run without Redis either
                    logger.warning("server lease %s: renewal failed", self.server_id, exc_info=True)
                await asyncio.sleep(settings.ROCHDALE_SERVER_LEASE_RENEW_S)
        finally:
            await client.aclose()

    async def _renew(self, client: aioredis.Redis) -> None:
        registered = await presence.server_lease_renew(client=client, server_id=self.server_id)
        if registered >= len(self.sockets) - len(self.registering):
            return
        held = dict(self.sockets)
        await database_call(presence.presence_sockets_restore)(server_id=self.server_id, sockets=held)
        # A socket that closed while it was being registered again must not stay registered.
        for socket_id, driver_id in held.items():
            if socket_id not in self.sockets:
                await database_call(presence.presence_disconnected)(
                    driver_id=driver_id, server_id=self.server_id, socket_id=socket_id
                )


_leases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ServerLease] = weakref.WeakKeyDictionary()


def server_lease() -> ServerLease:
    """This event loop's (this server process's) lease."""
    loop = asyncio.get_running_loop()
    lease = _leases.get(loop)
    if lease is None:
        lease = _leases[loop] = ServerLease()
    return lease
