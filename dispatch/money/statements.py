"""A driver's annual statement: a calendar year's figures for tax forms, read from the ledger.

Pay is not computed here a second time. The year's fares, commission, per-trip and weekly floor top-ups,
pay and tips are `driver_earnings` over 1 January to 31 December (dispatch/money/earnings.py, which reads
backend/fares/pay.py's one definition of pay), and each month's figures are the same lines grouped by
month (a line by when the work ended, a weekly top-up by its week's Sunday, as earnings count them), so
the months add up to the year exactly. Beside pay, from the same ledger:

- `fees_passed_through`: taxes, surcharges and tolls riders paid on the year's trips, collected for others
  and not the driver's income (the trips' fare entries, `metadata["fees"]`, net of reversals);
- `refunds_borne`: what refunds of the year's trips took back from the driver (only under the board's
  `shared_above_floor` rule, never below a trip's floor): refund entries' `Dr driver_payable(driver)`;
- `share_instalments`: share capital withheld from the year's trips (the driver's own equity, not a
  cost): `share_instalment` entries' `Dr driver_payable(driver)`;
- `payouts`: what was paid out to the driver in the year, by when it was paid: `driver_payout` entries'
  `Dr driver_payable` + `Dr tips_held(driver)`, net of reversals, read by kind (none yet is fine).

`net_earnings = pay + tips - refunds_borne`: the driver's income from driving for the year. Payouts are
shown separately: they move money already earned (and may fall in the next year for late December work).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from backend.fares.models import AccountKind, JournalEntry, Posting
from backend.fares.pay import local_day_bounds, local_zone
from dispatch.money.earnings import Earnings, EarningsLine, driver_earnings

DRIVER_PAYOUT = "driver_payout"
FIRST_YEAR = 2000


@dataclass
class StatementFigures:
    """One period's money (a month, or the year), minor units."""

    trips: int = 0
    cancellations: int = 0
    gross_fares: int = 0
    commission: int = 0
    per_trip_top_ups: int = 0
    weekly_top_ups: int = 0
    pay: int = 0
    tips: int = 0
    refunds_borne: int = 0
    share_instalments: int = 0
    fees_passed_through: int = 0
    payouts: int = 0

    @property
    def floor_top_ups(self) -> int:
        return self.per_trip_top_ups + self.weekly_top_ups

    @property
    def net_earnings(self) -> int:
        return self.pay + self.tips - self.refunds_borne

    def add_line(self, line: EarningsLine) -> None:
        if line.kind == "trip":
            self.trips += 1
        else:
            self.cancellations += 1
        self.gross_fares += line.fare
        self.commission += line.commission
        self.per_trip_top_ups += line.floor_top_up
        self.pay += line.pay
        self.tips += line.tip


@dataclass(frozen=True)
class FeeTotal:
    code: str
    label: str
    amount: int


@dataclass(frozen=True)
class PayoutLine:
    entry_id: uuid.UUID
    paid_at: datetime
    week_start: date | None
    method: str
    payable: int
    tips: int

    @property
    def amount(self) -> int:
        return self.payable + self.tips


@dataclass
class DriverStatement:
    driver_id: uuid.UUID
    year: int
    currency: str
    earnings: Earnings
    year_figures: StatementFigures
    months: list[StatementFigures] = field(default_factory=list)
    fees: list[FeeTotal] = field(default_factory=list)
    payouts: list[PayoutLine] = field(default_factory=list)

    @property
    def date_from(self) -> date:
        return date(self.year, 1, 1)

    @property
    def date_to(self) -> date:
        return date(self.year, 12, 31)


def statement_year_valid(year: int, *, today: date | None = None) -> bool:
    """Years a statement can be asked for: from 2000 to the current local year."""
    current = today or timezone.localtime(timezone.now(), local_zone()).date()
    return FIRST_YEAR <= year <= current.year


def driver_statement(*, driver_id: uuid.UUID, year: int) -> DriverStatement:
    """The driver's statement for a calendar year (local dates, settings.TIME_ZONE)."""
    date_from, date_to = date(year, 1, 1), date(year, 12, 31)
    earnings = driver_earnings(driver_id=driver_id, date_from=date_from, date_to=date_to)
    zone = local_zone()
    months = [StatementFigures() for _ in range(12)]
    month_of_trip: dict[uuid.UUID, int] = {}
    for line in earnings.lines:
        month = timezone.localtime(line.at, zone).month
        months[month - 1].add_line(line)
        month_of_trip[line.trip_id] = month
    for top_up in earnings.top_ups:
        sunday = top_up.week_start + timedelta(days=6)
        months[sunday.month - 1].weekly_top_ups += top_up.amount
        months[sunday.month - 1].pay += top_up.amount

    for trip_id, amount in _driver_debits(driver_id, month_of_trip, kind="refund").items():
        months[month_of_trip[trip_id] - 1].refunds_borne += amount
    for trip_id, amount in _driver_debits(driver_id, month_of_trip, kind="share_instalment").items():
        months[month_of_trip[trip_id] - 1].share_instalments += amount
    fees = _fees_passed_through(month_of_trip, months)
    payouts = _payouts(driver_id, date_from=date_from, date_to=date_to)
    for payout in payouts:
        months[timezone.localtime(payout.paid_at, zone).month - 1].payouts += payout.amount

    year_figures = StatementFigures()
    for month in months:
        for name in StatementFigures.__dataclass_fields__:
            setattr(year_figures, name, getattr(year_figures, name) + getattr(month, name))
    # The months partition the year: their pay is the year's earnings' pay, to the cent.
    assert year_figures.pay == earnings.pay and year_figures.tips == earnings.tips
    return DriverStatement(
        driver_id=driver_id,
        year=year,
        currency=earnings.currency,
        earnings=earnings,
        year_figures=year_figures,
        months=months,
        fees=fees,
        payouts=payouts,
    )


def _driver_debits(driver_id: uuid.UUID, trips: dict[uuid.UUID, int], *, kind: str) -> dict[uuid.UUID, int]:
    """Per trip: what entries of `kind` on these trips debited the driver's payable account."""
    totals: dict[uuid.UUID, int] = defaultdict(int)
    rows = Posting.objects.filter(
        entry__trip_id__in=list(trips),
        entry__kind=kind,
        account__kind=AccountKind.DRIVER_PAYABLE,
        account__owner_id=driver_id,
    ).values_list("entry__trip_id", "debit_minor", "credit_minor")
    for trip_id, debit_minor, credit_minor in rows:
        totals[trip_id] += debit_minor - credit_minor
    return totals


def _fees_passed_through(trips: dict[uuid.UUID, int], months: list[StatementFigures]) -> list[FeeTotal]:
    """The pass-through fees the trips' fare entries list, net of reversals, by code (and into each
    trip's month)."""
    by_code: dict[str, int] = defaultdict(int)
    labels: dict[str, str] = {}
    entries = JournalEntry.objects.filter(trip_id__in=list(trips)).filter(
        Q(kind="trip_fare") | Q(kind="reversal", reverses__kind="trip_fare")
    )
    for entry in entries.select_related("reverses"):
        source = entry.reverses if entry.kind == "reversal" and entry.reverses else entry
        sign = -1 if entry.kind == "reversal" else 1
        for fee in (source.metadata or {}).get("fees") or []:
            code, amount = str(fee["code"]), sign * int(fee["amount"])
            labels.setdefault(code, str(fee.get("label") or code))
            by_code[code] += amount
            months[trips[entry.trip_id] - 1].fees_passed_through += amount
    return [
        FeeTotal(code=code, label=labels[code], amount=amount) for code, amount in by_code.items() if amount
    ]


def _payouts(driver_id: uuid.UUID, *, date_from: date, date_to: date) -> list[PayoutLine]:
    """The driver's payouts posted between two local dates (inclusive), each net of its reversals."""
    start, end = local_day_bounds(date_from, date_to)
    originals = {
        entry.id: entry
        for entry in JournalEntry.objects.filter(
            kind=DRIVER_PAYOUT,
            created_at__gte=start,
            created_at__lt=end,
            postings__account__owner_id=driver_id,
            postings__account__kind__in=[AccountKind.DRIVER_PAYABLE, AccountKind.TIPS_HELD],
        ).distinct()
    }
    payable: dict[uuid.UUID, int] = defaultdict(int)
    tips: dict[uuid.UUID, int] = defaultdict(int)
    rows = (
        Posting.objects.filter(
            account__owner_id=driver_id,
            account__kind__in=[AccountKind.DRIVER_PAYABLE, AccountKind.TIPS_HELD],
        )
        .filter(Q(entry_id__in=list(originals)) | Q(entry__reverses_id__in=list(originals)))
        .values_list("entry_id", "entry__reverses_id", "account__kind", "debit_minor", "credit_minor")
    )
    for entry_id, reverses_id, kind, debit_minor, credit_minor in rows:
        # A payout debits what it pays out; a reversal (a returned payout) credits it back.
        target = payable if kind == AccountKind.DRIVER_PAYABLE else tips
        target[reverses_id or entry_id] += debit_minor - credit_minor
    lines = []
    for entry in sorted(originals.values(), key=lambda entry: (entry.created_at, entry.id)):
        metadata = entry.metadata or {}
        week_start = metadata.get("week_start")
        line = PayoutLine(
            entry_id=entry.id,
            paid_at=entry.created_at,
            week_start=date.fromisoformat(week_start) if week_start else None,
            method=str(metadata.get("method", "")),
            payable=payable[entry.id],
            tips=tips[entry.id],
        )
        if line.amount:
            lines.append(line)
    return lines
