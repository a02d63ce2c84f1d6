"""The real client behind a known number of proxies, for the ASGI server (pure: no Django here).

Each proxy in front of the servers appends the address it accepted the connection from to
`X-Forwarded-For`, so with N trusted proxies (`ROCHDALE_TRUSTED_PROXY_HOPS`) the client is the N-th entry
from the right: everything left of it is whatever the client wrote and is never believed. With 0 the header
is not read at all and the client is the socket peer. DRF's `NUM_PROXIES` (set to the same number in
backend/settings.py) applies the same rule, so the REMOTE_ADDR this sets and the address the throttles key
on (`backend.accounts.throttling.client_ip`) are the same address.

uvicorn's own proxy-header middleware trusts by address, not by count: with nginx on the same host as its
clients (or a client that writes the proxy's address into the header) it skips entries it trusts and lands
on a made-up one. The server entry (backend/serve.py) turns it off and wraps the app in `TrustedProxyClient`.
"""

from __future__ import annotations

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"


def forwarded_client(x_forwarded_for: str, *, hops: int) -> str:
    """The address the outermost of `hops` trusted proxies saw: the `hops`-th entry from the right (the
    leftmost when the header has fewer entries, as DRF's `NUM_PROXIES` does)."""
    entries = x_forwarded_for.split(",")
    return entries[-min(hops, len(entries))].strip()


class TrustedProxyClient:
    """ASGI middleware: `scope["client"]` (Django's REMOTE_ADDR) becomes the client that the last `hops`
    proxies vouch for, and `scope["scheme"]` their `X-Forwarded-Proto`; with `hops=0` nothing changes."""

    def __init__(self, app: ASGI3Application, *, hops: int) -> None:
        if hops < 0:
            raise ValueError(f"trusted proxy hops must be 0 or more, not {hops}")
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if self.hops and scope["type"] in ("http", "websocket"):
            scope = self._as_forwarded(scope)
        await self.app(scope, receive, send)

    def _as_forwarded(self, scope: Scope) -> Scope:
        forwarded_for: list[bytes] = []
        proto: bytes | None = None
        for name, value in scope["headers"]:
            if name == _FORWARDED_FOR:
                forwarded_for.append(value)
            elif name == _FORWARDED_PROTO:
                proto = value
        changed = dict(scope)
        if forwarded_for:
            # Repeated headers are one list, in order (RFC 9110 section 5.3).
            client = forwarded_client(b",".join(forwarded_for).decode("latin-1"), hops=self.hops)
            if client:
                changed["client"] = (client, 0)
        if proto is not None:
            scheme = proto.decode("latin-1").strip().lower()
            if scheme in ("http", "https"):
                changed["scheme"] = scheme.replace("http", "ws") if scope["type"] == "websocket" else scheme
        return changed  # type: ignore[return-value]
