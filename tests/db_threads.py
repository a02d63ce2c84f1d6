"""Transactions in real threads for the race tests: each thread runs on its own database connection, tells
its backend's pid (to watch it wait in pg_stat_activity), and records what its work ended with."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection

WAIT_S = 20.0


@dataclass
class Outcome:
    """What a thread's transaction ended with, and the backend that ran it."""

    pid: int | None = None
    value: object = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def run_in_thread(work: Callable[[], object]) -> tuple[threading.Thread, Outcome]:
    """Start `work` in a thread of its own; returns once the thread's backend pid is known."""
    outcome = Outcome()
    started = threading.Event()

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome.pid = cursor.fetchone()[0]
            started.set()
            outcome.value = work()
        except BaseException as exc:  # the test asserts on whatever ended the thread's work
            outcome.error = exc
        finally:
            started.set()
            outcome.done.set()
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(WAIT_S)
    return thread, outcome


def poll(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def blocked_on_a_lock(pid: int | None) -> bool:
    """The backend is waiting for a lock another transaction holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"
