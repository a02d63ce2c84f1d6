"""A real HTTP server that answers like Stripe's API for what payouts use (accounts, account links,
transfers), started on a free port by the `fake_stripe` fixture. localstripe has no Connect, so the payout
adapter is tested at this boundary: the official SDK's real requests, recorded, and Stripe-shaped answers.

Like Stripe, the server keeps the answer to every idempotency key it processed and replays it for a repeat
of the key (a second transfer is never made for one key). A test scripts the next answers of a path with
`script(path, *behaviours)`: "ok", "card_declined" (402), "invalid" (400), "server_error" (500, nothing
processed), "slow" (the transfer is made, then the answer comes after the client gave up).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class FakeStripe:
    url: str = ""
    slow_s: float = 1.5
    requests: list[Recorded] = field(default_factory=list)
    transfers: dict[str, dict] = field(default_factory=dict)
    accounts: dict[str, dict] = field(default_factory=dict)
    _scripts: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    _replies: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    def script(self, path: str, *behaviours: str) -> None:
        self._scripts[path].extend(behaviours)

    def calls(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter:012d}"

    def answer(
        self, method: str, path: str, headers: dict[str, str], form: dict[str, str]
    ) -> tuple[int, dict]:
        key = headers.get("idempotency-key")
        with self._lock:
            self.requests.append(Recorded(method, path, headers, form))
            if key and key in self._replies:
                return self._replies[key]
            behaviour = self._scripts[path].popleft() if self._scripts[path] else "ok"
        if behaviour == "server_error":
            return 500, _error("api_error", "An unknown error occurred", None)
        if behaviour == "card_declined":
            reply = (402, _error("card_error", "Your card was declined.", "card_declined"))
        elif behaviour == "invalid":
            reply = (
                400,
                _error("invalid_request_error", "No such destination: 'acct_x'", "resource_missing"),
            )
        else:
            reply = (200, self._create(path, form))
        with self._lock:
            if key:
                self._replies[key] = reply
        if behaviour == "slow":
            time.sleep(self.slow_s)
        return reply

    def _create(self, path: str, form: dict[str, str]) -> dict:
        now = int(time.time())
        if path == "/v1/transfers":
            transfer = {
                "id": self._next_id("tr"),
                "object": "transfer",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "destination": form["destination"],
                "transfer_group": form.get("transfer_group"),
                "created": now,
                "livemode": False,
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }
            self.transfers[transfer["id"]] = transfer
            return transfer
        if path == "/v1/accounts":
            account = {
                "id": self._next_id("acct"),
                "object": "account",
                "type": form.get("type"),
                "created": now,
            }
            self.accounts[account["id"]] = account
            return account
        if path == "/v1/account_links":
            return {
                "object": "account_link",
                "created": now,
                "expires_at": now + 300,
                "url": f"https://connect.stripe.test/setup/e/{form['account']}/{self._next_id('link')}",
            }
        return {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({path})"}}


def _error(kind: str, message: str, code: str | None) -> dict:
    return {"error": {"type": kind, "message": message, "code": code}}


def serve(fake: FakeStripe) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, payload = fake.answer("POST", self.path, headers, dict(parse_qsl(body)))
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_fake")
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the "slow" behaviour)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
