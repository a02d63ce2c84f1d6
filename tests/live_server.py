"""A real ASGI server (uvicorn) in a subprocess, against the test database, for browser and e2e tests.

pytest-django's ``live_server`` is WSGI-only and this project serves ASGI only. Use the fixture with data
committed by the test (it depends on ``transactional_db``)::

    from tests.live_server import live_asgi_server  # noqa: F401  (import the fixture into the module)

    @pytest.mark.browser
    def test_page(live_asgi_server):
        page.goto(live_asgi_server.url + "/board/")

One server is started per test session, on a free port, and stopped when the session ends; it reads the
same test database (``DATABASE_URL`` names it) and Redis database as the tests, with ``DJANGO_DEBUG=1`` so
static files come from the app finders. ``start_asgi_server`` is the context manager behind it, for tests
that need their own server (other settings through ``extra_env``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen

    def log(self) -> str:
        """What the server wrote so far (stderr and stdout share a file), for failure messages."""
        path = getattr(self.process, "log_path", None)
        return Path(path).read_text(errors="replace") if path else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(extra_env: dict[str, str] | None) -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    database = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": (
                f"postgis://{database['USER'] or 'postgres'}@{database['HOST'] or 'localhost'}:"
                f"{database['PORT'] or 5432}/{database['NAME']}"
            ),
            "DATABASE_CONN_MAX_AGE": "0",
            "REDIS_URL": settings.REDIS_URL,
            "ROCHDALE_REDIS_CLUSTER_URL": settings.ROCHDALE_REDIS_CLUSTER_URL,
            "DJANGO_DEBUG": "1",
            "DJANGO_PASSWORD_HASHERS": ",".join(settings.PASSWORD_HASHERS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if database.get("PASSWORD"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace(
            f"{database['USER']}@", f"{database['USER']}:{database['PASSWORD']}@"
        )
    env.update(extra_env or {})
    return env


@contextlib.contextmanager
def start_asgi_server(
    *, extra_env: dict[str, str] | None = None, timeout_s: float = 30
) -> Iterator[LiveServer]:
    """Run the project's server (``python -m backend.serve``) on a free port until the block ends."""
    port = _free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"rochdale-live-asgi-{port}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=_server_env(extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log_path = str(log_path)  # type: ignore[attr-defined]
    server = LiveServer(url=f"http://127.0.0.1:{port}", port=port, process=process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the ASGI server exited early:\n{server.log()}")
            try:
                with urllib.request.urlopen(f"{server.url}/api/v1/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ASGI server did not answer within {timeout_s} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


_session_server: list = []


@pytest.fixture
def live_asgi_server(transactional_db, request: pytest.FixtureRequest) -> LiveServer:
    """The session's live ASGI server (started on first use), serving this test's committed data."""
    if _session_server and _session_server[0][1].process.poll() is not None:
        _session_server.clear()  # it died: start another
    if not _session_server:
        manager = start_asgi_server()
        server = manager.__enter__()
        _session_server.append((manager, server))

        def stop() -> None:
            if _session_server:
                entry = _session_server.pop()
                entry[0].__exit__(None, None, None)

        request.config.add_cleanup(stop)
    return _session_server[0][1]
