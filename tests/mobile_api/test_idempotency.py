"""Idempotency-Key on real PostgreSQL: replay, reuse, in flight, scoping, expiry, and a real race."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from dispatch.models import Trip
from mobile_api.idempotency import idempotency_lock_id
from mobile_api.models import IdempotencyKey
from mobile_api.tasks import expire_idempotency_keys
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.mobile_api.builders import DROPOFF, PICKUP

TRIP = {"pickup": PICKUP, "dropoff": DROPOFF}


@pytest.mark.django_db
def test_trips_need_a_key(rider_client, service_area):
    response = rider_client.post("/api/v1/trips", TRIP, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not Trip.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["x" * 129, "tab\tinside", "ünïcode", " leading-space"])
def test_malformed_keys_are_refused(rider_client, service_area, key):
    response = rider_client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"


@pytest.mark.django_db
def test_the_same_key_and_body_replays_the_first_answer(rider_client, service_area):
    first = rider_client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # Key order and spacing do not make a different request.
    again = rider_client.post(
        "/api/v1/trips",
        {"dropoff": DROPOFF, "pickup": PICKUP},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Trip.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_answers_422(rider_client, service_area):
    rider_client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = rider_client.post(
        "/api/v1/trips",
        {**TRIP, "wheelchair_accessible": True},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert Trip.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_per_user(service_area):
    first, second = RiderFactory(), RiderFactory()
    for rider in (first, second):
        response = auth_client_for(rider).post(
            "/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="same"
        )
        assert response.status_code == 201
        assert response.json()["rider"]["id"] == str(rider.id)
    assert Trip.objects.count() == 2


@pytest.mark.django_db
def test_an_error_is_not_stored_and_the_key_may_be_retried(rider, rider_client, service_area):
    from tests.mobile_api.builders import requested_trip

    open_trip = requested_trip(rider)
    refused = rider_client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "trip_in_progress"
    assert not IdempotencyKey.objects.exists()
    rider_client.post(f"/api/v1/trips/{open_trip.id}/cancel", {}, format="json")
    retried = rider_client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert retried.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_key_in_flight_answers_409(rider, service_area):
    """While another transaction holds the key (a first request still running), a retry is told so."""
    holding, release = threading.Event(), threading.Event()

    def first_request_still_running():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [idempotency_lock_id(rider.id, "k-4")])
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_request_still_running)
    thread.start()
    try:
        assert holding.wait(10)
        response = auth_client_for(rider).post(
            "/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="k-4"
        )
    finally:
        release.set()
        thread.join()
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_flight"
    assert not Trip.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_requests_with_one_key_make_exactly_one_trip(service_area):
    rider = RiderFactory()
    key = str(uuid.uuid4())
    barrier = threading.Barrier(10)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def request():
        client = auth_client_for(rider)
        try:
            barrier.wait(10)
            response = client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY=key)
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == 10
    assert Trip.objects.filter(rider=rider).count() == 1
    trip_id = str(Trip.objects.get(rider=rider).id)
    created = [body for status, body in results if status == 201]
    assert created and all(body["id"] == trip_id for body in created)
    others = {body["error"]["code"] for status, body in results if status != 201}
    assert others <= {"idempotency_key_in_flight"}
    assert {status for status, _ in results} <= {201, 409}
    assert IdempotencyKey.objects.filter(user=rider, key=key).count() == 1


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_requests_with_different_keys_still_make_one_open_trip(service_area):
    """The partial unique index, not a read-then-write, decides: one open trip per rider."""
    rider = RiderFactory()
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def request():
        client = auth_client_for(rider)
        try:
            barrier.wait(10)
            statuses.append(
                client.post(
                    "/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
                ).status_code
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [201] + [409] * 9
    assert Trip.objects.filter(rider=rider).count() == 1


@pytest.mark.django_db
def test_keys_older_than_the_retention_are_removed(rider, rider_client, service_area):
    rider_client.post("/api/v1/trips", TRIP, format="json", HTTP_IDEMPOTENCY_KEY="old")
    rider_client.post(
        "/api/v1/fares/estimate",
        {"pickup": PICKUP, "dropoff": DROPOFF},
        format="json",
        HTTP_IDEMPOTENCY_KEY="new",
    )
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyKey.objects.filter(key="new").update(created_at=timezone.now() - timedelta(hours=23))
    assert expire_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
