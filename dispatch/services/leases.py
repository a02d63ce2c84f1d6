"""The dispatch lease: one writer per region at a time, fenced (docs/dispatch.md, "Failover").

A region's dispatch worker runs active or standby. The active one holds the region's `DispatchLease` row and
renews it every `LEASE_RENEW_S`; a standby tries to take it every `STANDBY_POLL_S` and succeeds only once it
has expired (`LEASE_TTL_S` after the last renewal: a worker killed with -9 is replaced within
TTL + poll + its index rebuild) or was released (a clean stop: within one poll).

Taking the lease adds one to its `token`, the fencing token. Every dispatch round passes its lease to
`lease_fence`, which, inside the round's transaction, locks the row (`FOR NO KEY UPDATE`) and checks the
token is still the round's own. A takeover locks the row `FOR UPDATE`, so it waits for a round in flight to
commit, and every round after it finds the new token and is refused (`LeaseLost`): a worker that stalled
past its lease, or lost its database connection and came back, cannot offer a trip once another worker has
taken over, whatever its own clock says. Expiry is judged by the database's clock alone.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Greatest, Now

from dispatch.models import DispatchLease

# Seconds a lease lasts from its last renewal; the holder renews every LEASE_RENEW_S, a standby asks every
# STANDBY_POLL_S. A kill -9 is noticed LEASE_TTL_S after the dead worker's last renewal at the latest.
LEASE_TTL_S = 3.0
LEASE_RENEW_S = 1.0
STANDBY_POLL_S = 0.5
# The sweeper (Celery beat, while no worker runs) holds the lease for one sweep at most this long.
SWEEPER_LEASE_TTL_S = 30.0
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # a new region's row: free


class LeaseLost(Exception):
    """The region's lease is no longer this holder's: another worker took it (fenced out)."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(f"dispatch lease {lease.region} token {lease.token} is no longer held")
        self.lease = lease


@dataclass(frozen=True, slots=True)
class Lease:
    region: str
    holder: str
    token: int


def holder_id(role: str = "worker") -> str:
    """`role:host:pid:random`: unique per process start, and says where to look."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _in(seconds: float) -> ExpressionWrapper:
    """The database's now plus `seconds`."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


def lease_acquire(
    *, region: str, holder: str, ttl_s: float = LEASE_TTL_S, token_floor: int = 0
) -> Lease | None:
    """Take the region's lease if it is free, expired or already `holder`'s; None when another holds it.

    A new holder gets a token one above both the last one and `token_floor` (the highest token Redis has
    seen, should PostgreSQL have been restored from a backup older than the last takeover)."""
    with transaction.atomic():
        DispatchLease.objects.bulk_create(
            [DispatchLease(region=region, holder="", token=0, acquired_at=NEVER, expires_at=NEVER)],
            ignore_conflicts=True,
        )
        # FOR UPDATE: waits for any dispatch round holding the row (lease_fence) to commit first.
        current = DispatchLease.objects.select_for_update().get(region=region)
        if current.holder == holder:
            DispatchLease.objects.filter(region=region).update(expires_at=_in(ttl_s))
            return Lease(region, holder, current.token)
        taken = DispatchLease.objects.filter(Q(expires_at__lte=Now()) | Q(holder=""), region=region).update(
            holder=holder,
            token=Greatest(F("token"), Value(token_floor)) + 1,
            acquired_at=Now(),
            expires_at=_in(ttl_s),
        )
        if not taken:
            return None
        token = DispatchLease.objects.values_list("token", flat=True).get(region=region)
        return Lease(region, holder, token)


def lease_renew(lease: Lease, *, ttl_s: float = LEASE_TTL_S) -> bool:
    """Extend the lease from now; False when it is no longer `lease`'s (another worker took it)."""
    return bool(
        DispatchLease.objects.filter(region=lease.region, token=lease.token, holder=lease.holder).update(
            expires_at=_in(ttl_s)
        )
    )


def lease_release(lease: Lease) -> None:
    """Give the lease up at once (a clean stop), so a standby takes over within one poll."""
    DispatchLease.objects.filter(region=lease.region, token=lease.token, holder=lease.holder).update(
        expires_at=Now()
    )


def lease_fence(lease: Lease) -> None:
    """Inside a write's transaction: lock the region's lease row and check it is still `lease`'s; the lock
    is held to the commit, so no takeover comes between this check and the write. Raises LeaseLost."""
    held = list(
        DispatchLease.objects.select_for_update(no_key=True)
        .filter(region=lease.region, token=lease.token, holder=lease.holder)
        .values_list("token", flat=True)
    )
    if not held:
        raise LeaseLost(lease)


def lease_current(region: str) -> DispatchLease | None:
    """The region's lease row as it stands (for operators, health and tests)."""
    return DispatchLease.objects.filter(region=region).first()
