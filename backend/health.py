"""Real reachability checks for the health endpoint and the run script."""

from __future__ import annotations

import logging

from django.db import connection

from backend.redis import get_redis

logger = logging.getLogger(__name__)


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
        return bool(get_redis().ping())
    except Exception:
        logger.warning("health: redis unreachable", exc_info=True)
        return False
