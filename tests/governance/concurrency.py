"""Real interleavings of governance transactions: each act runs in its own thread (its own database
connection), and a third connection holds a table lock so that one act stops at a chosen statement while
the other runs into it. A monitor connection watches pg_stat_activity to know when both are waiting."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from django.db import connection


def conninfo() -> dict[str, str]:
    """Connection parameters of the test database, for connections outside Django."""
    database = connection.settings_dict
    return {
        "host": database["HOST"] or "localhost",
        "port": str(database["PORT"] or 5432),
        "user": database["USER"] or "postgres",
        "password": database["PASSWORD"] or "",
        "dbname": database["NAME"],
    }


def waiting_on_locks(monitor: psycopg.Connection) -> int:
    """How many other sessions of the test database wait for a lock now."""
    row = monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def run_in_thread(target: Callable[[], object], outcomes: dict[str, object], name: str) -> threading.Thread:
    """Start `target` in a thread; its return value (or the exception it raised) lands in `outcomes[name]`."""

    def body() -> None:
        try:
            outcomes[name] = target()
        except Exception as exc:  # reported by the caller's assertions
            outcomes[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread
