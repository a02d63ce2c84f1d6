"""Real reachability checks for the health endpoint and the run script."""

from __future__ import annotations

import logging

from django.db import connection

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
