"""A driver's earnings over a range of local dates, read from the ledger (money) and trips (time).

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
  the completed trips), and the effective hourly `total` per engaged and per online hour.
Reversals (corrections) of an entry are netted into the line of the entry they reverse.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from fractions import Fraction

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from backend.fares.models import AccountKind, JournalEntry, Posting
from backend.fares.money import round_half_up
from backend.fares.weekly import local_zone

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


def range_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[date_from 00:00, day after date_to 00:00) local, as aware datetimes."""
    zone = local_zone()
    return (
        datetime.combine(date_from, time(0), tzinfo=zone),
        datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=zone),
    )


def current_week(today: date | None = None) -> tuple[date, date]:
    day = today or timezone.localtime(timezone.now(), local_zone()).date()
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def driver_earnings(
    *, driver_id: uuid.UUID, date_from: date, date_to: date, now: datetime | None = None
) -> Earnings:
    from dispatch.models import PresenceSession, Trip
    from dispatch.state import TripStatus

    start, end = range_bounds(date_from, date_to)
    moment = now or timezone.now()
    trips = list(
        Trip.objects.filter(driver_id=driver_id)
        .filter(
            Q(status=TripStatus.COMPLETED, completed_at__gte=start, completed_at__lt=end)
            | Q(
                status=TripStatus.CANCELLED,
                cancellation_fee_minor__gt=0,
                ended_at__gte=start,
                ended_at__lt=end,
            )
        )
        .order_by("completed_at", "ended_at", "id")
    )
    lines: dict[uuid.UUID, EarningsLine] = {}
    currencies: set[str] = set()
    engaged = 0
    for trip in trips:
        completed = trip.status == TripStatus.COMPLETED
        lines[trip.id] = EarningsLine(
            trip_id=trip.id,
            kind="trip" if completed else "cancellation",
            at=trip.completed_at if completed else trip.ended_at,
            distance_m=trip.measured_distance_m if completed else None,
            duration_s=trip.measured_duration_s if completed else None,
        )
        currencies.add(trip.currency)
        if completed:
            began = trip.assigned_at or trip.started_at or trip.completed_at
            engaged += max(int((trip.completed_at - began).total_seconds()), 0)

    _add_trip_money(lines, driver_id=driver_id)
    top_ups = _weekly_top_ups(
        driver_id=driver_id, date_from=date_from, date_to=date_to, currencies=currencies
    )

    online = 0
    sessions = PresenceSession.objects.filter(driver_id=driver_id, started_at__lt=end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=start)
    )
    for session in sessions:
        stop = min(session.ended_at or moment, end, max(moment, start))
        online += max(int((stop - max(session.started_at, start)).total_seconds()), 0)

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
        engaged_seconds=engaged,
    )


_LINE_KINDS = ("trip_fare", "cancellation_fee", "tip")


def _add_trip_money(lines: dict[uuid.UUID, EarningsLine], *, driver_id: uuid.UUID) -> None:
    """Fill each line's money from its trip's fare / cancellation / tip entries, reversals netted."""
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
            elif account.kind == AccountKind.RIDER_RECEIVABLE:
                fare += posting.debit_minor - posting.credit_minor
        if source.kind == "tip":
            line.tip += tips
            continue
        share = (source.metadata or {}).get("share") if source.kind == "trip_fare" else None
        line.fare += fare
        line.pay += driver_pay
        # Entries from before the share was recorded count their pay as the share (no top-up shown).
        line.share += sign * share if share is not None else driver_pay
        if source.kind == "trip_fare" and sign > 0 and (source.metadata or {}).get("floor_applied"):
            line.floor_applied = True


def _weekly_top_ups(
    *, driver_id: uuid.UUID, date_from: date, date_to: date, currencies: set[str]
) -> list[WeeklyTopUpLine]:
    entries = JournalEntry.objects.filter(
        kind="weekly_floor_top_up",
        metadata__driver_id=str(driver_id),
        metadata__week_end__gte=date_from.isoformat(),
        metadata__week_end__lte=date_to.isoformat(),
    ).order_by("metadata__week_start")
    result = []
    for entry in entries:
        amount = 0
        for posting in entry.postings.select_related("account"):
            if posting.account.kind == AccountKind.DRIVER_PAYABLE and posting.account.owner_id == driver_id:
                amount += posting.credit_minor - posting.debit_minor
                currencies.add(posting.account.currency)
        reversed_amount = sum(
            p.debit_minor - p.credit_minor
            for p in Posting.objects.filter(
                entry__reverses=entry, account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver_id
            )
        )
        result.append(
            WeeklyTopUpLine(
                week=entry.metadata["week"],
                week_start=date.fromisoformat(entry.metadata["week_start"]),
                amount=amount - reversed_amount,
            )
        )
    return result
