"""The dispatch streams, read from Redis at each scrape of `/metrics` (docs/operations.md, "Metrics").

Registered with backend.metrics when Django starts (dispatch/apps.py): the kernel may not import dispatch,
whose key names these are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from backend.redis import get_redis
from dispatch import live

logger = logging.getLogger(__name__)


def _ms_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class DispatchStreamsCollector(Collector):
    """Per region (this web's, `ROCHDALE_DISPATCH_REGION`): the entries kept in the fixes and events
    streams, and how far the location flush is behind the newest fix; five commands in one pipeline."""

    def __init__(self, regions: list[str] | None = None) -> None:
        self.fixed_regions = regions

    def collect(self) -> Iterator[Metric]:
        regions = self.fixed_regions or [live.region()]
        try:
            pipe = get_redis().pipeline(transaction=False)
            for name in regions:
                pipe.xlen(live.fixes_key(name))
                pipe.xlen(live.events_key(name))
                pipe.xrevrange(live.fixes_key(name), count=1)
                pipe.xrange(live.fixes_key(name), count=1)
                pipe.get(live.flush_cursor_key(name))
            answers = pipe.execute()
        except redis.RedisError:  # backend.metrics reports the outage (rochdale_metrics_redis_up)
            logger.warning("metrics: dispatch streams not read, Redis did not answer")
            return
        streams = GaugeMetricFamily(
            "rochdale_dispatch_stream_length",
            "Entries kept in a dispatch stream (fixes, events), capped by the streams' MAXLEN.",
            labels=["region", "stream"],
        )
        backlog = GaugeMetricFamily(
            "rochdale_location_flush_backlog_seconds",
            "How far the location flush is behind the newest fix (0: every fix is in PostgreSQL).",
            labels=["region"],
        )
        for position, name in enumerate(regions):
            fixes, events, newest, oldest, cursor = answers[position * 5 : (position + 1) * 5]
            streams.add_metric([name, "fixes"], fixes)
            streams.add_metric([name, "events"], events)
            behind = 0.0
            if newest:
                # Never flushed: everything from the stream's first entry is waiting.
                flushed_ms = _ms_of(cursor) if cursor else _ms_of(oldest[0][0]) - 1
                behind = max(0, _ms_of(newest[0][0]) - flushed_ms) / 1000.0
            backlog.add_metric([name], behind)
        yield streams
        yield backlog
