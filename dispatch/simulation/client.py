"""The simulated apps' view of Rochdale: its REST API over httpx and its websockets, nothing else.

Everything here speaks the wire contract (docs/contract.md) exactly as a phone would: a JWT in the
`Authorization` header, an `Idempotency-Key` on the POSTs that want one, a single-use ticket for each
websocket handshake, `ref`s on command frames matched to their `result` or `error`. No Django import: the
simulator must be able to run against any Rochdale server it can reach.

Saving a card is the one step an app takes with Stripe rather than with us: it confirms the SetupIntent our
server made with Stripe's publishable key and the intent's client secret (`stripe_setup_confirm`). A real
app does that with Stripe's SDK and the card the rider typed; the simulator does it only against a fake
Stripe (localstripe, docs/payments.md) with a test card, and refuses the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dispatch.simulation.metrics import MetricsRecorder

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_PASSWORD = "sim-city-ride-2026"
RETRY_AFTER_CAP_S = 10.0
# Stripe's test card that always succeeds (https://docs.stripe.com/testing), which localstripe knows too.
TEST_CARD_PAYMENT_METHOD = "pm_card_visa"


class ApiError(Exception):
    """A non-2xx answer, with the contract's error body unpacked."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        return cls(
            response.status_code,
            str(error.get("code") or f"http_{response.status_code}"),
            str(error.get("message") or response.reason_phrase),
            error.get("details") if isinstance(error.get("details"), dict) else None,
        )


class FrameError(Exception):
    """The server answered a command frame with an `error` frame."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.code = str(frame.get("code"))
        self.frame = frame


class StripeConfirmRefused(Exception):
    """The simulator will not confirm a card at this Stripe: it is the real one, or the key is live."""


@dataclass(frozen=True, slots=True)
class Credentials:
    phone: str
    password: str = DEFAULT_PASSWORD


def ws_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def origin_of(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


class ApiClient:
    """One signed-in user's REST session. Refreshes its access token once when it is refused."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        metrics: MetricsRecorder,
        *,
        base_url: str,
    ) -> None:
        self.http = http
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        self.access: str | None = None
        self.refresh: str | None = None
        self.user: dict[str, Any] = {}

    # -- plumbing -----------------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        step: str | None = None,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        """Send one request; answer the decoded body or raise ApiError. `step` names the latency sample."""
        url = self.base_url + API_PREFIX + path
        refreshed = False
        throttled_waits = 0
        while True:
            headers: dict[str, str] = {}
            if authenticated and self.access:
                headers["Authorization"] = f"Bearer {self.access}"
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            started = self.metrics.now()
            try:
                response = await self.http.request(
                    method, url, json=json_body, params=params, headers=headers
                )
            except httpx.HTTPError:
                if step:
                    self.metrics.record_since(step, started, ok=False)
                self.metrics.incr("http.transport_errors")
                raise
            if response.status_code == 401 and authenticated and self.refresh and not refreshed:
                refreshed = True
                await self._refresh_access()
                continue
            if response.status_code == 429 and throttled_waits < 3:
                throttled_waits += 1
                self.metrics.incr(f"http.throttled.{step or path}")
                await asyncio.sleep(_retry_after_s(response))
                continue
            ok = response.status_code in expect
            if step:
                self.metrics.record_since(step, started, ok=ok)
            if not ok:
                self.metrics.incr(f"http.{response.status_code}")
                raise ApiError.from_response(response)
            return response.json() if response.content else None

    async def _refresh_access(self) -> None:
        body = await self.call(
            "POST", "/auth/token/refresh", json_body={"refresh": self.refresh}, authenticated=False
        )
        self.access = body["access"]
        self.refresh = body.get("refresh", self.refresh)

    # -- accounts -----------------------------------------------------------------------------------------

    async def sign_in(self, credentials: Credentials) -> None:
        body = await self.call(
            "POST",
            "/auth/token",
            step="sign_in",
            json_body={"phone": credentials.phone, "password": credentials.password},
            authenticated=False,
        )
        self.access, self.refresh = body["access"], body["refresh"]

    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/auth/register", step="register", json_body=body, authenticated=False)

    async def sign_in_or_register(self, credentials: Credentials, registration: dict[str, Any]) -> None:
        """Register the phone (a phone already taken answers 409), then sign in. Registering first, rather
        than signing in and registering on a 401, keeps the server's failed-sign-in counters clean."""
        try:
            await self.register(
                {"phone": credentials.phone, "password": credentials.password, **registration}
            )
        except ApiError as error:
            if error.status != 409:
                raise
        await self.sign_in(credentials)
        self.user = await self.call("GET", "/me", step="me")

    async def ws_ticket(self) -> str:
        body = await self.call("POST", "/ws-ticket", step="ws_ticket", expect=(200, 201))
        return str(body["ticket"])

    # -- riders -------------------------------------------------------------------------------------------

    async def estimate(
        self, pickup: dict[str, float], dropoff: dict[str, float], wheelchair_accessible: bool
    ) -> dict[str, Any]:
        return await self.call(
            "POST",
            "/fares/estimate",
            step="estimate",
            json_body={"pickup": pickup, "dropoff": dropoff, "wheelchair_accessible": wheelchair_accessible},
        )

    async def request_trip(
        self,
        pickup: dict[str, float],
        dropoff: dict[str, float],
        *,
        estimate_id: str | None,
        wheelchair_accessible: bool,
        scheduled_for: str | None = None,
    ) -> dict[str, Any]:
        """Request a ride now, or with `scheduled_for` (ISO 8601 with an offset) book one ahead: the trip
        is then `scheduled` until the server dispatches it (docs/scheduling.md)."""
        body: dict[str, Any] = {
            "pickup": pickup,
            "dropoff": dropoff,
            "wheelchair_accessible": wheelchair_accessible,
        }
        if estimate_id:
            body["estimate_id"] = estimate_id
        if scheduled_for is not None:
            body["scheduled_for"] = scheduled_for
        return await self.call(
            "POST",
            "/trips",
            step="book_ahead" if scheduled_for is not None else "request",
            json_body=body,
            idempotency_key=str(uuid.uuid4()),
        )

    async def trip(self, trip_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/trips/{trip_id}", step="trip_get")

    async def trips(self) -> list[dict[str, Any]]:
        body = await self.call("GET", "/trips", step="trip_list")
        return list(body.get("results", []))

    async def cancel(self, trip_id: str, reason: str = "") -> dict[str, Any]:
        return await self.call(
            "POST", f"/trips/{trip_id}/cancel", step="cancel", json_body={"reason": reason} if reason else {}
        )

    async def rate(self, trip_id: str, stars: int, comment: str = "") -> None:
        await self.call(
            "POST", f"/trips/{trip_id}/rating", step="rating", json_body={"stars": stars, "comment": comment}
        )

    async def tip(self, trip_id: str, amount: dict[str, Any]) -> None:
        await self.call(
            "POST",
            f"/trips/{trip_id}/tip",
            step="tip",
            json_body={"amount": amount},
            idempotency_key=str(uuid.uuid4()),
        )

    async def fare_policy(self) -> dict[str, Any]:
        return await self.call("GET", "/fare-policy", step="fare_policy")

    # -- cards (docs/payments.md) -------------------------------------------------------------------------

    async def card_setup(self) -> dict[str, Any]:
        """A SetupIntent for a new card: `setup_intent_id`, `client_secret`, `publishable_key`."""
        return await self.call("POST", "/payment-methods/setup", step="card_setup", expect=(201,))

    async def card_save(self, setup_intent_id: str) -> dict[str, Any]:
        """Keep the card the confirmed SetupIntent saved (the first becomes the default)."""
        return await self.call(
            "POST",
            "/payment-methods",
            step="card_save",
            json_body={"setup_intent_id": setup_intent_id},
            expect=(201,),
        )

    # -- drivers ------------------------------------------------------------------------------------------

    async def driver_state(self) -> dict[str, Any]:
        return await self.call("GET", "/driver/state", step="driver_state")

    async def driver_reservations(self) -> list[dict[str, Any]]:
        """The reservations this driver may claim, and their own claims (the first page, soonest first)."""
        body = await self.call(
            "GET", "/driver/reservations", step="reservations_list", params={"page_size": 50}
        )
        return list(body.get("results", []))

    async def reservation_claim(self, trip_id: str) -> dict[str, Any]:
        return await self.call("POST", f"/driver/reservations/{trip_id}/claim", step="reservation_claim")

    # -- an organisation's system, with its API key (docs/organisations.md) ------------------------------

    @classmethod
    def with_api_key(
        cls, http: httpx.AsyncClient, metrics: MetricsRecorder, *, base_url: str, api_key: str
    ) -> ApiClient:
        """A session of an organisation's own system: every request carries `Authorization: Bearer rk_...`.
        A key is not a token: there is nothing to refresh, and nobody is signed in."""
        client = cls(http, metrics, base_url=base_url)
        client.access = api_key
        return client

    async def organisation_book(self, organisation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Book a ride on the organisation's account. No `Idempotency-Key`: keys may not send one yet."""
        return await self.call(
            "POST",
            f"/organisations/{organisation_id}/trips",
            step="organisation_book",
            json_body=body,
            expect=(201,),
        )

    async def organisation_trip(self, organisation_id: str, trip_id: str) -> dict[str, Any]:
        return await self.call(
            "GET", f"/organisations/{organisation_id}/trips/{trip_id}", step="organisation_trip_get"
        )


def real_stripe_refusal(api_base: str) -> str | None:
    """Why the simulator must not confirm cards at `api_base`, or None when it may: confirming at the real
    Stripe is an app's job, with Stripe's SDK and a card a person typed; the simulator only ever talks to a
    fake one (localstripe)."""
    host = (urlsplit(api_base).hostname or "").lower()
    if not host:
        return f"the Stripe API base {api_base!r} is not a URL"
    if host == "stripe.com" or host.endswith(".stripe.com"):
        return f"{api_base} is the real Stripe: only an app with Stripe's SDK saves cards there"
    return None


async def stripe_setup_confirm(
    http: httpx.AsyncClient,
    metrics: MetricsRecorder,
    *,
    api_base: str,
    setup: dict[str, Any],
    payment_method: str = TEST_CARD_PAYMENT_METHOD,
) -> dict[str, Any]:
    """Confirm a SetupIntent at Stripe as the app's SDK does: the publishable key and the client secret
    from our server's setup answer, never the co-op's secret key. Answers the SetupIntent; raises
    StripeConfirmRefused before any request at the real Stripe, ApiError when Stripe refuses."""
    publishable_key = str(setup.get("publishable_key") or "")
    refusal = real_stripe_refusal(api_base)
    if refusal is None and not publishable_key.startswith("pk_test_"):
        refusal = "the publishable key is not a test key (pk_test_...), wherever it points"
    if refusal is not None:
        raise StripeConfirmRefused(refusal)
    url = f"{api_base.rstrip('/')}/v1/setup_intents/{setup['setup_intent_id']}/confirm"
    form = {"key": publishable_key, "client_secret": setup["client_secret"], "payment_method": payment_method}
    started = metrics.now()
    try:
        response = await http.post(url, data=form)
    except httpx.HTTPError:
        metrics.record_since("card_confirm", started, ok=False)
        raise
    metrics.record_since("card_confirm", started, ok=response.status_code == 200)
    if response.status_code != 200:
        raise ApiError.from_response(response)
    return response.json()


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return min(RETRY_AFTER_CAP_S, max(0.5, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


PushHandler = Callable[[dict[str, Any]], Awaitable[None]]


class FrameSocket:
    """One authenticated websocket (`/ws/driver/` or `/ws/rider/`).

    Command frames get a `ref` and `command()` waits for the `result` or `error` carrying it. Every other
    frame from the server (pushes, and errors without a ref) goes to `on_push`. When the socket drops,
    `run()` returns and the owner reconnects with a fresh ticket and resyncs from REST, as the apps do.
    """

    def __init__(self, api: ApiClient, path: str, on_push: PushHandler, *, name: str) -> None:
        self.api = api
        self.path = path
        self.on_push = on_push
        self.name = name
        self._connection: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._refs = itertools.count(1)

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def open(self) -> None:
        ticket = await self.api.ws_ticket()
        url = f"{ws_base_url(self.api.base_url)}{self.path}?ticket={ticket}"
        started = self.api.metrics.now()
        try:
            self._connection = await connect(
                url, origin=origin_of(self.api.base_url), open_timeout=20, max_size=2**20
            )
        except Exception:
            self.api.metrics.record_since("ws_connect", started, ok=False)
            raise
        self.api.metrics.record_since("ws_connect", started)

    async def run(self) -> None:
        """Read frames until the socket closes."""
        connection = self._connection
        if connection is None:
            return
        try:
            async for raw in connection:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    self.api.metrics.incr("ws.undecodable_frames")
                    continue
                ref = frame.get("ref")
                if frame.get("type") in {"result", "error"} and ref in self._pending:
                    future = self._pending.pop(ref)
                    if not future.done():
                        future.set_result(frame)
                    continue
                if frame.get("type") == "error":
                    self.api.metrics.incr(f"ws.error.{frame.get('code')}")
                    logger.debug("%s: unsolicited error %s", self.name, frame)
                    continue
                try:
                    await self.on_push(frame)
                except Exception:
                    logger.exception("%s: push handler failed on %s", self.name, frame.get("type"))
        except ConnectionClosed:
            pass
        finally:
            self._connection = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("socket closed"))
                    future.exception()  # the waiting command raises it; nobody else needs to see it
            self._pending.clear()

    async def send(self, frame: dict[str, Any]) -> bool:
        """Send a frame that gets no answer (a `location`). False if the socket is down."""
        connection = self._connection
        if connection is None:
            return False
        try:
            await connection.send(json.dumps(frame))
            return True
        except ConnectionClosed:
            return False

    async def command(self, frame: dict[str, Any], *, step: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a command frame and wait for its answer; raises FrameError on an `error` frame."""
        connection = self._connection
        if connection is None:
            raise ConnectionError(f"{self.name}: socket is not open")
        ref = f"{self.name[:20]}-{next(self._refs)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        started = self.api.metrics.now()
        try:
            await connection.send(json.dumps({**frame, "ref": ref}))
            answer = await asyncio.wait_for(future, timeout_s)
        except (TimeoutError, ConnectionError, ConnectionClosed):
            self._pending.pop(ref, None)
            self.api.metrics.record_since(step, started, ok=False)
            raise
        ok = answer.get("type") == "result"
        self.api.metrics.record_since(step, started, ok=ok)
        if not ok:
            raise FrameError(answer)
        return answer

    async def close(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
