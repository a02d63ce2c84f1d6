"""Heartbeats of the long-running processes, in Redis: who writes which key, and how old a beat is.

Every writer stores its wall-clock time (`time.time()`, as text) under its key, every
`ROCHDALE_HEARTBEAT_INTERVAL_S`; readiness (backend/health.py) and `manage.py process_alive` call a beat
older than `ROCHDALE_HEARTBEAT_STALE_S` stale:
- the dispatch worker of each region: `rd:{region}:worker` (dispatch/worker.py beats every second, with
  its own 5 s expiry; the dispatch sweeper reads the same key);
- the Celery worker (a bootstep, backend/celery_heartbeats.py): `rd:hb:celery-worker` (any worker) and
  `rd:hb:celery-worker:{host}` (this container's, for its exec probe);
- Celery beat (its scheduler, same module): `rd:hb:celery-beat` and `rd:hb:celery-beat:{host}`.

Wall-clock times, not monotonic ones, because the reader is another process (often on another host);
hosts are kept in step by NTP, and a beat "from the future" counts as age 0.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import redis
import redis.cluster
from django.conf import settings

from backend.redis import REDIS_UNREACHABLE, SyncRedis, get_redis

CELERY_WORKER_KEY = "rd:hb:celery-worker"
CELERY_BEAT_KEY = "rd:hb:celery-beat"


class Role(StrEnum):
    """The processes `manage.py process_alive --role` knows."""

    DISPATCH = "dispatch"
    WORKER = "worker"
    BEAT = "beat"


class BeatStatus(StrEnum):
    OK = "ok"
    STALE = "stale"  # too old, or no beat at all (never written, or expired)
    DOWN = "down"  # Redis did not answer: nothing can be said about the process


def region_prefix(region: str) -> str:
    """`rd:{region}:`, the start of each of a dispatch region's Redis keys: the braces make the region the
    key's hash tag, so a region's keys share one Redis Cluster slot (dispatch/live.py lists them)."""
    return f"rd:{{{region}}}:"


def dispatch_worker_key(region: str) -> str:
    return f"{region_prefix(region)}worker"


def this_host() -> str:
    """The container's host name: a process and its exec probe run in the same container, so both see
    the same name (a pod's name in Kubernetes, the container id in compose)."""
    return socket.gethostname()


def host_key(shared_key: str, host: str | None = None) -> str:
    return f"{shared_key}:{host or this_host()}"


def expiry_s() -> int:
    """How long a Celery beat's key outlives its writer: several stale ages, so that readiness reports a
    stopped process as stale with its age (which tells an operator when it stopped) before the key
    disappears; at least a minute."""
    return max(60, int(settings.ROCHDALE_HEARTBEAT_STALE_S * 4))


def write(keys: Iterable[str], *, client: SyncRedis | None = None) -> None:
    """One beat under every key. Raises `REDIS_UNREACHABLE` errors (callers log the outage once)."""
    client = client or get_redis()
    now = str(time.time())
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, now, ex=expiry_s())
    pipe.execute()


@dataclass(frozen=True, slots=True)
class Beat:
    status: BeatStatus
    age_s: float | None  # None: no beat found, or Redis down

    def as_dict(self) -> dict[str, str | float | None]:
        return {"status": str(self.status), "age_s": self.age_s}


def _judge(raw: bytes | str | None, now: float) -> Beat:
    if raw is None:
        return Beat(BeatStatus.STALE, None)
    try:
        written = float(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError:  # an old writer's placeholder ("1"): there is a beat, of unknown age
        return Beat(BeatStatus.STALE, None)
    age = round(max(0.0, now - written), 1)
    return Beat(BeatStatus.OK if age <= settings.ROCHDALE_HEARTBEAT_STALE_S else BeatStatus.STALE, age)


def read(keys: list[str], *, client: SyncRedis | None = None) -> dict[str, Beat]:
    """Every key's beat in one round trip (one per node on a cluster, where the keys of several regions
    live in different slots); all `down` when Redis does not answer."""
    if not keys:
        return {}
    client = client or get_redis()
    try:
        if isinstance(client, redis.cluster.RedisCluster):
            values = client.mget_nonatomic(keys)
        else:
            values = client.mget(keys)
    except REDIS_UNREACHABLE:
        return {key: Beat(BeatStatus.DOWN, None) for key in keys}
    now = time.time()
    return {key: _judge(value, now) for key, value in zip(keys, values, strict=True)}


def key_for_role(role: Role, *, region: str | None = None) -> str:
    """The key `process_alive` checks: this container's own process (another replica's beat must not keep
    a dead one alive). A dispatch worker beats its host's key whether active or standby (the region's own
    key is the active one's, which the sweeper and readiness read)."""
    if role is Role.DISPATCH:
        return host_key(dispatch_worker_key(region or settings.ROCHDALE_DISPATCH_REGION))
    return host_key(CELERY_WORKER_KEY if role is Role.WORKER else CELERY_BEAT_KEY)
