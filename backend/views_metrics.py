"""`GET /metrics`: Prometheus's scrape (docs/operations.md, "Metrics").

Answered only to a scraper from `ROCHDALE_METRICS_ALLOWED_NETWORKS` (by the real client address: the
REMOTE_ADDR that `TrustedProxyClient`, backend/forwarded.py, set from the trusted proxies' X-Forwarded-For,
never a header the client wrote) or to one sending `Authorization: Bearer <ROCHDALE_METRICS_TOKEN>`.
Anyone else gets a bare 403: no body says what would have let them in.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from backend.metrics import exposition

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(configured: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(
        ipaddress.ip_network(network.strip(), strict=False) for network in configured if network.strip()
    )


def address_allowed(address: str, networks: tuple[str, ...]) -> bool:
    """Whether `address` is in one of `networks` (an IPv4 address mapped into IPv6 counts as itself)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(networks))


def token_allowed(authorization: str, token: str) -> bool:
    """A `Bearer` header carrying the configured token (none configured: no token lets anyone in)."""
    scheme, _, presented = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    # Constant time: a scraper's token must not be guessable one character at a time.
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def scrape_allowed(request: HttpRequest) -> bool:
    return address_allowed(
        request.META.get("REMOTE_ADDR", ""), tuple(settings.ROCHDALE_METRICS_ALLOWED_NETWORKS)
    ) or token_allowed(request.headers.get("Authorization", ""), settings.ROCHDALE_METRICS_TOKEN)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        return HttpResponse(status=403)
    body, content_type = exposition()
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


class MetricsScrapeMiddleware:
    """Answers `GET /metrics` before the host check (placed right after `HealthProbeMiddleware`): a
    Prometheus in the cluster scrapes a pod by its address (`Host: 10.1.2.3:8000`), which ALLOWED_HOSTS
    rightly refuses, and this answer builds no URL from the host. The guard above still decides who
    gets it, and it is not counted among the HTTP requests django-prometheus measures."""

    PATH = "/metrics"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == self.PATH and request.method in ("GET", "HEAD"):
            return metrics_view(request)
        return self.get_response(request)
