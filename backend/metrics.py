"""The project's own Prometheus metrics (docs/operations.md, "Metrics"), and how each process exports them.

Events are counted where they happen (the driver socket, the dispatch worker, the offer and capture
services, the location flush) through the metric objects below. What lives in Redis (Celery's queues, the
dispatch streams, the last ledger verification) is read at scrape time by `OperationsCollector`, in one
pipelined round trip, so it costs nothing between scrapes and is the same whichever web process answers.

Several processes record metrics: the ASGI server's workers (`ROCHDALE_WEB_WORKERS`), the dispatch worker
and the Celery worker's children. With `PROMETHEUS_MULTIPROC_DIR` set (one box: `make run`, compose with a
shared volume) prometheus_client keeps every process's values in files there, and the web's `/metrics`
sums them all; the directory must be emptied when the stack starts (stale files of dead processes would
otherwise be added forever). Without it (Kubernetes: one process kind per pod) each process exports its
own: the web at `/metrics`, the dispatch and Celery workers on `ROCHDALE_METRICS_PORT` when it is set.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import redis
from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from backend.redis import REDIS_UNREACHABLE, get_redis, redis_cluster_url

logger = logging.getLogger(__name__)

# No `_created` series (a gauge per counter and histogram holding its creation time): the multiprocess
# mode has none, so a single process would export series the others lack, and nothing here reads them.
disable_created_metrics()

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
PORT_ENV = "ROCHDALE_METRICS_PORT"
HOST_ENV = "ROCHDALE_METRICS_HOST"

# 10 ms to 10 s: a request is offered within tens of milliseconds on a healthy worker, and anything past
# ten seconds is an incident whatever its exact length (it lands in +Inf).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The event loop's lag is normally well under a millisecond; tens of milliseconds already delay fixes.
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

# Where `verify_ledger` leaves its verdict for every web process to export (a gauge in the Celery child
# that ran the task would only be seen by a scrape of that pod, and only until the child is recycled).
LEDGER_STATUS_KEY = "rd:ops:ledger"

location_fixes_received = Counter(
    "rochdale_location_fixes_received",
    "Location frames received on driver sockets, by outcome: stored (in Redis) or the refusal's code.",
    ["outcome"],
)
location_fixes_stored = Counter(
    "rochdale_location_fixes_stored",
    "Location fixes written to PostgreSQL by the location flush (LocationFix rows).",
)
dispatch_offers = Counter(
    "rochdale_dispatch_offers",
    "Offers by outcome: offered (made), accepted, declined, expired, withdrawn.",
    ["outcome"],
)
dispatch_rounds = Counter(
    "rochdale_dispatch_rounds",
    "Dispatch rounds run by the dispatch worker, by result (offered, open, waiting, unfulfilled, closed).",
    ["region", "result"],
)
request_to_offer_seconds = Histogram(
    "rochdale_dispatch_request_to_offer_seconds",
    "From a ride request to its first offer to a driver (measured by the dispatch worker).",
    ["region"],
    buckets=LATENCY_BUCKETS,
)
accept_to_rider_notified_seconds = Histogram(
    "rochdale_dispatch_accept_to_rider_notified_seconds",
    "From a driver's accept to the rider's socket being sent the assigned trip.",
    buckets=LATENCY_BUCKETS,
)
worker_loop_lag_seconds = Histogram(
    "rochdale_dispatch_worker_loop_lag_seconds",
    "How late the dispatch worker's event loop runs a timer (time the loop was busy elsewhere).",
    ["region"],
    buckets=LOOP_LAG_BUCKETS,
)
# Gauges of the dispatch worker (one per region): the newest write of a live process wins.
worker_stream_lag_seconds = Gauge(
    "rochdale_dispatch_worker_stream_lag_seconds",
    "Age of the newest stream entry the dispatch worker handled, when it handled it.",
    ["region"],
    multiprocess_mode="livemostrecent",
)
worker_active = Gauge(
    "rochdale_dispatch_worker_active",
    "1 while this dispatch worker holds its region's lease (active), 0 while it is a standby.",
    ["region"],
    multiprocess_mode="liveall",
)
lease_takeovers = Counter(
    "rochdale_dispatch_lease_takeovers",
    "Dispatch leases taken by a worker (startup and every failover), and lost to another (fenced out).",
    ["region", "event"],
)
index_drivers = Gauge(
    "rochdale_dispatch_index_drivers",
    "Available drivers in the dispatch worker's in-memory index.",
    ["region"],
    multiprocess_mode="livemostrecent",
)
payment_captures = Counter(
    "rochdale_payment_captures",
    "Payment capture and refund attempts by purpose and outcome: succeeded, declined, unknown (retried).",
    ["purpose", "outcome"],
)


# The usual outcomes start at 0, so a rate() over them exists before the first event of each.
for _outcome in ("offered", "accepted", "declined", "expired", "withdrawn"):
    dispatch_offers.labels(outcome=_outcome)
location_fixes_received.labels(outcome="stored")


_fix_outcomes: dict[str, Counter] = {}


def observe_fix(outcome: str) -> None:
    # The child for each outcome looked up once (a fix every 4 s per driver: `labels()` is not free).
    child = _fix_outcomes.get(outcome)
    if child is None:
        child = _fix_outcomes[outcome] = location_fixes_received.labels(outcome=outcome)
    child.inc()


def observe_offer(outcome: str, count: int = 1) -> None:
    dispatch_offers.labels(outcome=outcome).inc(count)


# -- what Redis holds, read at scrape time ------------------------------------------------------------------


def record_ledger_verification(*, ok: bool, problems: int, client: redis.Redis | None = None) -> None:
    """Leave the ledger's verdict in Redis for `/metrics` (best effort: the task's log has it anyway)."""
    try:
        (client or get_redis()).hset(
            LEDGER_STATUS_KEY, mapping={"ok": int(ok), "problems": problems, "at": repr(time.time())}
        )
    except REDIS_UNREACHABLE:
        logger.warning("ledger verification not recorded for metrics: Redis is unreachable")


def _celery_queue_names() -> list[str]:
    """The default queue and every queue a route names (read from settings: no Celery app to import)."""
    from django.conf import settings

    names = {getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")}
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    if isinstance(routes, dict):
        names.update(
            route["queue"] for route in routes.values() if isinstance(route, dict) and "queue" in route
        )
    return sorted(names)


# kombu's Redis transport keeps a queue's messages of priority p in `name`, `name\x06\x16{p}` (its default
# priority steps), and messages delivered but not yet acknowledged (late acks) in the `unacked` hash.
_PRIORITY_STEPS = (3, 6, 9)
_UNACKED_KEY = "unacked"


class OperationsCollector(Collector):
    """Celery's queue depths and the ledger's last verdict, read from Redis at each scrape (one pipeline
    per Redis). A Redis that does not answer makes `rochdale_metrics_redis_up` 0 instead of failing the
    scrape, so the processes' own metrics are still collected during an outage."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "rochdale_metrics_redis_up",
            "Whether the scrape could read Redis (1) or not (0).",
            labels=["redis"],
        )
        try:
            yield from self._ledger(get_redis())
            up.add_metric(["live"], 1)
        except redis.RedisError:
            logger.warning("metrics: the live Redis did not answer", exc_info=True)
            up.add_metric(["live"], 0)
        try:
            same = not redis_cluster_url() and settings.CELERY_BROKER_URL == settings.REDIS_URL
            yield from self._celery(get_redis() if same else _broker_client(settings.CELERY_BROKER_URL))
            up.add_metric(["broker"], 1)
        except redis.RedisError:
            logger.warning("metrics: the Celery broker's Redis did not answer", exc_info=True)
            up.add_metric(["broker"], 0)
        yield up

    def _celery(self, client: redis.Redis) -> Iterator[Metric]:
        queues = _celery_queue_names()
        pipe = client.pipeline(transaction=False)
        for name in queues:
            pipe.llen(name)
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{name}\x06\x16{step}")
        pipe.hlen(_UNACKED_KEY)
        answers = pipe.execute()
        per_queue = len(_PRIORITY_STEPS) + 1
        length = GaugeMetricFamily(
            "rochdale_celery_queue_length",
            "Tasks waiting in a Celery queue (all priorities).",
            labels=["queue"],
        )
        for position, name in enumerate(queues):
            length.add_metric([name], sum(answers[position * per_queue : (position + 1) * per_queue]))
        yield length
        yield GaugeMetricFamily(
            "rochdale_celery_unacked_tasks",
            "Tasks a Celery worker has taken but not yet acknowledged (running or reserved).",
            value=answers[-1],
        )

    def _ledger(self, client: redis.Redis) -> Iterator[Metric]:
        ledger = {key.decode(): value.decode() for key, value in client.hgetall(LEDGER_STATUS_KEY).items()}
        if not ledger:  # never verified since Redis started: absent, which an alert on absent() catches
            return
        yield GaugeMetricFamily(
            "rochdale_ledger_verified_ok",
            "1 when the last ledger verification found no problem, 0 when it found some.",
            value=int(ledger.get("ok", "0")),
        )
        yield GaugeMetricFamily(
            "rochdale_ledger_problems",
            "Problems the last ledger verification found.",
            value=int(ledger.get("problems", "0")),
        )
        yield GaugeMetricFamily(
            "rochdale_ledger_last_verified_timestamp_seconds",
            "When the ledger was last verified (Unix time).",
            value=float(ledger.get("at", "0")),
        )


_broker_clients: dict[str, redis.Redis] = {}


def _broker_client(url: str) -> redis.Redis:
    client = _broker_clients.get(url)
    if client is None:
        client = _broker_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


# Collectors read at scrape time by the web's `/metrics` only (not by the workers' own ports: every web
# process reports the same values, and a worker pod need not reach every Redis). The dispatch app adds its
# streams' collector here when Django starts (dispatch/apps.py), the layers forbidding an import of it.
_operations = CollectorRegistry(auto_describe=False)
_operations.register(OperationsCollector())


def register_scrape_collector(collector: Collector) -> None:
    """Add a collector `/metrics` reads at each scrape; one of each kind (Django's ready() may run twice)."""
    if type(collector) not in _scrape_collector_kinds:
        _scrape_collector_kinds.add(type(collector))
        _operations.register(collector)


_scrape_collector_kinds: set[type[Collector]] = {OperationsCollector}


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def process_registry() -> CollectorRegistry:
    """This process's metrics, or with `PROMETHEUS_MULTIPROC_DIR` every process's on this host, summed."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition() -> tuple[bytes, str]:
    """The `/metrics` answer: the processes' metrics and what Redis holds (two registries, no name in
    both, so their text concatenates into one valid exposition)."""
    return generate_latest(process_registry()) + generate_latest(_operations), CONTENT_TYPE_LATEST


def serve_if_configured(process: str) -> int | None:
    """Serve this process's metrics on `ROCHDALE_METRICS_PORT` (the dispatch and Celery workers, one per
    pod in Kubernetes); returns the port, or None when it is not set. No guard: expose it only to the
    scraper's network (a NetworkPolicy), and bind it elsewhere than 0.0.0.0 with `ROCHDALE_METRICS_HOST`."""
    port = os.environ.get(PORT_ENV)
    if not port:
        return None
    host = os.environ.get(HOST_ENV, "0.0.0.0")  # noqa: S104  (a pod's scraper comes from outside it)
    if multiprocess_dir() is None and process == "celery worker":
        logger.warning("celery worker: without %s its children's metrics are not exported", MULTIPROC_DIR_ENV)
    start_http_server(int(port), addr=host, registry=process_registry())
    logger.info("%s: metrics on http://%s:%s/metrics", process, host, port)
    return int(port)


def process_exited(pid: int | None = None) -> None:
    """Drop a finished process's live gauges from the multiprocess directory (its counters stay summed)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid if pid is not None else os.getpid())
