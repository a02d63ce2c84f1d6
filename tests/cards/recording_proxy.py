"""A real HTTP proxy in front of localstripe that records every request (method, path, Idempotency-Key) and
can lose answers: it forwards a request, lets Stripe act on it, then drops the connection without replying,
as a network failure after the charge would. localstripe ignores idempotency keys, so what the keys promise
at Stripe is shown here by what the backend sends."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    idempotency_key: str | None
    answered: bool


@dataclass
class RecordingProxy:
    upstream: str
    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    _lose: list[tuple[re.Pattern[str], int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lose_answers(self, path_pattern: str, *, times: int = 1) -> None:
        """Forward the next `times` POSTs whose path matches, then hang up without an answer."""
        with self._lock:
            self._lose.append((re.compile(path_pattern), times))

    def posts(self, path_pattern: str = ".*") -> list[RecordedRequest]:
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == "POST" and pattern.search(r.path)]

    def _should_lose(self, method: str, path: str) -> bool:
        with self._lock:
            for index, (pattern, times) in enumerate(self._lose):
                if method == "POST" and pattern.search(path) and times > 0:
                    self._lose[index] = (pattern, times - 1)
                    return True
        return False


def _handler(proxy: RecordingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            upstream = httpx.request(
                self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30
            )
            lose = proxy._should_lose(self.command, self.path.split("?")[0])
            proxy.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=self.path.split("?")[0],
                    idempotency_key=self.headers.get("Idempotency-Key"),
                    answered=not lose,
                )
            )
            if lose:
                self.close_connection = True
                self.connection.close()
                return
            self.send_response(upstream.status_code)
            for name in ("Content-Type", "Request-Id"):
                if name in upstream.headers:
                    self.send_header(name, upstream.headers[name])
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        do_GET = do_POST = do_DELETE = _forward

    return Handler


@contextlib.contextmanager
def recording_proxy(upstream: str) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
