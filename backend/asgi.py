"""The one ASGI process: REST under /api/v1/ (Django) and websockets under /ws/ (Channels)."""

import os
import sys

from asgiref.typing import ASGIApplication, ASGIReceiveCallable, ASGISendCallable, Scope

# A server process runs its event loop (every websocket) and the threads of database calls under one GIL.
# At the default 5 ms switch interval a busy database thread keeps the loop waiting up to 5 ms each time
# the loop gives the GIL up for a socket read, and a loop serving thousands of sockets does that hundreds of
# times a second; a shorter interval hands the loop back sooner (docs/dispatch.md has the measurements).
sys.setswitchinterval(float(os.environ.get("ROCHDALE_GIL_SWITCH_S", "0.0005")))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Django must be set up before importing consumers, which import models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from backend.accounts.ws_auth import TicketAuthMiddleware  # noqa: E402
from backend.routing import websocket_urlpatterns  # noqa: E402

# The sockets whose credential is the single-use ticket in the query string, never a cookie.
TICKET_SOCKET_PATHS = frozenset({"/ws/driver/", "/ws/rider/"})


class NativeAppOriginValidator:
    """Channels' allowed-hosts Origin check, except that a ticket socket may come without an Origin.

    The Origin header protects cookie-authenticated sockets from other sites' pages: a browser attaches
    the cookie on its own and always names the page's origin. A ticket socket carries no ambient
    credential, so a handshake without an Origin (native apps: OkHttp, dart:io, URLSession send none)
    lets the ticket decide; an Origin naming a host outside ALLOWED_HOSTS is still refused, before the
    ticket is redeemed. The staff map authenticates by session cookie and keeps the strict check.
    """

    def __init__(self, application: ASGIApplication) -> None:
        self.application = application
        self.origin_checked = AllowedHostsOriginValidator(application)

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope.get("path") in TICKET_SOCKET_PATHS and not _has_origin(scope):
            return await self.application(scope, receive, send)
        return await self.origin_checked(scope, receive, send)


def _has_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _value in scope.get("headers", ()))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": NativeAppOriginValidator(TicketAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
