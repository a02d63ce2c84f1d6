"""Collecting what riders owe through a payment provider, without ever making a trip wait for it.

Flow: the settlement writes a `PaymentCapture` row (pending) in the same transaction as the journal entry
that made the rider owe the money, and enqueues `capture_payment` after commit. An attempt claims the row
with a guarded UPDATE (so two workers never both call the provider for it), talks to the provider outside
any database transaction, then records the outcome: success posts the capture's ledger key
(Dr cash_clearing, Cr rider_receivable; the mirror image for a refund payout), failure is retried with
exponential backoff by `retry_failed_captures` until `ROCHDALE_PAYMENT_MAX_ATTEMPTS`, and stays listed for
staff (admin, `GET /api/v1/staff/payments/failed`).

Providers: `cash` (the driver collected it: always succeeds) and `test` (no network; can be told to fail
for a rider, optionally only for an amount, a number of times, so retries can be exercised end to end).
A card provider plugs in with `register_payment_provider("name", factory)` or a dotted path in
`settings.ROCHDALE_PAYMENT_PROVIDER`. Providers receive the capture's id as their idempotency reference,
so a retried attempt never charges twice at a provider that honours it.
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, CapturePurpose, CaptureStatus, PaymentCapture

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 3600
# A capture left `processing` this long belongs to a worker that died mid-attempt; it may be retried.
STALE_PROCESSING_AFTER = timedelta(minutes=10)
# A pending capture whose enqueue was lost (broker down at commit) is picked up by the retry sweep.
PENDING_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class PaymentRequest:
    reference: str
    purpose: str
    rider_id: uuid.UUID
    amount_minor: int
    currency: str
    attempt: int


@dataclass(frozen=True)
class PaymentResult:
    ok: bool
    provider_reference: str = ""
    error: str = ""
    retryable: bool = True


class PaymentProvider(ABC):
    """What a payment provider must do. Calls may block on the network; they run outside transactions."""

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


class TestModeProvider(PaymentProvider):
    """No network. Succeeds unless told to fail for a rider (and amount) with `fail_for`; the rules live in
    Redis so a test, a worker and the web process all see them."""

    __test__ = False  # not a pytest test class
    name = "test"
    _ALWAYS = b"always"

    @staticmethod
    def _rules_key(rider_id: uuid.UUID | str) -> str:
        return f"rochdale:payments:test:fail:{rider_id}"

    @classmethod
    def fail_for(
        cls, *, rider_id: uuid.UUID | str, amount_minor: int | None = None, times: int | None = None
    ) -> None:
        """Fail this rider's next `times` attempts (for `amount_minor` only, when given); `None` = always."""
        from backend.redis import get_redis

        redis = get_redis()
        key = cls._rules_key(rider_id)
        redis.hset(
            key, "*" if amount_minor is None else str(amount_minor), "always" if times is None else times
        )
        redis.expire(key, 86400)

    @classmethod
    def clear(cls, *, rider_id: uuid.UUID | str) -> None:
        from backend.redis import get_redis

        get_redis().delete(cls._rules_key(rider_id))

    def _should_fail(self, request: PaymentRequest) -> bool:
        from backend.redis import get_redis

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

    def capture(self, request: PaymentRequest) -> PaymentResult:
        if self._should_fail(request):
            return PaymentResult(ok=False, error="test provider: card declined (as instructed)")
        return PaymentResult(ok=True, provider_reference=f"test:{request.reference}:{request.attempt}")

    def refund(self, request: PaymentRequest) -> PaymentResult:
        if self._should_fail(request):
            return PaymentResult(ok=False, error="test provider: refund refused (as instructed)")
        return PaymentResult(ok=True, provider_reference=f"test-refund:{request.reference}:{request.attempt}")


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


# --- Services ---------------------------------------------------------------------------------------------


def capture_create(
    *,
    key: str,
    purpose: str,
    rider_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    trip_id: uuid.UUID | None = None,
    source_entry_id: uuid.UUID | None = None,
) -> PaymentCapture:
    """Record an amount to collect (or pay back) and enqueue the first attempt after commit.

    Idempotent by `key` (the ledger key the success posts): a second call returns the first row."""
    now = timezone.now()
    capture, created = PaymentCapture.objects.get_or_create(
        key=key,
        defaults={
            "purpose": purpose,
            "rider_id": rider_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "trip_id": trip_id,
            "source_entry_id": source_entry_id,
            "provider": configured_provider_name(),
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    if created:
        capture_id = str(capture.id)
        transaction.on_commit(lambda: _enqueue_attempt(capture_id), robust=True)
    return capture


def _enqueue_attempt(capture_id: str) -> None:
    from backend.fares.tasks import capture_payment

    capture_payment.delay(capture_id)


def capture_attempt(*, capture_id: uuid.UUID | str, now: datetime | None = None) -> PaymentCapture | None:
    """Make one attempt at a due capture; returns the row as it ended (None if it does not exist).

    A capture that is not due (succeeded, voided, waiting for its backoff, or being attempted by another
    worker) is returned untouched."""
    moment = now or timezone.now()
    due = Q(status__in=[CaptureStatus.PENDING, CaptureStatus.FAILED], next_attempt_at__lte=moment) | Q(
        status=CaptureStatus.PROCESSING, last_attempt_at__lt=moment - STALE_PROCESSING_AFTER
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
        purpose=capture.purpose,
        rider_id=capture.rider_id,
        amount_minor=capture.amount_minor,
        currency=capture.currency,
        attempt=capture.attempts,
    )
    try:
        provider = payment_provider(capture.provider)
        is_refund = capture.purpose == CapturePurpose.REFUND
        result = provider.refund(request) if is_refund else provider.capture(request)
    except Exception as exc:  # a provider bug or outage is a failed attempt, never a lost capture
        logger.warning(
            "payment provider %s raised on capture %s", capture.provider, capture.id, exc_info=True
        )
        result = PaymentResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500], retryable=True)

    return _record_outcome(capture=capture, result=result, attempted_at=moment)


def _record_outcome(
    *, capture: PaymentCapture, result: PaymentResult, attempted_at: datetime
) -> PaymentCapture:
    still_ours = PaymentCapture.objects.filter(
        id=capture.id, status=CaptureStatus.PROCESSING, attempts=capture.attempts
    )
    finished_at = timezone.now()
    with transaction.atomic():
        if result.ok:
            _post_capture(capture=capture, provider_reference=result.provider_reference)
            still_ours.update(
                status=CaptureStatus.SUCCEEDED,
                provider_reference=result.provider_reference[:200],
                last_error="",
                next_attempt_at=None,
                succeeded_at=finished_at,
                updated_at=finished_at,
            )
        else:
            retry = result.retryable and capture.attempts < max_attempts()
            still_ours.update(
                status=CaptureStatus.FAILED,
                last_error=result.error[:500],
                next_attempt_at=attempted_at + backoff_after(capture.attempts) if retry else None,
                updated_at=finished_at,
            )
            log = logger.warning if retry else logger.error
            log(
                "payment capture %s (%s, %s %s, rider %s) failed on attempt %s%s: %s",
                capture.id,
                capture.purpose,
                capture.amount_minor,
                capture.currency,
                capture.rider_id,
                capture.attempts,
                "; will retry" if retry else "; giving up, staff must act",
                result.error,
            )
    return PaymentCapture.objects.get(id=capture.id)


def _post_capture(*, capture: PaymentCapture, provider_reference: str) -> None:
    amount = capture.amount_minor
    if capture.purpose == CapturePurpose.REFUND:
        lines = [
            debit(AccountKind.RIDER_RECEIVABLE, capture.rider_id, amount),
            credit(AccountKind.CASH_CLEARING, None, amount),
        ]
        kind, memo = "refund_payout", f"Refund paid back to rider {capture.rider_id}"
    else:
        lines = [
            debit(AccountKind.CASH_CLEARING, None, amount),
            credit(AccountKind.RIDER_RECEIVABLE, capture.rider_id, amount),
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
    """Attempt every capture that is due: failed ones past their backoff, pending ones whose enqueue may
    have been lost, and ones a dead worker left processing. Returns how many were attempted."""
    moment = now or timezone.now()
    due = (
        Q(status=CaptureStatus.FAILED, next_attempt_at__lte=moment)
        | Q(status=CaptureStatus.PENDING, next_attempt_at__lte=moment - PENDING_GRACE)
        | Q(status=CaptureStatus.PROCESSING, last_attempt_at__lt=moment - STALE_PROCESSING_AFTER)
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
