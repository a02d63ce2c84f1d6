"""Cards in the simulator and in `make run`, without a database: the launcher of localstripe that
infra/Procfile runs (its store survives a restart, its webhook delivers signed events), the simulated app's
confirmation of a SetupIntent at it, the refusal to confirm at the real Stripe, and the summary's count of
requests refused for payment."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.server
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from dispatch.simulation.client import (
    ApiError,
    StripeConfirmRefused,
    real_stripe_refusal,
    stripe_setup_confirm,
)
from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.report import SimulationSummary, summary_table
from tests.cards.localstripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, LocalStripe

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "infra" / "bin" / "demo_localstripe.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/v1/customers", auth=(API_KEY, ""), timeout=1)
    except httpx.HTTPError:
        return False
    return True


@contextlib.contextmanager
def demo_localstripe(store: Path, *, port: int, webhook_url: str = "") -> Iterator[LocalStripe]:
    """The Procfile's `localstripe` process, stopped with SIGTERM as honcho stops it."""
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(LAUNCHER), "--url", url, "--store", str(store)]
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    process = subprocess.Popen(
        command,
        env={**os.environ, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _answers(url):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "localstripe did not listen"
            time.sleep(0.1)
        yield LocalStripe(url=url)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/payments/stripe/webhook", received
    finally:
        server.shutdown()
        server.server_close()


def _launcher_module():
    spec = importlib.util.spec_from_file_location("demo_localstripe", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # localstripe's routes, as aiohttp imports them
def test_the_launcher_serves_only_a_local_http_url_with_a_port():
    launcher = _launcher_module()
    assert launcher.local_address("http://localhost:8420") == ("localhost", 8420)
    assert launcher.local_address("http://127.0.0.1:9001/") == ("127.0.0.1", 9001)
    for url in (
        "https://localhost:8420",
        "http://localhost",
        "http://10.0.0.5:8420",
        "https://api.stripe.com",
    ):
        with pytest.raises(ValueError):
            launcher.local_address(url)
    refused = subprocess.run(
        [sys.executable, str(LAUNCHER), "--url", "https://api.stripe.com"], capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "not on this machine" in refused.stderr


def test_the_demo_localstripe_keeps_its_store_across_a_restart_and_delivers_signed_webhooks(tmp_path):
    store = tmp_path / "localstripe" / "demo.pickle"
    port = _free_port()
    with webhook_receiver() as (webhook_url, received):
        with demo_localstripe(store, port=port, webhook_url=webhook_url) as stripe, stripe.api() as api:
            customer = api.post("/v1/customers", data={"name": "Sim Rider 1"}).json()["id"]
            method = stripe.card_payment_method()
            api.post(f"/v1/payment_methods/{method}/attach", data={"customer": customer}).raise_for_status()
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
            # Written just before the stop, so only the write on the way out (SIGTERM, as honcho stops it)
            # can keep it: the periodic one waits at least two seconds.
            last = api.post("/v1/customers", data={"name": "Sim Rider 2"}).json()["id"]
        types = set()
        for headers, body in received:
            timestamp, signature = (part.split("=", 1)[1] for part in headers["Stripe-Signature"].split(","))
            expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
            assert signature == expected.hexdigest()
            types.add(json.loads(body)["type"])
        assert types == {"customer.created"}

    with demo_localstripe(store, port=port) as again, again.api() as api:
        kept = api.get(f"/v1/customers/{customer}")
        assert kept.status_code == 200, kept.text
        assert kept.json()["name"] == "Sim Rider 1"
        cards = api.get("/v1/payment_methods", params={"customer": customer, "type": "card"}).json()
        assert [card["id"] for card in cards["data"]] == [method]
        assert api.get(f"/v1/customers/{last}").json()["name"] == "Sim Rider 2"


async def _confirm(api_base: str, setup: dict) -> tuple[dict | ApiError, dict[str, tuple[int, int]]]:
    """The app's confirmation and what it recorded: (the SetupIntent or Stripe's refusal, step counts)."""
    metrics = MetricsRecorder()
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            answer: dict | ApiError = await stripe_setup_confirm(
                http, metrics, api_base=api_base, setup=setup
            )
        except ApiError as error:
            answer = error
    return answer, {s.step: (s.count, s.errors) for s in metrics.summaries()}


def test_the_simulated_app_confirms_a_setup_intent_at_localstripe_with_the_publishable_key(tmp_path):
    with demo_localstripe(tmp_path / "store.pickle", port=_free_port()) as stripe, stripe.api() as api:
        customer = api.post("/v1/customers", data={"name": "Sim Rider 2"}).json()["id"]
        intent = api.post("/v1/setup_intents", data={"customer": customer, "usage": "off_session"}).json()
        setup = {
            "setup_intent_id": intent["id"],
            "client_secret": intent["client_secret"],
            "publishable_key": PUBLISHABLE_KEY,
        }

        refused, steps = asyncio.run(_confirm(stripe.url, {**setup, "client_secret": f"{intent['id']}_x"}))
        assert isinstance(refused, ApiError) and refused.status == 401
        assert steps == {"card_confirm": (0, 1)}

        confirmed, steps = asyncio.run(_confirm(stripe.url, setup))
        assert steps == {"card_confirm": (1, 0)}
        assert confirmed["status"] == "succeeded"
        held = api.get(f"/v1/setup_intents/{intent['id']}").json()
        assert held["status"] == "succeeded"
        assert held["payment_method"] == confirmed["payment_method"]


def test_the_simulator_never_confirms_a_card_at_the_real_stripe_or_with_a_live_key():
    assert real_stripe_refusal("http://localhost:8420") is None
    assert real_stripe_refusal("http://localstripe.internal:8420") is None
    for real in ("https://api.stripe.com", "https://API.Stripe.com/", "https://files.stripe.com", "stripe"):
        assert real_stripe_refusal(real) is not None, real

    async def confirm(api_base: str, publishable_key: str) -> None:
        setup = {"setup_intent_id": "seti_1", "client_secret": "seti_1_secret_x", "publishable_key": ""}
        async with httpx.AsyncClient(timeout=2) as http:
            await stripe_setup_confirm(
                http,
                MetricsRecorder(),
                api_base=api_base,
                setup={**setup, "publishable_key": publishable_key},
            )

    # Refused before any request: this machine has no route to Stripe, so a request would fail otherwise.
    with pytest.raises(StripeConfirmRefused, match="real Stripe"):
        asyncio.run(confirm("https://api.stripe.com", "pk_test_demo"))
    with pytest.raises(StripeConfirmRefused, match="not a test key"):
        asyncio.run(confirm(f"http://127.0.0.1:{_free_port()}", "pk_live_abc"))


def test_requests_refused_for_payment_are_counted_by_code_and_rider():
    summary = SimulationSummary(drivers=2, riders=3)
    summary.cards_saved = 3
    summary.count_payment_refusal(rider=0, code="payment_declined")
    summary.count_payment_refusal(rider=2, code="payment_overdue")
    summary.count_payment_refusal(rider=2, code="payment_overdue")
    assert summary.to_dict()["payments"] == {
        "cards_saved": 3,
        "requests_refused": {"payment_declined": 1, "payment_overdue": 2},
        "riders_refused": 2,
    }
    console = Console(width=160, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "cards saved by riders" in text
    assert "3 (2 riders: payment_declined 1, payment_overdue 2)" in text
    assert SimulationSummary().to_dict()["payments"] == {
        "cards_saved": 0,
        "requests_refused": {},
        "riders_refused": 0,
    }
