"""Annual driver statements: `GET /api/v1/driver/statements/{year}` (JSON), `.csv` and `.pdf`.

Over the member driver's scenario of tests/fares/test_driver_pay.py (trips, one under the per-trip floor,
tips, a refund the co-op bore, a late cancellation, a reversed fare, a weekly floor top-up, trips just
outside the week) plus a refund the driver bore under `shared_above_floor`, a trip in an earlier month and
a payout, the statement agrees to the cent with the ledger and with the earnings route over the same
dates; it is the driver's own, always."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Q
from django.urls import reverse

from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry, Posting
from dispatch.money.refunds import refund_post
from dispatch.money.statements import driver_statement
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import assert_ledger_consistent
from tests.fares.test_driver_pay import _at, _ride
from tests.receipts.builders import NEW_YORK_FEES, policy_with, reference_trip
from tests.receipts.conftest import pdf_text

pytestmark = pytest.mark.django_db


def _payout_entry(driver, *, week_start: date, payable: int, tips: int) -> JournalEntry:
    """A payout as helper "payouts" posts it (the shared names of issue 14: key `payout:{driver}:{week}`,
    kind `driver_payout`): Dr the driver's payable and held tips, Cr cash clearing the total."""
    entry, _ = ledger.post_entry(
        key=f"payout:{driver.id}:{week_start.isoformat()}",
        kind="driver_payout",
        currency="USD",
        memo="payout",
        lines=[
            debit(AccountKind.DRIVER_PAYABLE, driver.id, payable),
            debit(AccountKind.TIPS_HELD, driver.id, tips),
            credit(AccountKind.CASH_CLEARING, None, payable + tips),
        ],
        metadata={
            "week_start": week_start.isoformat(),
            "payable": payable,
            "tips": tips,
            "method": "ach",
            "payout_id": "3f1e0f52-8d0c-4d3b-9d5e-0c1b2a3f4e5d",
        },
    )
    return entry


@pytest.fixture
def driver_year(member_week):
    """member_week, and: a trip with pass-through fees (38.50 + 0.96 + 3.42) and a refund the driver bears
    part of (10.00, of which the fare's 8.98 would take 7.63 from the driver's share, but only 2.27 of pay
    lies above the floor), a trip five weeks earlier (another month, maybe another year), and a payout."""
    driver, monday = member_week["driver"], member_week["monday"]
    rider, staff = RiderFactory(), StaffFactory()
    shared = reference_trip(
        policy=policy_with(driver_pay="shared_above_floor", fees=NEW_YORK_FEES),
        rider=rider,
        driver=driver,
        at=_at(monday + timedelta(days=2), 15),
    )
    refund_post(trip_id=shared.id, amount_minor=1000, reason="late pickup", staff_id=staff.id)
    earlier = _ride(
        rider, driver, member_week["per_trip_policy"], (8000, 1200), _at(monday - timedelta(days=35), 11)
    )
    payout = _payout_entry(driver, week_start=monday, payable=5000, tips=575)
    assert_ledger_consistent()
    return {**member_week, "shared": shared, "earlier": earlier, "payout": payout}


def _years(scenario) -> list[int]:
    monday = scenario["monday"]
    days = [monday - timedelta(days=36), monday - timedelta(days=1), monday + timedelta(days=8)]
    return sorted({day.year for day in days} | {date.today().year})


def _earnings(client, date_from: date, date_to: date) -> dict:
    response = client.get(
        reverse("driver-earnings"), {"from": date_from.isoformat(), "to": date_to.isoformat()}
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_statement_agrees_with_the_earnings_route_and_the_ledger(driver_year):
    driver = driver_year["driver"]
    client = auth_client_for(driver)
    pay_over_years = weekly_over_years = cancellations_over_years = borne_over_years = 0
    for year in _years(driver_year):
        response = client.get(reverse("driver-statement", kwargs={"year": year}))
        assert response.status_code == 200, response.content
        statement = response.json()
        earnings = _earnings(client, date(year, 1, 1), date(year, 12, 31))
        assert statement["year"] == year and (statement["from"], statement["to"]) == (
            earnings["from"],
            earnings["to"],
        )
        assert statement["trips"] == earnings["trips"]
        for field in ("gross_fares", "commission", "tips", "pay"):
            assert statement[field] == earnings[field], field
        assert statement["floor_top_ups"]["total"] == earnings["minimum_top_up"]
        weekly = sum(top_up["amount"]["amount"] for top_up in earnings["weekly_top_ups"])
        assert statement["floor_top_ups"]["weekly"]["amount"] == weekly
        assert (
            statement["net_earnings"]["amount"]
            == statement["pay"]["amount"] + statement["tips"]["amount"] - statement["refunds_borne"]["amount"]
        )
        # Each month is the earnings route over that month, and the months add up to the year.
        for month in statement["months"]:
            first = date(year, month["month"], 1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            monthly = _earnings(client, first, last)
            assert (month["pay"], month["tips"], month["trips"]) == (
                monthly["pay"],
                monthly["tips"],
                monthly["trips"],
            )
        for field in ("gross_fares", "commission", "pay", "tips", "refunds_borne", "payouts"):
            assert sum(m[field]["amount"] for m in statement["months"]) == statement[field]["amount"], field
        pay_over_years += statement["pay"]["amount"]
        weekly_over_years += statement["floor_top_ups"]["weekly"]["amount"]
        cancellations_over_years += statement["cancellations"]
        borne_over_years += statement["refunds_borne"]["amount"]

    # And the years' pay is all the ledger ever credited the driver for work (the scenario's trips, the
    # late cancellation and the weekly top-up, each net of reversals), read from the postings themselves.
    work = ("trip_fare", "cancellation_fee", "weekly_floor_top_up")
    credited = Posting.objects.filter(
        account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver.id
    ).filter(Q(entry__kind__in=work) | Q(entry__kind="reversal", entry__reverses__kind__in=work))
    assert pay_over_years == sum(p.credit_minor - p.debit_minor for p in credited)
    # The scenario's weekly top-up, late cancellation and the refund the driver bore are all in there.
    assert weekly_over_years == driver_year["weekly_top_up"] > 0
    assert cancellations_over_years == 1
    assert borne_over_years == 227


def test_refunds_borne_payouts_and_instalments_come_from_their_entries(driver_year):
    driver, monday = driver_year["driver"], driver_year["monday"]
    statement = driver_statement(driver_id=driver.id, year=_at(monday + timedelta(days=2), 15).year)
    borne = Posting.objects.filter(
        entry__kind="refund", account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver.id
    )
    assert statement.year_figures.refunds_borne == sum(p.debit_minor for p in borne) == 227
    # member_week's own refund fell under `kept`: the co-op bore it, the driver nothing.
    assert JournalEntry.objects.filter(kind="refund").count() == 2
    withheld = Posting.objects.filter(
        entry__kind="share_instalment", account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver.id
    )
    assert statement.year_figures.share_instalments == sum(p.debit_minor for p in withheld) > 0
    # The fees riders paid on the driver's trips, apart: never in gross fares or pay.
    assert [(f.code, f.amount) for f in statement.fees] == [("black_car_fund", 96), ("sales_tax", 342)]
    assert statement.year_figures.fees_passed_through == 438
    shared = driver_year["shared"]
    line = next(line for line in statement.earnings.lines if line.trip_id == shared.id)
    assert (line.fare, line.pay) == (3850, shared.driver_pay_minor)
    payouts = driver_statement(driver_id=driver.id, year=driver_year["payout"].created_at.year).payouts
    assert [(p.payable, p.tips, p.amount, p.method, p.week_start) for p in payouts] == [
        (5000, 575, 5575, "ach", monday)
    ]


def test_the_csv_has_a_row_a_month_and_the_years_totals(driver_year):
    driver = driver_year["driver"]
    year = _at(driver_year["monday"] + timedelta(days=2), 15).year
    client = auth_client_for(driver)
    statement = client.get(reverse("driver-statement", kwargs={"year": year})).json()
    for response in (
        client.get(reverse("driver-statement-csv", kwargs={"year": year})),
        client.get(reverse("driver-statement", kwargs={"year": year}), {"format": "csv"}),
    ):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [row["period"] for row in rows] == [f"{year}-{m:02d}" for m in range(1, 13)] + [str(year)]
        total = rows[-1]
        assert Decimal(total["pay"]) == Decimal(statement["pay"]["amount"]) / 100
        assert Decimal(total["net_earnings"]) == Decimal(statement["net_earnings"]["amount"]) / 100
        assert Decimal(total["refunds_borne"]) == Decimal("2.27")
        for column in ("gross_fares", "pay", "tips", "refunds_borne", "payouts"):
            assert sum(Decimal(row[column]) for row in rows[:-1]) == Decimal(total[column]), column
    assert f"statement-{year}.csv" in response["Content-Disposition"]


def test_the_pdf_reads_back_with_the_years_figures(driver_year):
    driver = driver_year["driver"]
    year = _at(driver_year["monday"] + timedelta(days=2), 15).year
    client = auth_client_for(driver)
    statement = client.get(reverse("driver-statement", kwargs={"year": year})).json()
    for response in (
        client.get(reverse("driver-statement-pdf", kwargs={"year": year})),
        client.get(reverse("driver-statement", kwargs={"year": year}), HTTP_ACCEPT="application/pdf"),
    ):
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        text = pdf_text(response.content)
        assert f"Driver statement {year}" in text
        for field in ("gross_fares", "pay", "tips", "net_earnings", "refunds_borne", "commission"):
            amount = f"{Decimal(statement[field]['amount']) / 100:.2f} USD"
            assert amount in text, (field, amount)


def test_a_statement_is_always_the_callers_own(driver_year):
    year = _at(driver_year["monday"] + timedelta(days=2), 15).year
    other = auth_client_for(DriverFactory()).get(reverse("driver-statement", kwargs={"year": year}))
    assert other.status_code == 200
    figures = other.json()
    assert figures["trips"] == 0 and figures["pay"]["amount"] == 0 and figures["payout_lines"] == []
    assert all(month["pay"]["amount"] == 0 for month in figures["months"])
    rider = auth_client_for(driver_year["rides"][0].rider)
    for name in ("driver-statement", "driver-statement-csv", "driver-statement-pdf"):
        refused = rider.get(reverse(name, kwargs={"year": year}))
        assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
        assert refused.json()["error"]["code"] == "permission_denied"


def test_a_year_out_of_range_is_refused_in_json(driver_year):
    client = auth_client_for(driver_year["driver"])
    for year in (1999, date.today().year + 1):
        for name in ("driver-statement", "driver-statement-pdf"):
            response = client.get(reverse(name, kwargs={"year": year}))
            assert response.status_code == 400 and response["Content-Type"] == "application/json"
            assert "year" in response.json()["error"]["details"]
