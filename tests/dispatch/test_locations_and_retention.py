"""Trail measurement (jitter filtered), batched persistence, and retention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip


def _point(lat, lng, seconds, accuracy=5.0):
    from dispatch.services.driving import TrailPoint

    return TrailPoint(lat, lng, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds), accuracy)


def test_trail_distance_ignores_jitter_and_inaccurate_fixes():
    from dispatch.services.driving import trail_distance_m

    step = 100.0 / 111_195.0
    straight = [_point(40.0 + i * step, -73.0, i * 4) for i in range(11)]
    assert trail_distance_m(straight) == pytest.approx(1000, abs=3)
    wobble = [_point(40.0 + 10 * step + d, -73.0, 44 + i) for i, d in enumerate((2e-5, -2e-5, 1e-5, -3e-5))]
    wild = [_point(41.0, -73.0, 60, accuracy=500.0)]
    assert trail_distance_m(straight + wobble + wild) == pytest.approx(1000, abs=3)
    assert trail_distance_m(straight[:1]) is None
    assert trail_distance_m([]) is None


@pytest.mark.django_db
def test_flush_persists_fixes_in_bulk_and_updates_presence_once(seeded, driver):
    from backend.redis import get_redis
    from dispatch.live import flush_cursor_key
    from dispatch.models import DriverPresence, LocationFix
    from dispatch.services.locations import Fix, LocationRecorder, flush_pending_fixes

    driver_online_at(driver, *CENTRE, age_s=20)

    async def more() -> None:
        recorder = LocationRecorder()
        for i in range(1, 6):
            await recorder.record(
                driver_id=driver.id,
                fix=Fix(CENTRE[0] + i * 0.0002, CENTRE[1], 90.0, 8.0, 4.0, time.time() - 20 + i * 4),
            )
        await recorder.close()

    asyncio.run(more())
    assert flush_pending_fixes() == 6
    assert flush_pending_fixes() == 0  # nothing twice
    assert get_redis().get(flush_cursor_key()) is not None
    fixes = LocationFix.objects.filter(driver_id=driver.id).order_by("recorded_at")
    assert fixes.count() == 6 and all(f.trip_id is None for f in fixes)
    presence = DriverPresence.objects.get(driver_id=driver.id)
    assert presence.location.y == pytest.approx(CENTRE[0] + 0.001)
    assert presence.heading == 90.0 and presence.speed_mps == 8.0 and presence.accuracy_m == 4.0
    assert presence.fix_at == fixes.last().recorded_at


@pytest.mark.django_db
def test_fixes_of_one_loop_turn_share_a_pipeline_and_each_gets_its_own_verdict(seeded, driver):
    """Three sockets' fixes in one turn of the loop: one stored, one out of order, one impossible jump."""
    from backend.errors import InvalidInput
    from backend.redis import get_redis
    from dispatch.live import driver_key
    from dispatch.services.locations import Fix, LocationRecorder, fix_pipeline
    from tests.factories import DriverFactory

    stale_driver, jumping_driver = DriverFactory(), DriverFactory()
    for someone in (driver, stale_driver, jumping_driver):
        driver_online_at(someone, *CENTRE, age_s=20)
    sent_batches: list[int] = []

    async def together() -> list[object]:
        pipeline = fix_pipeline()
        execute = pipeline._execute

        async def counting(batch):
            sent_batches.append(len(batch))
            return await execute(batch)

        pipeline._execute = counting
        recorder = LocationRecorder()
        now = time.time()
        return await asyncio.gather(
            recorder.record(
                driver_id=driver.id, fix=Fix(CENTRE[0] + 0.0003, CENTRE[1], None, None, 5.0, now)
            ),
            recorder.record(driver_id=stale_driver.id, fix=Fix(*CENTRE, None, None, 5.0, now - 30)),
            recorder.record(
                driver_id=jumping_driver.id, fix=Fix(CENTRE[0] + 0.5, CENTRE[1], None, None, 5.0, now)
            ),
            return_exceptions=True,
        )

    stored, stale, jump = asyncio.run(together())
    assert sent_batches == [3]  # one round trip for the three fixes
    assert stored is None
    assert isinstance(stale, InvalidInput) and stale.code == "fix_out_of_order"
    assert isinstance(jump, InvalidInput) and jump.code == "implausible_jump"
    assert float(get_redis().hget(driver_key(driver.id), "lat")) == pytest.approx(CENTRE[0] + 0.0003)
    assert float(get_redis().hget(driver_key(jumping_driver.id), "lat")) == pytest.approx(CENTRE[0])


@pytest.mark.django_db
def test_fixes_still_store_after_redis_lost_the_script(seeded, driver):
    """A Redis restart (or SCRIPT FLUSH) forgets the fix script; the next batch loads it again and lands."""
    from backend.redis import get_redis
    from dispatch.live import driver_key
    from dispatch.services.locations import Fix, LocationRecorder

    driver_online_at(driver, *CENTRE, age_s=20)
    get_redis().script_flush()

    async def record() -> None:
        await LocationRecorder().record(
            driver_id=driver.id, fix=Fix(CENTRE[0] + 0.0002, CENTRE[1], None, None, 5.0, time.time())
        )

    asyncio.run(record())
    assert float(get_redis().hget(driver_key(driver.id), "lat")) == pytest.approx(CENTRE[0] + 0.0002)


@pytest.mark.django_db
def test_retention_purges_old_off_trip_fixes_and_reduces_old_traces(seeded, rider, driver):
    from django.contrib.gis.geos import Point

    from dispatch.models import LocationFix, Trip
    from dispatch.tasks import location_retention

    now = timezone.now()
    old_trip = make_trip(rider)
    Trip.objects.filter(id=old_trip.id).update(status="unfulfilled", ended_at=now - timedelta(days=91))
    recent_trip = make_trip(
        rider.__class__.objects.create_user(phone="+12125559999", name="R2", is_rider=True)
    )
    Trip.objects.filter(id=recent_trip.id).update(status="unfulfilled", ended_at=now - timedelta(days=1))

    def fix(trip, minutes_ago, received_hours_ago=0):
        return LocationFix(
            driver=driver,
            trip=trip,
            point=Point(CENTRE[1], CENTRE[0], srid=4326),
            recorded_at=now - timedelta(minutes=minutes_ago),
            received_at=now - timedelta(hours=received_hours_ago),
        )

    LocationFix.objects.bulk_create(
        [fix(old_trip, m) for m in range(10)]
        + [fix(recent_trip, m) for m in range(5)]
        + [fix(None, 0, received_hours_ago=49), fix(None, 0, received_hours_ago=47)]
    )
    outcome = location_retention()
    assert outcome == {"off_trip_deleted": 1, "trace_fixes_deleted": 8}
    kept = LocationFix.objects.filter(trip=old_trip).order_by("recorded_at")
    assert [round((now - f.recorded_at).total_seconds() / 60) for f in kept] == [9, 0]
    assert LocationFix.objects.filter(trip=recent_trip).count() == 5
    assert LocationFix.objects.filter(trip__isnull=True).count() == 1


# -- fixes and the driver's live record ----------------------------------------------------------------------


def _record(driver, lat: float, lng: float, *, at: float | None = None) -> None:
    from dispatch.services.locations import Fix, LocationRecorder

    fix = Fix(lat, lng, None, None, 5.0, time.time() if at is None else at)
    asyncio.run(LocationRecorder().record(driver_id=driver.id, fix=fix))


@pytest.mark.django_db
def test_a_fix_from_a_driver_neither_online_nor_on_a_trip_is_refused_and_not_stored(seeded, driver):
    from backend.errors import DomainError
    from backend.redis import get_redis
    from dispatch.live import driver_key, fixes_key
    from dispatch.models import LocationFix
    from dispatch.services.locations import flush_pending_fixes

    for attempt in range(3):
        with pytest.raises(DomainError) as refused:
            _record(driver, *CENTRE, at=time.time() - 10 + attempt)
        assert refused.value.code == "not_online"
    assert get_redis().xlen(fixes_key()) == 0
    assert get_redis().hget(driver_key(driver.id), "lat") is None
    assert flush_pending_fixes() == 0
    assert not LocationFix.objects.filter(driver_id=driver.id).exists()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_answers_a_fix_before_online_with_not_online(seeded, driver):
    from tests.dispatch.conftest import connect, location_frame, receive_type, send

    socket = await connect(driver, "/ws/driver/")
    await socket.send_json_to(location_frame(*CENTRE, ref="early"))
    error = await receive_type(socket, "error")
    assert (error["code"], error["ref"]) == ("not_online", "early")
    assert (await send(socket, {"type": "online"}, ref="on"))["ok"] is True
    await socket.send_json_to(location_frame(*CENTRE, ref="now"))
    assert await socket.receive_nothing(timeout=0.3)  # online: stored, no answer
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)  # the fix path reads PostgreSQL from a pool thread
def test_a_fix_after_redis_lost_the_driver_restores_them_from_postgresql(seeded, driver):
    """Redis forgot everything; the driver's next fix must not make a record without the online flag."""
    from backend.redis import get_redis
    from dispatch.live import available_key, driver_key

    driver_online_at(driver, *CENTRE, age_s=10)
    get_redis().flushdb()
    _record(driver, CENTRE[0] + 0.0002, CENTRE[1])
    state = {k.decode(): v.decode() for k, v in get_redis().hgetall(driver_key(driver.id)).items()}
    assert state["online"] == "1" and state["trip"] == "" and float(state["idle"]) > 0
    assert float(state["lat"]) == pytest.approx(CENTRE[0] + 0.0002)
    assert get_redis().geopos(available_key(), str(driver.id))[0] is not None


@pytest.mark.django_db(transaction=True)  # the fix path reads PostgreSQL from a pool thread
def test_after_redis_lost_an_offline_driver_on_a_trip_still_has_fixes_stored_for_the_trail(
    seeded, rider, driver
):
    from backend.redis import get_redis
    from dispatch.live import driver_key, trail_key
    from dispatch.models import DriverPresence, PresenceStatus

    trip = make_trip(rider, driver=driver, status="in_progress", vehicle=driver.driver_profile.active_vehicle)
    DriverPresence.objects.create(driver=driver, status=PresenceStatus.OFFLINE)
    get_redis().flushdb()
    _record(driver, *CENTRE)
    state = {k.decode(): v.decode() for k, v in get_redis().hgetall(driver_key(driver.id)).items()}
    assert state["online"] == "0" and state["trip"] == str(trip.id) and state["rider"] == str(rider.id)
    assert get_redis().llen(trail_key(driver.id)) == 1


@pytest.mark.django_db(transaction=True)  # the fix path reads PostgreSQL from a pool thread
def test_a_driver_who_is_not_online_is_looked_up_once_then_refused_by_redis_alone(seeded, driver):
    from backend.errors import DomainError
    from dispatch.live import driver_live_state
    from dispatch.models import DriverPresence, PresenceStatus

    with pytest.raises(DomainError):
        _record(driver, *CENTRE, at=time.time() - 5)
    assert driver_live_state(driver.id)["online"] == "0"  # the record PostgreSQL gave, now complete
    # PostgreSQL alone changes (no mirror): a second fix that asked it would now be stored. Refused
    # instead: Redis's complete record answered, without a database read per fix.
    DriverPresence.objects.create(driver=driver, status=PresenceStatus.ONLINE)
    with pytest.raises(DomainError) as again:
        _record(driver, *CENTRE, at=time.time() - 4)
    assert again.value.code == "not_online"


def test_a_restore_fills_in_only_what_redis_lacks():
    """A field present was mirrored after PostgreSQL committed it: newer than the restore's read."""
    import uuid

    from backend.redis import get_redis
    from dispatch.live import (
        RESTORE_SCRIPT,
        DriverLiveRecord,
        available_key,
        driver_key,
        restore_args,
        restore_keys,
    )

    driver_id = str(uuid.uuid4())
    read_before_going_offline = DriverLiveRecord(
        driver_id=driver_id,
        online=True,
        wav=False,
        vehicle_id="",
        idle_since=time.time() - 60,
        trip_id="",
        rider_id="",
        lat=CENTRE[0],
        lng=CENTRE[1],
        fix_at=time.time() - 5,
    )
    client = get_redis()
    client.hset(driver_key(driver_id), "online", "0")  # the go-offline mirror, after that read
    restore = client.register_script(RESTORE_SCRIPT)
    keys, args = restore_keys(read_before_going_offline), restore_args(read_before_going_offline)
    assert restore(keys=keys, args=args) == 1
    state = {k.decode(): v.decode() for k, v in client.hgetall(driver_key(driver_id)).items()}
    assert state["online"] == "0" and state["trip"] == "" and float(state["lat"]) == CENTRE[0]
    assert client.geopos(available_key(), driver_id) == [None]  # offline: not available
    assert restore(keys=keys, args=args) == 0  # complete now: nothing to fill in
