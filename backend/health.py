"""Real reachability checks for the health endpoints and the run script, and the probes' answers.

`/api/v1/health/live`: the process is up and serving (no check of anything it depends on, so a database
outage never makes Kubernetes restart every web process). `/api/v1/health/ready`: this process can do
its work: the database and Redis answer, every migration is applied, and the Celery worker, Celery beat
and the region's dispatch worker have beaten recently (backend/heartbeats.py). Both are answered by
`HealthProbeMiddleware` before the host check, with the bodies `liveness()` and `readiness()` build, which
the DRF views in mobile_api/views_health.py also return (they give the OpenAPI description).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

from backend import heartbeats
from backend.redis import REDIS_UNREACHABLE, RedisOutage, get_redis

logger = logging.getLogger(__name__)

# A load balancer probes every few seconds: one log line when Redis goes away and one when it is back.
_redis_outage = RedisOutage("health check", logger=logger)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT PostGIS_Lib_Version()")
            cursor.fetchone()
        return True
    except Exception:
        logger.warning("health: database unreachable", exc_info=True)
        connection.close_if_unusable_or_obsolete()
        return False


def check_redis() -> bool:
    try:
        answered = bool(get_redis().ping())
    except REDIS_UNREACHABLE as exc:
        _redis_outage.failed(exc)
        return False
    except Exception:
        logger.warning("health: redis check failed", exc_info=True)
        return False
    _redis_outage.recovered()
    return answered


# Once every migration is applied it stays so for this process's life (code and migrations ship together;
# a newer release's migrations are applied before its processes start): the plan, which reads every
# migration file, is computed only until it first comes out empty.
_migrations_applied = False


def check_migrations() -> str:
    """ "ok" when no migration is left to apply, "pending" when one is, "down" when the database does not
    answer."""
    global _migrations_applied
    if _migrations_applied:
        return "ok"
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.warning("health: migration state unreadable", exc_info=True)
        connection.close_if_unusable_or_obsolete()
        return "down"
    if plan:
        return "pending"
    _migrations_applied = True
    return "ok"


def dispatch_regions() -> list[str]:
    """The regions whose dispatch worker must be alive: the one this deployment's processes serve
    (`ROCHDALE_DISPATCH_REGION`, which `manage.py dispatch_worker` also defaults to)."""
    return [settings.ROCHDALE_DISPATCH_REGION]


type HealthBody = dict[str, object]

# The previous readiness verdict, so a failing probe is logged once when it starts failing (with what
# failed) and once when it passes again, not at every probe.
_last_ready: bool | None = None


def liveness() -> tuple[HealthBody, int]:
    return {"status": "ok"}, 200


READINESS_SCOPES = ("stack", "server")


def readiness(scope: str = "stack") -> tuple[HealthBody, int]:
    """The readiness body and status: 200 when every check is "ok", 503 naming the ones that are not.

    scope "stack" (the default) also fails on a stale heartbeat of the Celery worker, beat or a dispatch
    worker: what an operator's monitor or a single box's load balancer asks. scope "server" fails only on
    what this server itself needs (database, Redis, migrations) and still reports the heartbeats: what a
    Kubernetes readiness probe asks, since a stopped beat must not take every API pod out of its Service
    at once and leave riders with no answer at all."""
    global _last_ready
    if scope not in READINESS_SCOPES:
        raise ValueError(f"unknown readiness scope {scope!r}")
    database = "ok" if check_database() else "down"
    migrations = check_migrations() if database == "ok" else "down"
    redis_state = "ok" if check_redis() else "down"
    regions = dispatch_regions()
    dispatch_keys = {region: heartbeats.dispatch_worker_key(region) for region in regions}
    beats = heartbeats.read(
        [heartbeats.CELERY_WORKER_KEY, heartbeats.CELERY_BEAT_KEY, *dispatch_keys.values()]
    )
    celery_beats = {
        "celery_worker": beats[heartbeats.CELERY_WORKER_KEY],
        "celery_beat": beats[heartbeats.CELERY_BEAT_KEY],
    }
    dispatch_beats = {region: beats[key] for region, key in dispatch_keys.items()}
    failing = [name for name, state in (("database", database), ("redis", redis_state)) if state != "ok"]
    if migrations != "ok":
        failing.append("migrations")
    if scope == "stack":
        failing += [
            name for name, beat in celery_beats.items() if beat.status is not heartbeats.BeatStatus.OK
        ]
        failing += [
            f"dispatch_worker.{region}"
            for region, beat in dispatch_beats.items()
            if beat.status is not heartbeats.BeatStatus.OK
        ]
    ready = not failing
    if scope == "stack" and ready != _last_ready:
        if ready:
            logger.info("health: ready")
        else:
            logger.warning("health: not ready: %s", ", ".join(failing))
        _last_ready = ready
    body: HealthBody = {
        "status": "ok" if ready else "unavailable",
        "database": database,
        "redis": redis_state,
        "migrations": migrations,
        "heartbeats": {
            **{name: beat.as_dict() for name, beat in celery_beats.items()},
            "dispatch_worker": {region: beat.as_dict() for region, beat in dispatch_beats.items()},
        },
        "failing": failing,
    }
    return body, 200 if ready else 503


class HealthProbeMiddleware:
    """Answers the liveness and readiness probes before any host check: a kubelet or load balancer sends
    its own address as Host (`Host: 10.1.2.3`), which ALLOWED_HOSTS rightly refuses, and these answers
    build no URL from the host, so nothing the host check protects is at stake. Every other path still
    goes through the host check (no `ALLOWED_HOSTS = ["*"]`)."""

    LIVE_PATH = "/api/v1/health/live"
    READY_PATH = "/api/v1/health/ready"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            if request.path == self.LIVE_PATH:
                return probe_response(*liveness())
            if request.path == self.READY_PATH:
                scope = request.GET.get("scope", "stack")
                if scope not in READINESS_SCOPES:
                    return unknown_scope_response(scope)
                return probe_response(*readiness(scope))
        return self.get_response(request)


def unknown_scope_response(scope: str) -> JsonResponse:
    """The API's error shape (backend/errors.py) for a scope that does not exist; operator-facing, so in
    English only."""
    return JsonResponse(
        {
            "error": {
                "code": "invalid_input",
                "message": "Invalid input.",
                "details": {"scope": [f"{scope!r} is not one of {', '.join(READINESS_SCOPES)}."]},
            }
        },
        status=400,
    )


def probe_response(body: HealthBody, status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    # A 503 here is the answer, not a failure of the request: readiness() logs the change once, where
    # Django would log every probe as an error.
    response._has_been_logged = True  # type: ignore[attr-defined]  # read by django.utils.log
    return response
