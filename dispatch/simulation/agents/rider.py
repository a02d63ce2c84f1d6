"""A simulated rider app: asks estimates, requests rides, watches them, cancels, rates and tips; saves a card
when the server asks for one.

Where the co-op takes cards, a rider's first request answers 402 `payment_method_required`: the rider saves
a card as an app does (a SetupIntent from our server, confirmed at Stripe, kept by our server) and asks
again. Requests refused for payment (402: no card, `payment_declined`, `payment_overdue`) end that ride
and are counted in the summary.

A rider who `books_ahead` books each ride for a pickup time a little beyond the board's shortest lead
(`scheduled_for`, docs/scheduling.md) instead of requesting it now, then follows it like any ride: the
reservation is `scheduled` until the server releases it into dispatch (or sets it off to the driver who
claimed it), and from there the pushes are a ride's. They do not cancel: they planned it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from typing import Any

import httpx

from dispatch.simulation.agents.context import (
    FINAL_STATUSES,
    PickupTiming,
    SimContext,
    place,
    sign_in,
)
from dispatch.simulation.client import (
    ApiClient,
    ApiError,
    Credentials,
    FrameSocket,
    StripeConfirmRefused,
    real_stripe_refusal,
    stripe_setup_confirm,
)
from dispatch.simulation.demand import RiderPlan, TripDemand

logger = logging.getLogger(__name__)


class RiderAgent:
    """A rider with the app: asks estimates, requests rides, watches them, cancels, rates and tips."""

    def __init__(
        self,
        context: SimContext,
        *,
        index: int,
        credentials: Credentials,
        rng: random.Random,
        books_ahead: bool = False,
    ) -> None:
        self.context = context
        self.index = index
        self.credentials = credentials
        self.rng = rng
        self.books_ahead = books_ahead
        self.api: ApiClient | None = None
        self.socket: FrameSocket | None = None
        self.updates: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.trip_ids: list[str] = []
        self.busy = False
        self.card_saved = False  # this run
        self.cards_refused = False  # the simulator may not confirm cards where the server's Stripe is
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Sign in, open the socket and clear any trip a previous run left open. False if it cannot."""
        try:
            self.api = await sign_in(
                self.context, self.credentials, {"name": f"Sim Rider {self.index + 1}", "role": "rider"}
            )
            for attempt in range(3):
                try:
                    await self.connect()
                    break
                except (ApiError, httpx.HTTPError, OSError, TimeoutError):
                    if attempt == 2:
                        raise
                    self.context.metrics.incr("rider.connect_retries")
                    await asyncio.sleep(1.0 + 2 * attempt)
            await self.clear_leftovers()
        except (ApiError, httpx.HTTPError, OSError, TimeoutError) as error:
            self.context.metrics.incr("rider.start_failed")
            logger.warning("rider %s could not start: %s", self.index, error)
            return False
        return True

    async def connect(self) -> None:
        assert self.api is not None
        self.socket = FrameSocket(self.api, "/ws/rider/", self.on_push, name=f"r{self.index}")
        await self.socket.open()
        self._reader = asyncio.create_task(self.socket.run())

    async def ensure_connected(self) -> None:
        if self._reader is None or self._reader.done():
            self.context.metrics.incr("rider.reconnects")
            with contextlib.suppress(ApiError, httpx.HTTPError, OSError, TimeoutError):
                await self.connect()

    async def clear_leftovers(self) -> None:
        assert self.api is not None
        with contextlib.suppress(ApiError):
            for trip in await self.api.trips():
                # A reservation left from an earlier run too: this run's rider did not book it.
                if trip.get("status") in {"scheduled", "requested", "assigned", "arrived"}:
                    with contextlib.suppress(ApiError):
                        await self.api.call("POST", f"/trips/{trip['id']}/cancel", json_body={})
                        self.context.metrics.incr("rider.leftover_trips_cancelled")

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def on_push(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "trip.updated":
            trip = frame.get("trip") or {}
            queue = self.updates.get(str(trip.get("id")))
            if queue is not None:
                queue.put_nowait(trip)
        elif kind == "driver.location":
            sent = self.context.location_sent.pop(str(frame.get("trip_id")), None)
            if sent is not None:
                self.context.metrics.record_since("location_ack", sent)
            self.context.metrics.incr("location.forwarded_to_rider")

    async def ride(self, demand: TripDemand) -> None:
        """One trip, from the first estimate (or the booking ahead) to the rating."""
        self.busy = True
        try:
            await (self._ride_ahead(demand) if self.books_ahead else self._ride(demand))
        except ApiError as error:
            if error.status == 402:
                self.context.summary.count_payment_refusal(rider=self.index, code=error.code)
                self.context.metrics.incr(f"rider.payment_refused.{error.code}")
                logger.info("rider %s: request refused for payment: %s", self.index, error)
            else:
                self.context.metrics.incr("rider.ride_failed")
                logger.info("rider %s: ride failed: %s", self.index, error)
        except (httpx.HTTPError, OSError, TimeoutError) as error:
            self.context.metrics.incr("rider.ride_failed")
            logger.info("rider %s: ride failed: %s", self.index, error)
        finally:
            self.busy = False

    async def _ride(self, demand: TripDemand) -> None:
        context = self.context
        assert self.api is not None
        await self.ensure_connected()
        plan = context.rider_behaviour.plan(self.rng)
        pickup, dropoff = place(demand.pickup), place(demand.dropoff)
        estimate: dict[str, Any] | None = None
        if plan.asks_estimate:
            estimate = await self.api.estimate(pickup, dropoff, demand.wheelchair_accessible)
            if plan.walks_away_after_estimate:
                context.metrics.incr("rider.walked_away_after_estimate")
                return
        trip = await self.request(
            pickup,
            dropoff,
            estimate_id=estimate.get("estimate_id") if estimate else None,
            wheelchair_accessible=demand.wheelchair_accessible,
        )
        trip_id = str(trip["id"])
        self.trip_ids.append(trip_id)
        requested_at = context.metrics.now()
        context.trip_requested[trip_id] = requested_at
        context.summary.trips_requested += 1
        context.outcomes[trip_id] = trip
        timing = context.pickups.setdefault(trip_id, PickupTiming())
        timing.requested_at = requested_at
        if estimate and estimate.get("pickup_eta_s") is not None:
            context.summary.pickup_eta_quoted_s.append(float(estimate["pickup_eta_s"]))
            timing.quoted_eta_s = float(estimate["pickup_eta_s"])
        await self.follow_to_the_end(trip, plan, requested_at, demand.wheelchair_accessible)

    async def _ride_ahead(self, demand: TripDemand) -> None:
        """One ride booked ahead: booked for just beyond the board's shortest lead, then followed from
        `scheduled` to the rating. No estimate first, and no cancelling: the rider planned it."""
        context = self.context
        assert self.api is not None
        await self.ensure_connected()
        plan = dataclasses.replace(
            context.rider_behaviour.plan(self.rng),
            cancel_before_assignment_after_s=None,
            cancel_after_assignment_after_s=None,
        )
        scheduled_for = context.booking_time(self.rng)
        try:
            trip = await self.request(
                place(demand.pickup),
                place(demand.dropoff),
                estimate_id=None,
                wheelchair_accessible=demand.wheelchair_accessible,
                scheduled_for=scheduled_for.isoformat(),
            )
        except ApiError as error:
            if error.status != 402:
                context.summary.count_booking_refusal(booker="rider", code=error.code)
            raise
        trip_id = str(trip["id"])
        self.trip_ids.append(trip_id)
        context.summary.trips_requested += 1
        context.summary.observe_booked_ahead(trip, booker="rider")
        context.observe(trip)
        logger.info("rider %s booked a ride ahead for %s (trip %s)", self.index, scheduled_for, trip_id)
        await self.follow_to_the_end(trip, plan, context.metrics.now(), demand.wheelchair_accessible)

    async def follow_to_the_end(
        self, trip: dict[str, Any], plan: RiderPlan, requested_at: float, wheelchair_accessible: bool
    ) -> None:
        trip_id = str(trip["id"])
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.updates[trip_id] = queue
        try:
            final = await self.follow(trip, queue, plan, requested_at)
        finally:
            self.updates.pop(trip_id, None)
        if final is None:
            return
        if final.get("status") == "completed":
            await self.after_completion(final, plan, wheelchair_accessible)

    async def request(
        self,
        pickup: dict[str, float],
        dropoff: dict[str, float],
        *,
        estimate_id: str | None,
        wheelchair_accessible: bool,
        scheduled_for: str | None = None,
    ) -> dict[str, Any]:
        """Request the trip (or book it ahead). A server that takes cards answers 402
        `payment_method_required` until the rider has one: the rider saves a card and asks again (a new
        request, with a new Idempotency-Key), as an app sends its rider to the card screen and back."""
        assert self.api is not None
        try:
            return await self.api.request_trip(
                pickup,
                dropoff,
                estimate_id=estimate_id,
                wheelchair_accessible=wheelchair_accessible,
                scheduled_for=scheduled_for,
            )
        except ApiError as error:
            if error.status != 402 or error.code != "payment_method_required" or not await self.save_card():
                raise
        return await self.api.request_trip(
            pickup,
            dropoff,
            estimate_id=estimate_id,
            wheelchair_accessible=wheelchair_accessible,
            scheduled_for=scheduled_for,
        )

    async def save_card(self) -> bool:
        """Save a card as an app does: a SetupIntent from our server, confirmed at Stripe with the
        publishable key and the client secret it came with (Stripe's test card), then kept by our server.
        At most once a run; False when it was not saved (the real Stripe, or a refusal)."""
        context = self.context
        assert self.api is not None
        if self.card_saved or self.cards_refused:
            return False
        refusal = real_stripe_refusal(context.stripe_api_base)
        try:
            if refusal is not None:
                raise StripeConfirmRefused(refusal)
            setup = await self.api.card_setup()
            await stripe_setup_confirm(
                context.http, context.metrics, api_base=context.stripe_api_base, setup=setup
            )
            await self.api.card_save(str(setup["setup_intent_id"]))
        except StripeConfirmRefused as refused:
            self.cards_refused = True
            context.metrics.incr("rider.card_not_confirmed")
            if context.metrics.counters.get("rider.card_not_confirmed") == 1:  # said once a run is enough
                logger.warning("riders save no card: %s", refused)
            return False
        except ApiError as error:
            context.metrics.incr(f"rider.card_failed.{error.code}")
            logger.info("rider %s: saving a card failed: %s", self.index, error)
            return False
        self.card_saved = True
        context.summary.cards_saved += 1
        return True

    async def follow(
        self, trip: dict[str, Any], queue: asyncio.Queue[dict[str, Any]], plan: RiderPlan, requested_at: float
    ) -> dict[str, Any] | None:
        """Watch the trip until it ends (or the run stops); cancel when the plan says so."""
        context = self.context
        assert self.api is not None
        trip_id = str(trip["id"])
        seen: set[str] = set()
        assigned_at: float | None = None
        cancel_before = (
            None
            if plan.cancel_before_assignment_after_s is None
            else requested_at + context.human_delay(plan.cancel_before_assignment_after_s)
        )
        cancelling = False
        booked_ahead = trip.get("reservation") is not None
        last_poll = context.metrics.now()
        while True:
            status = str(trip.get("status"))
            context.observe(trip)
            now = context.metrics.now()
            if status not in seen:
                seen.add(status)
                if status == "assigned":
                    assigned_at = now
                    sent = context.accept_sent.pop(trip_id, None)
                    if sent is not None:
                        context.metrics.record_since("accept_to_rider_notified", sent)
                elif status == "arrived" and not booked_ahead:
                    # A ride booked ahead is judged against its window instead (the summary's own lines).
                    context.summary.pickup_wait_s.append((now - requested_at) * context.speedup)
            if status in FINAL_STATUSES:
                self.count_outcome(trip)
                return trip
            if context.stopping.is_set():
                return None
            deadline: float | None = None
            if not cancelling and status == "requested" and cancel_before is not None:
                deadline = cancel_before
            elif (
                not cancelling
                and status in {"assigned", "arrived"}
                and plan.cancel_after_assignment_after_s is not None
                and assigned_at is not None
            ):
                deadline = assigned_at + context.human_delay(plan.cancel_after_assignment_after_s)
            if deadline is not None and now >= deadline:
                cancelling = True
                try:
                    trip = await self.api.cancel(trip_id, "simulated rider changed plans")
                    context.metrics.incr("rider.cancelled")
                except ApiError as error:
                    context.metrics.incr(f"rider.cancel_refused.{error.code}")
                continue
            # Minutes may pass before a reservation is dispatched: the app looks less often meanwhile.
            quiet_s = 30.0 if status == "scheduled" else 5.0
            wait = quiet_s if deadline is None else max(0.05, min(quiet_s, deadline - now))
            try:
                trip = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if context.metrics.now() - last_poll >= quiet_s:
                    # Pushes are best effort: resync from REST, as the app does.
                    last_poll = context.metrics.now()
                    trip = await self.api.trip(trip_id)
                    context.metrics.incr("rider.resync_polls")

    def count_outcome(self, trip: dict[str, Any]) -> None:
        self.context.count_outcome(trip)

    async def read_trip(self, trip_id: str) -> dict[str, Any]:
        assert self.api is not None
        return await self.api.trip(trip_id)

    async def after_completion(
        self, trip: dict[str, Any], plan: RiderPlan, wheelchair_accessible: bool
    ) -> None:
        context = self.context
        assert self.api is not None
        fare = trip.get("fare") or {}
        tip_cents = plan.tip_cents(int(fare.get("amount") or 0)) if plan.tip_share_of_fare > 0 else 0
        if plan.rating_stars is not None:
            try:
                await self.api.rate(str(trip["id"]), plan.rating_stars)
            except ApiError as error:
                context.metrics.incr(f"rider.rating_refused.{error.code}")
        if tip_cents > 0:
            try:
                await self.api.tip(
                    str(trip["id"]), {"amount": tip_cents, "currency": fare.get("currency", "USD")}
                )
            except ApiError as error:
                context.metrics.incr(f"rider.tip_refused.{error.code}")
                tip_cents = 0
        context.record_pay(trip, tip_cents=tip_cents, wheelchair_accessible=wheelchair_accessible)
