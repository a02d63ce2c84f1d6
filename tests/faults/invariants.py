"""The invariants every fault test checks once the dust settles: nothing lost, nothing doubled.

Call `assert_invariants()` from a test that has committed data (a `transactional_db` test, or one whose
processes wrote to the test database). Each check names what it found, so a failure says what broke.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone


def invariant_problems(*, stuck_after: timedelta = timedelta(minutes=30)) -> list[str]:
    """Every broken invariant, in words; an empty list when all hold.

    - the ledger balances and its cached totals match the journal (`ledger_verify`);
    - the audit chain verifies from genesis to its stored head (`audit_verify`);
    - no open trip older than `stuck_after` (a trip nobody will ever end);
    - no driver with two active trips;
    - exactly one fare posting per completed trip, and none for a trip that did not complete.
    """
    from backend.fares.ledger import ledger_verify
    from backend.fares.models import JournalEntry
    from dispatch.models import Trip
    from dispatch.state import DRIVER_ACTIVE_STATUSES, OPEN_STATUSES, TripStatus
    from governance.audit import audit_verify

    problems: list[str] = []
    ledger = ledger_verify()
    problems += [f"ledger: {problem}" for problem in ledger.problems()]
    chain = audit_verify()
    if not chain.ok:
        problems.append(f"audit chain: bad at {chain.first_bad_sequence}: {chain.reason}")

    stale = timezone.now() - stuck_after
    stuck = Trip.objects.filter(status__in=sorted(OPEN_STATUSES), requested_at__lt=stale)
    problems += [f"trip {trip.id} stuck in {trip.status} since {trip.requested_at}" for trip in stuck]

    doubled = (
        Trip.objects.filter(status__in=sorted(DRIVER_ACTIVE_STATUSES))
        .values("driver_id")
        .annotate(active=Count("id"))
        .filter(active__gt=1)
    )
    problems += [f"driver {row['driver_id']} has {row['active']} active trips" for row in doubled]

    postings_by_trip = dict(
        JournalEntry.objects.filter(kind="trip_fare", trip_id__isnull=False)
        .values_list("trip_id")
        .annotate(postings=Count("id"))
    )
    for trip_id, status in Trip.objects.values_list("id", "status"):
        wanted = 1 if status == TripStatus.COMPLETED else 0
        found = postings_by_trip.get(trip_id, 0)
        if found != wanted:
            problems.append(f"trip {trip_id} ({status}) has {found} fare postings, not {wanted}")
    return problems


def assert_invariants(*, stuck_after: timedelta = timedelta(minutes=30)) -> None:
    problems = invariant_problems(stuck_after=stuck_after)
    assert not problems, "invariants broken:\n" + "\n".join(problems)
