"""One place that knows how to reach Redis (sync and asyncio clients), from settings.REDIS_URL."""

from __future__ import annotations

from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings


@lru_cache(maxsize=4)
def _sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


def get_redis() -> redis.Redis:
    return _sync_client(settings.REDIS_URL)


def get_async_redis() -> aioredis.Redis:
    """A fresh asyncio client: asyncio clients are bound to the loop that made them, so none is cached.

    Its pool blocks (up to `ROCHDALE_REDIS_POOL_TIMEOUT_S`) when all its connections are busy: thousands
    of driver sockets share one client per process, and a burst of fixes must queue for a connection, not
    fail (redis-py's default pool raises MaxConnectionsError past 100 connections)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.ROCHDALE_REDIS_POOL_SIZE,
        timeout=settings.ROCHDALE_REDIS_POOL_TIMEOUT_S,
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    return aioredis.Redis.from_pool(pool)
