"""A passed dividend proposal allocates the surplus by patronage: statements, balanced ledger entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind, JournalEntry, Posting
from governance import services
from governance.models import AuditEntry, DividendStatement
from tests.governance.conftest import client_for

pytestmark = pytest.mark.django_db


def _dividend(proposer, *, surplus, basis, cash_share, start, end):
    return services.proposal_create(
        user=proposer.user,
        kind="dividend",
        title="Patronage dividend",
        body="",
        payload={
            "surplus": {"amount": surplus, "currency": "USD"},
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "basis": basis,
            "cash_share": cash_share,
        },
        closes_at=timezone.now() + timedelta(hours=1),
    )


@pytest.mark.parametrize(
    ("basis", "expected_totals"),
    [
        ("trips", [50000, 33333, 16667]),  # 3 : 2 : 1 trips
        ("net_earnings", [60000, 30000, 10000]),  # 6000 : 3000 : 1000 cents of pay
        ("engaged_hours", [42857, 42857, 14286]),  # 3 h : 3 h : 1 h
    ],
)
def test_dividend_passes_and_allocates_exactly(make_member, complete_trip, basis, expected_totals):
    members = [make_member() for _ in range(3)]
    today = timezone.localdate()
    pays = {0: [2000, 2000, 2000], 1: [1500, 1500], 2: [1000]}
    engaged = {0: [3600, 3600, 3600], 1: [5400, 5400], 2: [3600]}
    for index, member in enumerate(members):
        for pay, seconds in zip(pays[index], engaged[index], strict=True):
            complete_trip(member.user, pay_minor=pay, fare_minor=pay + 500, engaged_s=seconds)
    proposal = _dividend(
        members[0], surplus=100000, basis=basis, cash_share="0.30", start=today - timedelta(days=1), end=today
    )
    for member in members[:2]:
        services.proposal_vote(proposal_id=proposal.id, user=member.user, choice="yes")
    proposal.refresh_from_db()
    assert proposal.status == "passed"

    statements = {s.member_id: s for s in DividendStatement.objects.filter(proposal=proposal)}
    assert [statements[m.id].total_minor for m in members] == expected_totals
    assert sum(s.total_minor for s in statements.values()) == 100000
    assert sum(s.cash_minor for s in statements.values()) == 30000
    for statement in statements.values():
        assert statement.cash_minor + statement.capital_minor == statement.total_minor
        assert statement.cash_minor >= statement.total_minor // 5

    entry = JournalEntry.objects.get(key=f"dividend:{proposal.id}")
    totals = Posting.objects.filter(entry=entry).aggregate(d=Sum("debit_minor"), c=Sum("credit_minor"))
    assert totals["d"] == totals["c"] == 100000
    for member in members:
        statement = statements[member.id]
        assert balance_minor(kind=AccountKind.MEMBER_CAPITAL, owner_id=member.user_id, currency="USD") == (
            statement.capital_minor
        )
        assert balance_minor(kind=AccountKind.DIVIDENDS_PAYABLE, owner_id=member.user_id, currency="USD") == (
            statement.cash_minor
        )
    assert AuditEntry.objects.filter(kind="dividend.allocated").count() == 1

    mine = client_for(members[1].user).get("/api/v1/governance/statements").json()["results"]
    assert len(mine) == 1 and mine[0]["total"] == {"amount": expected_totals[1], "currency": "USD"}
    detail = client_for(members[1].user).get("/api/v1/governance/membership").json()
    assert detail["capital_account"]["amount"] == statements[members[1].id].capital_minor
    assert detail["patronage"]["trips"] == 2


def test_trips_outside_the_period_do_not_count_and_no_patronage_allocates_nothing(make_member, complete_trip):
    members = [make_member() for _ in range(2)]
    today = timezone.localdate()
    complete_trip(members[0].user, at=timezone.now() - timedelta(days=40))
    proposal = _dividend(
        members[0], surplus=5000, basis="trips", cash_share="1", start=today - timedelta(days=7), end=today
    )
    for member in members:
        services.proposal_vote(proposal_id=proposal.id, user=member.user, choice="yes")
    proposal.refresh_from_db()
    assert proposal.status == "passed"
    assert proposal.effect["allocated"]["amount"] == 0 and "no member" in proposal.effect["reason"]
    assert not DividendStatement.objects.exists()
    assert not JournalEntry.objects.filter(kind="patronage_dividend").exists()
