"""Governance takes its row locks in one order (governance/audit.py): the proposal or election row, then
member rows, then board seats, and the audit head last. Two acts that took them in opposite orders
deadlocked, and PostgreSQL aborted one of them.

Each test runs the two acts in real threads and stops the first one mid-transaction with a table lock held
from a third connection, right after it has locked a member row; the second act runs until it waits for that
member row; then the first is let go. Before the fix the second act already held the audit head while it
waited, the first then asked for the head, and one of them died in a deadlock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest
from django.db import transaction
from django.utils import timezone

from backend.fares.models import JournalEntry
from governance import selectors, services
from governance.audit import audit_verify
from governance.models import BoardSeat, DividendStatement, Election, Member, MemberStatus, Proposal
from tests.factories import StaffFactory
from tests.faults.procs import wait_until
from tests.governance.concurrency import conninfo, run_in_thread, waiting_on_locks


def _closed_one_seat_election(candidates: list[Member], voter: Member) -> tuple[Election, datetime]:
    """A one-seat election whose voting is over (as of the returned moment): `voter` ranked the first
    candidate first."""
    now = timezone.now()
    election = services.election_create(
        user=StaffFactory(),
        title="Board election",
        seats=1,
        nominations_close_at=now + timedelta(days=1),
        voting_closes_at=now + timedelta(days=2),
    )
    for candidate in candidates:
        services.election_nominate(election_id=election.id, user=candidate.user)
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(days=2), nominations_close_at=now - timedelta(seconds=1)
    )
    services.election_ballot_cast(
        election_id=election.id, user=voter.user, ranking=[str(c.id) for c in candidates]
    )
    election.refresh_from_db()
    return election, election.voting_closes_at + timedelta(seconds=1)


def _no_failures(outcomes: dict[str, object]) -> None:
    failures = {name: outcome for name, outcome in outcomes.items() if isinstance(outcome, Exception)}
    assert not failures, f"an act failed (a deadlock?): {failures!r}"


@pytest.mark.django_db(transaction=True)
def test_a_winner_withdrawing_while_the_election_is_counted(make_member):
    winner, runner_up, voter = make_member(), make_member(), make_member()
    election, count_at = _closed_one_seat_election([winner, runner_up], voter)
    outcomes: dict[str, object] = {}

    with (
        psycopg.connect(**conninfo()) as holder,
        psycopg.connect(**conninfo(), autocommit=True) as monitor,
    ):
        # The withdrawal locks the winner's member row, then stops at its ledger entry (the unpaid share).
        holder.execute(f"LOCK TABLE {JournalEntry._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        withdrawal = run_in_thread(
            lambda: services.membership_withdraw(user=winner.user), outcomes, "withdrawal"
        )
        wait_until(lambda: waiting_on_locks(monitor) == 1, timeout_s=15, what="the withdrawal waits")
        count = run_in_thread(
            lambda: services.election_close(election_id=election.id, now=count_at), outcomes, "count"
        )
        wait_until(
            lambda: "count" in outcomes or waiting_on_locks(monitor) == 2,
            timeout_s=15,
            what="the count waits for the winner's member row",
        )
        holder.rollback()
        withdrawal.join(timeout=30)
        count.join(timeout=30)

    assert set(outcomes) == {"withdrawal", "count"}, "an act is still running"
    _no_failures(outcomes)
    # The withdrawal committed before the count read the candidates, so the count left the winner out.
    assert Member.objects.get(id=winner.id).status == MemberStatus.WITHDRAWN
    assert Election.objects.get(id=election.id).result["elected"] == [str(runner_up.id)]
    assert not BoardSeat.objects.filter(member=winner).exists()
    assert [seat.member_id for seat in selectors.seats_in_force(count_at)] == [runner_up.id]
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "repayment",
    [
        # The dividend's statements reference the director's member row, which the withdrawal holds.
        "paid",
        # The withdrawal keeps the paid share as surplus: it opens the co-op's surplus account, which the
        # dividend's entry needs too, so the dividend waits for the withdrawal's ledger write.
        "none",
    ],
)
def test_a_director_withdrawing_while_a_dividend_is_allocated(
    make_director, make_member, complete_trip, settings, repayment
):
    settings.ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL = repayment
    director, proposer, decider = make_director(), make_member(), make_member()
    for member in (director, proposer, decider):
        with transaction.atomic():  # as the trip's completion runs it
            complete_trip(member.user, pay_minor=2000)
    today = timezone.localdate()
    proposal = services.proposal_create(
        user=proposer.user,
        kind="dividend",
        title="Patronage dividend",
        body="",
        payload={
            "surplus": {"amount": 30000, "currency": "USD"},
            "period_start": (today - timedelta(days=1)).isoformat(),
            "period_end": today.isoformat(),
            "basis": "trips",
            "cash_share": "0.50",
        },
        closes_at=timezone.now() + timedelta(hours=1),
    )
    services.proposal_vote(proposal_id=proposal.id, user=proposer.user, choice="yes")
    outcomes: dict[str, object] = {}

    with (
        psycopg.connect(**conninfo()) as holder,
        psycopg.connect(**conninfo(), autocommit=True) as monitor,
    ):
        # The withdrawal locks the director's member row, then stops where it ends the director's seat.
        holder.execute(f"LOCK TABLE {BoardSeat._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        withdrawal = run_in_thread(
            lambda: services.membership_withdraw(user=director.user), outcomes, "withdrawal"
        )
        wait_until(lambda: waiting_on_locks(monitor) == 1, timeout_s=15, what="the withdrawal waits")
        # The second yes of three decides the dividend at once.
        vote = run_in_thread(
            lambda: services.proposal_vote(proposal_id=proposal.id, user=decider.user, choice="yes"),
            outcomes,
            "vote",
        )
        wait_until(
            lambda: "vote" in outcomes or waiting_on_locks(monitor) == 2,
            timeout_s=15,
            what="the deciding vote waits for the withdrawal",
        )
        holder.rollback()
        withdrawal.join(timeout=30)
        vote.join(timeout=30)

    assert set(outcomes) == {"withdrawal", "vote"}, "an act is still running"
    _no_failures(outcomes)
    assert Member.objects.get(id=director.id).status == MemberStatus.WITHDRAWN
    assert not selectors.seats_in_force().filter(member=director).exists()
    assert Proposal.objects.get(id=proposal.id).status == "passed"
    statements = DividendStatement.objects.filter(proposal=proposal)
    assert sum(statement.total_minor for statement in statements) == 30000
    assert audit_verify().ok
