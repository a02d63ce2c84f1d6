"""Recording what a rider owes the payment provider: a `PaymentCapture` row written in the money
transaction, its first attempt enqueued after commit.

Apart from backend/fares/payments.py (the providers and the attempts) so the dependency runs one way:
this module enqueues the attempt task, the task (backend/fares/tasks.py) runs payments' attempt, and
payments never needs the task.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from backend.fares.models import PaymentCapture
from backend.fares.payments import configured_provider_name
from backend.fares.tasks import capture_payment


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
        transaction.on_commit(lambda: capture_payment.delay(capture_id), robust=True)
    return capture
