"""localstripe for `make run`: the fake Stripe the demo stack takes cards against.

infra/bin/run.sh starts it as the Procfile's `localstripe` process when ROCHDALE_PAYMENT_PROVIDER=stripe and
STRIPE_API_BASE names this machine (docs/payments.md, "Paying by card in `make run`"). It serves localstripe's
own application (`localstripe.server.app`, the package in the dev extras); what differs from running
`.venv/bin/localstripe --from-scratch`, and why:

- The store outlives a restart. The demo database keeps every rider's Stripe customer and default card; an
  empty localstripe would refuse every later hold on them (no such customer) and those riders could never
  ride again. The stock server keeps its store in /tmp/localstripe.pickle, which every localstripe on the
  machine (the test suite's included) overwrites, so `--from-scratch` is the only safe way to run it stock.
  Here the store is a file of its own (`--store`, default var/localstripe/store.pickle, next to the demo's
  data), replaced atomically.
- The store is written at most every few seconds, not on every object: the stock server pickles its whole
  store each time it writes one, so every call gets slower as the demo runs (about a second a trip after
  600 trips on this machine, against 30 ms without). Writing waits `WRITE_SPACING` times as long as the last
  write took, so writing never takes more than a few percent of the server's time, and the last changes are
  written on exit (honcho stops the stack with SIGTERM or SIGINT).
- It listens only on the host STRIPE_API_BASE names (the stock server takes every interface), and logs
  failed webhook deliveries instead of every call.

The webhook endpoint (`--webhook-url`, signed with STRIPE_WEBHOOK_SECRET) is registered before the first
request is served, as `POST /_config/webhooks/demo` would register it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import pickle
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from localstripe import resources, server, webhooks

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE = ROOT / "var" / "localstripe" / "store.pickle"
LOCAL_HOSTS = ("localhost", "127.0.0.1")
WEBHOOK_ID = "demo"
MIN_WRITE_INTERVAL_S = 2.0
WRITE_SPACING = 20.0  # wait 20 times the last write's duration: writing takes under 5 % of the time

logger = logging.getLogger("rochdale.localstripe")


def local_address(url: str) -> tuple[str, int]:
    """The host and port localstripe must listen on for `url`; ValueError for a URL it cannot serve."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"{url!r} is not on this machine (localstripe serves {' or '.join(LOCAL_HOSTS)})")
    if parts.scheme != "http":
        raise ValueError(f"{url!r}: localstripe speaks plain http")
    if parts.port is None:
        raise ValueError(f"{url!r}: name localstripe's port, e.g. http://localhost:8420")
    return parts.hostname, parts.port


class StoreFile:
    """localstripe's store on disk: loaded at start, written when it changed, spaced out, and on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        self.last_write_s = 0.0

    def load(self, store: dict) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as file:
            saved = pickle.load(file)  # noqa: S301 - our own file, written below
        dict.update(store, saved)  # dict's own update: the store's __setitem__ would mark it changed
        return len(saved)

    def mark_changed(self) -> None:
        self.changed = True

    def write_if_changed(self, store: dict) -> None:
        if not self.changed:
            return
        self.changed = False
        started = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        with partial.open("wb") as file:
            pickle.dump(dict(store), file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, self.path)
        self.last_write_s = time.monotonic() - started

    def next_write_in_s(self) -> float:
        return max(MIN_WRITE_INTERVAL_S, WRITE_SPACING * self.last_write_s)


class FailedDeliveriesOnly(logging.Filter):
    """localstripe logs every webhook delivery on the access logger; only the failures are news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage().startswith("webhook") and "failed" in record.getMessage()


def serve(*, host: str, port: int, store_path: Path, webhook_url: str, webhook_secret: str) -> None:
    store_file = StoreFile(store_path)
    # Every write of an object, and the server's middleware after each POST or DELETE, asks the store to
    # dump itself: here that only marks it changed, for the writer below.
    resources.Store.dump_to_disk = lambda _store: store_file.mark_changed()
    loaded = store_file.load(resources.store)

    async def keep_store_written(_app: web.Application) -> AsyncIterator[None]:
        async def writer() -> None:
            while True:
                await asyncio.sleep(store_file.next_write_in_s())
                store_file.write_if_changed(resources.store)

        task = asyncio.create_task(writer())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store_file.write_if_changed(resources.store)

    server.app.cleanup_ctx.append(keep_store_written)
    if webhook_url:
        webhooks.register_webhook(WEBHOOK_ID, webhook_url, webhook_secret, None)
    deliveries = logging.getLogger("aiohttp.access")
    deliveries.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(FailedDeliveriesOnly())
    deliveries.addHandler(handler)
    deliveries.propagate = False
    logger.info(
        "localstripe on http://%s:%d (store %s: %d objects kept; webhook %s)",
        host,
        port,
        store_path,
        loaded,
        webhook_url or "none",
    )
    web.run_app(server.app, host=host, port=port, access_log=None, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("STRIPE_API_BASE", ""), help="STRIPE_API_BASE")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="the store's file")
    parser.add_argument("--webhook-url", default="", help="deliver events here")
    arguments = parser.parse_args(argv)
    try:
        host, port = local_address(arguments.url)
    except ValueError as error:
        raise SystemExit(f"localstripe: {error}") from error
    webhook_secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    if arguments.webhook_url and not webhook_secret:
        raise SystemExit("localstripe: a webhook needs its signing secret (STRIPE_WEBHOOK_SECRET)")
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)
    serve(
        host=host,
        port=port,
        store_path=arguments.store,
        webhook_url=arguments.webhook_url,
        webhook_secret=webhook_secret,
    )


if __name__ == "__main__":
    main()
