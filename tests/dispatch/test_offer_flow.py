"""Offers through the running dispatch worker and real sockets: timeout, decline, unfulfilled, withdrawal,
and 50 threads racing to accept one offer."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from tests.dispatch.conftest import (
    CENTRE,
    adriver_online_at,
    connect,
    make_trip,
    receive_type,
    running_worker,
    send,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick_dispatch(settings):
    settings.ROCHDALE_OFFER_TIMEOUT_S = 1
    settings.ROCHDALE_SEARCH_BUDGET_S = 4
    settings.ROCHDALE_DISPATCH_RETRY_S = 0.3


async def _request(rider, **fields):
    from dispatch.services.dispatching import trip_requested

    trip = await sync_to_async(make_trip)(rider, **fields)
    pickup = (trip.pickup.y, trip.pickup.x)
    await sync_to_async(trip_requested)(
        trip_id=trip.id, pickup=pickup, wheelchair_accessible=trip.wheelchair_accessible
    )
    return trip


async def test_timeout_reoffers_decline_moves_on_and_nobody_left_is_unfulfilled(
    seeded, quick_dispatch, rider
):
    from dispatch.models import Offer, Trip
    from tests.factories import DriverFactory

    first, second = await sync_to_async(DriverFactory)(), await sync_to_async(DriverFactory)()
    first_socket = await connect(first, "/ws/driver/")
    second_socket = await connect(second, "/ws/driver/")
    rider_socket = await connect(rider, "/ws/rider/")
    await adriver_online_at(first, CENTRE[0] + 0.001, CENTRE[1])
    await adriver_online_at(second, CENTRE[0] + 0.004, CENTRE[1])
    async with running_worker():
        trip = await _request(rider)
        offer = await receive_type(first_socket, "offer")
        assert offer["trip_id"] == str(trip.id) and offer["pickup"] == {"lat": CENTRE[0], "lng": CENTRE[1]}
        assert offer["fare"] == {"amount": 1500, "currency": "USD"} and offer["driver_pay"]["amount"] > 0
        # The first driver lets it time out; the trip goes to the second.
        expired = await receive_type(first_socket, "offer.expired", timeout=4)
        assert expired == {"type": "offer.expired", "offer_id": offer["offer_id"]}
        second_offer = await receive_type(second_socket, "offer", timeout=4)
        assert second_offer["trip_id"] == str(trip.id)
        answer = await send(
            second_socket, {"type": "offer.decline", "offer_id": second_offer["offer_id"]}, ref="d"
        )
        assert answer["ok"] is True
        # A late accept of the expired offer is refused.
        late = await send(first_socket, {"type": "offer.accept", "offer_id": offer["offer_id"]}, ref="late")
        assert late["type"] == "error" and late["code"] == "offer_not_open"
        # Nobody is left: within the 4 s budget the trip becomes unfulfilled and the rider is told.
        while True:
            update = await receive_type(rider_socket, "trip.updated", timeout=6)
            if update["trip"]["status"] != "requested":
                break
        assert update["trip"]["status"] == "unfulfilled" and update["trip"]["cancelled_by"] is None
    statuses = await sync_to_async(
        lambda: dict(Offer.objects.filter(trip=trip).values_list("driver_id", "status"))
    )()
    assert statuses == {first.id: "expired", second.id: "declined"}
    assert (await sync_to_async(Trip.objects.get)(id=trip.id)).status == "unfulfilled"
    for socket in (first_socket, second_socket, rider_socket):
        await socket.disconnect()


async def test_a_rider_cancelling_withdraws_the_open_offer(seeded, rider, driver):
    from dispatch.services.trips import trip_cancel

    driver_socket = await connect(driver, "/ws/driver/")
    await adriver_online_at(driver, CENTRE[0] + 0.001, CENTRE[1])
    async with running_worker():
        trip = await _request(rider)
        offer = await receive_type(driver_socket, "offer")
        await sync_to_async(trip_cancel)(trip_id=trip.id, actor_id=rider.id)
        withdrawn = await receive_type(driver_socket, "offer.withdrawn")
        assert withdrawn == {"type": "offer.withdrawn", "offer_id": offer["offer_id"]}
        answer = await send(driver_socket, {"type": "offer.accept", "offer_id": offer["offer_id"]}, ref="a")
        assert answer["code"] == "offer_not_open"
    await driver_socket.disconnect()


async def test_a_restarted_worker_rearms_offer_timers_from_postgres(seeded, quick_dispatch, rider):
    from tests.factories import DriverFactory

    first, second = await sync_to_async(DriverFactory)(), await sync_to_async(DriverFactory)()
    second_socket = await connect(second, "/ws/driver/")
    await adriver_online_at(first, CENTRE[0] + 0.001, CENTRE[1])
    await adriver_online_at(second, CENTRE[0] + 0.004, CENTRE[1])
    async with running_worker() as worker:
        trip = await _request(rider)
        for _ in range(100):
            if worker.offer_holders:
                break
            await asyncio.sleep(0.05)
        assert worker.offer_holders == {str(first.id): str(trip.id)}
    # The worker died with the offer open; a new one rebuilds its index from Redis, re-arms the timer, and
    # when the offer runs out the trip goes to the next driver.
    async with running_worker() as worker:
        assert str(second.id) in worker.index
        offer = await receive_type(second_socket, "offer", timeout=5)
        assert offer["trip_id"] == str(trip.id)
    await second_socket.disconnect()


def test_fifty_threads_accepting_one_offer_exactly_one_wins(seeded, rider):
    from django.db import connection

    from backend.errors import Conflict
    from dispatch.models import Offer, Trip
    from dispatch.services.offers import offer_accept
    from tests.factories import DriverFactory

    driver = DriverFactory()
    trip = make_trip(rider)
    offer = Offer.objects.create(
        trip=trip,
        driver=driver,
        expires_at=timezone.now() + timedelta(seconds=30),
        pickup_distance_m=300,
        pickup_eta_s=90,
        rank=1,
        candidates_considered=1,
    )
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def connect_with_retry() -> None:
        # The PostgreSQL server is shared; wait for a free connection slot before joining the race.
        from django.db import OperationalError

        for _ in range(200):
            try:
                connection.ensure_connection()
                return
            except OperationalError:
                time.sleep(0.1)
        connection.ensure_connection()

    def accept() -> None:
        try:
            connect_with_retry()
            barrier.wait()
            try:
                offer_accept(driver_id=driver.id, offer_id=offer.id)
                result = "won"
            except Conflict as exc:
                result = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1
    assert outcomes.count("offer_not_open") == 49
    trip.refresh_from_db()
    assert trip.status == "assigned" and trip.driver_id == driver.id and trip.vehicle_id is not None
    assert Offer.objects.get(id=offer.id).status == "accepted"
    assert Trip.objects.get(id=trip.id).events.filter(status="assigned").count() == 1
