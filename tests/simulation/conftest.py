"""A real stack for the simulator's end-to-end and browser tests: uvicorn, the dispatch worker and a Celery
worker with beat, as separate processes on a free port, against pytest-django's test database.

The pure tests in this folder run with `--noconftest`; nothing here imports Django at import time.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEEDUP = 25.0


@dataclass
class LiveStack:
    base_url: str
    port: int
    log_dir: Path

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.log_dir.glob("*.log")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_fare_policy() -> None:
    """A transactional test before us may have truncated the migration-seeded policy: seed it again."""
    from django.apps import apps

    seeding = importlib.import_module("backend.fares.migrations.0002_seed_default_policy")
    seeding.seed_default_policy(apps, None)


def seed_service_area(city) -> None:
    from django.contrib.gis.geos import MultiPolygon, Polygon

    from dispatch.models import ServiceArea

    ServiceArea.objects.update_or_create(
        name="Simulated City",
        defaults={"area": MultiPolygon(Polygon(city.service_area_polygon(), srid=4326), srid=4326)},
    )


@pytest.fixture
def live_stack(transactional_db, tmp_path):
    from django.conf import settings
    from django.db import connection

    ensure_fare_policy()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgis://postgres@localhost:5432/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_CONN_MAX_AGE": "0",
        "CHANNEL_LAYER_PREFIX": f"simtest{uuid.uuid4().hex[:6]}",
        "ROCHDALE_AUTO_APPROVE_DRIVERS": "1",
        "ROCHDALE_REGISTER_RATE": "100000/hour",
        "ROCHDALE_SIGN_IN_RATE_IP": "100000/min",
        "ROCHDALE_SIGN_IN_IP_MAX_FAILURES": "100000",
        "ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS": str(int(SPEEDUP * 30 + 70)),
        # Password hashing is the slowest thing a sign-up does; the test does not measure it.
        "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher,"
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "PYTHONUNBUFFERED": "1",
    }
    python = sys.executable
    commands = {
        "web": [python, "-m", "backend.serve", "--host", "127.0.0.1", "--port", str(port)],
        "dispatch": [python, "manage.py", "dispatch_worker"],
        "celery": [
            python, "-m", "celery", "-A", "backend.celery:app", "worker", "-B", "--loglevel=WARNING",
            "--concurrency=1", "--without-gossip", "--without-mingle",
            f"--schedule={tmp_path / 'beat-schedule'}",
        ],
    }  # fmt: skip
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            processes.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                stack = LiveStack(base_url, port, tmp_path)
                pytest.fail(f"the stack did not come up:\n{stack.logs()}")
            time.sleep(0.3)
        yield LiveStack(base_url, port, tmp_path)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
