"""A driver's earnings over a range of local dates, read from the ledger (money, engaged time) and presence.

Figures (all integer minor units, one currency):
- one line per trip that earned the driver money in the range: completed trips by `completed_at`, and
  cancelled trips whose rider paid a late-cancellation fee by `ended_at`:
  `fare` (what the rider was charged), `commission` (the co-op's standard share, fare - share),
  `floor_top_up` (what the per-trip floor added: pay - share), `pay` (driver_payable for the trip) and
  `tip` (tips_held for the trip), so `pay == fare - commission + floor_top_up` on every line;
- weekly floor top-ups (`floor:{driver}:{week}`) for weeks whose Sunday falls in the range;
- totals: `gross_fares`, `commission`, `tips`, `minimum_top_up` (per-trip and weekly), and
  `pay = gross_fares - commission + minimum_top_up`, exactly what was credited to driver_payable for them;
  `total = pay + tips`;
- `online_seconds` (PresenceSession overlap with the range), `engaged_seconds` (assigned to completed, over
  the completed trips, as their fare entries recorded it), and the effective hourly `total` per engaged and
  per online hour.
Which entries count, in which period, is backend/fares/pay.py's one definition of driver pay; `pay` here is
the sum of its credits, so it equals governance's patronage `net_earnings` for the same driver and dates.
Reversals (corrections) of an entry are netted into the line of the entry they reverse.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from backend.fares.models import AccountKind, JournalEntry, Posting
from backend.fares.money import round_half_up
from backend.fares.pay import (
    TRIP_FARE,
    WEEKLY_FLOOR_TOP_UP,
    PayCredit,
    driver_pay_credits,
    local_day_bounds,
    local_zone,
)
from dispatch.models import PresenceSession, Trip
from dispatch.money.payer import PAYER_RECEIVABLE_KINDS

MAX_RANGE_DAYS = 366


@dataclass
class EarningsLine:
    trip_id: uuid.UUID
    kind: str  # "trip" or "cancellation"
    at: datetime
    fare: int = 0
    share: int = 0
    pay: int = 0
    tip: int = 0
    floor_applied: bool = False
    distance_m: int | None = None
    duration_s: int | None = None

    @property
    def commission(self) -> int:
        """The co-op's standard share of the fare (fare x commission_rate, rounded)."""
        return self.fare - self.share

    @property
    def floor_top_up(self) -> int:
        """What the per-trip floor added on top of the driver's share."""
        return self.pay - self.share


@dataclass(frozen=True)
class WeeklyTopUpLine:
    week: str
    week_start: date
    amount: int


@dataclass
class Earnings:
    driver_id: uuid.UUID
    date_from: date
    date_to: date
    currency: str
    lines: list[EarningsLine] = field(default_factory=list)
    top_ups: list[WeeklyTopUpLine] = field(default_factory=list)
    online_seconds: int = 0
    engaged_seconds: int = 0

    @property
    def trips(self) -> int:
        return sum(1 for line in self.lines if line.kind == "trip")

    @property
    def gross_fares(self) -> int:
        return sum(line.fare for line in self.lines)

    @property
    def commission(self) -> int:
        return sum(line.commission for line in self.lines)

    @property
    def tips(self) -> int:
        return sum(line.tip for line in self.lines)

    @property
    def minimum_top_up(self) -> int:
        return sum(line.floor_top_up for line in self.lines) + sum(top_up.amount for top_up in self.top_ups)

    @property
    def pay(self) -> int:
        return sum(line.pay for line in self.lines) + sum(top_up.amount for top_up in self.top_ups)

    @property
    def total(self) -> int:
        return self.pay + self.tips

    def per_hour(self, seconds: int) -> int | None:
        if seconds <= 0:
            return None
        return round_half_up(Fraction(self.total * 3600, seconds))


def current_week(today: date | None = None) -> tuple[date, date]:
    day = today or timezone.localtime(timezone.now(), local_zone()).date()
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def driver_earnings(
    *, driver_id: uuid.UUID, date_from: date, date_to: date, now: datetime | None = None
) -> Earnings:
    """The driver's earnings between two local dates (inclusive). Pay and engaged time are the ledger's
    (backend/fares/pay.py `driver_pay_credits`, the same credits patronage sums); online time is
    PresenceSession's."""
    start, end = local_day_bounds(date_from, date_to)
    moment = now or timezone.now()
    credits = driver_pay_credits(driver_ids=[driver_id], date_from=date_from, date_to=date_to)
    # Completed trips first, by completion, then late cancellations, by their end (as the driver's app lists).
    trip_credits = sorted(
        (credit for credit in credits if credit.kind != WEEKLY_FLOOR_TOP_UP),
        key=lambda credit: (credit.kind != TRIP_FARE, credit.worked_at, credit.trip_id),
    )
    trips = Trip.objects.in_bulk([credit.trip_id for credit in trip_credits])
    lines: dict[uuid.UUID, EarningsLine] = {}
    for credit in trip_credits:
        assert credit.trip_id is not None and credit.worked_at is not None  # trip entries name their trip
        completed = credit.kind == TRIP_FARE
        trip = trips[credit.trip_id]
        lines[credit.trip_id] = EarningsLine(
            trip_id=credit.trip_id,
            kind="trip" if completed else "cancellation",
            at=credit.worked_at,
            pay=credit.pay_minor,
            distance_m=trip.measured_distance_m if completed else None,
            duration_s=trip.measured_duration_s if completed else None,
        )
    _add_trip_money(lines, driver_id=driver_id)
    top_ups = [
        _weekly_top_up(credit)
        for credit in sorted(credits, key=lambda credit: credit.week_start or date.min)
        if credit.kind == WEEKLY_FLOOR_TOP_UP
    ]

    online = 0
    sessions = PresenceSession.objects.filter(driver_id=driver_id, started_at__lt=end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=start)
    )
    for session in sessions:
        stop = min(session.ended_at or moment, end, max(moment, start))
        online += max(int((stop - max(session.started_at, start)).total_seconds()), 0)

    currencies = {credit.currency for credit in credits}
    if len(currencies) > 1:
        raise ValueError(f"driver {driver_id} earned in several currencies: {sorted(currencies)}")
    return Earnings(
        driver_id=driver_id,
        date_from=date_from,
        date_to=date_to,
        currency=currencies.pop() if currencies else settings.ROCHDALE_CURRENCY,
        lines=list(lines.values()),
        top_ups=top_ups,
        online_seconds=online,
        engaged_seconds=sum(credit.engaged_s for credit in credits),
    )


def _weekly_top_up(credit: PayCredit) -> WeeklyTopUpLine:
    assert credit.week is not None and credit.week_start is not None  # a weekly entry names its week
    return WeeklyTopUpLine(week=credit.week, week_start=credit.week_start, amount=credit.pay_minor)


_LINE_KINDS = ("trip_fare", "cancellation_fee", "tip")


def _add_trip_money(lines: dict[uuid.UUID, EarningsLine], *, driver_id: uuid.UUID) -> None:
    """Fill each line's fare, share and tips from its trip's fare / cancellation / tip entries, reversals
    netted (its pay is the ledger's credit, set already)."""
    if not lines:
        return
    entries = list(
        JournalEntry.objects.filter(trip_id__in=list(lines))
        .filter(Q(kind__in=_LINE_KINDS) | Q(kind="reversal", reverses__kind__in=_LINE_KINDS))
        .select_related("reverses")
    )
    postings: dict[uuid.UUID, list[Posting]] = defaultdict(list)
    for posting in Posting.objects.filter(entry__in=entries).select_related("account"):
        postings[posting.entry_id].append(posting)

    for entry in entries:
        line = lines[entry.trip_id]
        sign, source = (-1, entry.reverses) if entry.kind == "reversal" else (1, entry)
        driver_pay = tips = fare = 0
        for posting in postings[entry.id]:
            account = posting.account
            # A reversal swaps the sides, so credits minus debits is negative there: the sign is built in.
            if account.kind == AccountKind.DRIVER_PAYABLE and account.owner_id == driver_id:
                driver_pay += posting.credit_minor - posting.debit_minor
            elif account.kind == AccountKind.TIPS_HELD and account.owner_id == driver_id:
                tips += posting.credit_minor - posting.debit_minor
            elif account.kind in PAYER_RECEIVABLE_KINDS:  # the rider's, or the organisation's that pays
                fare += posting.debit_minor - posting.credit_minor
            elif account.kind == AccountKind.PASS_THROUGH:
                # The rider was charged fare + pass-through fees; the fees are nobody's fare.
                fare -= posting.credit_minor - posting.debit_minor
        if source.kind == "tip":
            line.tip += tips
            continue
        share = (source.metadata or {}).get("share") if source.kind == "trip_fare" else None
        line.fare += fare
        # Entries from before the share was recorded count their pay as the share (no top-up shown).
        line.share += sign * share if share is not None else driver_pay
        if source.kind == "trip_fare" and sign > 0 and (source.metadata or {}).get("floor_applied"):
            line.floor_applied = True
