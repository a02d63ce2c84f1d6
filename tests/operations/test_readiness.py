"""Liveness and readiness (backend/health.py), the heartbeats behind readiness (backend/heartbeats.py,
backend/celery_heartbeats.py) and `manage.py process_alive`, against real Redis and PostGIS; the last
test runs the real processes: uvicorn, the dispatch worker, a Celery worker and beat."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.test import Client

from backend import heartbeats
from backend.redis import get_redis
from tests.faults.procs import celery_process, dispatch_worker, kill_group, wait_until
from tests.live_server import REPO, _server_env, start_asgi_server

PROBE_HOST = "10.1.2.3"  # a pod IP, as a kubelet sends it: not in ALLOWED_HOSTS
READY = "/api/v1/health/ready"
LIVE = "/api/v1/health/live"


def _beat_all_now() -> None:
    heartbeats.write(
        [
            heartbeats.CELERY_WORKER_KEY,
            heartbeats.CELERY_BEAT_KEY,
            heartbeats.dispatch_worker_key("default"),
        ]
    )


def _beat_at(key: str, seconds_ago: float) -> None:
    get_redis().set(key, str(time.time() - seconds_ago), ex=600)


@pytest.mark.django_db
def test_the_probes_answer_a_pod_ip_host_that_every_other_path_refuses() -> None:
    _beat_all_now()
    client = Client()

    live = client.get(LIVE, HTTP_HOST=PROBE_HOST)
    ready = client.get(READY, HTTP_HOST=PROBE_HOST)
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200, ready.json()
    assert ready.json()["status"] == "ok"
    assert client.head(READY, HTTP_HOST=PROBE_HOST).status_code == 200

    # The host check still stands everywhere else, the older health route included.
    assert client.get("/api/v1/health", HTTP_HOST=PROBE_HOST).status_code == 400
    assert client.get("/api/v1/schema", HTTP_HOST=PROBE_HOST).status_code == 400
    assert client.get(READY + "/", HTTP_HOST=PROBE_HOST).status_code == 400
    assert client.get("/api/v1/health").json()["status"] == "ok"


@pytest.mark.django_db
def test_readiness_names_each_check_and_every_beat_that_is_stale_or_missing(settings) -> None:
    settings.ROCHDALE_HEARTBEAT_STALE_S = 5.0
    _beat_at(heartbeats.CELERY_WORKER_KEY, 1.0)
    _beat_at(heartbeats.dispatch_worker_key("default"), 12.0)
    # no beat of Celery beat at all

    answer = Client().get(READY)

    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert (body["database"], body["redis"], body["migrations"]) == ("ok", "ok", "ok")
    assert body["heartbeats"]["celery_worker"]["status"] == "ok"
    assert body["heartbeats"]["celery_beat"] == {"status": "stale", "age_s": None}
    dispatch = body["heartbeats"]["dispatch_worker"]["default"]
    assert dispatch["status"] == "stale" and 12.0 <= dispatch["age_s"] < 15.0
    assert body["failing"] == ["celery_beat", "dispatch_worker.default"]


@pytest.mark.django_db
def test_a_server_scoped_probe_reports_stale_beats_without_failing_on_them(settings) -> None:
    """A pod's readiness asks only what that pod needs, so a stopped beat or dispatch worker does not take
    every API pod out of its Service at once (riders would then get no answer at all)."""
    settings.ROCHDALE_HEARTBEAT_STALE_S = 5.0
    _beat_at(heartbeats.dispatch_worker_key("default"), 12.0)

    server = Client().get(READY, {"scope": "server"}, HTTP_HOST=PROBE_HOST)
    whole = Client().get(READY, HTTP_HOST=PROBE_HOST)

    assert server.status_code == 200, server.json()
    assert server.json()["status"] == "ok" and server.json()["failing"] == []
    assert server.json()["heartbeats"]["dispatch_worker"]["default"]["status"] == "stale"
    assert whole.status_code == 503
    assert "dispatch_worker.default" in whole.json()["failing"]
    # The same answer from the view the schema describes.
    view = Client().get(READY + "?scope=server")
    assert (view.status_code, view.json()["failing"]) == (200, [])
    refused = Client().get(READY, {"scope": "pod"}, HTTP_HOST=PROBE_HOST)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_input"


@pytest.mark.django_db
def test_the_views_in_the_schema_give_the_middlewares_body() -> None:
    from rest_framework.test import APIRequestFactory

    from mobile_api.views_health import LivenessView, ReadinessView

    _beat_all_now()
    factory = APIRequestFactory()
    through_view = ReadinessView.as_view()(factory.get(READY))
    through_middleware = Client().get(READY, HTTP_HOST=PROBE_HOST).json()
    assert through_view.status_code == 200
    assert through_view.data["failing"] == through_middleware["failing"] == []
    assert through_view.data.keys() == through_middleware.keys()
    assert LivenessView.as_view()(factory.get(LIVE)).data == {"status": "ok"}

    schema = Client().get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    assert schema["paths"]["/api/v1/health/ready"]["get"]["operationId"] == "health_ready"
    assert set(schema["paths"]["/api/v1/health/ready"]["get"]["responses"]) == {"200", "400", "503"}
    assert schema["paths"]["/api/v1/health/live"]["get"]["operationId"] == "health_live"


@pytest.mark.django_db
def test_readiness_says_redis_is_down_when_it_is(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    body = Client().get(READY).json()
    assert body["redis"] == "down"
    assert body["heartbeats"]["celery_worker"] == {"status": "down", "age_s": None}
    assert "redis" in body["failing"]


@pytest.mark.django_db
def test_process_alive_says_why_a_heartbeat_is_not_fresh(settings, capsys) -> None:
    settings.ROCHDALE_HEARTBEAT_STALE_S = 5.0
    # A dispatch worker, active or standby, by its own host's key: the region's (the active worker's) beat
    # must not keep a hung standby alive, nor a standby fail for not being the active one.
    own = heartbeats.host_key(heartbeats.dispatch_worker_key("north"))
    _beat_at(heartbeats.dispatch_worker_key("north"), 0.0)
    with pytest.raises(SystemExit):
        call_command("process_alive", "--role", "dispatch", "--region", "north")
    assert f"no heartbeat at {own}" in capsys.readouterr().err
    _beat_at(own, 1.0)
    call_command("process_alive", "--role", "dispatch", "--region", "north")
    assert f"dispatch alive: {own}" in capsys.readouterr().out

    _beat_at(own, 9.0)
    with pytest.raises(SystemExit) as exited:
        call_command("process_alive", "--role", "dispatch", "--region", "north")
    assert exited.value.code == 1
    assert f"{own} last beat 9.0 s ago (stale after 5 s)" in capsys.readouterr().err

    # A Celery worker is judged by its own container's key, not another replica's shared beat.
    _beat_at(heartbeats.CELERY_WORKER_KEY, 0.0)
    with pytest.raises(SystemExit):
        call_command("process_alive", "--role", "worker")
    assert f"no heartbeat at rd:hb:celery-worker:{heartbeats.this_host()}" in capsys.readouterr().err
    _beat_at(heartbeats.host_key(heartbeats.CELERY_WORKER_KEY), 0.0)
    call_command("process_alive", "--role", "worker")


@pytest.mark.django_db
def test_process_alive_exit_codes_from_the_command_line() -> None:
    def process_alive(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "process_alive", *arguments],
            cwd=REPO,
            env=_server_env(None),
            capture_output=True,
            text=True,
            timeout=30,
        )

    _beat_at(heartbeats.host_key(heartbeats.CELERY_BEAT_KEY), 0.0)
    alive = process_alive("--role", "beat")
    dead = process_alive("--role", "dispatch", "--region", "nowhere")
    assert alive.returncode == 0, alive.stderr
    assert dead.returncode == 1
    assert dead.stderr.strip().splitlines() == [
        f"dispatch not alive: no heartbeat at rd:{{nowhere}}:worker:{heartbeats.this_host()}"
    ]


STALE_S = 2.0
PROCESS_ENV = {"ROCHDALE_HEARTBEAT_INTERVAL_S": "0.5", "ROCHDALE_HEARTBEAT_STALE_S": str(STALE_S)}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_readiness_fails_when_the_dispatch_worker_stops_beating_and_passes_when_it_returns() -> None:
    def ready() -> httpx.Response:
        return httpx.get(server.url + READY, headers={"Host": PROBE_HOST}, timeout=5)

    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # Celery starts first (its processes take longest) and comes up while the others do.
        for arguments in (
            ("worker", "--loglevel=WARNING", "--concurrency=1", "--without-gossip", "--without-mingle"),
            ("beat", "--loglevel=WARNING", f"--schedule={directory / 'beat-schedule'}"),
        ):
            stack.enter_context(celery_process(*arguments, extra_env=PROCESS_ENV))
        server = stack.enter_context(start_asgi_server(extra_env=PROCESS_ENV))
        worker = stack.enter_context(dispatch_worker(extra_env=PROCESS_ENV))

        wait_until(lambda: ready().status_code == 200, timeout_s=30, what="readiness with every process up")
        beats = ready().json()["heartbeats"]
        assert beats["celery_worker"]["status"] == beats["celery_beat"]["status"] == "ok"

        kill_group(worker.process)  # kill -9: no goodbye, the heartbeat just stops
        killed_at = time.monotonic()

        def failing_answer() -> dict | None:
            answer = ready()
            return answer.json() if answer.status_code == 503 else None

        failing = wait_until(
            failing_answer,
            timeout_s=STALE_S + 5,
            what="readiness failing after the dispatch worker died",
        )
        assert time.monotonic() - killed_at <= STALE_S + 2
        assert failing["failing"] == ["dispatch_worker.default"]
        assert failing["heartbeats"]["dispatch_worker"]["default"]["status"] == "stale"

        with dispatch_worker(extra_env=PROCESS_ENV):
            wait_until(lambda: ready().status_code == 200, timeout_s=20, what="readiness after the restart")
