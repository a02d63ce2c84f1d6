"""Celery app: Redis broker, late acks, requeue on a lost worker.

Tasks are sent only after commit (`task.delay_on_commit(...)`), so a worker never looks for a row that a
rolled-back transaction never wrote.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

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
