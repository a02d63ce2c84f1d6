"""The server killed with -9 during keyed trip requests: every replay answers as the first answer did, and a
key never makes two trips.

Six riders each send three `POST /api/v1/trips` at once, each with a key of its own (18 requests in
flight together); the server (`python -m backend.serve`) is killed with -9 once the first answers are in,
so some requests were answered, some were cut off mid-way and some never reached it. A new server then
receives every key again (same rider, same body):

- a key that was answered gets the same status and body again (a 201 with `Idempotent-Replayed: true`;
  a refusal such as 409 `trip_in_progress` is not stored, so it is decided again, the same way while the
  rider's trip is open);
- a key that was cut off completes now: its first run either committed with its key (the replay finds the
  stored answer) or rolled back with the dead connection (it runs now);
- every rider ends with exactly one trip, which one key's 201 names, and one stored key; then the fault
  suite's invariants hold.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.faults.invariants import assert_invariants
from tests.faults.procs import wait_until
from tests.live_server import LiveServer, start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RIDERS = 6
KEYS_PER_RIDER = 3
KILL_AFTER_ANSWERS = 4


@dataclass(frozen=True)
class KeyedRequest:
    rider_id: str
    key: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    replayed: bool

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return cls(response.status_code, response.json(), replayed)

    def same_outcome(self, other: Answer) -> bool:
        return (self.status, self.body) == (other.status, other.body)


def trip_body() -> dict:
    from tests.mobile_api.builders import DROPOFF, PICKUP

    return {"pickup": PICKUP, "dropoff": DROPOFF}


@pytest.fixture
def keyed_requests(service_area) -> list[KeyedRequest]:
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import RiderFactory

    requests = []
    for _ in range(RIDERS):
        rider = RiderFactory()
        bearer = f"Bearer {RefreshToken.for_user(rider).access_token}"
        for _ in range(KEYS_PER_RIDER):
            key = f"crash-{uuid.uuid4()}"
            requests.append(
                KeyedRequest(str(rider.id), key, {"Authorization": bearer, "Idempotency-Key": key})
            )
    return requests


@pytest.fixture
def first_server(transactional_db) -> Iterator[LiveServer]:
    with start_asgi_server() as server:
        yield server


def post_trip(server: LiveServer, request: KeyedRequest) -> Answer:
    """Send a key until it is not in flight elsewhere (a dead server's transaction may hold it briefly)."""

    def settled() -> Answer | None:
        url = f"{server.url}/api/v1/trips"
        answer = Answer.of(httpx.post(url, json=trip_body(), headers=request.headers, timeout=30))
        in_flight = answer.status == 409 and answer.body["error"]["code"] == "idempotency_key_in_flight"
        return None if in_flight else answer

    return wait_until(settled, timeout_s=20, what=f"key {request.key} answers (not in flight)")


def send_all_and_kill(server: LiveServer, requests: list[KeyedRequest]) -> dict[str, Answer]:
    """Every request at once; kill -9 the server after KILL_AFTER_ANSWERS answers. The answers that came."""
    answers: dict[str, Answer] = {}
    lock = threading.Lock()
    start = threading.Barrier(len(requests))

    def send(request: KeyedRequest) -> None:
        start.wait()
        try:
            response = httpx.post(
                f"{server.url}/api/v1/trips", json=trip_body(), headers=request.headers, timeout=30
            )
        except httpx.HTTPError:
            return  # cut off by the kill, or sent after it
        with lock:
            answers[request.key] = Answer.of(response)

    threads = [threading.Thread(target=send, args=(request,), daemon=True) for request in requests]
    for thread in threads:
        thread.start()

    def enough_answers() -> bool:
        with lock:
            return len(answers) >= KILL_AFTER_ANSWERS

    wait_until(enough_answers, timeout_s=60, what=f"{KILL_AFTER_ANSWERS} first answers", interval_s=0.005)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=40)
    with lock:
        return dict(answers)


def test_every_key_replays_its_first_answer_after_the_server_is_killed(first_server, keyed_requests):
    from dispatch.models import Trip
    from dispatch.state import OPEN_STATUSES
    from mobile_api.models import IdempotencyKey

    first_answers = send_all_and_kill(first_server, keyed_requests)
    cut_off = [request.key for request in keyed_requests if request.key not in first_answers]
    print(f"{len(first_answers)} of {len(keyed_requests)} answered before the kill; {len(cut_off)} cut off")
    assert cut_off, "the kill came after every answer: nothing was cut off mid-way"

    with start_asgi_server() as second_server:
        replays = {request.key: post_trip(second_server, request) for request in keyed_requests}
        again = {request.key: post_trip(second_server, request) for request in keyed_requests}

    first_statuses = Counter(answer.status for answer in first_answers.values())
    cut_off_outcomes = Counter(
        "stored answer replayed" if replays[key].replayed else f"ran now, {replays[key].status}"
        for key in cut_off
    )
    print(f"first answers {dict(first_statuses)}; cut-off keys on the new server {dict(cut_off_outcomes)}")

    for request in keyed_requests:
        replay = replays[request.key]
        if request.key in first_answers:
            first = first_answers[request.key]
            assert replay.same_outcome(first), (request.key, first, replay)
            assert replay.replayed == (first.status == 201)
        assert again[request.key].same_outcome(replay), (request.key, replay, again[request.key])
        assert replay.status == 201 or replay.body["error"]["code"] == "trip_in_progress", replay

    created = {replay.body["id"] for replay in replays.values() if replay.status == 201}
    for rider_id in {request.rider_id for request in keyed_requests}:
        trips = list(Trip.objects.filter(rider_id=rider_id).values_list("id", "status"))
        assert len(trips) == 1, f"rider {rider_id} has {len(trips)} trips: {trips}"
        assert trips[0][1] in OPEN_STATUSES
        winning = [r.key for r in keyed_requests if r.rider_id == rider_id and replays[r.key].status == 201]
        assert len(winning) == 1, f"rider {rider_id}: keys {winning} each answered 201"
        assert list(IdempotencyKey.objects.filter(user_id=rider_id).values_list("key", flat=True)) == winning
    assert created == {str(trip_id) for trip_id in Trip.objects.values_list("id", flat=True)}
    assert_invariants()
