"""A ballot cannot land after the count: casting one locks the election row, as counting does.

The interleaving is made with real threads and a real lock: this test holds a lock on the ballot receipts
table, so a ballot that has passed its "is voting open?" check waits just before it is written; the count
starts meanwhile (its clock past the close). Before the fix the count finished without waiting, and the
ballot was written after it: stored, receipted, and never counted.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from governance import services
from governance.models import Ballot, Election
from tests.factories import StaffFactory
from tests.faults.procs import wait_until
from tests.governance.concurrency import conninfo, run_in_thread, waiting_on_locks


@pytest.mark.django_db(transaction=True)
def test_a_ballot_in_flight_when_the_count_starts_is_counted(make_member):
    candidates = [make_member() for _ in range(2)]
    voter = make_member()
    now = timezone.now()
    election = services.election_create(
        user=StaffFactory(),
        title="Race to the count",
        seats=1,
        nominations_close_at=now + timedelta(days=1),
        voting_closes_at=now + timedelta(days=2),
    )
    for candidate in candidates:
        services.election_nominate(election_id=election.id, user=candidate.user)
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(days=2), nominations_close_at=now - timedelta(seconds=1)
    )
    closes_at = Election.objects.get(id=election.id).voting_closes_at
    outcomes: dict[str, object] = {}

    with (
        psycopg.connect(**conninfo()) as holder,
        psycopg.connect(**conninfo(), autocommit=True) as monitor,
    ):
        holder.execute("LOCK TABLE governance_ballotreceipt IN SHARE ROW EXCLUSIVE MODE")
        ballot = run_in_thread(
            lambda: services.election_ballot_cast(
                election_id=election.id, user=voter.user, ranking=[str(candidates[0].id)]
            ),
            outcomes,
            "ballot",
        )
        wait_until(
            lambda: waiting_on_locks(monitor) == 1, timeout_s=15, what="the ballot waits to be written"
        )
        count = run_in_thread(
            lambda: services.election_close(election_id=election.id, now=closes_at + timedelta(seconds=1)),
            outcomes,
            "count",
        )
        wait_until(
            lambda: "count" in outcomes or waiting_on_locks(monitor) == 2,
            timeout_s=15,
            what="the count finishes or waits for the ballot",
        )
        holder.rollback()  # the ballot may be written now
        ballot.join(timeout=30)
        count.join(timeout=30)

    assert isinstance(outcomes["ballot"], str), outcomes["ballot"]  # the voter's receipt
    assert isinstance(outcomes["count"], Election), outcomes["count"]
    stored = Ballot.objects.filter(election=election).count()
    counted = Election.objects.get(id=election.id).result["valid_ballots"]
    assert (stored, counted) == (1, 1), "a ballot was stored after the count that left it out"
