"""The one ASGI process: REST under /api/v1/ (Django) and websockets under /ws/ (Channels)."""

import os
import sys

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

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(TicketAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
