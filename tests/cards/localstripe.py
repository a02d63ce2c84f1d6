"""A private localstripe (a stateful fake Stripe server) for the card tests, and the app's side of saving a
card: what the Stripe SDK in a rider's phone does with a SetupIntent's client secret.

localstripe keeps its store in memory (and pickles it to /tmp/localstripe.pickle, which `--from-scratch`
never reads back), listens on a free port, and is killed with its process group when the context exits.
It is a real HTTP server speaking Stripe's API; it does not honour `Idempotency-Key` (tests of keys use
the recording proxy in tests/cards/recording_proxy.py) and has no Connect.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.faults.procs import free_port, wait_until

API_KEY = "sk_test_rochdale_localstripe"
PUBLISHABLE_KEY = "pk_test_rochdale_localstripe"
WEBHOOK_SECRET = "whsec_rochdale_localstripe_test"

# Stripe's test cards (https://docs.stripe.com/testing): charges succeed; declined when charged (attaching
# works, the authorisation fails); asks for 3-D Secure.
VISA = "4242424242424242"
DECLINED_WHEN_CHARGED = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002760003184"


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen | None = None

    def flush(self) -> None:
        """Forget every object (between tests)."""
        httpx.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def api(self) -> httpx.Client:
        """A client with the secret key, for what a test does at Stripe behind the backend's back."""
        return httpx.Client(base_url=self.url, auth=(API_KEY, ""), timeout=10)

    def card_payment_method(self, number: str = VISA) -> str:
        """A new card PaymentMethod, as Stripe.js makes from what the rider typed."""
        with self.api() as client:
            response = client.post(
                "/v1/payment_methods",
                data={
                    "type": "card",
                    "card[number]": number,
                    "card[exp_month]": "12",
                    "card[exp_year]": "2031",
                    "card[cvc]": "123",
                },
            )
        response.raise_for_status()
        return response.json()["id"]

    def confirm_setup(
        self, *, setup_intent_id: str, client_secret: str, number: str = VISA
    ) -> httpx.Response:
        """The app confirms the SetupIntent with the card, using only the publishable key and the secret."""
        method_id = self.card_payment_method(number)
        return httpx.post(
            f"{self.url}/v1/setup_intents/{setup_intent_id}/confirm",
            data={"key": PUBLISHABLE_KEY, "client_secret": client_secret, "payment_method": method_id},
            timeout=10,
        )

    def payment_intent(self, payment_intent_id: str) -> dict:
        with self.api() as client:
            response = client.get(f"/v1/payment_intents/{payment_intent_id}")
        response.raise_for_status()
        return response.json()

    def captured_minor(self, payment_intent_id: str) -> int:
        """What an intent's charge took and kept (localstripe captures less by refunding the rest)."""
        intent = self.payment_intent(payment_intent_id)
        charge = intent["latest_charge"]
        if intent["status"] != "succeeded" or charge is None:
            return 0
        return int(charge["amount"]) - int(charge["amount_refunded"])

    def cancel(self, payment_intent_id: str) -> None:
        """Cancel an uncaptured intent at Stripe, as Stripe does to an authorisation seven days old."""
        with self.api() as client:
            client.post(f"/v1/payment_intents/{payment_intent_id}/cancel").raise_for_status()

    def register_webhook(self, url: str) -> None:
        """Have localstripe deliver its events to `url`, signed with WEBHOOK_SECRET."""
        httpx.post(
            f"{self.url}/_config/webhooks/rochdale", data={"url": url, "secret": WEBHOOK_SECRET}, timeout=5
        ).raise_for_status()


def signed_event(event: dict, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    """A webhook body and its `Stripe-Signature`, signed the way Stripe signs (HMAC-SHA256 of t.body)."""
    body = json.dumps(event).encode()
    timestamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), b"%d.%s" % (timestamp, body), hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


@contextlib.contextmanager
def localstripe_server() -> Iterator[LocalStripe]:
    port = free_port()
    executable = Path(sys.executable).with_name("localstripe")
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(
        [str(executable), "--port", str(port), "--from-scratch"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LocalStripe(url=f"http://127.0.0.1:{port}", process=process)
    try:
        wait_until(lambda: _answers(server.url), timeout_s=20, what="localstripe to listen")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/v1/customers", auth=(API_KEY, ""), timeout=1)
    except httpx.HTTPError:
        return False
    return True
