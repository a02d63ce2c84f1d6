"""Single-use websocket tickets.

Browsers cannot set an Authorization header on a websocket, and a JWT in a URL ends up in logs. So the app
trades its JWT for a random ticket that lives 30 s in Redis and is taken with GETDEL: exactly one handshake
can use it, even when two race.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings

from backend.redis import get_redis, loop_async_redis

_PREFIX = "wsticket:"


def ticket_issue(*, user_id: uuid.UUID) -> tuple[str, int]:
    ticket = secrets.token_urlsafe(32)
    ttl = settings.ROCHDALE_WS_TICKET_TTL_S
    get_redis().set(_PREFIX + ticket, str(user_id), ex=ttl, nx=True)
    return ticket, ttl


async def ticket_redeem(ticket: str) -> uuid.UUID | None:
    """Take the ticket atomically; None when it is missing, expired, already used or malformed."""
    if not ticket or len(ticket) > 128:
        return None
    raw = await loop_async_redis().getdel(_PREFIX + ticket)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw.decode())
    except ValueError:
        return None
