"""A socket server killed with -9: its drivers' presence ends within the grace, as a clean disconnect's would.

Real processes on the test database and this run's Redis database: two servers (`python -m backend.serve`),
a Celery worker and beat as production runs them (beat's `presence-sweep` finds the dead server's lease),
and native-app websockets (no Origin header). Two drivers are online on server 1, which is killed; one of
them reconnects to server 2 within the grace and must stay online; the other must go offline, no sooner
than the grace and no later than the grace plus the lease.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.faults.invariants import assert_invariants
from tests.faults.procs import celery_worker_and_beat, wait_until
from tests.live_server import LiveServer, start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GRACE_S = 4.0
LEASE_S = 4.0
RENEW_S = 1.0
SWEEP_S = 1.0
TIMINGS = {
    "ROCHDALE_PRESENCE_GRACE_S": str(int(GRACE_S)),
    "ROCHDALE_SERVER_LEASE_S": str(LEASE_S),
    "ROCHDALE_SERVER_LEASE_RENEW_S": str(RENEW_S),
    "ROCHDALE_PRESENCE_SWEEP_S": str(SWEEP_S),
}


def _native_socket(server: LiveServer, user) -> ClientConnection:
    """A driver socket as a native app opens it: a fresh ticket and no Origin header."""
    from backend.accounts.tickets import ticket_issue

    ticket, _ = ticket_issue(user_id=user.id)
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/driver/?ticket={ticket}", open_timeout=10, close_timeout=1
    )


def _command(socket: ClientConnection, frame: dict, ref: str) -> dict:
    socket.send(json.dumps({**frame, "ref": ref}))
    while True:
        answer = json.loads(socket.recv(timeout=10))
        if answer.get("ref") == ref:
            return answer


def _online_with_a_fix(socket: ClientConnection, ref: str) -> None:
    assert _command(socket, {"type": "online"}, ref)["ok"] is True
    now = datetime.now(UTC).isoformat()
    socket.send(json.dumps({"type": "location", "lat": 40.758, "lng": -73.9855, "recorded_at": now}))


def _presence(driver) -> tuple[str, bool]:
    from dispatch.models import DriverPresence

    row = DriverPresence.objects.get(driver_id=driver.id)
    return row.status, row.connected


def _online_sessions(driver) -> int:
    from dispatch.models import PresenceSession

    return PresenceSession.objects.filter(driver_id=driver.id, ended_at__isnull=True).count()


def test_a_killed_servers_drivers_go_offline_within_the_grace_unless_they_reconnect(capsys):
    from tests.factories import DriverFactory

    stays, vanishes = DriverFactory(), DriverFactory()
    with (
        tempfile.TemporaryDirectory(prefix="rochdale-beat-") as directory,
        celery_worker_and_beat(extra_env=TIMINGS, directory=Path(directory)),
        start_asgi_server(extra_env=TIMINGS) as doomed,
        start_asgi_server(extra_env=TIMINGS) as survivor,
        _native_socket(doomed, stays) as first,
        _native_socket(doomed, vanishes) as second,
        contextlib.ExitStack() as later_sockets,
    ):
        _online_with_a_fix(first, "on-1")
        _online_with_a_fix(second, "on-2")
        assert _presence(stays) == _presence(vanishes) == ("online", True)
        time.sleep(RENEW_S * 1.5)  # the lease has been renewed at least once with both sockets

        doomed.process.kill()  # kill -9: no socket is closed by the server, no disconnect runs
        killed_at = time.monotonic()
        doomed.process.wait(timeout=5)
        # One driver's app reconnects to another server within the grace, as apps do.
        again = later_sockets.enter_context(_native_socket(survivor, stays))
        assert _command(again, {"type": "online"}, "back")["ok"] is True

        wait_until(
            lambda: _presence(vanishes) == ("offline", False),
            timeout_s=GRACE_S + LEASE_S + 5,
            what="the vanished driver offline and not connected",
            interval_s=0.05,
        )
        elapsed = time.monotonic() - killed_at
        with capsys.disabled():
            print(
                f"\nserver killed -> its driver offline after {elapsed:.2f} s "
                f"(grace {GRACE_S:g} s, lease {LEASE_S:g} s, renewed every {RENEW_S:g} s, "
                f"sweep every {SWEEP_S:g} s)"
            )
        # Never before the grace (it starts when the dead server would have renewed next, so it is never cut
        # short), never later than the grace plus the lease.
        assert GRACE_S - 0.1 <= elapsed <= GRACE_S + LEASE_S
        assert _online_sessions(vanishes) == 0  # closed as after a clean disconnect

        # The driver who reconnected keeps their place through the dead server's sweep and past the grace.
        time.sleep(max(0.0, GRACE_S + LEASE_S + 2 * SWEEP_S - (time.monotonic() - killed_at)))
        assert _presence(stays) == ("online", True) and _online_sessions(stays) == 1
        assert _command(again, {"type": "offline"}, "done")["ok"] is True
    assert_invariants()
