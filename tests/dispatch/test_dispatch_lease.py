"""The dispatch lease (dispatch/services/leases.py): one holder per region, fencing tokens that only grow,
rounds refused under a lost lease, and the worker's standby and step-down in one process.

The real-process failover (kill -9, SIGSTOP) is tests/faults/test_dispatch_failover.py.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.utils import timezone

from tests.dispatch.conftest import CENTRE, adriver_online_at, driver_online_at, make_trip, running_worker
from tests.factories import DriverFactory

in_database = pytest.mark.django_db(transaction=True)


def _expire(region: str = "default") -> None:
    from dispatch.models import DispatchLease

    DispatchLease.objects.filter(region=region).update(expires_at=timezone.now() - timedelta(seconds=1))


@in_database
def test_one_holder_at_a_time_and_every_new_holder_a_higher_token():
    from dispatch.services.leases import lease_acquire, lease_current, lease_release, lease_renew

    first = lease_acquire(region="north", holder="worker:a")
    assert first is not None and first.token == 1
    assert lease_acquire(region="north", holder="worker:b") is None, "held and not expired"
    assert lease_acquire(region="south", holder="worker:b").token == 1, "regions are leased apart"
    assert lease_acquire(region="north", holder="worker:a") == first, "its holder again: the same token"

    _expire("north")
    second = lease_acquire(region="north", holder="worker:b")
    assert second is not None and second.token == 2
    assert not lease_renew(first), "the old holder cannot renew a lease taken over"
    assert lease_renew(second)

    lease_release(second)
    third = lease_acquire(region="north", holder="worker:c")
    assert third is not None and third.token == 3, "a released lease is free at once"
    # A floor from Redis's fence (PostgreSQL restored from an older backup): the token still grows past it.
    _expire("north")
    assert lease_acquire(region="north", holder="worker:d", token_floor=10).token == 11
    assert lease_current("north").holder == "worker:d"


@in_database
def test_a_round_under_a_lost_lease_writes_nothing(seeded, rider):
    from dispatch.models import Offer, Trip
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services.dispatching import (
        candidates_from_redis,
        dispatch_round,
        rank_candidates,
        trip_info,
    )
    from dispatch.services.leases import LeaseLost, lease_acquire

    driver = DriverFactory()
    driver_online_at(driver, *CENTRE)
    trip = make_trip(rider)
    stale = lease_acquire(region="default", holder="worker:stalled")
    _expire()
    current = lease_acquire(region="default", holder="worker:standby")
    policy = dispatch_policy_in_force()
    info = trip_info(trip_id=trip.id)
    ranked = rank_candidates(candidates_from_redis(info, policy=policy), policy=policy)
    assert ranked, "the driver is a candidate"

    with pytest.raises(LeaseLost):
        dispatch_round(trip_id=trip.id, ranked=ranked, policy=policy, lease=stale)
    assert not Offer.objects.exists()
    assert Trip.objects.get(id=trip.id).next_dispatch_at is None, "the trip row is untouched"

    result = dispatch_round(trip_id=trip.id, ranked=ranked, policy=policy, lease=current)
    assert result.kind == "offered"
    assert Offer.objects.get().lease_token == current.token


@in_database
def test_a_takeover_waits_for_the_round_in_flight_then_fences_out_the_next():
    """The fence's row lock is held to the round's commit: a takeover cannot fall between the check and the
    write (it waits), and the old holder's next check fails."""
    from dispatch.services.leases import LeaseLost, lease_acquire, lease_fence

    old = lease_acquire(region="default", holder="worker:old")
    _expire()
    fenced = threading.Event()
    taken: list = []

    def take_over() -> None:
        try:
            fenced.wait(timeout=5)
            taken.append(lease_acquire(region="default", holder="worker:new"))
        finally:
            close_old_connections()

    thief = threading.Thread(target=take_over)
    thief.start()
    with transaction.atomic():
        lease_fence(old)  # the round in flight: checked and locked
        fenced.set()
        thief.join(timeout=0.5)
        assert thief.is_alive(), "the takeover waits for the round's commit"
    thief.join(timeout=5)
    assert taken and taken[0].token == old.token + 1
    with pytest.raises(LeaseLost), transaction.atomic():
        lease_fence(old)


@in_database
def test_the_sweeper_rounds_only_under_the_lease_and_gives_it_back(seeded, rider):
    from dispatch.models import Offer
    from dispatch.services.dispatching import sweep_dispatch
    from dispatch.services.leases import lease_acquire, lease_current

    driver_online_at(DriverFactory(), *CENTRE)
    trip = make_trip(rider, requested_at=timezone.now() - timedelta(seconds=10))
    held = lease_acquire(region="default", holder="worker:beatless")  # a worker without a heartbeat yet
    assert sweep_dispatch()["rounds"] == 0, "the lease is a worker's: the sweeper leaves the trip to it"
    assert not Offer.objects.exists()

    _expire()
    assert sweep_dispatch()["rounds"] == 1
    offer = Offer.objects.get(trip=trip)
    assert offer.lease_token == held.token + 1
    assert lease_current("default").expires_at <= timezone.now(), "released when the sweep ends"


@in_database
async def test_a_second_worker_stands_by_then_takes_over_when_the_first_stops(seeded):
    from dispatch.services.leases import lease_current
    from dispatch.worker import DispatchWorker

    async with running_worker() as first:
        first_token = first.lease.token
        second = DispatchWorker()
        task = asyncio.get_running_loop().create_task(second.run())
        await asyncio.sleep(1.0)
        assert second.lease is None and not second.ready.is_set(), "a standby while the lease is held"
    # `running_worker` stopped the first cleanly: the lease was given back, so within one poll or two.
    await asyncio.wait_for(second.ready.wait(), timeout=5)
    assert second.lease.token == first_token + 1
    assert (await sync_to_async(lease_current)("default")).holder == second.holder
    second.request_stop()
    await asyncio.wait_for(task, timeout=10)


@in_database
async def test_a_worker_taken_over_stops_acting_and_stands_by(seeded, rider):
    from dispatch.models import Offer
    from dispatch.services.leases import lease_acquire, lease_release

    async with running_worker() as worker:
        token = worker.lease.token
        await sync_to_async(_expire)()
        usurper = await sync_to_async(lease_acquire)(region="default", holder="worker:usurper")
        # Its next renewal (every second) finds another holder: it steps down and waits as a standby.
        for _ in range(50):
            if worker.lease is None:
                break
            await asyncio.sleep(0.1)
        assert worker.lease is None and not worker.ready.is_set()
        await adriver_online_at(await sync_to_async(DriverFactory)(), *CENTRE)
        trip = await sync_to_async(make_trip)(rider)
        await asyncio.sleep(1.0)
        assert not await Offer.objects.filter(trip=trip).aexists(), "a standby offers nothing"

        await sync_to_async(lease_release)(usurper)
        await asyncio.wait_for(worker.ready.wait(), timeout=5)
        assert worker.lease.token == token + 2
        for _ in range(100):  # its new term re-arms every requested trip from PostgreSQL
            if await Offer.objects.filter(trip=trip).aexists():
                break
            await asyncio.sleep(0.1)
        offer = await Offer.objects.aget(trip=trip)
        assert offer.lease_token == token + 2
