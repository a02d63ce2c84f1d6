"""My membership, my work and the co-op's numbers: what the pages read from the ledger and the selectors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind
from governance import services
from governance.models import DividendStatement
from governance.selectors import share_paid_minor

pytestmark = pytest.mark.django_db


def _browser(member) -> Client:
    browser = Client()
    browser.force_login(member.user)
    return browser


def test_my_membership_shows_the_share_the_capital_account_and_statements(make_member, complete_trip):
    members = [make_member() for _ in range(2)]
    for member in members:
        complete_trip(member.user, pay_minor=2000, fare_minor=2500)
    today = timezone.localdate()
    proposal = services.proposal_create(
        user=members[0].user,
        kind="dividend",
        title="Patronage dividend",
        body="",
        payload={
            "surplus": {"amount": 10000, "currency": "USD"},
            "period_start": (today - timedelta(days=1)).isoformat(),
            "period_end": today.isoformat(),
            "basis": "trips",
            "cash_share": "0.40",
        },
        closes_at=timezone.now() + timedelta(hours=1),
    )
    for member in members:
        services.proposal_vote(proposal_id=proposal.id, user=member.user, choice="yes")
    statement = DividendStatement.objects.get(member=members[0])
    assert statement.capital_minor == 3000

    page = _browser(members[0]).get("/members/membership/").content.decode()
    assert balance_minor(kind=AccountKind.MEMBER_CAPITAL, owner_id=members[0].user_id, currency="USD") == 3000
    assert 'id="capital-account">30.00 USD<' in page
    paid = share_paid_minor(members[0])
    assert paid == 200  # 10% of the trip's 20.00 pay went to the share
    assert 'id="share-paid">2.00 USD<' in page
    assert 'id="share-outstanding">98.00 USD<' in page
    assert "50.00 USD" in page.split('id="statements"')[1]  # the statement's total: half the surplus
    assert 'id="patronage-trips">1<' in page


def test_my_work_shows_the_week_s_pay_against_the_floor_and_documents(make_member, complete_trip):
    from dispatch.money.settlement import trip_completion_settle

    member = make_member()
    # The driver's share of a 22.00 fare is 18.70; the floor for the trip is 20.00, so the co-op adds 1.30.
    trip = complete_trip(member.user, pay_minor=2000, fare_minor=2200, post=False)
    trip.fare_breakdown = {"share": 1870, "floor": 2000, "floor_applied": True}
    trip.save(update_fields=["fare_breakdown"])
    trip_completion_settle(trip=trip)
    page = _browser(member).get("/members/work/").content.decode()
    weeks = page.split('id="weeks"')[1].split("</ol>")[0]
    this_week = weeks.split("data-week=")[1]
    assert "20.00 USD" in this_week and "1.30 USD" in this_week
    assert "1 trip lifted to the floor" in this_week
    assert weeks.count("data-week=") == 8
    assert 'id="documents"' in page


def test_the_numbers_page_shows_a_month_s_figures_and_withholds_what_few_drivers_would_reveal(
    make_member, complete_trip
):
    member = make_member()
    complete_trip(member.user, pay_minor=2000, fare_minor=2500)
    month = timezone.localdate().strftime("%Y-%m")
    answer = _browser(member).get(f"/members/numbers/?month={month}")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert f'<option value="{month}" selected>' in page  # the month picker lists months with trips
    assert 'data-figure="trips_completed">1<' in page
    commission = page.split('data-figure="commission_kept">')[1].split("<")[0]
    assert "withheld" in commission  # one driver: publishing it would name what they earned the co-op


@pytest.mark.parametrize(("month", "message"), [("March", "for example 2026-10"), ("2999-01", "not begun")])
def test_the_numbers_page_refuses_a_month_that_is_not_one(make_member, month, message):
    answer = _browser(make_member()).get(f"/members/numbers/?month={month}")
    assert answer.status_code == 400
    assert message in answer.content.decode()
