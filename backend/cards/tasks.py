"""Celery tasks of the cards app (the beat schedule in settings names the periodic one)."""

from __future__ import annotations

import uuid

from celery import shared_task

from backend.cards.holds import holds_release_due, orphaned_holds_release, trip_hold_release


@shared_task(name="backend.cards.tasks.release_trip_hold", ignore_result=True)
def release_trip_hold(trip_id: str) -> str | None:
    """Release a trip's card hold after it ended, unless a fare or fee is still to be captured from it."""
    hold = trip_hold_release(trip_id=uuid.UUID(trip_id))
    return hold.status if hold is not None else None


@shared_task(name="backend.cards.tasks.sweep_card_holds", ignore_result=True)
def sweep_card_holds() -> int:
    return holds_release_due()


@shared_task(name="backend.cards.tasks.release_orphaned_authorisations", ignore_result=True)
def release_orphaned_authorisations() -> int:
    """Cancel authorisations at Stripe that no hold row records (a request rolled back after the hold)."""
    return orphaned_holds_release()
