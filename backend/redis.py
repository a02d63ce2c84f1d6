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
    """A fresh asyncio client: asyncio clients are bound to the loop that made them, so none is cached."""
    return aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
