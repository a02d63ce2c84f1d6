"""Websocket authentication by single-use ticket (`?ticket=...`), for Channels' router."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from backend.accounts.models import User
from backend.accounts.tickets import ticket_redeem
from backend.concurrency import database_call
from backend.request_context import bind_log_context


@database_call
def _active_user(user_id: uuid.UUID) -> User | None:
    return User.objects.select_related("driver_profile").filter(id=user_id, is_active=True).first()


class TicketAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        if scope.get("type") == "websocket":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            ticket = (query.get("ticket") or [""])[0]
            user_id = await ticket_redeem(ticket)
            if user_id is not None:
                user = await _active_user(user_id)
                if user is not None:
                    scope["user"] = user
        # The socket's whole life runs in this task: its lines name the signed-in user (docs/operations.md).
        with bind_log_context(user_id=getattr(scope["user"], "pk", None)):
            return await super().__call__(scope, receive, send)
