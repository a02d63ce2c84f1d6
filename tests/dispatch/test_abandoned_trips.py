"""Abandoned trips: the rule that ends trips whose driver vanished, and staff closing a trip (REST and admin).

Drivers vanish the way they do in the field: they go online and accept through the real services, their
socket closes and nothing more is heard. Most tests record the closed socket as PostgreSQL holds it (the
presence row the rule reads); the push test closes a real driver socket. The rule is run with a clock
moved past `ROCHDALE_ABANDONED_TRIP_AFTER_S` instead of the test waiting minutes.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.gis.geos import Point
from django.test import TestCase
from django.utils import timezone

from backend.fares.models import JournalEntry
from dispatch.models import DriverPresence, LocationFix, Offer, Trip, TripEvent
from dispatch.selectors import trip_load
from dispatch.services import abandoned, locations, presence
from dispatch.services.estimates import Place
from dispatch.services.offers import offer_accept
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_cancel, trip_request
from dispatch.state import TripStatus
from governance.models import AuditEntry
from tests.conftest import auth_client_for
from tests.dispatch.conftest import connect, location_frame, receive_type, send
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.mobile_api.builders import DROPOFF, PICKUP, requested_trip

AFTER_S = 300


@pytest.fixture(autouse=True)
def _abandoned_settings(settings):
    settings.ROCHDALE_ABANDONED_TRIP_AFTER_S = AFTER_S
    settings.ROCHDALE_ABANDONED_TRIP_DROPOFF_RADIUS_M = 300


def _later(seconds: float = AFTER_S + 5) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def _go_online(driver, lat: float, lng: float, *, age_s: float = 0.0) -> None:
    """Online (which marks the presence row connected) with one fix, as the driver app does."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        presence.presence_go_online(driver_id=driver.id)
    _record(driver, lat, lng, age_s=age_s)


def _record(driver, lat: float, lng: float, *, age_s: float, accuracy_m: float = 5.0) -> None:
    import asyncio

    fix = locations.Fix(lat, lng, None, None, accuracy_m, time.time() - age_s)
    asyncio.run(locations.LocationRecorder().record(driver_id=driver.id, fix=fix))


def _offer(trip: Trip, driver) -> Offer:
    return Offer.objects.create(
        trip=trip,
        driver=driver,
        expires_at=timezone.now() + timedelta(seconds=15),
        pickup_distance_m=300,
        pickup_eta_s=60,
        rank=1,
        candidates_considered=1,
    )


def _accept(trip: Trip, driver) -> Trip:
    offer = _offer(trip, driver)
    with TestCase.captureOnCommitCallbacks(execute=True):
        offer_accept(driver_id=driver.id, offer_id=offer.id)
    return trip_load(trip.id)


def _socket_closes(driver) -> None:
    """The driver's last socket closed, as the presence row records it (`presence_disconnected`)."""
    DriverPresence.objects.filter(driver_id=driver.id).update(connected=False, disconnected_at=timezone.now())


def _assigned_to_a_driver(*, near=PICKUP):
    """A requested trip accepted by an online driver whose socket is open."""
    rider, driver = RiderFactory(), DriverFactory()
    _go_online(driver, near["lat"], near["lng"])
    trip = _accept(requested_trip(rider), driver)
    assert trip.status == TripStatus.ASSIGNED
    return trip, rider, driver


def _start(trip: Trip, *, started_at: datetime) -> Trip:
    trip_transition(trip_id=trip.id, to=TripStatus.ARRIVED, actor_id=trip.driver_id)
    trip_transition(
        trip_id=trip.id,
        to=TripStatus.IN_PROGRESS,
        actor_id=trip.driver_id,
        fields={"started_at": started_at},
    )
    return trip_load(trip.id)


def _stored_trail(trip: Trip, *, start: dict, end: dict, since: datetime, until: datetime, n: int = 40):
    """The trail as the batched flush stores it: LocationFix rows, and the driver's last fix on presence."""
    step = (until - since) / (n - 1)
    rows = [
        LocationFix(
            driver_id=trip.driver_id,
            trip_id=trip.id,
            point=Point(
                start["lng"] + (end["lng"] - start["lng"]) * i / (n - 1),
                start["lat"] + (end["lat"] - start["lat"]) * i / (n - 1),
                srid=4326,
            ),
            recorded_at=since + step * i,
            accuracy_m=8.0,
        )
        for i in range(n)
    ]
    LocationFix.objects.bulk_create(rows)
    DriverPresence.objects.filter(driver_id=trip.driver_id).update(fix_at=until, location=rows[-1].point)


def _vanished_in_progress(*, trail_end: dict | None):
    """An in-progress trip started an hour ago whose driver's socket closed and last fix was 10 minutes
    ago (the trail, when there is one, runs from the pickup to `trail_end`); Redis has lost the driver."""
    from backend.redis import get_redis
    from dispatch import live

    trip, rider, driver = _assigned_to_a_driver()
    started = timezone.now() - timedelta(minutes=60)
    trip = _start(trip, started_at=started)
    # The driver's own moves are signs of life too: these were made before the start.
    Trip.objects.filter(id=trip.id).update(
        assigned_at=started - timedelta(minutes=5), arrived_at=started - timedelta(minutes=1)
    )
    _socket_closes(driver)
    last_fix = timezone.now() - timedelta(minutes=10)
    if trail_end is not None:
        _stored_trail(trip, start=PICKUP, end=trail_end, since=started, until=last_fix)
    else:
        DriverPresence.objects.filter(driver_id=driver.id).update(fix_at=last_fix)
    DriverPresence.objects.filter(driver_id=driver.id).update(disconnected_at=last_fix, status="offline")
    get_redis().delete(live.driver_key(driver.id), live.trail_key(driver.id))
    return trip, rider, driver, started, last_fix


def _request_again(rider) -> Trip:
    return trip_request(rider_id=rider.id, pickup=Place(**PICKUP), dropoff=Place(**DROPOFF))


def _fare_postings(trip: Trip) -> int:
    return JournalEntry.objects.filter(trip_id=trip.id, kind="trip_fare").count()


def _end_abandoned(now: datetime | None = None) -> dict[str, int]:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return abandoned.abandoned_trips_end(now=now)


# -- the rule: assigned and arrived ---------------------------------------------------------------------


@pytest.mark.django_db
def test_an_assigned_trip_whose_driver_vanished_is_cancelled_by_the_system_without_a_fee():
    from backend.redis import get_redis
    from dispatch import live
    from dispatch.services.presence import sweep_presence

    trip, rider, driver = _assigned_to_a_driver()
    _socket_closes(driver)
    # What already runs every few seconds ends nothing: before this rule the trip stayed assigned forever.
    sweep_presence()
    assert trip_load(trip.id).status == TripStatus.ASSIGNED
    with pytest.raises(Exception) as blocked:
        _request_again(rider)
    assert getattr(blocked.value, "code", None) == "trip_in_progress"

    assert _end_abandoned(_later()) == {"cancelled": 1, "completed": 0, "flagged": 0}

    ended = trip_load(trip.id)
    assert ended.status == TripStatus.CANCELLED and ended.cancelled_by == "system"
    assert ended.cancellation_fee_minor is None
    assert not JournalEntry.objects.filter(trip_id=trip.id).exists()
    event = TripEvent.objects.filter(trip_id=trip.id).last()
    assert event.status == "cancelled" and event.actor_id is None
    assert event.details["cancelled_by"] == "system"
    # The driver is free (their live state names no trip) and the rider can ask again.
    assert get_redis().hget(live.driver_key(driver.id), "trip") == b""
    assert not get_redis().sismember(live.on_trip_key(), str(driver.id))
    assert _request_again(rider).status == TripStatus.REQUESTED
    audit = AuditEntry.objects.get(kind="trip.abandoned_cancelled")
    assert audit.payload["trip_id"] == str(trip.id) and audit.payload["from_status"] == "assigned"


@pytest.mark.django_db
def test_an_arrived_trip_whose_driver_vanished_is_cancelled_too():
    trip, _rider, driver = _assigned_to_a_driver()
    trip_transition(trip_id=trip.id, to=TripStatus.ARRIVED, actor_id=driver.id)
    _socket_closes(driver)
    assert _end_abandoned(_later())["cancelled"] == 1
    assert trip_load(trip.id).status == TripStatus.CANCELLED


@pytest.mark.django_db
def test_a_driver_whose_socket_is_open_is_left_alone_however_long_they_send_no_fix():
    trip, _rider, _driver = _assigned_to_a_driver()
    assert _end_abandoned(_later(3600)) == {"cancelled": 0, "completed": 0, "flagged": 0}
    assert trip_load(trip.id).status == TripStatus.ASSIGNED


@pytest.mark.django_db
def test_a_driver_heard_from_within_the_period_is_left_alone():
    trip, _rider, driver = _assigned_to_a_driver()
    _socket_closes(driver)
    # Disconnected and fixed just now: not yet N minutes of silence.
    assert _end_abandoned(_later(AFTER_S - 30))["cancelled"] == 0
    # A fix arriving later (the app still sends over a new socket that closed again) keeps them.
    _record(driver, PICKUP["lat"] + 0.0001, PICKUP["lng"], age_s=0)
    assert _end_abandoned(_later(AFTER_S - 5))["cancelled"] == 0
    assert trip_load(trip.id).status == TripStatus.ASSIGNED
    assert _end_abandoned(_later(AFTER_S + 5))["cancelled"] == 1


@pytest.mark.django_db
def test_the_last_fix_flushed_to_postgresql_counts_when_redis_has_lost_it():
    from backend.redis import get_redis
    from dispatch.services.locations import flush_pending_fixes

    rider, driver = RiderFactory(), DriverFactory()
    _go_online(driver, PICKUP["lat"], PICKUP["lng"])
    long_ago = timezone.now() - timedelta(seconds=2 * AFTER_S)
    trip = _accept(requested_trip(rider), driver)
    Trip.objects.filter(id=trip.id).update(assigned_at=long_ago)
    _socket_closes(driver)
    DriverPresence.objects.filter(driver_id=driver.id).update(disconnected_at=long_ago)
    flush_pending_fixes()
    get_redis().flushdb()  # Redis restarted empty: the driver's live record and its fix time are gone

    assert _end_abandoned()["cancelled"] == 0  # the fix PostgreSQL holds is a minute old, not N
    assert trip_load(trip.id).status == TripStatus.ASSIGNED
    assert _end_abandoned(_later())["cancelled"] == 1


@pytest.mark.django_db
def test_nothing_is_ended_while_redis_is_unreachable(settings, redis_topology):
    """Drivers cannot report while Redis is down, so their silence then says nothing about them."""
    import socket

    trip, _rider, driver = _assigned_to_a_driver()
    _socket_closes(driver)
    # The single Redis, or the cluster's node the client starts from.
    setting = "ROCHDALE_REDIS_CLUSTER_URL" if redis_topology == "redis-cluster" else "REDIS_URL"
    redis_url = getattr(settings, setting)
    with socket.socket() as probe:  # a port nothing listens on: connections are refused, as when Redis died
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    setattr(settings, setting, f"redis://127.0.0.1:{dead_port}/0")
    assert abandoned.abandoned_trips_end(now=_later()) == {"cancelled": 0, "completed": 0, "flagged": 0}
    assert trip_load(trip.id).status == TripStatus.ASSIGNED
    setattr(settings, setting, redis_url)
    assert _end_abandoned(_later())["cancelled"] == 1


@pytest.mark.django_db
def test_the_rule_is_the_beat_task_and_reads_its_period_from_settings(settings):
    from django.conf import settings as live_settings

    from dispatch import tasks

    assert (
        live_settings.CELERY_BEAT_SCHEDULE["abandoned-trips"]["task"] == "dispatch.tasks.end_abandoned_trips"
    )
    trip, _rider, driver = _assigned_to_a_driver()
    _socket_closes(driver)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.end_abandoned_trips()["cancelled"] == 0
    settings.ROCHDALE_ABANDONED_TRIP_AFTER_S = 0
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.end_abandoned_trips()["cancelled"] == 1
    assert trip_load(trip.id).status == TripStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
async def test_a_driver_whose_real_socket_closed_is_ended_and_the_rider_told_by_trip_updated(seeded):
    rider, driver = await sync_to_async(RiderFactory)(), await sync_to_async(DriverFactory)()
    driver_socket = await connect(driver, "/ws/driver/")
    assert (await send(driver_socket, {"type": "online"}, ref="on"))["ok"] is True
    await send(driver_socket, location_frame(PICKUP["lat"], PICKUP["lng"]))
    trip, offer = await sync_to_async(_requested_with_offer_to)(rider, driver)
    rider_socket = await connect(rider, "/ws/rider/")
    accepted = await send(driver_socket, {"type": "offer.accept", "offer_id": str(offer.id)}, ref="a")
    assert accepted["ok"] is True
    await driver_socket.disconnect()  # the phone dies: the socket is gone and nothing more is heard

    ended = await sync_to_async(abandoned.abandoned_trips_end, thread_sensitive=False)(now=_later())
    assert ended["cancelled"] == 1
    while True:
        update = await receive_type(rider_socket, "trip.updated", timeout=5)
        if update["trip"]["status"] not in {"requested", "assigned"}:
            break
    assert update["trip"]["id"] == str(trip.id)
    assert update["trip"]["status"] == "cancelled" and update["trip"]["cancelled_by"] == "system"
    assert update["trip"]["cancellation_fee"] is None
    await rider_socket.disconnect()


def _requested_with_offer_to(rider, driver) -> tuple[Trip, Offer]:
    trip = requested_trip(rider)
    return trip, _offer(trip, driver)


# -- the rule: in progress -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_in_progress_trip_is_completed_on_its_trail_when_the_trail_reaches_the_dropoff():
    trip, rider, driver, started, last_fix = _vanished_in_progress(trail_end=DROPOFF)

    assert _end_abandoned() == {"cancelled": 0, "completed": 1, "flagged": 0}

    done = trip_load(trip.id)
    assert done.status == TripStatus.COMPLETED and done.cancelled_by is None
    # Measured on the trail: its length, and the time from start to the last fix (not the silent minutes).
    assert 5_000 < done.measured_distance_m < 5_600
    assert done.measured_duration_s == int((last_fix - started).total_seconds())
    assert abs((done.completed_at - last_fix).total_seconds()) < 0.01
    assert done.fare_minor is not None and done.driver_pay_minor >= done.fare_breakdown["floor"]
    assert _fare_postings(trip) == 1
    event = TripEvent.objects.filter(trip_id=trip.id).last()
    assert event.status == "completed" and event.actor_id is None and event.details["measured"] is True
    # Run again: nothing more is posted; the driver and rider are free.
    assert _end_abandoned() == {"cancelled": 0, "completed": 0, "flagged": 0}
    assert _fare_postings(trip) == 1
    assert DriverPresence.objects.get(driver_id=driver.id).idle_since > started
    assert _request_again(rider).status == TripStatus.REQUESTED
    assert AuditEntry.objects.filter(kind="trip.abandoned_completed").count() == 1


@pytest.mark.django_db
def test_a_trail_still_in_redis_counts_for_the_completion():
    near_dropoff = {"lat": DROPOFF["lat"] + 0.004, "lng": DROPOFF["lng"]}
    rider, driver = RiderFactory(), DriverFactory()
    _go_online(driver, near_dropoff["lat"], near_dropoff["lng"], age_s=50)
    trip = _accept(requested_trip(rider), driver)
    trip = _start(trip, started_at=timezone.now() - timedelta(seconds=45))
    for i, age in enumerate((40, 30, 20, 10)):
        _record(driver, near_dropoff["lat"] - 0.001 * (i + 1), DROPOFF["lng"], age_s=age)
    _socket_closes(driver)

    assert _end_abandoned(_later())["completed"] == 1
    done = trip_load(trip.id)
    assert done.status == TripStatus.COMPLETED
    assert 300 < done.measured_distance_m < 370  # four fixes 111 m apart, none of them flushed yet
    assert _fare_postings(trip) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "trail_end",
    [None, {"lat": (PICKUP["lat"] + DROPOFF["lat"]) / 2, "lng": (PICKUP["lng"] + DROPOFF["lng"]) / 2}],
    ids=["no-trail", "trail-ends-half-way"],
)
def test_an_in_progress_trip_whose_trail_is_unusable_is_flagged_for_staff_once(trail_end):
    trip, _rider, driver, _started, _last = _vanished_in_progress(trail_end=trail_end)

    assert _end_abandoned() == {"cancelled": 0, "completed": 0, "flagged": 1}
    assert _end_abandoned() == {"cancelled": 0, "completed": 0, "flagged": 0}  # flagged once, not each run

    still = trip_load(trip.id)
    assert still.status == TripStatus.IN_PROGRESS and _fare_postings(trip) == 0
    flag = AuditEntry.objects.get(kind="trip.abandoned_flagged")
    assert flag.payload["trip_id"] == str(trip.id) and flag.payload["driver_id"] == str(driver.id)
    assert flag.payload["why"] in {"no_usable_trail", "trail_ends_away_from_dropoff"}
    assert [t.id for t in abandoned.trips_needing_staff()] == [trip.id]


# -- staff close: the service and REST ----------------------------------------------------------------------


def _close(client, trip_id, **body):
    return client.post(f"/api/v1/staff/trips/{trip_id}/close", body, format="json")


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def staff_api(staff):
    return auth_client_for(staff)


@pytest.mark.django_db
def test_staff_close_an_assigned_trip_without_charge(staff, staff_api, django_capture_on_commit_callbacks):
    trip, rider, _driver = _assigned_to_a_driver()
    with django_capture_on_commit_callbacks(execute=True):
        answer = _close(staff_api, trip.id, decision="no_charge", reason="Driver's phone died, rider called")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "cancelled" and body["cancelled_by"] == "system"
    assert body["cancellation_fee"] is None and body["fare"] is None
    assert not JournalEntry.objects.filter(trip_id=trip.id).exists()
    event = TripEvent.objects.filter(trip_id=trip.id).last()
    assert event.actor_id == staff.id and event.details["reason"] == "Driver's phone died, rider called"
    audit = AuditEntry.objects.get(kind="trip.closed_by_staff")
    assert audit.payload == {
        "trip_id": str(trip.id),
        "staff_id": str(staff.id),
        "decision": "no_charge",
        "reason": "Driver's phone died, rider called",
        "from_status": "assigned",
        "to_status": "cancelled",
        "fare": None,
    }
    assert _request_again(rider).status == TripStatus.REQUESTED


@pytest.mark.django_db
def test_staff_close_an_in_progress_trip_without_charge_through_the_system_only_move(staff_api):
    trip, rider, _driver, _s, _l = _vanished_in_progress(trail_end=None)
    answer = _close(staff_api, trip.id, decision="no_charge", reason="Rider says the car never moved")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "cancelled" and answer.json()["cancelled_by"] == "system"
    assert _fare_postings(trip) == 0 and not JournalEntry.objects.filter(trip_id=trip.id).exists()
    assert _request_again(rider).status == TripStatus.REQUESTED


@pytest.mark.django_db
def test_staff_charge_the_trail(staff_api):
    trip, _rider, _driver, started, last_fix = _vanished_in_progress(
        trail_end={"lat": (PICKUP["lat"] + DROPOFF["lat"]) / 2, "lng": (PICKUP["lng"] + DROPOFF["lng"]) / 2}
    )
    answer = _close(staff_api, trip.id, decision="charge_trail", reason="Rider confirms the half-way drop")
    assert answer.status_code == 200, answer.content
    done = trip_load(trip.id)
    assert done.status == TripStatus.COMPLETED and 2_500 < done.measured_distance_m < 2_800
    assert done.measured_duration_s == int((last_fix - started).total_seconds())
    assert answer.json()["fare"] == {"amount": done.fare_minor, "currency": done.currency}
    assert _fare_postings(trip) == 1
    audit = AuditEntry.objects.get(kind="trip.closed_by_staff")
    assert audit.payload["fare"] == {"amount": done.fare_minor, "currency": done.currency}


@pytest.mark.django_db
def test_staff_charge_the_estimate(staff_api):
    trip, _rider, _driver, started, _last = _vanished_in_progress(trail_end=None)
    answer = _close(staff_api, trip.id, decision="charge_estimate", reason="Rider confirms arrival")
    assert answer.status_code == 200, answer.content
    done = trip_load(trip.id)
    assert done.status == TripStatus.COMPLETED
    assert done.fare_minor == done.fare_estimate_minor
    assert done.measured_distance_m == done.estimated_distance_m
    assert done.completed_at == started + timedelta(seconds=done.estimated_duration_s)
    assert _fare_postings(trip) == 1


@pytest.mark.django_db
def test_staff_charge_the_trail_refused_without_a_usable_trail(staff_api):
    trip, *_ = _vanished_in_progress(trail_end=None)
    answer = _close(staff_api, trip.id, decision="charge_trail", reason="try the trail")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "trail_unusable"
    assert trip_load(trip.id).status == TripStatus.IN_PROGRESS
    assert not AuditEntry.objects.filter(kind="trip.closed_by_staff").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("decision", ["charge_trail", "charge_estimate"])
def test_a_trip_that_never_started_cannot_be_charged(staff_api, decision):
    trip, *_ = _assigned_to_a_driver()
    answer = _close(staff_api, trip.id, decision=decision, reason="charge it")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "close_decision_not_applicable"
    assert error["details"] == {"status": "assigned", "decision": decision}
    assert trip_load(trip.id).status == TripStatus.ASSIGNED


@pytest.mark.django_db
def test_an_ended_trip_cannot_be_closed(staff_api):
    trip, rider, _driver = _assigned_to_a_driver()
    trip_cancel(trip_id=trip.id, actor_id=rider.id)
    answer = _close(staff_api, trip.id, decision="no_charge", reason="again")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "trip_already_ended"
    assert answer.json()["error"]["details"] == {"status": "cancelled"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "no decision"}, "decision"),
        ({"decision": "refund_twice", "reason": "made up"}, "decision"),
        ({"decision": "no_charge"}, "reason"),
        ({"decision": "no_charge", "reason": "   "}, "reason"),
        ({"decision": "no_charge", "reason": "x" * 501}, "reason"),
        ({"decision": ["no_charge"], "reason": "a list"}, "decision"),
    ],
    ids=["missing-decision", "unknown-decision", "missing-reason", "blank-reason", "long-reason", "list"],
)
def test_bad_input_is_refused_with_the_field_named(staff_api, body, field):
    trip, *_ = _assigned_to_a_driver()
    answer = staff_api.post(f"/api/v1/staff/trips/{trip.id}/close", body, format="json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and field in error["details"]
    assert trip_load(trip.id).status == TripStatus.ASSIGNED


@pytest.mark.django_db
def test_only_staff_close_trips_and_unknown_ids_are_404_for_them(staff_api, api_client):
    trip, rider, driver = _assigned_to_a_driver()
    body = {"decision": "no_charge", "reason": "mine"}
    for user in (rider, driver, RiderFactory()):
        for trip_id in (trip.id, uuid.uuid4()):
            answer = _close(auth_client_for(user), trip_id, **body)
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "permission_denied"
    assert _close(api_client, trip.id, **body).status_code == 401
    unknown = _close(staff_api, uuid.uuid4(), **body)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "trip_not_found"
    assert trip_load(trip.id).status == TripStatus.ASSIGNED


@pytest.mark.django_db
def test_the_service_refuses_a_closer_who_is_not_staff():
    trip, rider, _driver = _assigned_to_a_driver()
    with pytest.raises(Exception) as refused:
        abandoned.trip_close_by_staff(
            trip_id=trip.id, staff_id=rider.id, decision=abandoned.CloseDecision.NO_CHARGE, reason="me"
        )
    assert getattr(refused.value, "code", None) == "staff_only"


@pytest.mark.django_db
def test_riders_and_drivers_still_cannot_cancel_a_started_trip():
    trip, rider, driver, _s, _l = _vanished_in_progress(trail_end=None)
    for actor in (rider, driver):
        with pytest.raises(Exception) as refused:
            trip_cancel(trip_id=trip.id, actor_id=actor.id)
        assert getattr(refused.value, "code", None) == "trip_not_cancellable"
    with pytest.raises(Exception) as refused:
        trip_transition(trip_id=trip.id, to=TripStatus.CANCELLED)
    assert getattr(refused.value, "code", None) == "invalid_transition"
    assert trip_load(trip.id).status == TripStatus.IN_PROGRESS


# -- staff close: the admin action ---------------------------------------------------------------------


@pytest.fixture
def staff_browser(client, staff):
    client.force_login(staff)
    return client


def _admin_action(browser, trips, **form):
    return browser.post(
        "/admin/dispatch/trip/",
        {"action": "close_trips", "_selected_action": [str(t.id) for t in trips], **form},
    )


@pytest.mark.django_db
def test_the_admin_action_asks_for_a_decision_and_reason_then_closes_each_trip(staff_browser, staff):
    first, *_ = _assigned_to_a_driver()
    second, *_ = _vanished_in_progress(trail_end=None)

    form = _admin_action(staff_browser, [first, second])
    assert form.status_code == 200
    html = form.content.decode()
    assert 'name="decision"' in html and 'name="reason"' in html and "no_charge" in html
    assert trip_load(first.id).status == TripStatus.ASSIGNED  # nothing happens before confirming

    done = _admin_action(
        staff_browser, [first, second], apply="1", decision="no_charge", reason="Storm night"
    )
    assert done.status_code == 302
    for trip in (first, second):
        closed = trip_load(trip.id)
        assert closed.status == TripStatus.CANCELLED and closed.cancelled_by == "system"
        assert TripEvent.objects.filter(trip_id=trip.id).last().actor_id == staff.id
    audits = AuditEntry.objects.filter(kind="trip.closed_by_staff")
    assert sorted(a.payload["trip_id"] for a in audits) == sorted([str(first.id), str(second.id)])
    assert all(a.payload["reason"] == "Storm night" for a in audits)


@pytest.mark.django_db
def test_the_admin_action_reports_trips_it_could_not_close_and_needs_a_reason(staff_browser):
    assigned, *_ = _assigned_to_a_driver()
    started, *_ = _vanished_in_progress(trail_end=None)

    blank = _admin_action(staff_browser, [assigned], apply="1", decision="no_charge", reason=" ")
    assert blank.status_code == 200 and trip_load(assigned.id).status == TripStatus.ASSIGNED

    answer = _admin_action(
        staff_browser, [assigned, started], apply="1", decision="charge_estimate", reason="Arrived"
    )
    assert answer.status_code == 302
    messages = [str(m) for m in answer.wsgi_request._messages]
    assert any("close_decision_not_applicable" in m or "never started" in m for m in messages), messages
    assert trip_load(assigned.id).status == TripStatus.ASSIGNED
    assert trip_load(started.id).status == TripStatus.COMPLETED


@pytest.mark.django_db
def test_the_admin_lists_trips_that_need_staff(staff_browser):
    flagged, *_ = _vanished_in_progress(trail_end=None)
    other, *_ = _assigned_to_a_driver()
    assert _end_abandoned()["flagged"] == 1
    page = staff_browser.get("/admin/dispatch/trip/?abandoned=needs_staff")
    assert page.status_code == 200
    html = page.content.decode()
    assert str(flagged.id) in html and str(other.id) not in html


@pytest.mark.django_db
def test_the_staff_route_is_documented_with_its_error_codes(api_client):
    schema = api_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/staff/trips/{trip_id}/close"]["post"]
    assert operation["tags"] == ["staff"]
    assert operation["requestBody"]["content"]["application/json"]["examples"]
    responses = operation["responses"]
    documented = {
        status: {
            example["value"]["error"]["code"]
            for example in responses[status]["content"]["application/json"]["examples"].values()
        }
        for status in ("400", "403", "404", "409", "422")
    }
    assert {"invalid_input"} <= documented["400"] and documented["403"] == {"permission_denied"}
    assert documented["404"] == {"trip_not_found"}
    assert documented["409"] >= {"trip_already_ended", "close_decision_not_applicable"}
    assert documented["422"] >= {"trail_unusable"}
