"""Celery app: Redis broker, late acks, requeue on a lost worker.

Tasks are sent only after commit (`task.delay_on_commit(...)`), so a worker never looks for a row that a
rolled-back transaction never wrote.
"""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

# Django's LOGGING in workers and beat, and the trip a task works on in its lines (docs/operations.md).
import backend.celery_logs  # noqa: F401  (connects Celery's logging and task signals)

app = Celery("rochdale")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    [
        "backend.accounts",
        "backend.fares",
        "backend.cards",
        "backend.compliance",
        "backend.notifications",
        "dispatch",
        "governance",
        "mobile_api",
    ]
)

# Heartbeats for readiness and the exec probes (backend/heartbeats.py), with no command-line flag: a
# bootstep in every worker, and beat's scheduler.
app.steps["worker"].add("backend.celery_heartbeats:WorkerHeartbeat")
app.conf.beat_scheduler = "backend.celery_heartbeats:HeartbeatScheduler"


# Metrics (docs/operations.md, "Metrics"): with ROCHDALE_METRICS_PORT the worker's main process serves its
# children's metrics, summed from PROMETHEUS_MULTIPROC_DIR (they count in their own memory otherwise).
@worker_init.connect
def serve_worker_metrics(**_: object) -> None:
    from backend import metrics

    metrics.serve_if_configured("celery worker")


@worker_process_shutdown.connect
def forget_worker_child(pid: int | None = None, **_: object) -> None:
    from backend import metrics

    metrics.process_exited(pid)
