"""Collecting what riders owe through a payment provider, without ever making a trip wait for it.

Flow: the settlement writes a `PaymentCapture` row (pending; `captures.capture_create`) in the same
transaction as the journal entry that made the rider owe the money, and enqueues `capture_payment` after
commit. An attempt claims the row
with a guarded UPDATE (so two workers never both call the provider for it while its lease runs), talks to
the provider outside any database transaction, then records the outcome: success posts the capture's ledger
key (Dr cash_clearing, Cr rider_receivable; the mirror image for a refund payout), failure is retried with
exponential backoff by `retry_failed_captures` until `ROCHDALE_PAYMENT_MAX_ATTEMPTS`, and stays listed for
staff (admin, `GET /api/v1/staff/payments/failed`).

Idempotency at the provider. Every call carries `PaymentRequest.idempotency_key`
(`PaymentCapture.idempotency_key`), modelled on Stripe's `Idempotency-Key` header: the same logical charge
(this capture, purpose, amount and currency) sends the same key on every retry, so a provider that
deduplicates answers a repeat with the first result instead of charging again. A different amount (a
refund reduced it) or purpose is a different key, and so is the attempt after the provider refused one
(`PaymentResult.definitive`): the provider would only repeat its refusal for the old key. An attempt with
no answer (a timeout, a raised error, a dead worker) keeps the key, because the charge may have gone
through.

Prompt retries. A provider call gives up after `ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S` (default 20 s,
passed as `PaymentRequest.timeout_s`). A claim is a lease of that timeout plus `LEASE_MARGIN_S`: a capture
still `processing` after it belonged to a worker that died, and the retry sweep (every
`ROCHDALE_PAYMENT_RETRY_SWEEP_S`, default 15 s, in the beat schedule) claims it again; a pending capture
whose enqueue was lost is picked up after the same lease. So a capture whose worker died mid-call is
retried within lease + sweep interval (40 s by default) of its claim, with the same idempotency key.

Locks: recording an outcome locks the capture's trip (FOR KEY SHARE) before the capture row and before
any ledger row, the one order of backend/fares/ledger.py, so it never deadlocks with a tip or a refund on
the same trip.

Providers: `cash` (the driver collected it: always succeeds) and `test` (no network; behaves like Stripe
with idempotency keys, kept in Redis; can be told to decline for a rider, optionally only for an amount, a
number of times, and to hold a call until released, so retries and dead workers can be exercised end to
end). A card provider plugs in with `register_payment_provider("name", factory)` or a dotted path in
`settings.ROCHDALE_PAYMENT_PROVIDER`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from backend import metrics
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, CapturePurpose, CaptureStatus, PaymentCapture
from backend.redis import get_redis

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 3600
DEFAULT_PROVIDER_TIMEOUT_S = 20.0
# A claim outlasts the provider call by this much: the database work around the call takes milliseconds,
# so a capture still `processing` after timeout + margin belongs to a worker that is gone.
LEASE_MARGIN_S = 5.0


@dataclass(frozen=True)
class PaymentRequest:
    """One call to the provider. `reference` is the capture's id; `idempotency_key` is what the provider
    must deduplicate on (the same key is the same charge); `timeout_s` is how long the call may take;
    `trip_id` the trip the money is for (a card provider captures a fare from that trip's hold)."""

    reference: str
    idempotency_key: str
    purpose: str
    rider_id: uuid.UUID
    amount_minor: int
    currency: str
    attempt: int
    timeout_s: float
    trip_id: uuid.UUID | None = None


@dataclass(frozen=True)
class PaymentResult:
    """What the provider answered. `definitive` is True when the provider processed the request under its
    idempotency key (a success, or a refusal it would repeat for that key); False when the outcome is
    unknown (timed out, connection lost, the key was busy), so the retry must send the same key.

    `collected_minor` is set on a success that took less than asked (a card hold covered part of a fare):
    the capture is recorded for what was taken, and the rest becomes a capture of its own
    (`{key}:rest`), attempted, retried and owed like any other."""

    ok: bool
    provider_reference: str = ""
    error: str = ""
    retryable: bool = True
    definitive: bool = True
    collected_minor: int | None = None


class PaymentProvider(ABC):
    """What a payment provider must do. Calls may block on the network; they run outside transactions.

    Contract for every call:
    - send `request.idempotency_key` as the provider's idempotency key (Stripe: the `Idempotency-Key`
      header) and never charge twice for one key: a repeat of a key the provider already processed must be
      answered with the first result;
    - give up after `request.timeout_s` seconds (pass it to the HTTP client as its timeout). A call that
      does not return in time may be retried by another worker once the capture's lease (timeout +
      `LEASE_MARGIN_S`) runs out; the shared key keeps that retry from charging twice;
    - return `PaymentResult(ok=False, definitive=False)` (or raise) when the outcome is unknown, and
      `definitive=True` for a refusal the provider made, so the next attempt is a new charge with a new key.
    """

    name: str = "abstract"

    @abstractmethod
    def capture(self, request: PaymentRequest) -> PaymentResult:
        """Collect `amount_minor` from the rider."""

    @abstractmethod
    def refund(self, request: PaymentRequest) -> PaymentResult:
        """Pay `amount_minor` back to the rider."""


class CashProvider(PaymentProvider):
    """The rider paid the driver in cash: there is nothing to call, the money is in hand."""

    name = "cash"

    def capture(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(ok=True, provider_reference=f"cash:{request.reference}")

    def refund(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(ok=True, provider_reference=f"cash-refund:{request.reference}")


@dataclass(frozen=True)
class TestProviderCharge:
    """Money the test provider moved: one per idempotency key it processed successfully."""

    __test__ = False  # not a pytest test class
    idempotency_key: str
    kind: str  # "capture" or "refund"
    amount_minor: int
    currency: str
    charge_id: str


@dataclass(frozen=True)
class TestProviderHistory:
    """Everything the test provider saw for one reference (a capture id)."""

    __test__ = False
    calls: int
    idempotency_keys: frozenset[str]
    charges: tuple[TestProviderCharge, ...]


class TestModeProvider(PaymentProvider):
    """No network; behaves like Stripe with idempotency keys. State lives in Redis, so a test, the workers
    and the web process all see it (and a worker killed mid-call leaves it behind, as a real provider would).

    - Each idempotency key is processed once: its result is stored, and a repeat of the key is answered with
      that result without charging again. A second call while the first is still being processed is told
      the key is busy (not definitive), as Stripe answers 409.
    - `fail_for(rider_id=, amount_minor=None, times=None)` declines that rider's next charges (definitive
      refusals: the next attempt comes with a new key).
    - `hold_for(rider_id=)` holds every call for that rider inside the provider, after the charge is made and
      its result stored, until `release(rider_id=)` or the call's timeout (then it raises TimeoutError): a
      charge that went through whose answer never came back. `is_holding(reference=)` says a call is held.
    - `history(reference=)` tells how many calls came for a capture, with which keys, and what was charged.
    """

    __test__ = False  # not a pytest test class
    name = "test"
    _ALWAYS = b"always"
    _NAMESPACE = "rochdale:payments:test"
    _KEEP_S = 86400
    _HOLD_POLL_S = 0.05

    @classmethod
    def _rules_key(cls, rider_id: uuid.UUID | str) -> str:
        return f"{cls._NAMESPACE}:fail:{rider_id}"

    @classmethod
    def _hold_key(cls, rider_id: uuid.UUID | str) -> str:
        return f"{cls._NAMESPACE}:hold:{rider_id}"

    @classmethod
    def _reference_key(cls, reference: str, what: str) -> str:
        return f"{cls._NAMESPACE}:ref:{reference}:{what}"

    @classmethod
    def fail_for(
        cls, *, rider_id: uuid.UUID | str, amount_minor: int | None = None, times: int | None = None
    ) -> None:
        """Fail this rider's next `times` charges (for `amount_minor` only, when given); `None` = always."""
        redis = get_redis()
        key = cls._rules_key(rider_id)
        redis.hset(
            key, "*" if amount_minor is None else str(amount_minor), "always" if times is None else times
        )
        redis.expire(key, cls._KEEP_S)

    @classmethod
    def clear(cls, *, rider_id: uuid.UUID | str) -> None:
        get_redis().delete(cls._rules_key(rider_id), cls._hold_key(rider_id))

    @classmethod
    def hold_for(cls, *, rider_id: uuid.UUID | str) -> None:
        """Hold this rider's calls inside the provider (after charging) until `release` or their timeout."""
        get_redis().set(cls._hold_key(rider_id), "1", ex=cls._KEEP_S)

    @classmethod
    def release(cls, *, rider_id: uuid.UUID | str) -> None:
        get_redis().delete(cls._hold_key(rider_id))

    @classmethod
    def is_holding(cls, *, reference: uuid.UUID | str) -> bool:
        return bool(get_redis().sismember(f"{cls._NAMESPACE}:holding", str(reference)))

    @classmethod
    def history(cls, *, reference: uuid.UUID | str) -> TestProviderHistory:
        redis = get_redis()
        ref = str(reference)
        calls = int(redis.get(cls._reference_key(ref, "calls")) or 0)
        keys = frozenset(key.decode() for key in redis.smembers(cls._reference_key(ref, "keys")))
        charges = tuple(
            TestProviderCharge(**json.loads(raw))
            for raw in redis.lrange(cls._reference_key(ref, "charges"), 0, -1)
        )
        return TestProviderHistory(calls=calls, idempotency_keys=keys, charges=charges)

    def _should_fail(self, request: PaymentRequest) -> bool:
        redis = get_redis()
        key = self._rules_key(request.rider_id)
        for rule in (str(request.amount_minor), "*"):
            value = redis.hget(key, rule)
            if value is None:
                continue
            if value == self._ALWAYS:
                return True
            remaining = redis.hincrby(key, rule, -1)
            if remaining <= 0:
                redis.hdel(key, rule)
            if remaining >= 0:
                return True
        return False

    def _process(self, request: PaymentRequest, kind: str) -> PaymentResult:
        redis = get_redis()
        ref = request.reference
        result_key = f"{self._NAMESPACE}:result:{request.idempotency_key}"
        seen = redis.pipeline()
        seen.incr(self._reference_key(ref, "calls"))
        seen.sadd(self._reference_key(ref, "keys"), request.idempotency_key)
        for what in ("calls", "keys"):
            seen.expire(self._reference_key(ref, what), self._KEEP_S)
        seen.get(result_key)
        stored = seen.execute()[-1]
        if stored is not None:
            return self._held(request, PaymentResult(**json.loads(stored)))

        busy_key = f"{self._NAMESPACE}:busy:{request.idempotency_key}"
        if not redis.set(busy_key, "1", nx=True, ex=max(int(request.timeout_s) + 1, 1)):
            return PaymentResult(
                ok=False,
                error="test provider: a request with this idempotency key is in progress",
                definitive=False,
            )
        charge: TestProviderCharge | None = None
        if self._should_fail(request):
            verb = "card declined" if kind == "capture" else "refund refused"
            result = PaymentResult(ok=False, error=f"test provider: {verb} (as instructed)")
        else:
            charge = TestProviderCharge(
                idempotency_key=request.idempotency_key,
                kind=kind,
                amount_minor=request.amount_minor,
                currency=request.currency,
                charge_id=f"test_{kind}_{uuid.uuid4().hex[:20]}",
            )
            result = PaymentResult(ok=True, provider_reference=charge.charge_id)
        # The charge and the stored answer land together, as one provider-side commit.
        done = redis.pipeline(transaction=True)
        if charge is not None:
            done.rpush(self._reference_key(ref, "charges"), json.dumps(charge.__dict__))
            done.expire(self._reference_key(ref, "charges"), self._KEEP_S)
        done.set(result_key, json.dumps(result.__dict__), ex=self._KEEP_S)
        done.delete(busy_key)
        done.execute()
        return self._held(request, result)

    def _held(self, request: PaymentRequest, result: PaymentResult) -> PaymentResult:
        """Keep the answer from the caller while a hold is set for the rider (bounded by the timeout)."""
        redis = get_redis()
        hold_key = self._hold_key(request.rider_id)
        if not redis.exists(hold_key):
            return result
        holding = f"{self._NAMESPACE}:holding"
        redis.sadd(holding, request.reference)
        deadline = time.monotonic() + request.timeout_s
        try:
            while redis.exists(hold_key):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"test provider: held past the {request.timeout_s:g} s timeout")
                time.sleep(self._HOLD_POLL_S)
        finally:
            redis.srem(holding, request.reference)
        return result

    def capture(self, request: PaymentRequest) -> PaymentResult:
        return self._process(request, "capture")

    def refund(self, request: PaymentRequest) -> PaymentResult:
        return self._process(request, "refund")


_PROVIDERS: dict[str, Callable[[], PaymentProvider]] = {"cash": CashProvider, "test": TestModeProvider}


def register_payment_provider(name: str, factory: Callable[[], PaymentProvider]) -> None:
    _PROVIDERS[name] = factory


def configured_provider_name() -> str:
    return settings.ROCHDALE_PAYMENT_PROVIDER


def payment_provider(name: str | None = None) -> PaymentProvider:
    """The provider registered under `name` (default: the configured one), or one named by dotted path."""
    wanted = name or configured_provider_name()
    if wanted in _PROVIDERS:
        return _PROVIDERS[wanted]()
    if "." in wanted:
        return import_string(wanted)()
    raise LookupError(f"unknown payment provider {wanted!r}; known: {', '.join(sorted(_PROVIDERS))}")


def max_attempts() -> int:
    return int(getattr(settings, "ROCHDALE_PAYMENT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def backoff_after(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_CAP_S))


def provider_timeout_s() -> float:
    """How long one provider call may take (`ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S`)."""
    return float(getattr(settings, "ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S", DEFAULT_PROVIDER_TIMEOUT_S))


def processing_lease() -> timedelta:
    """How long a claimed attempt owns its capture: the provider timeout plus a margin. A capture still
    `processing` (or `pending`, its enqueue lost) after that has no live worker, and may be claimed again."""
    return timedelta(seconds=provider_timeout_s() + LEASE_MARGIN_S)


# --- Attempts (backend/fares/captures.py records what to collect; backend/fares/tasks.py runs these) ----


def capture_attempt(*, capture_id: uuid.UUID | str, now: datetime | None = None) -> PaymentCapture | None:
    """Make one attempt at a due capture; returns the row as it ended (None if it does not exist).

    A capture that is not due (succeeded, voided, waiting for its backoff, or being attempted by another
    worker whose lease has not run out) is returned untouched."""
    moment = now or timezone.now()
    due = Q(status__in=[CaptureStatus.PENDING, CaptureStatus.FAILED], next_attempt_at__lte=moment) | Q(
        status=CaptureStatus.PROCESSING, last_attempt_at__lt=moment - processing_lease()
    )
    with transaction.atomic():
        claimed = (
            PaymentCapture.objects.filter(due, id=capture_id)
            .filter(amount_minor__gt=0)
            .update(
                status=CaptureStatus.PROCESSING,
                attempts=F("attempts") + 1,
                last_attempt_at=moment,
                updated_at=moment,
            )
        )
    capture = PaymentCapture.objects.filter(id=capture_id).first()
    if not claimed or capture is None:
        return capture

    request = PaymentRequest(
        reference=str(capture.id),
        idempotency_key=capture.idempotency_key,
        purpose=capture.purpose,
        rider_id=capture.rider_id,
        amount_minor=capture.amount_minor,
        currency=capture.currency,
        attempt=capture.attempts,
        timeout_s=provider_timeout_s(),
        trip_id=capture.trip_id,
    )
    try:
        provider = payment_provider(capture.provider)
        is_refund = capture.purpose == CapturePurpose.REFUND
        result = provider.refund(request) if is_refund else provider.capture(request)
    except Exception as exc:  # a provider bug, outage or timeout is a failed attempt, never a lost capture
        logger.warning(
            "payment provider %s raised on capture %s", capture.provider, capture.id, exc_info=True
        )
        # Nobody knows whether the charge went through: the retry must send the same key.
        result = PaymentResult(
            ok=False, error=f"{type(exc).__name__}: {exc}"[:500], retryable=True, definitive=False
        )

    recorded = _record_outcome(claimed=capture, request=request, result=result, attempted_at=moment)
    # declined: the provider refused (the retry is a new charge); unknown: a timeout or outage (same key).
    outcome = "succeeded" if result.ok else ("declined" if result.definitive else "unknown")
    metrics.payment_captures.labels(purpose=capture.purpose, outcome=outcome).inc()
    return recorded


def lock_trip_key_share(trip_id: uuid.UUID | None) -> None:
    """Step 1 of the ledger's lock order: KEY SHARE on the capture's trip, the lock the deferred foreign-key
    check of the capture entry's trip would otherwise take last, at COMMIT, after the capture row."""
    if trip_id is None:
        return
    trip_table = PaymentCapture._meta.get_field("trip").related_model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {trip_table} WHERE id = %s FOR KEY SHARE", [trip_id])  # noqa: S608


def _record_outcome(
    *, claimed: PaymentCapture, request: PaymentRequest, result: PaymentResult, attempted_at: datetime
) -> PaymentCapture:
    """Record what the provider answered, in the ledger's lock order: the trip, the capture row, the entry.

    A success is a fact whatever happened meanwhile (another worker reclaimed the capture after this one's
    lease ran out): it is recorded once, for the amount charged. A failure is recorded only by the attempt
    that still owns the capture; a definitive refusal moves the capture to its next idempotency key."""
    finished_at = timezone.now()
    with transaction.atomic():
        lock_trip_key_share(claimed.trip_id)
        current = PaymentCapture.objects.select_for_update().get(id=claimed.id)
        if result.ok:
            if current.status == CaptureStatus.SUCCEEDED:
                return current
            if current.status != CaptureStatus.PROCESSING or current.amount_minor != request.amount_minor:
                logger.error(
                    "payment capture %s was charged %s %s by attempt %s after it became %s for %s: the rider "
                    "may be owed the difference; staff must check it",
                    current.id,
                    request.amount_minor,
                    current.currency,
                    request.attempt,
                    current.status,
                    current.amount_minor,
                )
            collected = request.amount_minor
            if result.collected_minor is not None and 0 < result.collected_minor < request.amount_minor:
                collected = result.collected_minor
                _capture_the_rest(capture=current, amount_minor=request.amount_minor - collected)
            _post_capture(
                capture=current,
                amount_minor=collected,
                provider_reference=result.provider_reference,
            )
            PaymentCapture.objects.filter(id=current.id).update(
                status=CaptureStatus.SUCCEEDED,
                amount_minor=collected,
                provider_reference=result.provider_reference[:200],
                last_error="",
                next_attempt_at=None,
                succeeded_at=finished_at,
                updated_at=finished_at,
            )
        elif current.status == CaptureStatus.PROCESSING and current.attempts == claimed.attempts:
            retry = result.retryable and current.attempts < max_attempts()
            PaymentCapture.objects.filter(id=current.id).update(
                status=CaptureStatus.FAILED,
                last_error=result.error[:500],
                next_attempt_at=attempted_at + backoff_after(current.attempts) if retry else None,
                provider_refusals=F("provider_refusals") + (1 if result.definitive else 0),
                updated_at=finished_at,
            )
            log = logger.warning if retry else logger.error
            log(
                "payment capture %s (%s, %s %s, rider %s) failed on attempt %s%s: %s",
                current.id,
                current.purpose,
                current.amount_minor,
                current.currency,
                current.rider_id,
                current.attempts,
                "; will retry" if retry else "; giving up, staff must act",
                result.error,
            )
    return PaymentCapture.objects.get(id=claimed.id)


def _capture_the_rest(*, capture: PaymentCapture, amount_minor: int) -> PaymentCapture:
    """What a success did not take becomes a capture of its own (`{key}:rest`, the same purpose, trip and
    provider), attempted after commit; idempotent by its key. In the capture's transaction, under its lock."""
    now = timezone.now()
    rest, created = PaymentCapture.objects.get_or_create(
        key=f"{capture.key}:rest",
        defaults={
            "purpose": capture.purpose,
            "rider_id": capture.rider_id,
            "amount_minor": amount_minor,
            "currency": capture.currency,
            "trip_id": capture.trip_id,
            "source_entry_id": capture.source_entry_id,
            "provider": capture.provider,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    if created:
        rest_id = str(rest.id)
        # By name: backend/fares/tasks.py imports this module, so this module cannot import it.
        transaction.on_commit(
            lambda: current_app.tasks["backend.fares.tasks.capture_payment"].delay(rest_id), robust=True
        )
    return rest


def _post_capture(*, capture: PaymentCapture, amount_minor: int, provider_reference: str) -> None:
    if capture.purpose == CapturePurpose.REFUND:
        lines = [
            debit(AccountKind.RIDER_RECEIVABLE, capture.rider_id, amount_minor),
            credit(AccountKind.CASH_CLEARING, None, amount_minor),
        ]
        kind, memo = "refund_payout", f"Refund paid back to rider {capture.rider_id}"
    else:
        lines = [
            debit(AccountKind.CASH_CLEARING, None, amount_minor),
            credit(AccountKind.RIDER_RECEIVABLE, capture.rider_id, amount_minor),
        ]
        kind, memo = "payment_capture", f"{capture.purpose} collected from rider {capture.rider_id}"
    ledger.post_entry(
        key=capture.key,
        kind=kind,
        currency=capture.currency,
        lines=lines,
        memo=memo,
        trip_id=capture.trip_id,
        metadata={
            "capture_id": str(capture.id),
            "provider": capture.provider,
            "provider_reference": provider_reference,
            "purpose": capture.purpose,
        },
    )


def captures_retry_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Attempt every capture that is due: failed ones past their backoff, and pending or processing ones
    whose lease ran out (an enqueue lost, a worker that died mid-call). Returns how many were attempted."""
    moment = now or timezone.now()
    expired = moment - processing_lease()
    due = (
        Q(status=CaptureStatus.FAILED, next_attempt_at__lte=moment)
        | Q(status=CaptureStatus.PENDING, next_attempt_at__lte=expired)
        | Q(status=CaptureStatus.PROCESSING, last_attempt_at__lt=expired)
    )
    ids = list(
        PaymentCapture.objects.filter(due).order_by("next_attempt_at").values_list("id", flat=True)[:limit]
    )
    for capture_id in ids:
        capture_attempt(capture_id=capture_id, now=moment)
    return len(ids)


def failed_captures() -> QuerySet[PaymentCapture]:
    """Captures staff should look at: every failed one, retrying or given up (newest first)."""
    return PaymentCapture.objects.filter(status=CaptureStatus.FAILED).select_related("rider", "trip")


# --- What the provider tells us on its own (card webhooks: backend/cards/webhooks.py) -------------------


def capture_confirm(*, capture_id: uuid.UUID | str, provider_reference: str) -> PaymentCapture | None:
    """The provider reports that a capture's charge went through (its answer to our attempt may have been
    lost with a dead worker): record the success once, as an attempt's answer would have been. Returns the
    row as it ended, None if it does not exist; a capture already succeeded is left as it is.

    Recorded for the amount the capture asks at that moment, read under its lock in the ledger's order (a
    refund may have reduced it meanwhile): the provider settles any difference (backend/cards)."""
    capture = PaymentCapture.objects.filter(id=capture_id).first()
    if capture is None or capture.status in (CaptureStatus.SUCCEEDED, CaptureStatus.VOIDED):
        return capture
    with transaction.atomic():
        lock_trip_key_share(capture.trip_id)
        current = PaymentCapture.objects.select_for_update().get(id=capture.id)
        if current.status in (CaptureStatus.SUCCEEDED, CaptureStatus.VOIDED):
            return current
        request = PaymentRequest(
            reference=str(current.id),
            idempotency_key=current.idempotency_key,
            purpose=current.purpose,
            rider_id=current.rider_id,
            amount_minor=current.amount_minor,
            currency=current.currency,
            attempt=current.attempts,
            timeout_s=provider_timeout_s(),
            trip_id=current.trip_id,
        )
        return _record_outcome(
            claimed=current,
            request=request,
            result=PaymentResult(ok=True, provider_reference=provider_reference),
            attempted_at=timezone.now(),
        )


def capture_refused(*, capture_id: uuid.UUID | str, error: str) -> PaymentCapture | None:
    """The provider reports that a capture's charge failed after it answered us (or after our worker died):
    the capture becomes a refusal (its next attempt a new charge, with a new key), retried with backoff and
    listed as the rider's overdue charge. A capture a worker is attempting right now, or one that succeeded,
    is left to that attempt's own answer."""
    now = timezone.now()
    with transaction.atomic():
        capture = PaymentCapture.objects.select_for_update().filter(id=capture_id).first()
        if capture is None or capture.status not in (CaptureStatus.PENDING, CaptureStatus.FAILED):
            return capture
        if capture.status == CaptureStatus.FAILED and capture.provider_refusals > 0:
            return capture
        attempts = max(capture.attempts, 1)
        PaymentCapture.objects.filter(id=capture.id).update(
            status=CaptureStatus.FAILED,
            attempts=attempts,
            last_error=error[:500],
            provider_refusals=F("provider_refusals") + 1,
            next_attempt_at=now + backoff_after(attempts) if attempts < max_attempts() else None,
            updated_at=now,
        )
    logger.warning("payment capture %s refused by the provider after the fact: %s", capture_id, error)
    return PaymentCapture.objects.get(id=capture_id)


# --- Riders who owe ---------------------------------------------------------------------------------------


def overdue_captures(*, rider_id: uuid.UUID) -> QuerySet[PaymentCapture]:
    """What the rider owes and the provider refused to collect (a declined card, no card on file): while
    any is left, the rider may not request a trip (dispatch/services/trips.py)."""
    return PaymentCapture.objects.filter(
        rider_id=rider_id, status=CaptureStatus.FAILED, provider_refusals__gt=0
    ).exclude(purpose=CapturePurpose.REFUND)


def overdue_pay(*, rider_id: uuid.UUID) -> list[PaymentCapture]:
    """Try to collect every overdue charge of the rider now (after they fixed their card), each as one
    more attempt of its capture under the usual rules. Returns what is still overdue."""
    now = timezone.now()
    for capture_id in list(overdue_captures(rider_id=rider_id).values_list("id", flat=True)):
        PaymentCapture.objects.filter(id=capture_id, status=CaptureStatus.FAILED).update(next_attempt_at=now)
        capture_attempt(capture_id=capture_id, now=now)
    return list(overdue_captures(rider_id=rider_id))
