"""Database work from async code (websocket consumers) without a single-thread bottleneck.

Channels' `database_sync_to_async` is thread-sensitive: every consumer of a process shares one thread, so
one driver's trip completion waits behind every other socket's command, and the thread sits idle while
PostgreSQL answers. Our service calls are self-contained transactions with no thread-bound state, so they
run on the event loop's bounded thread pool instead (each pool thread keeps its own connection, so the
number of connections stays bounded by the pool size).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from channels.db import DatabaseSyncToAsync


def database_call[**P, R](func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`func` as a coroutine function run on the loop's thread pool, with Django's connection hygiene."""
    return DatabaseSyncToAsync(func, thread_sensitive=False)  # type: ignore[return-value]
