"""Dispatch rounds: who is offered a trip next, recorded with why, decided under the trip's row lock.

The region's dispatch worker (dispatch/worker.py) finds candidates in its in-memory DriverIndex and calls
`dispatch_round` here; when the worker is down, `sweep_dispatch` (Celery beat, every 2 s) does the same
with candidates from Redis's geo set, so timeouts and re-offers keep working across any restart. A round
holds `SELECT ... FOR UPDATE SKIP LOCKED` on the trip, so two rounds never offer one trip twice, and the
partial unique indexes on Offer refuse a second open offer per driver. Under a regulator profile the
candidate about to be offered must be eligible (documents and hours limits, dispatch/services/eligibility.py);
one who is not is passed over for this round only. A ride booked ahead (docs/scheduling.md) is offered only
to candidates who would reach the pickup by the end of its window, those arriving inside it first.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend import metrics
from backend.redis import get_redis
from backend.request_context import bound_to_trip
from backend.timestamps import wire_timestamp
from dispatch import live
from dispatch.eta_model import pickup_eta_by_road_s, pickup_eta_s
from dispatch.matching import ranking
from dispatch.models import Offer, OfferStatus, Trip
from dispatch.policy import DispatchPolicy, dispatch_policy_in_force
from dispatch.realtime import push_to_user
from dispatch.roads.choice import road_router
from dispatch.roads.engine import LatLng
from dispatch.roads.routers import MODEL
from dispatch.services.eligibility import driver_eligibility, eligibility_checked
from dispatch.services.leases import (
    SWEEPER_LEASE_TTL_S,
    Lease,
    LeaseLost,
    holder_id,
    lease_acquire,
    lease_fence,
    lease_release,
)
from dispatch.services.offers import offer_document, offer_expire
from dispatch.services.ride_notices import offer_away_notify
from dispatch.services.transitions import trip_transition
from dispatch.state import DRIVER_ACTIVE_STATUSES, TripStatus

logger = logging.getLogger(__name__)


@bound_to_trip  # its log lines name the trip
def trip_requested(*, trip_id: uuid.UUID, pickup: tuple[float, float], wheelchair_accessible: bool) -> None:
    """Hand a new trip to the region's dispatch worker (call it on commit of the trip's creation).

    `pickup` is (lat, lng): the event carries what matching needs, so the worker never reads it back."""
    fields: dict[str, Any] = {
        "trip": trip_id,
        "t": time.time(),
        "lat": pickup[0],
        "lng": pickup[1],
        "wav": int(wheelchair_accessible),
    }
    try:
        live.post_event("request", **fields)
    except Exception:  # Redis down: the sweeper finds the trip in PostgreSQL within seconds
        logger.warning("trip %s: dispatch event not sent", trip_id, exc_info=True)


# -- candidates and ranking ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A free driver near the pickup. `distance_m` is the straight line; once `by_road` has ranked the
    candidates, `eta_s` is the road ETA, `road_distance_m` the drive and `router` who answered."""

    driver_id: str
    distance_m: float
    eta_s: int
    idle_s: int
    fix_age_s: float
    position: LatLng | None = None
    road_distance_m: int | None = None
    router: str = MODEL


# A driver, how far in a straight line, and where (lat, lng): what the index or the geo set finds.
Near = tuple[str, float, LatLng | None]


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    candidate: Candidate
    rank: int
    reason: dict[str, Any]


@dataclass(slots=True)
class TripInfo:
    trip_id: str
    lat: float
    lng: float
    wav: bool
    excluded: set[str] = field(default_factory=set)


def live_candidates(
    client: redis.Redis,
    near: Sequence[Near],
    *,
    policy: DispatchPolicy,
    excluded: set[str],
    now: float,
) -> list[Candidate]:
    """Keep the drivers Redis says are online, free and freshly located; return them as candidates.

    One pipelined HMGET reads the live flags of them all."""
    wanted = [entry for entry in near if entry[0] not in excluded]
    if not wanted:
        return []
    pipe = client.pipeline(transaction=False)
    for driver_id, _, _ in wanted:
        pipe.hmget(live.driver_key(driver_id), "online", "trip", "t", "idle")
    return _to_candidates(wanted, pipe.execute(), policy=policy, now=now)


async def alive_candidates(
    client: aioredis.Redis,
    near: Sequence[Near],
    *,
    policy: DispatchPolicy,
    excluded: set[str],
    now: float,
) -> list[Candidate]:
    """The asyncio twin of `live_candidates`, for the dispatch worker."""
    wanted = [entry for entry in near if entry[0] not in excluded]
    if not wanted:
        return []
    pipe = client.pipeline(transaction=False)
    for driver_id, _, _ in wanted:
        pipe.hmget(live.driver_key(driver_id), "online", "trip", "t", "idle")
    return _to_candidates(wanted, await pipe.execute(), policy=policy, now=now)


def _to_candidates(
    wanted: list[Near], flags: list[list[bytes | None]], *, policy: DispatchPolicy, now: float
) -> list[Candidate]:
    found = []
    for (driver_id, metres, position), (online, trip, fix_at, idle) in zip(wanted, flags, strict=True):
        if online != b"1" or trip or fix_at is None:
            continue
        age = now - float(fix_at)
        if age > policy.max_fix_age_s:
            continue  # no offers to a driver we have not heard from lately
        idle_s = max(0, int(now - float(idle))) if idle else 0
        found.append(Candidate(driver_id, metres, pickup_eta_s(metres), idle_s, age, position))
    return found


def by_road(
    candidates: Sequence[Candidate], *, pickup: LatLng, at: datetime | None = None
) -> list[Candidate]:
    """The nearest candidates (by straight line) with their road ETAs, from one matrix call.

    On a road engine only the `ROCHDALE_ROAD_CANDIDATES` nearest are kept (fewer if the policy's
    `max_candidates` is lower), so every candidate a round ranks has an ETA of the same kind; a round is
    re-run from fresh candidates after each decline, so dropping the far ones loses nobody, and
    docs/roads.md shows how rarely the road's best driver is farther down the straight-line list. On the
    model, ranking costs nothing and every candidate stays. A leg the model answered leaves the candidate's
    distance the straight line (`road_distance_m` None): the model's circuity is a guess, not a drive, and
    an offer's distance counts toward the weekly floor's engaged distance."""
    router = road_router()
    ordered = sorted(candidates, key=lambda c: (c.distance_m, c.driver_id))
    nearest = ordered if router.name == MODEL else ordered[: settings.ROCHDALE_ROAD_CANDIDATES]
    placed = [c for c in nearest if c.position is not None]
    if not placed:
        return list(nearest)
    legs = router.legs_to([c.position for c in placed if c.position], pickup, at or timezone.now())
    by_id = {
        c.driver_id: replace(
            c,
            eta_s=pickup_eta_by_road_s(leg.duration_s),
            road_distance_m=None if leg.router == MODEL else leg.distance_m,
            router=leg.router,
        )
        for c, leg in zip(placed, legs, strict=True)
        if leg is not None
    }
    return [by_id.get(c.driver_id, c) for c in nearest]


def rank_candidates(
    candidates: Sequence[Candidate], *, policy: DispatchPolicy, wheelchair_required: bool = False
) -> list[RankedCandidate]:
    """Order candidates by the board's fairness rule (dispatch/matching/ranking.py, docs/dispatch.md), each
    with the reason recorded on its offer. Candidates here already passed the WAV and freshness filters."""
    pure = [
        ranking.Candidate(c.driver_id, c.distance_m, c.eta_s, c.idle_s, wheelchair_accessible=True)
        for c in candidates
    ]
    by_id = {c.driver_id: c for c in candidates}
    ranked = []
    routes = {
        c.driver_id: {
            "straight_line_m": round(c.distance_m),
            "road_distance_m": c.road_distance_m,
            "router": c.router,
        }
        for c in candidates
    }
    for entry in ranking.rank_candidates(
        pure, policy.fairness_rule(), wheelchair_required=wheelchair_required
    ):
        details = dict(entry.details)
        # Other drivers' ids stay private: a driver's history shows how many were in the window, not who.
        window = details.pop("within_window_of", [])
        details["drivers_in_window"] = len(window)
        ranked.append(
            RankedCandidate(
                by_id[entry.driver_id],
                entry.rank,
                {**policy.as_reason(), **details, **routes[entry.driver_id], "explanation": entry.reason},
            )
        )
    return ranked


# -- the round --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What a round did. `kind`: offered | open (an offer is still running) | waiting (nobody free; try
    again at `next_at`) | unfulfilled | closed (the trip is not looking for a driver, or is locked)."""

    kind: str
    next_at: datetime | None = None
    offer_id: uuid.UUID | None = None
    driver_id: str | None = None
    expired_offer: tuple[uuid.UUID, str] | None = None


def trip_info(*, trip_id: uuid.UUID | str) -> TripInfo | None:
    """Pickup, WAV flag and drivers already offered this trip, or None when it is not being dispatched."""
    row = (
        Trip.objects.filter(id=trip_id, status=TripStatus.REQUESTED)
        .values_list("pickup", "wheelchair_accessible")
        .first()
    )
    if row is None:
        return None
    excluded = {str(d) for d in Offer.objects.filter(trip_id=trip_id).values_list("driver_id", flat=True)}
    return TripInfo(str(trip_id), row[0].y, row[0].x, bool(row[1]), excluded)


@bound_to_trip  # its log lines name the trip
def dispatch_round(
    *,
    trip_id: uuid.UUID | str,
    ranked: Sequence[RankedCandidate],
    policy: DispatchPolicy,
    lease: Lease,
    batch: dict[str, Any] | None = None,
) -> RoundResult:
    """Expire the trip's overdue offer if any, then offer it to the best candidate who can still take it.

    With nobody to offer it to, the trip waits (`next_dispatch_at`) and is searched again until its search
    budget runs out; then it becomes `unfulfilled` and the rider is told. Only the holder of the region's
    `lease` may: checked under the lease row's lock first (one lock order: lease, then trip), it raises
    LeaseLost, writing nothing, once another worker has taken the region over."""
    now = timezone.now()
    expired: tuple[uuid.UUID, str] | None = None
    with transaction.atomic():
        lease_fence(lease)
        trip = (
            Trip.objects.select_for_update(skip_locked=True)
            .filter(id=trip_id, status=TripStatus.REQUESTED)
            .select_related("policy_version")
            .first()
        )
        if trip is None:
            return RoundResult("closed")
        current = Offer.objects.filter(trip_id=trip.id, status=OfferStatus.OPEN).first()
        if current is not None:
            if current.expires_at > now:
                return RoundResult("open", next_at=current.expires_at, offer_id=current.id)
            Offer.objects.filter(id=current.id, status=OfferStatus.OPEN).update(
                status=OfferStatus.EXPIRED, responded_at=now
            )
            push_to_user(current.driver_id, {"type": "offer.expired", "offer_id": str(current.id)})
            transaction.on_commit(lambda: metrics.observe_offer(OfferStatus.EXPIRED.value))
            expired = (current.id, str(current.driver_id))
        deadline = trip.search_deadline or trip.requested_at + timedelta(seconds=policy.search_budget_s)
        if trip.search_deadline is None:
            trip.search_deadline = deadline
        if now >= deadline:
            trip_transition(
                trip_id=trip.id,
                to=TripStatus.UNFULFILLED,
                details={"reason": "no driver accepted within the search budget"},
            )
            return RoundResult("unfulfilled", expired_offer=expired)
        excluded = {str(d) for d in Offer.objects.filter(trip_id=trip.id).values_list("driver_id", flat=True)}
        ids = [r.candidate.driver_id for r in ranked if r.candidate.driver_id not in excluded]
        busy = {
            str(d)
            for d in Trip.objects.filter(
                driver_id__in=ids, status__in=sorted(DRIVER_ACTIVE_STATUSES)
            ).values_list("driver_id", flat=True)
        }
        if trip.pickup_window_start is not None and trip.pickup_window_end is not None:
            # A ride booked ahead: only drivers who can still make its pickup window (docs/scheduling.md).
            ranked = in_pickup_window(
                ranked, start=trip.pickup_window_start, end=trip.pickup_window_end, at=now
            )
        # The regulator profile's documents and hours limits, checked for the candidate about to be offered
        # only (under the trip's lock, so an expiry stops offers at this round and never a trip under way).
        checked = eligibility_checked()
        for choice in ranked:
            candidate = choice.candidate
            if candidate.driver_id in excluded or candidate.driver_id in busy:
                continue
            if checked and not _offerable(candidate.driver_id, trip=trip, at=now):
                continue
            expires_at = now + timedelta(seconds=policy.offer_timeout_s)
            reason = dict(choice.reason)
            if batch:
                reason["batch"] = batch
            try:
                with transaction.atomic():
                    offer = Offer.objects.create(
                        trip_id=trip.id,
                        driver_id=candidate.driver_id,
                        created_at=now,
                        expires_at=expires_at,
                        # What the driver drives to the pickup: the road's distance where it answered.
                        pickup_distance_m=candidate.road_distance_m
                        if candidate.road_distance_m is not None
                        else round(candidate.distance_m),
                        pickup_eta_s=candidate.eta_s,
                        rank=choice.rank,
                        candidates_considered=choice.reason.get("candidates_considered", len(ranked)),
                        idle_s=candidate.idle_s,
                        reason=reason,
                        dispatch_policy_version=policy.version,
                        lease_token=lease.token,
                    )
            except IntegrityError:  # holds another open offer, or was offered this trip already
                continue
            Trip.objects.filter(id=trip.id).update(next_dispatch_at=expires_at, search_deadline=deadline)
            push_to_user(candidate.driver_id, {"type": "offer", **offer_document(offer, trip)})
            transaction.on_commit(lambda: metrics.observe_offer("offered"))
            offer_away_notify(offer=offer, trip=trip)  # a push when the driver's app has no live socket
            return RoundResult(
                "offered",
                next_at=expires_at,
                offer_id=offer.id,
                driver_id=candidate.driver_id,
                expired_offer=expired,
            )
        retry_at = min(now + timedelta(seconds=policy.retry_interval_s), deadline)
        Trip.objects.filter(id=trip.id).update(next_dispatch_at=retry_at, search_deadline=deadline)
        return RoundResult("waiting", next_at=retry_at, expired_offer=expired)


def in_pickup_window(
    ranked: Sequence[RankedCandidate], *, start: datetime, end: datetime, at: datetime
) -> list[RankedCandidate]:
    """A reservation's candidates (docs/scheduling.md): nobody who would reach the pickup after its window
    closes (`at` + road ETA > `end`), and those who would arrive inside it before those who would arrive
    early and wait; the fairness order holds within each group. Each reason records the arrival."""
    inside: list[RankedCandidate] = []
    early: list[RankedCandidate] = []
    for choice in ranked:
        arrival = at + timedelta(seconds=choice.candidate.eta_s)
        if arrival > end:
            continue
        window = {
            "start": wire_timestamp(start),
            "end": wire_timestamp(end),
            "arrives_at": wire_timestamp(arrival),
            "arrives_in_window": arrival >= start,
        }
        (inside if arrival >= start else early).append(
            replace(choice, reason={**choice.reason, "pickup_window": window})
        )
    return [replace(choice, rank=rank) for rank, choice in enumerate([*inside, *early], start=1)]


def _offerable(driver_id: str, *, trip: Trip, at: datetime) -> bool:
    problems = driver_eligibility(
        driver_id=uuid.UUID(driver_id), at=at, wheelchair_accessible=trip.wheelchair_accessible
    )
    if problems:
        logger.info("trip %s: driver %s not offered (%s)", trip.id, driver_id, problems[0].code)
    return not problems


# -- the database sweeper (works with the worker down) --------------------------------------------------


def worker_alive(region_name: str | None = None) -> bool:
    try:
        return bool(get_redis().exists(live.worker_heartbeat_key(region_name)))
    except Exception:
        return False


def sweep_dispatch(*, grace_s: float = 2.0) -> dict[str, int]:
    """Expire offers overdue by more than `grace_s` (a live worker expires them on time) and, when no
    dispatch worker is alive, run the due rounds itself with candidates from Redis's geo set."""
    now = timezone.now()
    overdue = list(
        Offer.objects.filter(
            status=OfferStatus.OPEN, expires_at__lt=now - timedelta(seconds=grace_s)
        ).values_list("id", "trip_id")
    )
    for offer_id, _trip_id in overdue:
        offer_expire(offer_id=offer_id)
    rounds = 0
    # Only with the region's lease: free while no worker runs, and then held for this sweep alone, so a
    # worker starting meanwhile waits for the sweep to end and fences out whatever came after.
    lease = (
        None
        if worker_alive()
        else lease_acquire(region=live.region(), holder=holder_id("sweeper"), ttl_s=SWEEPER_LEASE_TTL_S)
    )
    if lease is not None:
        try:
            rounds = _sweep_rounds(lease, grace_s=grace_s)
        finally:
            lease_release(lease)
    return {"expired": len(overdue), "rounds": rounds}


def _sweep_rounds(lease: Lease, *, grace_s: float) -> int:
    """The due rounds the absent worker would have run, under the sweeper's lease."""
    rounds = 0
    now = timezone.now()
    due = (
        Trip.objects.filter(status=TripStatus.REQUESTED)
        .exclude(next_dispatch_at__gt=now)
        .exclude(offers__status=OfferStatus.OPEN)
        .filter(requested_at__lt=now - timedelta(seconds=grace_s))
    )
    policy = dispatch_policy_in_force()
    for trip_id in due.values_list("id", flat=True)[:200]:
        info = trip_info(trip_id=trip_id)
        if info is None:
            continue
        found = by_road(candidates_from_redis(info, policy=policy), pickup=(info.lat, info.lng))
        ranked = rank_candidates(found, policy=policy, wheelchair_required=info.wav)
        try:
            dispatch_round(trip_id=trip_id, ranked=ranked, policy=policy, lease=lease)
        except LeaseLost:  # a worker took over mid-sweep: the rest is its to do
            break
        rounds += 1
    return rounds


def candidates_from_redis(info: TripInfo, *, policy: DispatchPolicy) -> list[Candidate]:
    """Candidates near the pickup from the available geo set (the sweeper's stand-in for the index)."""
    if abs(info.lat) > live.GEO_LAT_LIMIT:
        return []
    client = get_redis()
    found = client.geosearch(
        live.available_key(wav=info.wav),
        longitude=info.lng,
        latitude=info.lat,
        radius=policy.search_radius_m,
        unit="m",
        sort="ASC",
        count=policy.max_candidates * 2,
        withdist=True,
        withcoord=True,
    )
    near = [
        (member.decode(), float(distance), (float(lat), float(lng))) for member, distance, (lng, lat) in found
    ]
    return live_candidates(client, near, policy=policy, excluded=info.excluded, now=time.time())[
        : policy.max_candidates
    ]
