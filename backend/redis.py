"""One place that knows how to reach Redis (sync and asyncio clients), from settings.REDIS_URL, and how a
long-lived caller rides out a Redis outage (`RedisOutage`: capped, jittered backoff, logged once).

With `ROCHDALE_REDIS_CLUSTER_URL` set (any node of a Redis Cluster), our own clients talk to that cluster
instead: the live dispatch state, presence, tickets, throttles, heartbeats. Every key that a script or a
transaction touches together carries one hash tag (the dispatch region, `rd:{region}:...`, dispatch/live.py),
so the same commands run on one Redis and on a cluster. The Channels layer, the Django cache and the Celery
broker stay on `REDIS_URL`: those libraries speak to a single Redis only (docs/dispatch.md, "Redis Cluster").

Redis is a cache here: every caller that runs for long (the dispatch worker, the fix pipeline, the push
queue, the location flush, the health check) treats `REDIS_UNREACHABLE` as "not now", waits, and tries
again; none exits on it. docs/dispatch.md ("Failures") says what each one does meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from functools import lru_cache

import hiredis
import redis
import redis.asyncio as aioredis
import redis.asyncio.client
import redis.asyncio.cluster as aiocluster
import redis.client
import redis.cluster
from django.conf import settings
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT

# What a dead, restarting or unreachable Redis raises (BusyLoadingError, "loading the dataset", is a
# ConnectionError too). Anything else (a ResponseError, a bug) is not an outage and is not retried.
# On a cluster, also a node down with slots nobody serves yet (CLUSTERDOWN); a cluster none of whose nodes
# answer is raised as a ConnectionError by the clients below.
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
)


# What get_redis() and get_async_redis() return: one Redis, or a Redis Cluster. Both take the same
# commands, scripts and pipelines for keys of one hash tag; a cluster refuses them across slots.
type SyncRedis = redis.Redis | redis.cluster.RedisCluster
type AsyncRedis = aioredis.Redis | aiocluster.RedisCluster
type AnyPipeline = (
    redis.client.Pipeline
    | redis.cluster.ClusterPipeline
    | redis.asyncio.client.Pipeline
    | aiocluster.ClusterPipeline
)


def _cluster_unreachable(url: str, error: redis.exceptions.RedisClusterException) -> redis.ConnectionError:
    # redis-py raises RedisClusterException when it cannot learn the slot map (no node answers, or the
    # slots are not all served): for our callers that is Redis being unreachable, not a bug.
    return redis.exceptions.ConnectionError(f"the Redis Cluster at {url} cannot be used now: {error}")


class _AsyncRedisCluster(aiocluster.RedisCluster):
    """The asyncio cluster client, whose first command (or the first after the cluster changed) learns
    the slot map: a failure to learn it is raised as a ConnectionError, as for one Redis."""

    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> _AsyncRedisCluster:
        try:
            await super().initialize(additional_startup_nodes_info, last_failed_node_name)
        except redis.exceptions.RedisClusterException as exc:
            raise _cluster_unreachable(redis_cluster_url(), exc) from exc
        return self


@lru_cache(maxsize=4)
def _sync_client(url: str, *, cluster: bool) -> SyncRedis:
    if cluster:
        try:
            return redis.cluster.RedisCluster.from_url(
                url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
            )
        except redis.exceptions.RedisClusterException as exc:  # not cached: the next call tries again
            raise _cluster_unreachable(url, exc) from exc
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


def redis_cluster_url() -> str:
    """The Redis Cluster our own clients use ('' for none: the single Redis at REDIS_URL)."""
    return getattr(settings, "ROCHDALE_REDIS_CLUSTER_URL", "")


def get_redis() -> SyncRedis:
    cluster_url = redis_cluster_url()
    if cluster_url:
        return _sync_client(cluster_url, cluster=True)
    return _sync_client(settings.REDIS_URL, cluster=False)


class _HiredisPacking:
    """Commands packed by hiredis (C) instead of redis-py's Python packer, which the asyncio client uses
    whatever is installed: at thousands of fixes a second, packing each script call's dozen arguments was
    a tenth of a socket server's CPU (py-spy, make bench-e2e)."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        command = args[0]
        # As redis-py does: a command name of several words ("SCRIPT LOAD") goes as several arguments.
        if isinstance(command, str | bytes) and len(words := command.split()) > 1:
            args = (*words, *args[1:])
        return [hiredis.pack_command(args)]


class HiredisConnection(_HiredisPacking, aioredis.Connection):
    pass


class HiredisSSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {
    aioredis.Connection: HiredisConnection,
    aioredis.SSLConnection: HiredisSSLConnection,
}


def get_async_redis() -> AsyncRedis:
    """A fresh asyncio client: asyncio clients are bound to the loop that made them, so none is cached.

    Its pool blocks (up to `ROCHDALE_REDIS_POOL_TIMEOUT_S`) when all its connections are busy: thousands
    of driver sockets share one client per process, and a burst of fixes must queue for a connection, not
    fail (redis-py's default pool raises MaxConnectionsError past 100 connections).

    A command that finds its pooled connection dead (Redis restarted since it was opened) is sent once more
    on a new connection, at once: without it, the first batch of every process after a restart fails.

    On a cluster, redis-py keeps a pool per node that refuses (MaxConnectionsError) rather than waits, so
    each node gets room for every connection the process could want at once; the packer is redis-py's own
    (its cluster client takes no connection class)."""
    cluster_url = redis_cluster_url()
    if cluster_url:
        return _AsyncRedisCluster.from_url(
            cluster_url,
            max_connections=settings.ROCHDALE_REDIS_POOL_SIZE * 4,
            socket_timeout=2,
            socket_connect_timeout=2,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.ROCHDALE_REDIS_POOL_SIZE,
        timeout=settings.ROCHDALE_REDIS_POOL_TIMEOUT_S,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )
    # The URL decides TCP or TLS (a unix socket keeps redis-py's own class); packing is ours in both.
    pool.connection_class = _PACKING.get(pool.connection_class, pool.connection_class)
    return aioredis.Redis.from_pool(pool)


# One shared asyncio client per event loop, for loop_async_redis().
_loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedis] = weakref.WeakKeyDictionary()


def loop_async_redis() -> AsyncRedis:
    """The running loop's shared asyncio client, for the short commands of a hot path (a socket
    handshake's ticket): a connect storm of thousands of sockets then shares one pool, where a client per
    call opened (and introduced to Redis) a connection per handshake. It lives as long as its loop and is
    not closed by its callers."""
    loop = asyncio.get_running_loop()
    client = _loop_clients.get(loop)
    if client is None:
        client = _loop_clients[loop] = get_async_redis()
    return client


def queue_script(
    pipe: AnyPipeline,
    sha: str,
    *,
    keys: list[str],
    args: list[EncodableT],
) -> None:
    """Queue one EVALSHA on a pipeline of one Redis or of a cluster. redis-py's cluster pipelines refuse
    their `evalsha` method, yet route the command itself by its keys (refusing keys of several slots), so
    the command goes as a plain one. The caller loads the script first (SCRIPT LOAD reaches every node of
    a cluster) or reloads it on NoScriptError: a pipeline does not load it on its own."""
    pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)


class Backoff:
    """Exponential backoff, capped and jittered: `first_s`, about twice that, ..., up to `cap_s`.

    Each delay is drawn from its upper half ("equal jitter"), so processes that lost Redis at the same
    moment do not come back in step, and no delay collapses to nothing."""

    def __init__(self, *, first_s: float, cap_s: float) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.failures = 0

    def next_delay_s(self) -> float:
        ceiling = min(self.cap_s, self.first_s * 2 ** min(self.failures, 30))
        self.failures += 1
        return ceiling / 2 + random.uniform(0.0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


class RedisOutage:
    """One caller's view of Redis being unreachable: when to try again, and a log line when an outage
    begins and one when it ends, however many tries fail in between.

    `failed()` after a call raised `REDIS_UNREACHABLE` (returns the delay before the next try);
    `recovered()` after a call succeeded; `may_try()` for callers that cannot wait (a push, a fix) and
    instead refuse at once until the delay has passed, so a dead Redis is not hammered."""

    def __init__(
        self, what: str, *, logger: logging.Logger, first_s: float = 0.1, cap_s: float = 2.0
    ) -> None:
        self.what = what
        self.logger = logger
        self.backoff = Backoff(first_s=first_s, cap_s=cap_s)
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.failed_tries = 0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def may_try(self) -> bool:
        return self.down_since is None or time.monotonic() >= self.retry_at

    def failed(self, error: BaseException) -> float:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            self.logger.warning(
                "%s: Redis unreachable (%s: %s); retrying with backoff up to %.1f s",
                self.what,
                type(error).__name__,
                error,
                self.backoff.cap_s,
            )
        self.failed_tries += 1
        delay = self.backoff.next_delay_s()
        self.retry_at = now + delay
        return delay

    def recovered(self) -> None:
        if self.down_since is None:
            return
        self.logger.warning(
            "%s: Redis reachable again after %.1f s (%d failed tries)",
            self.what,
            time.monotonic() - self.down_since,
            self.failed_tries,
        )
        self.down_since = None
        self.retry_at = 0.0
        self.failed_tries = 0
        self.backoff.reset()


class RepeatedRedisErrorFilter(logging.Filter):
    """For a library logger that logs every failed retry with a traceback (channels-redis's pub/sub
    receive task logs one a second while Redis is down): the first record carrying a Redis connection
    error passes, shortened to one line; the next ones are dropped for `quiet_s`. Other records pass as
    they are. Wired in settings.LOGGING; our own loops log through `RedisOutage` instead."""

    def __init__(self, quiet_s: float = 60.0) -> None:
        super().__init__()
        self.quiet_s = quiet_s
        self.last_passed = -float("inf")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, REDIS_UNREACHABLE):
            return True
        now = time.monotonic()
        if now - self.last_passed < self.quiet_s:
            return False
        self.last_passed = now
        record.msg = f"{record.getMessage()}: Redis unreachable ({type(error).__name__}: {error}); the same "
        record.msg += f"error is not logged again for {self.quiet_s:.0f} s"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True
