"""The Celery worker's and beat's heartbeats (backend/heartbeats.py), wired in backend/celery.py so that
neither command line changes: a worker bootstep, and beat's scheduler.

Both write from the process that would stop doing its job if it hung: the worker's consumer (its timer
runs on the same loop that takes tasks off the broker) and beat's scheduling loop (`tick()`).
"""

from __future__ import annotations

import contextlib
import logging
import time

from celery import bootsteps
from celery.beat import PersistentScheduler
from celery.utils.timer2 import Entry
from celery.worker import WorkController
from django.conf import settings

from backend import heartbeats
from backend.redis import REDIS_UNREACHABLE, RedisOutage, get_redis

logger = logging.getLogger(__name__)


def _beat(shared_key: str, outage: RedisOutage) -> None:
    """One beat; a Redis outage is logged once (and readiness says `down`), never raised into Celery."""
    try:
        heartbeats.write([shared_key, heartbeats.host_key(shared_key)])
    except REDIS_UNREACHABLE as exc:
        outage.failed(exc)
        return
    outage.recovered()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Beats `rd:hb:celery-worker` (and this host's key) every `ROCHDALE_HEARTBEAT_INTERVAL_S`."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: WorkController, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Entry | None = None
        self.outage = RedisOutage("celery worker heartbeat", logger=logger)

    def start(self, parent: WorkController) -> None:
        _beat(heartbeats.CELERY_WORKER_KEY, self.outage)
        self.timer_entry = parent.timer.call_repeatedly(
            settings.ROCHDALE_HEARTBEAT_INTERVAL_S, _beat, (heartbeats.CELERY_WORKER_KEY, self.outage)
        )

    def stop(self, parent: WorkController) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        # Only this host's key: the shared one may be another worker's latest beat.
        with contextlib.suppress(REDIS_UNREACHABLE):
            get_redis().delete(heartbeats.host_key(heartbeats.CELERY_WORKER_KEY))


class HeartbeatScheduler(PersistentScheduler):
    """Beat's usual scheduler (the schedule kept in its `--schedule` file), which also beats
    `rd:hb:celery-beat` at most every interval, and wakes at least that often to do so: beat otherwise
    sleeps until its next task is due (up to `beat_max_loop_interval`, 5 minutes)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._last_beat = float("-inf")
        self._outage = RedisOutage("celery beat heartbeat", logger=logger)
        super().__init__(*args, **kwargs)

    def tick(self, *args: object, **kwargs: object) -> float:
        sleep_s = super().tick(*args, **kwargs)
        interval_s = settings.ROCHDALE_HEARTBEAT_INTERVAL_S
        now = time.monotonic()
        if now - self._last_beat >= interval_s:
            _beat(heartbeats.CELERY_BEAT_KEY, self._outage)
            self._last_beat = now
        return min(sleep_s, interval_s)

    def close(self) -> None:
        super().close()
        with contextlib.suppress(REDIS_UNREACHABLE):
            get_redis().delete(heartbeats.host_key(heartbeats.CELERY_BEAT_KEY))
