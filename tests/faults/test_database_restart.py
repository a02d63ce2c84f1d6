"""PostgreSQL restarted (and once killed -9) under a read load: no request answers 500; and a connection
killed under one request is retried only where replaying it is safe.

A real server (`python -m backend.serve`, a psycopg pool of 16 per process) serves a PostgreSQL cluster of
this test's own (tests/faults/procs.py `private_postgres`), migrated once per module and copied per test
with `createdb -T`. Four threads read `GET /api/v1/me` and `GET /api/v1/trips` as a signed-in rider while
the cluster is restarted with `pg_ctl restart -m fast`, or its postmaster killed with -9 and started again.

Measured on the code before the fix: 9 of 3,578 requests answered 500 after a `pg_ctl restart` (a stale
pooled connection used once); here every one of them must be answered 200, and the cluster's data must
still meet the invariants. On the same code with only the pool's check on getconn (no retry middleware),
1 or 2 of ~290 reads per fault still met a connection that died under them (503).

The last tests make that case deterministic against the test database: the request waits on a table lock
this test holds, its backend is terminated (`pg_terminate_backend`, what a restart does to it), and the
server must run a read or a keyed write again (and wait again), but answer a write without a key 503.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
from django import db as django_db
from psycopg_pool import PoolTimeout

from mobile_api.db_retry import database_connection_lost
from tests.faults.procs import (
    PostgresCluster,
    assert_invariants_in,
    migrate_database,
    private_postgres,
    wait_until,
)
from tests.live_server import LiveServer, start_asgi_server

pytestmark = pytest.mark.e2e

TEMPLATE = "rochdale_migrated"
READERS = 4
READS_BEFORE_FAULT = 80
READS_AFTER_FAULT = 200
LOAD_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def migrated_cluster() -> Iterator[PostgresCluster]:
    """One private cluster per module with a migrated template database (migrations take most of the
    time; each test copies the template instead)."""
    with private_postgres() as cluster:
        migrate_database(cluster.createdb(TEMPLATE))
        yield cluster


@pytest.fixture
def database_url(migrated_cluster: PostgresCluster) -> str:
    return migrated_cluster.createdb(f"rochdale_{uuid.uuid4().hex[:8]}", template=TEMPLATE)


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with start_asgi_server(extra_env={"DATABASE_URL": database_url}) as live:
        yield live


@dataclass
class ReadLoad:
    """Answers of the read threads: (seconds the request took, status code or the exception's name)."""

    answers: list[tuple[float, int | str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, took_s: float, outcome: int | str) -> None:
        with self.lock:
            self.answers.append((took_s, outcome))

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def outcomes(self) -> Counter:
        with self.lock:
            return Counter(outcome for _, outcome in self.answers)

    def slowest_s(self) -> float:
        with self.lock:
            return max(took for took, _ in self.answers)

    def summary(self, server: LiveServer) -> str:
        retried = server.log().count("running it again on a fresh connection")
        slowest = f"slowest {self.slowest_s():.2f} s"
        return f"{dict(self.outcomes())}, {slowest}, {retried} run again after their connection died"


def signed_in_rider(server: LiveServer) -> dict[str, str]:
    phone, password = "+16465550199", "a long pass phrase"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        registered = client.post(
            "/api/v1/auth/register", json={"phone": phone, "password": password, "name": "R", "role": "rider"}
        )
        assert registered.status_code == 201, registered.text
        tokens = client.post("/api/v1/auth/token", json={"phone": phone, "password": password})
        assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access']}"}


def read_until_stopped(server: LiveServer, headers: dict[str, str], load: ReadLoad) -> None:
    paths = ["/api/v1/me", "/api/v1/trips"]
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        turn = 0
        while not load.stop.is_set():
            began = time.monotonic()
            try:
                answer = client.get(paths[turn % 2])
                load.record(time.monotonic() - began, answer.status_code)
            except httpx.HTTPError as exc:
                load.record(time.monotonic() - began, type(exc).__name__)
            turn += 1
            time.sleep(0.005)


def under_read_load(server: LiveServer, fault: Callable[[], None]) -> ReadLoad:
    """Read with READERS threads; run `fault` after READS_BEFORE_FAULT answers and stop once
    READS_AFTER_FAULT more have come in after it returned."""
    headers = signed_in_rider(server)
    load = ReadLoad()
    readers = [
        threading.Thread(target=read_until_stopped, args=(server, headers, load), daemon=True)
        for _ in range(READERS)
    ]
    for reader in readers:
        reader.start()
    try:
        wait_until(lambda: load.count() >= READS_BEFORE_FAULT, timeout_s=30, what="the first reads")
        fault()
        after = load.count()
        wait_until(
            lambda: load.count() >= after + READS_AFTER_FAULT,
            timeout_s=LOAD_TIMEOUT_S,
            what=f"{READS_AFTER_FAULT} reads after the fault",
        )
    finally:
        load.stop.set()
        for reader in readers:
            reader.join(timeout=40)
    return load


def test_reads_survive_a_fast_restart(migrated_cluster, database_url, server):
    load = under_read_load(server, migrated_cluster.restart)

    print(f"pg_ctl restart -m fast under {READERS} readers: {load.summary(server)}")
    assert set(load.outcomes()) == {200}, f"{load.summary(server)}\n{server.log()[-4000:]}"
    assert_invariants_in(database_url)


def test_reads_survive_the_postmaster_killed_and_started_again(migrated_cluster, database_url, server):
    def crash_and_start() -> None:
        migrated_cluster.kill_postmaster()
        migrated_cluster.start()

    load = under_read_load(server, crash_and_start)

    print(f"kill -9 of the postmaster, then start, under {READERS} readers: {load.summary(server)}")
    assert set(load.outcomes()) == {200}, f"{load.summary(server)}\n{server.log()[-4000:]}"
    assert_invariants_in(database_url)


# --- a connection that dies under one request -------------------------------------------------------------


def _as_django_raises(driver_error: Exception) -> Exception:
    """What Django's error wrapper raises for a driver error: its own class, caused by the driver's."""
    wrapped = django_db.OperationalError(str(driver_error))
    wrapped.__cause__ = driver_error
    return wrapped


@pytest.mark.parametrize(
    ("driver_error", "lost"),
    [
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.CrashShutdown("terminating connection due to unexpected postmaster exit"), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (PoolTimeout("couldn't get a connection after 10.00 sec"), False),
    ],
)
def test_only_a_connection_that_died_counts_as_lost(driver_error, lost):
    assert database_connection_lost(_as_django_raises(driver_error)) is lost


def _test_database_conninfo() -> dict[str, str]:
    from django.db import connection

    database = connection.settings_dict
    return {
        "host": database["HOST"] or "localhost",
        "port": str(database["PORT"] or 5432),
        "user": database["USER"] or "postgres",
        "password": database["PASSWORD"] or "",
        "dbname": database["NAME"],
    }


@contextlib.contextmanager
def table_locked(table: str) -> Iterator[psycopg.Connection]:
    """A transaction of this test holding ACCESS EXCLUSIVE on `table` until the block ends (or it is rolled
    back earlier): every query of the server that touches the table waits."""
    holder = psycopg.connect(**_test_database_conninfo())
    try:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield holder
    finally:
        holder.rollback()
        holder.close()


def waiting_backends(monitor: psycopg.Connection) -> list[int]:
    """Backends of the test database waiting for a lock (the server's requests behind `table_locked`)."""
    rows = monitor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' ORDER BY pid"
    ).fetchall()
    return [pid for (pid,) in rows]


@dataclass
class PendingRequest:
    thread: threading.Thread
    answers: list[httpx.Response]

    def answer(self, *, timeout_s: float) -> httpx.Response:
        self.thread.join(timeout=timeout_s)
        assert self.answers, f"no answer within {timeout_s} s"
        return self.answers[0]


def send_in_background(method: str, url: str, **kwargs: object) -> PendingRequest:
    answers: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(httpx.request(method, url, timeout=30, **kwargs)), daemon=True
    )
    thread.start()
    return PendingRequest(thread, answers)


def kill_the_connection_under(
    pending: PendingRequest, holder: psycopg.Connection, monitor: psycopg.Connection
) -> list[int] | None:
    """Terminate the backend the pending request waits on; return the backend its replay then waits on
    (released at once), or None when the request answered without another attempt."""
    first = wait_until(lambda: waiting_backends(monitor), timeout_s=15, what="the request waits on the lock")
    monitor.execute("SELECT pg_terminate_backend(%s)", [first[0]])

    def replay_waits_or_request_answered() -> list[int] | bool:
        replay = [pid for pid in waiting_backends(monitor) if pid not in first]
        return replay or not pending.thread.is_alive()

    outcome = wait_until(replay_waits_or_request_answered, timeout_s=15, what="a replay or an answer")
    holder.rollback()  # the lock goes: a replay proceeds
    return outcome if isinstance(outcome, list) else None


@pytest.fixture
def server_on_test_database(transactional_db) -> Iterator[LiveServer]:
    with start_asgi_server() as live:
        yield live


@pytest.fixture
def monitor() -> Iterator[psycopg.Connection]:
    with psycopg.connect(**_test_database_conninfo(), autocommit=True) as connection:
        yield connection


def _bearer(user: object) -> dict[str, str]:
    from rest_framework_simplejwt.tokens import RefreshToken

    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def test_a_read_whose_connection_dies_is_run_again(server_on_test_database, monitor, rider):
    me, headers = f"{server_on_test_database.url}/api/v1/me", _bearer(rider)
    with table_locked("accounts_user") as holder:
        pending = send_in_background("GET", me, headers=headers)
        replay = kill_the_connection_under(pending, holder, monitor)
    answer = pending.answer(timeout_s=20)

    assert replay, "the read was not run again"
    assert answer.status_code == 200 and answer.json()["id"] == str(rider.id)


def test_a_keyed_trip_request_whose_connection_dies_is_run_again_once(
    server_on_test_database, monitor, rider, service_area
):
    from dispatch.models import Trip
    from tests.mobile_api.builders import DROPOFF, PICKUP

    url = f"{server_on_test_database.url}/api/v1/trips"
    headers = {**_bearer(rider), "Idempotency-Key": "lost-connection-1"}
    body = {"pickup": PICKUP, "dropoff": DROPOFF}
    with table_locked("accounts_user") as holder:
        pending = send_in_background("POST", url, headers=headers, json=body)
        replay = kill_the_connection_under(pending, holder, monitor)
    answer = pending.answer(timeout_s=20)
    again = httpx.post(url, headers=headers, json=body, timeout=10)

    assert replay, "the keyed write was not run again"
    assert answer.status_code == 201, answer.text
    assert again.status_code == 201 and again.json() == answer.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Trip.objects.filter(rider=rider).count() == 1


def test_a_write_without_a_key_whose_connection_dies_is_not_run_again(server_on_test_database, monitor):
    from backend.accounts.models import User

    phone = "+16465550198"
    body = {"phone": phone, "password": "a long pass phrase", "name": "W", "role": "rider"}
    with table_locked("accounts_user") as holder:
        pending = send_in_background("POST", f"{server_on_test_database.url}/api/v1/auth/register", json=body)
        replay = kill_the_connection_under(pending, holder, monitor)
    answer = pending.answer(timeout_s=20)

    assert replay is None, "a write without a key was run a second time"
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "service_unavailable" and error["details"]["service"] == "database"
    assert int(answer.headers["Retry-After"]) >= 1
    assert not User.objects.filter(phone=phone).exists()
