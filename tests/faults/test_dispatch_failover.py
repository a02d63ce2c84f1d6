"""A region's dispatch worker dies or stalls, and its standby takes over: no offer lost, none doubled, and
never two workers acting at once.

Real processes (`manage.py dispatch_worker`, two or three of them for one region) on the test database and
the test Redis, with drivers online through the real services. The test posts ride requests the way the
rider API does (`trip_requested` after the trip's commit) and reads the offers from PostgreSQL, each marked
with the fencing token of the lease it was made under.

1. kill -9 of the active worker, with an offer open: the standby takes over, offers a trip requested right
   after the kill, and resumes the dead worker's offer timer (the open offer expires on time and the trip
   goes to the next driver).
2. SIGSTOP of the active worker (alive, but not renewing): a standby takes over; on SIGCONT the stalled
   worker finds its lease gone, writes nothing, and stands by.

`FAILOVER_KILLS=N` repeats step 1 N times (`make bench-failover`) and prints every kill-to-offer time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import statistics
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip, seeded  # noqa: F401  (a fixture)
from tests.factories import DriverFactory, RiderFactory
from tests.faults.invariants import assert_invariants
from tests.faults.procs import ManagedProcess, dispatch_worker, manage_process, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OFFER_TIMEOUT_S = 4
KILLS = int(os.environ.get("FAILOVER_KILLS", "1"))


@pytest.fixture
def quick_offers(seeded):  # noqa: F811  (the fixture imported above)
    """The board's dispatch policy with a 4 s offer timeout (so an expiry is seen within the test), and fixes
    fresh for two minutes (the drivers' one fix each must last the whole test)."""
    from dispatch.models import DispatchPolicyVersion

    first = DispatchPolicyVersion.objects.get(version=1)
    DispatchPolicyVersion.objects.create(
        version=2,
        effective_at=timezone.now() - timedelta(seconds=1),
        document={**first.document, "offer_timeout_s": OFFER_TIMEOUT_S, "max_fix_age_s": 120},
    )


def _drivers_online(count: int) -> list:
    drivers = [DriverFactory() for _ in range(count)]
    for n, driver in enumerate(drivers):
        driver_online_at(driver, CENTRE[0] + 0.001 * n, CENTRE[1])
    return drivers


def _request():
    """A ride requested by a rider of its own (one open trip per rider), as the rider API does it."""
    from dispatch.services.dispatching import trip_requested

    trip = make_trip(RiderFactory())
    trip_requested(trip_id=trip.id, pickup=(CENTRE[0], CENTRE[1]), wheelchair_accessible=False)
    return trip


def _cancel(trip) -> None:
    """The rider cancels (withdrawing the trip's open offer), as the app does."""
    from django.test import TestCase

    from dispatch.services.trips import trip_cancel

    with TestCase.captureOnCommitCallbacks(execute=True):
        trip_cancel(trip_id=trip.id, actor_id=trip.rider_id)


def _offers(trip) -> list:
    from dispatch.models import Offer

    return list(Offer.objects.filter(trip=trip).order_by("created_at"))


def _token() -> int:
    from dispatch.services.leases import lease_current

    lease = lease_current("default")
    assert lease is not None
    return lease.token


def _standby(process: ManagedProcess) -> bool:
    if not process.alive():
        raise AssertionError(f"a dispatch worker exited:\n{process.log()}")
    return "standby (the lease is held by another worker)" in process.log()


def _offered(trip, *, count: int = 1):
    return lambda: len(_offers(trip)) >= count and _offers(trip)


def test_the_standby_takes_over_from_a_killed_worker_and_resumes_its_offer_timer(quick_offers):
    _drivers_online(3 + KILLS)
    took_over_s: list[float] = []
    with contextlib.ExitStack() as processes:
        active = processes.enter_context(dispatch_worker())
        standby = processes.enter_context(manage_process("dispatch_worker", "--region", "default"))
        wait_until(lambda: _standby(standby), timeout_s=30, what="the second worker stands by")
        first_token = _token()
        waiting = _request()
        [held] = wait_until(_offered(waiting), timeout_s=10, what="the active worker offers the first trip")
        assert held.lease_token == first_token

        for kill in range(KILLS):
            token_before = _token()
            killed_at = time.monotonic()
            os.killpg(active.pid, signal.SIGKILL)
            asked = _request()  # requested while no worker acts: its request event is never read
            [offer] = wait_until(
                _offered(asked), timeout_s=20, what="the standby offers a trip requested after the kill"
            )
            took_over_s.append(time.monotonic() - killed_at)
            assert offer.lease_token == token_before + 1, "made by the new lease holder"
            _cancel(asked)  # its offers would otherwise go round the drivers the next kills need
            if kill + 1 < KILLS:  # the benchmark's next kill: a fresh standby behind the new active worker
                active = standby
                standby = processes.enter_context(manage_process("dispatch_worker", "--region", "default"))
                wait_until(functools.partial(_standby, standby), timeout_s=30, what="a new standby")

        # The dead worker's offer timer, resumed: the offer expires on time and the trip goes on.
        offers = wait_until(
            _offered(waiting, count=2), timeout_s=OFFER_TIMEOUT_S + 10, what="the first trip offered again"
        )
        expired, again = offers[0], offers[1]  # with many kills, the timers have gone round more than once
        assert expired.status == "expired" and expired.responded_at >= expired.expires_at
        assert again.lease_token > first_token, "re-offered by a worker that took over"
        assert again.created_at >= expired.expires_at

    print(
        f"\nfailover: kill -9 of the active worker -> first offer by the standby ({len(took_over_s)} kills): "
        f"median {statistics.median(took_over_s):.2f} s, max {max(took_over_s):.2f} s "
        f"({', '.join(f'{s:.2f}' for s in took_over_s)})"
    )
    _assert_no_offer_doubled()
    assert_invariants()


def test_a_stalled_worker_is_taken_over_and_writes_nothing_when_it_wakes(quick_offers):
    from dispatch.services.leases import lease_current

    _drivers_online(3)
    with dispatch_worker() as stalled, manage_process("dispatch_worker", "--region", "default") as standby:
        wait_until(lambda: _standby(standby), timeout_s=30, what="the second worker stands by")
        stalled_token = _token()
        os.killpg(stalled.pid, signal.SIGSTOP)  # alive, holding its sockets, renewing nothing
        try:
            wait_until(lambda: _token() > stalled_token, timeout_s=15, what="the standby takes the lease")
            taken_at = lease_current("default").acquired_at
            trip = _request()
            [offer] = wait_until(_offered(trip), timeout_s=10, what="the new active worker offers a trip")
            assert offer.lease_token == stalled_token + 1
        finally:
            os.killpg(stalled.pid, signal.SIGCONT)
        # Awake, it finds its lease gone (renewal, fenced beat or fenced round) and stands by.
        wait_until(lambda: _standby(stalled), timeout_s=15, what="the stalled worker stands by once awake")
        assert "lost the lease" in stalled.log()
        later = _request()
        [offer] = wait_until(_offered(later), timeout_s=10, what="the active worker offers the next trip")
        assert offer.lease_token == stalled_token + 1
        assert lease_current("default").token == stalled_token + 1, "no takeover back and forth"

    from dispatch.models import Offer

    assert not Offer.objects.filter(lease_token=stalled_token, created_at__gte=taken_at).exists(), (
        "the stalled worker made an offer after it had been taken over"
    )
    _assert_no_offer_doubled()


def _assert_no_offer_doubled() -> None:
    from django.db.models import Count

    from dispatch.models import Offer

    doubled = Offer.objects.values("trip", "driver").annotate(n=Count("id")).filter(n__gt=1)
    assert not doubled.exists(), list(doubled)
    # And never two open at once for one trip (the database's constraint) nor made under an old lease after
    # a newer one had made any: tokens only grow along each trip's offers.
    for trip_id in Offer.objects.values_list("trip", flat=True).distinct():
        tokens = list(
            Offer.objects.filter(trip_id=trip_id).order_by("created_at").values_list("lease_token", flat=True)
        )
        assert tokens == sorted(tokens), (trip_id, tokens)
