"""Prometheus metrics (backend/metrics.py, backend/views_metrics.py): the guard of /metrics, what Redis
holds read at scrape time, multiprocess aggregation, the Grafana dashboard naming only exported metrics,
and, through real processes (uvicorn with two workers and the dispatch worker sharing one multiprocess
directory), the dispatch histograms and counters moving during a ride."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from backend.forwarded import TrustedProxyClient
from backend.redis import get_redis
from dispatch import live
from tests.faults.procs import dispatch_worker, free_port
from tests.live_server import REPO, _server_env, start_asgi_server

DASHBOARD = REPO / "infra" / "deploy" / "grafana-dashboard.json"
PICKUP = {"lat": 40.7580, "lng": -73.9855}
DROPOFF = {"lat": 40.7128, "lng": -74.0060}
OUTSIDE = "203.0.113.7"  # TEST-NET-3: in no allowed network


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(found: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(value for (sample, keys), value in found.items() if sample == name and wanted <= set(keys))


def scrape(client: Client | None = None, **extra: str) -> str:
    answer = (client or Client()).get("/metrics", REMOTE_ADDR="127.0.0.1", **extra)
    assert answer.status_code == 200, answer.content
    return answer.content.decode()


# -- the guard ------------------------------------------------------------------------------------------


def test_metrics_answer_an_allowed_network_and_refuse_anyone_else_without_a_word(settings):
    settings.ROCHDALE_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.20.0.0/16"]
    settings.ROCHDALE_METRICS_TOKEN = ""
    client = Client()
    for allowed in ("127.0.0.1", "10.20.3.4", "::ffff:10.20.3.4"):
        answer = client.get("/metrics", REMOTE_ADDR=allowed)
        assert answer.status_code == 200, allowed
        assert answer["Content-Type"].startswith("text/plain")
        assert b"rochdale_location_fixes_received_total" in answer.content
    for refused in (OUTSIDE, "10.21.0.1", "::1", "not-an-address"):
        answer = client.get("/metrics", REMOTE_ADDR=refused)
        assert (answer.status_code, answer.content) == (403, b""), refused
    # A header the client wrote is not its address (no trusted proxy in front: hops 0).
    answer = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert (answer.status_code, answer.content) == (403, b"")
    # Not even with an empty "token" while none is configured.
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_the_bearer_token_lets_a_scraper_in_from_anywhere_and_nothing_else_does(settings):
    settings.ROCHDALE_METRICS_ALLOWED_NETWORKS = []
    settings.ROCHDALE_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client()
    answer = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert answer.status_code == 200 and b"rochdale_dispatch_offers_total" in answer.content
    assert answer["Cache-Control"] == "no-store"
    for wrong in (
        "Bearer s3cret-scrape-toke",
        "Bearer s3cret-scrape-token2",
        "Basic s3cret-scrape-token",
        "",
    ):
        answer = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION=wrong)
        assert (answer.status_code, answer.content) == (403, b""), wrong
    assert (
        client.post(
            "/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token"
        ).status_code
        == 405
    )


def test_a_scraper_may_name_the_pod_by_its_address_but_nothing_else_may(settings):
    """A Prometheus in the cluster sends the pod's address as Host, which ALLOWED_HOSTS refuses for every
    other path; /metrics answers it, still behind the guard."""
    client = Client()
    pod = {"HTTP_HOST": "10.1.2.3:8000"}
    answer = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **pod)
    assert answer.status_code == 200 and b"rochdale_dispatch_offers_total" in answer.content
    refused = client.get("/metrics", REMOTE_ADDR=OUTSIDE, **pod)
    assert (refused.status_code, refused.content) == (403, b"")
    assert client.get("/api/v1/health", REMOTE_ADDR="127.0.0.1", **pod).status_code == 400


def _asgi_get(app: TrustedProxyClient, *, peer: str, forwarded_for: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/metrics",
        "raw_path": b"/metrics",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"x-forwarded-for", forwarded_for.encode())],
        "client": (peer, 40000),
        "server": ("127.0.0.1", 8000),
    }

    async def run() -> int:
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(timeout=10)
        while (await communicator.receive_output(timeout=10)).get("more_body"):
            pass
        return start["status"]

    return async_to_sync(run)()


def test_behind_the_proxy_the_guard_judges_the_client_the_proxy_saw(settings):
    """Through the ASGI server's own wrapper (backend/forwarded.py) with nginx in front (1 hop): the
    address nginx appended decides, whatever the client put before it."""
    settings.ROCHDALE_METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    settings.ROCHDALE_METRICS_TOKEN = ""
    app = TrustedProxyClient(get_asgi_application(), hops=1)
    assert _asgi_get(app, peer="127.0.0.1", forwarded_for="10.20.0.9") == 200
    assert _asgi_get(app, peer="127.0.0.1", forwarded_for=f"10.20.0.9, {OUTSIDE}") == 403
    assert _asgi_get(app, peer="10.20.0.9", forwarded_for=OUTSIDE) == 403


# -- what Redis holds, read at scrape time ---------------------------------------------------------------


def test_queue_depths_streams_and_the_ledger_verdict_are_read_from_redis_at_scrape_time(db, settings):
    from backend.fares.tasks import verify_ledger

    client = get_redis()
    before = samples(scrape())
    assert total(before, "rochdale_celery_queue_length", queue="celery") == 0
    assert ("rochdale_ledger_verified_ok", ()) not in before  # never verified: absent, not "ok"

    client.lpush("celery", "a", "b", "c")
    client.lpush("celery\x06\x166", "d")  # a priority-6 message, as kombu's Redis transport keeps it
    client.hset("unacked", mapping={"tag-1": "x", "tag-2": "y"})
    for _ in range(4):
        live.post_event("request", trip=uuid.uuid4(), t=time.time())
    stream = live.fixes_key()
    first = int(time.time() * 1000) - 5_000
    client.xadd(stream, {"k": "fix"}, id=f"{first}-0")
    client.xadd(stream, {"k": "fix"}, id=f"{first + 1_500}-0")
    verify_ledger()

    found = samples(scrape())
    assert total(found, "rochdale_celery_queue_length", queue="celery") == 4
    assert total(found, "rochdale_celery_unacked_tasks") == 2
    assert total(found, "rochdale_dispatch_stream_length", region="default", stream="events") == 4
    assert total(found, "rochdale_dispatch_stream_length", region="default", stream="fixes") == 2
    # Never flushed: everything since the first fix is waiting.
    assert total(found, "rochdale_location_flush_backlog_seconds", region="default") == pytest.approx(1.501)
    client.set(live.flush_cursor_key(), f"{first + 1_500}-0")
    assert total(samples(scrape()), "rochdale_location_flush_backlog_seconds", region="default") == 0
    assert found[("rochdale_ledger_verified_ok", ())] == 1
    assert found[("rochdale_ledger_problems", ())] == 0
    assert time.time() - found[("rochdale_ledger_last_verified_timestamp_seconds", ())] < 30
    assert total(found, "rochdale_metrics_redis_up", redis="live") == 1

    client.hset("rd:ops:ledger", mapping={"ok": 0, "problems": 3})  # as a failed verification leaves it
    found = samples(scrape())
    assert (found[("rochdale_ledger_verified_ok", ())], found[("rochdale_ledger_problems", ())]) == (0, 3)


def test_a_dead_redis_is_a_zero_not_a_failed_scrape(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    found = samples(scrape())
    assert total(found, "rochdale_metrics_redis_up", redis="broker") == 0
    assert total(found, "rochdale_metrics_redis_up", redis="live") == 1
    assert ("rochdale_celery_unacked_tasks", ()) not in found


# -- several processes -----------------------------------------------------------------------------------

_RECORD = """
import sys, time
from backend import metrics
for _ in range(int(sys.argv[1])):
    metrics.observe_fix("stored")
metrics.index_drivers.labels(region="default").set(float(sys.argv[2]))
if sys.argv[3] == "exit-cleanly":
    metrics.process_exited()
"""
_RENDER = (
    "from backend.metrics import process_registry; from prometheus_client import generate_latest; "
    "import sys; sys.stdout.write(generate_latest(process_registry()).decode())"
)


def test_multiprocess_mode_sums_every_process_and_drops_the_gauges_of_those_that_exited(tmp_path: Path):
    env = {**_server_env(None), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def python(*arguments: str) -> str:
        return subprocess.run(
            [sys.executable, *arguments], cwd=REPO, env=env, check=True, capture_output=True, text=True
        ).stdout

    python("-c", _RECORD, "3", "7", "stays")  # like a process still running (its gauge is live)
    python("-c", _RECORD, "4", "5", "exit-cleanly")  # later, then gone: its gauge must not win
    found = samples(python("-c", _RENDER))
    assert total(found, "rochdale_location_fixes_received_total", outcome="stored") == 7
    assert total(found, "rochdale_dispatch_index_drivers", region="default") == 7


# -- the dashboard ---------------------------------------------------------------------------------------


def _exported_names() -> set[str]:
    from backend.fares.tasks import verify_ledger

    verify_ledger()  # the ledger's gauges exist once it has been verified
    names = set()
    for family in text_string_to_metric_families(scrape()):
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ())
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_every_panel_of_the_grafana_dashboard_queries_metrics_we_export(db):
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported_names()
    panels = [panel for panel in dashboard["panels"] if panel.get("type") != "row"]
    assert len(panels) >= 10
    ours = {name for name in exported if name.startswith("rochdale_")}
    queried = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\b((?:rochdale|django)_[a-z0-9_]+)", target["expr"]))
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)
            queried |= names
    # Every family of ours is on the dashboard (by one of its series).
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried}
    missing = {name for name in ours if re.sub(r"_(total|bucket|count|sum)$", "", name) not in families}
    assert not missing, missing


# -- a ride through real processes ------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _next(socket: websockets.ClientConnection, wanted: str) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        if frame["type"] == wanted:
            return frame


async def _command(socket: websockets.ClientConnection, frame: dict, ref: str) -> dict:
    await socket.send(json.dumps({**frame, "ref": ref}))
    while True:
        answer = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        if answer.get("ref") == ref and answer["type"] in ("result", "error"):
            return answer


def _location_frame(seconds_ago: float) -> dict:
    recorded_at = _iso(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    return {
        "type": "location",
        **PICKUP,
        "lat": PICKUP["lat"] + 0.003,
        "recorded_at": recorded_at,
        "accuracy_m": 5,
    }


async def _scraped(http: httpx.AsyncClient) -> dict:
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    return samples(answer.text)


async def _until(http: httpx.AsyncClient, name: str, above: float, **labels: str) -> dict:
    """Scrape until `name` (summed over `labels`) exceeds `above`: a metric is written just after the
    frame that told us the event happened, sometimes by another process."""
    deadline = time.monotonic() + 10
    while True:
        found = await _scraped(http)
        if total(found, name, **labels) > above or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def _ride_and_scrape(base: str, ws_base: str, rider_token: str, driver_token: str) -> dict[str, float]:
    moved: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        rider_headers = {"Authorization": f"Bearer {rider_token}"}
        driver_headers = {"Authorization": f"Bearer {driver_token}"}
        rider_ticket = (await http.post("/api/v1/ws-ticket", headers=rider_headers)).json()["ticket"]
        driver_ticket = (await http.post("/api/v1/ws-ticket", headers=driver_headers)).json()["ticket"]
        origin = {"Origin": "http://localhost"}
        start = await _scraped(http)
        async with (
            websockets.connect(
                f"{ws_base}/ws/driver/?ticket={driver_ticket}", additional_headers=origin
            ) as driver,
            websockets.connect(
                f"{ws_base}/ws/rider/?ticket={rider_ticket}", additional_headers=origin
            ) as rider,
        ):
            assert (await _command(driver, {"type": "online"}, "on"))["ok"] is True
            for seconds_ago in (20, 15, 10):
                await driver.send(json.dumps(_location_frame(seconds_ago)))
            await driver.send(json.dumps(_location_frame(30)))  # older than the last one: refused
            fixes = "rochdale_location_fixes_received_total"
            stored = total(start, fixes, outcome="stored")
            refused = total(start, fixes, outcome="fix_out_of_order")
            found = await _until(http, fixes, refused, outcome="fix_out_of_order")
            moved["fixes stored"] = total(found, fixes, outcome="stored") - stored
            moved["fixes refused"] = total(found, fixes, outcome="fix_out_of_order") - refused

            response = await http.post(
                "/api/v1/trips",
                json={"pickup": PICKUP, "dropoff": DROPOFF},
                headers={**rider_headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert response.status_code == 201, response.text
            offer = await _next(driver, "offer")
            histogram = "rochdale_dispatch_request_to_offer_seconds_count"
            found = await _until(http, histogram, total(start, histogram))
            moved["request to offer"] = total(found, histogram) - total(start, histogram)
            # Well within the histogram's range on an idle worker: the 10 s bucket holds it.
            ten_s = "rochdale_dispatch_request_to_offer_seconds_bucket"
            moved["request to offer within 10 s"] = total(found, ten_s, le="10.0") - total(
                start, ten_s, le="10.0"
            )
            moved["offers made"] = total(found, "rochdale_dispatch_offers_total", outcome="offered") - total(
                start, "rochdale_dispatch_offers_total", outcome="offered"
            )
            moved["rounds offered"] = total(
                found, "rochdale_dispatch_rounds_total", result="offered"
            ) - total(start, "rochdale_dispatch_rounds_total", result="offered")

            accepted = await _command(driver, {"type": "offer.accept", "offer_id": offer["offer_id"]}, "acc")
            assert accepted["ok"] is True
            while (await _next(rider, "trip.updated"))["trip"]["status"] != "assigned":
                pass
            notified = "rochdale_dispatch_accept_to_rider_notified_seconds_count"
            found = await _until(http, notified, total(start, notified))
            moved["accept to rider notified"] = total(found, notified) - total(start, notified)
            moved["offers accepted"] = total(
                found, "rochdale_dispatch_offers_total", outcome="accepted"
            ) - total(start, "rochdale_dispatch_offers_total", outcome="accepted")
            moved["index drivers present"] = float(
                ("rochdale_dispatch_index_drivers", (("region", "default"),)) in found
            )
            moved["loop lag samples"] = total(
                found, "rochdale_dispatch_worker_loop_lag_seconds_count", region="default"
            )
    return moved


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_ride_moves_the_dispatch_metrics_scraped_from_the_web_across_processes(tmp_path: Path):
    """uvicorn with two workers and the dispatch worker share a multiprocess directory: the web's /metrics
    (whichever worker answers) shows the worker's request-to-offer histogram and the sockets' counters."""
    import importlib

    from django.apps import apps
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import DriverFactory, RiderFactory, square_service_area

    importlib.import_module("backend.fares.migrations.0002_seed_default_policy").seed_default_policy(
        apps, None
    )
    importlib.import_module("dispatch.migrations.0003_seed_dispatch_policy").seed(apps, None)
    square_service_area()
    rider, driver = RiderFactory(), DriverFactory()
    rider_token = str(RefreshToken.for_user(rider).access_token)
    driver_token = str(RefreshToken.for_user(driver).access_token)

    shared = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker_port = free_port()  # the worker's own exporter, as a Kubernetes pod of its own serves it
    own_port = {"ROCHDALE_METRICS_PORT": str(worker_port), "ROCHDALE_METRICS_HOST": "127.0.0.1"}
    with (
        start_asgi_server(extra_env={**shared, "ROCHDALE_WEB_WORKERS": "2"}) as server,
        dispatch_worker(extra_env={**shared, **own_port}),
    ):
        moved = asyncio.run(
            _ride_and_scrape(server.url, f"ws://127.0.0.1:{server.port}", rider_token, driver_token)
        )
        own = samples(httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=5).text)
        assert total(own, "rochdale_dispatch_request_to_offer_seconds_count", region="default") == 1
        assert list(tmp_path.glob("gauge_livemostrecent_*.db"))
    # The worker stopped: its live gauges left the directory, its counters and histograms stay summed.
    assert not list(tmp_path.glob("gauge_livemostrecent_*.db"))
    assert list(tmp_path.glob("histogram_*.db"))
    assert moved.pop("loop lag samples") >= 1
    assert moved == {
        "fixes stored": 3,
        "fixes refused": 1,
        "request to offer": 1,
        "request to offer within 10 s": 1,
        "offers made": 1,
        "rounds offered": 1,
        "accept to rider notified": 1,
        "offers accepted": 1,
        "index drivers present": 1,
    }
