"""Real reachability checks for the health endpoint and the run script."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from backend.redis import REDIS_UNREACHABLE, RedisOutage, get_redis

logger = logging.getLogger(__name__)

# A load balancer probes every few seconds: one log line when Redis goes away and one when it is back.
_redis_outage = RedisOutage("health check", logger=logger)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT PostGIS_Lib_Version()")
            cursor.fetchone()
        return True
    except Exception:
        logger.warning("health: database unreachable", exc_info=True)
        connection.close_if_unusable_or_obsolete()
        return False


def check_redis() -> bool:
    try:
        answered = bool(get_redis().ping())
    except REDIS_UNREACHABLE as exc:
        _redis_outage.failed(exc)
        return False
    except Exception:
        logger.warning("health: redis check failed", exc_info=True)
        return False
    _redis_outage.recovered()
    return answered


class HealthProbeMiddleware:
    """Answers the liveness probe before any host check: a kubelet or load balancer sends its own address
    as Host, which ALLOWED_HOSTS rightly refuses, and this answer builds no URL from the host."""

    LIVE_PATH = "/api/v1/health/live"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == self.LIVE_PATH and request.method in ("GET", "HEAD"):
            return JsonResponse({"status": "ok"})
        return self.get_response(request)
