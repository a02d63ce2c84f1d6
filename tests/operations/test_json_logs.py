"""Production's JSON log lines name the request, user and trip they are about (docs/operations.md, "Logs").

Through the real server (uvicorn in a subprocess, ROCHDALE_LOG_FORMAT=json): a request's lines carry the id
the answer's X-Request-ID header gives (the client's when it sent a plain one), and the user once DRF or a
socket's ticket has authenticated them. In process: a Celery task given a trip id logs it on every line,
and forgets it after; Sentry's hook strips request bodies and every place from an event.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets

from backend.logs import REDACTED, JsonLogFormatter, sentry_before_send
from backend.request_context import LogContextFilter, bind_log_context, trip_id_var
from tests.live_server import start_asgi_server

JSON_SERVER_ENV = {"ROCHDALE_LOG_FORMAT": "json", "ROCHDALE_LOG_LEVEL": "INFO"}


def _json_lines(log: str) -> list[dict[str, object]]:
    """Every line of the server's output that is a JSON object (all of them should be, after startup)."""
    lines = []
    for line in log.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _wait_for_line(
    server_log: Callable[[], str], predicate: Callable[[dict[str, object]], bool], timeout_s: float = 10
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        for line in _json_lines(server_log()):
            if predicate(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no such log line within {timeout_s} s:\n{server_log()}")
        time.sleep(0.1)


async def _socket_goes_offline(base: str, ws_base: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        ticket = (await http.post("/api/v1/ws-ticket", headers={"Authorization": f"Bearer {token}"})).json()
        async with websockets.connect(f"{ws_base}/ws/driver/?ticket={ticket['ticket']}") as socket:
            await socket.send(json.dumps({"type": "offline", "ref": "off"}))
            while json.loads(await socket.recv()).get("ref") != "off":
                pass


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_real_server_writes_json_lines_with_the_request_and_user_ids():
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import DriverFactory

    driver = DriverFactory()
    token = str(RefreshToken.for_user(driver).access_token)
    missing_trip = uuid.uuid4()
    with start_asgi_server(extra_env=JSON_SERVER_ENV) as server:
        auth = {"Authorization": f"Bearer {token}"}
        # The client's own id is kept and echoed; without one the server makes one up and says which.
        named = httpx.get(
            f"{server.url}/api/v1/trips/{missing_trip}", headers={**auth, "X-Request-ID": "logs-test-1"}
        )
        unnamed = httpx.get(f"{server.url}/api/v1/trips/{uuid.uuid4()}", headers=auth)
        forged = httpx.get(f"{server.url}/api/v1/health", headers={"X-Request-ID": '{"level": "x"}'})
        asyncio.run(_socket_goes_offline(server.url, f"ws://127.0.0.1:{server.port}", token))

        assert named.status_code == 404 and named.headers["X-Request-ID"] == "logs-test-1"
        assert unnamed.status_code == 404
        assert forged.headers["X-Request-ID"] != '{"level": "x"}'

        # django.request's line for the 404, written after the middleware had returned.
        not_found = _wait_for_line(server.log, lambda line: str(missing_trip) in str(line.get("message")))
        assert not_found["request_id"] == "logs-test-1"
        assert not_found["user_id"] == str(driver.pk)
        assert not_found["level"] == "WARNING" and not_found["logger"] == "django.request"
        assert {"timestamp", "level", "logger", "message"} <= set(not_found)

        other = _wait_for_line(
            server.log, lambda line: line.get("request_id") == unnamed.headers["X-Request-ID"]
        )
        assert other["user_id"] == str(driver.pk)

        # A line written inside the socket's consumer names the user whose ticket opened it.
        offline = _wait_for_line(server.log, lambda line: "offline (driver)" in str(line.get("message")))
        assert offline["user_id"] == str(driver.pk)
        assert offline["logger"] == "dispatch.services.presence"
        log = server.log()

    # After uvicorn's startup lines, everything is JSON: no plain line, no traceback outside a field.
    assert "Traceback" not in "\n".join(line for line in log.splitlines() if not line.startswith("{"))
    assert all("request_id" not in line or line["request_id"] for line in _json_lines(log))


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The lines written to a logger of our own, through the production filter and formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_celery_task_given_a_trip_id_logs_it_on_every_line_and_forgets_it_after(json_log):
    from backend.celery import app

    logger = logging.getLogger("tests.json_logs")

    @app.task(name="tests.operations.trip_task", bind=False)
    def trip_task(trip_id: str, fail: bool = False) -> None:
        logger.info("working on the trip")
        if fail:
            try:
                raise RuntimeError("the card network said no")
            except RuntimeError:
                logger.exception("capture failed")

    by_position, by_keyword = str(uuid.uuid4()), str(uuid.uuid4())
    with bind_log_context(region="north"):
        trip_task.apply(args=[by_position])
        trip_task.apply(kwargs={"trip_id": by_keyword, "fail": True})
    logger.info("between tasks")

    working_1, working_2, failed, between = _records(json_log)
    assert working_1["trip_id"] == by_position and working_1["region"] == "north"
    assert working_2["trip_id"] == by_keyword
    assert failed["trip_id"] == by_keyword and failed["level"] == "ERROR"
    assert "RuntimeError: the card network said no" in failed["exception"]
    assert "trip_id" not in between and "region" not in between
    assert trip_id_var.get() is None


def test_trip_services_name_their_trip_and_unknown_ids_are_left_out(json_log):
    from backend.request_context import bound_to_trip

    logger = logging.getLogger("tests.json_logs")

    @bound_to_trip
    def trip_service(*, trip_id: uuid.UUID) -> None:
        logger.warning("moved")

    trip = uuid.uuid4()
    trip_service(trip_id=trip)
    logger.warning("outside")
    moved, outside = _records(json_log)
    assert moved["trip_id"] == str(trip)
    assert list(outside) == ["timestamp", "level", "logger", "message"]


def test_sentry_events_lose_request_bodies_and_every_place():
    event = {
        "message": "no driver near POINT (-73.9855 40.758) for SRID=4326;POINT(-73.98 40.75)",
        "request": {
            "url": "https://api.example.coop/api/v1/estimates?pickup_lat=40.7&pickup_lng=-73.9",
            "method": "POST",
            "data": {"pickup": {"lat": 40.758, "lng": -73.9855}, "note": "ring twice"},
            "query_string": "pickup_lat=40.7&pickup_lng=-73.9",
            "cookies": {"sessionid": "abc"},
            "headers": {"User-Agent": "okhttp"},
        },
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad fix 40.75801, -73.98551",
                    "stacktrace": {"frames": [{"function": "fix_store", "vars": {"lat": "40.7", "x": "1"}}]},
                }
            ]
        },
        "breadcrumbs": {
            "values": [
                {"message": "GET /api/v1/drivers/near?lat=40.7&lng=-73.9", "data": {"dropoff_point": "x"}}
            ]
        },
        "extra": {"trip": {"id": "t-1", "pickup": [40.7, -73.9], "driver_location": {"lat": 1}}},
    }
    scrubbed = sentry_before_send(event, {})
    text = json.dumps(scrubbed)

    for place in ("40.7", "-73.9", "POINT", "40.758", "-73.98"):
        assert place not in text, (place, text)
    assert "data" not in scrubbed["request"] and "query_string" not in scrubbed["request"]
    assert "cookies" not in scrubbed["request"]
    assert scrubbed["request"]["url"] == "https://api.example.coop/api/v1/estimates"
    assert "vars" not in scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert scrubbed["extra"]["trip"] == {"id": "t-1", "pickup": REDACTED, "driver_location": REDACTED}
    assert scrubbed["breadcrumbs"]["values"][0]["data"]["dropoff_point"] == REDACTED
    # What is not a place is kept: the report still says what went wrong, where in the code.
    assert scrubbed["exception"]["values"][0]["type"] == "ValueError"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["function"] == "fix_store"
    assert scrubbed["request"]["headers"] == {"User-Agent": "okhttp"}


def test_a_process_wide_region_reaches_threads_that_start_with_an_empty_context(json_log):
    import threading

    from backend.request_context import bind_process_log_context

    logger = logging.getLogger("tests.json_logs")
    bind_process_log_context(region="north")
    try:
        # An executor thread, as the dispatch worker's database calls run in: no copy of our context.
        thread = threading.Thread(target=lambda: logger.warning("from a thread"))
        thread.start()
        thread.join()
        with bind_log_context(region="south"):
            logger.warning("bound here")
    finally:
        bind_process_log_context(region=None)
    logger.warning("after")
    from_thread, bound_here, after = _records(json_log)
    assert from_thread["region"] == "north"
    assert bound_here["region"] == "south"
    assert "region" not in after


@pytest.mark.django_db
def test_a_session_users_request_names_them_once_the_request_has_resolved_its_user(client, json_log):
    from tests.factories import UserFactory

    user = UserFactory()
    client.force_login(user)
    request_logger = logging.getLogger("django.request")
    handler = logging.getLogger("tests.json_logs").handlers[0]
    request_logger.addHandler(handler)
    try:
        missing = client.get("/members/no-such-page/", HTTP_X_REQUEST_ID="session-1")
        anonymous = client.__class__().get("/members/no-such-page/", HTTP_X_REQUEST_ID="anonymous-1")
    finally:
        request_logger.removeHandler(handler)
    assert missing.status_code == 404 and anonymous.status_code == 404
    signed_in, nobody = (line for line in _records(json_log) if line["logger"] == "django.request")
    assert signed_in["request_id"] == "session-1" and signed_in["user_id"] == str(user.pk)
    assert nobody["request_id"] == "anonymous-1" and "user_id" not in nobody
