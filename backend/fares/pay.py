"""Driver pay over the ledger: the one definition of what a driver was paid for their work in a period.

Driver pay for a period is what the ledger credited to the driver's payable account (`driver_payable`)
for work done in it, net of every reversal of those credits (whenever the reversal was posted):

| entry kind | what it pays | its period |
|---|---|---|
| `trip_fare` | the trip's pay: the driver's share plus any per-trip floor top-up | the trip's completion |
| `cancellation_fee` | the driver's part of a late-cancellation fee | the trip's end |
| `weekly_floor_top_up` | what the weekly floor added to the week | the week's Sunday |

Not pay: tips (held for the driver on `tips_held`; earnings show them beside pay, never in it, and
patronage leaves them out), share instalments (the driver's own share capital, withheld from what is paid
out: the pay was earned all the same), the repayment of a withdrawn share, dividends (their own accounts),
and refunds (the co-op's expense, `Dr refunds, Cr rider_receivable`: the driver keeps the pay).

When the work ended is recorded in the entry (`worked_at` in its metadata: the trip's `completed_at` or
`ended_at`), so the period is the ledger's own; an entry posted before that was recorded falls back to when
it was posted. Days are local dates in `settings.TIME_ZONE`. A fare entry also carries the trip's engaged
time (`engaged_s`, `pricing.engaged_seconds` computed at settlement), so engaged time is read from the same
entries. Driver earnings (dispatch/money/earnings.py) and patronage (governance/selectors.py) both read
these functions, so they agree to the cent.
"""

from __future__ import annotations

import calendar
import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import DateTimeField, F, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from backend.fares.models import AccountKind, JournalEntry, LedgerAccount, Posting

TRIP_FARE = "trip_fare"
CANCELLATION_FEE = "cancellation_fee"
WEEKLY_FLOOR_TOP_UP = "weekly_floor_top_up"
PAY_ENTRY_KINDS = (TRIP_FARE, CANCELLATION_FEE, WEEKLY_FLOOR_TOP_UP)


@dataclass(frozen=True, slots=True)
class PayCredit:
    """One entry that paid a driver for work, with its reversals netted in.

    `worked_at` is when the trip's work ended (None for a weekly top-up, which has `week` and
    `week_start` instead); `engaged_s` is the trip's engaged time (fare entries only, else 0)."""

    entry_id: uuid.UUID
    kind: str
    driver_id: uuid.UUID
    currency: str
    pay_minor: int
    trip_id: uuid.UUID | None
    worked_at: datetime | None
    week: str | None
    week_start: date | None
    engaged_s: int


@dataclass(frozen=True, slots=True)
class DriverPay:
    """A driver's pay for a period: the sum of its `PayCredit`s, the completed trips among them and their
    engaged time."""

    pay_minor: int = 0
    trips: int = 0
    engaged_s: int = 0


def local_zone() -> ZoneInfo:
    """The co-op's time zone: its days, weeks and periods are local dates there."""
    return ZoneInfo(settings.TIME_ZONE)


def local_day_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[date_from 00:00, the day after date_to 00:00) local, as aware datetimes (DST-safe)."""
    zone = local_zone()
    return (
        datetime.combine(date_from, time(0), tzinfo=zone),
        datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=zone),
    )


def month_last_day(month: date) -> date:
    """The last day of the month `month` falls in."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def local_month_bounds(month: date) -> tuple[datetime, datetime]:
    """[the month's first local midnight, the next month's) as aware datetimes (DST-safe): the local month
    invoices, the regulator's trip records and its accessibility figures are counted in."""
    return local_day_bounds(month.replace(day=1), month_last_day(month))


def driver_pay_credits(
    *, driver_ids: Collection[uuid.UUID], date_from: date, date_to: date
) -> list[PayCredit]:
    """Every entry that paid one of these drivers for work between two local dates (inclusive), each net
    of its reversals, in no particular order."""
    start, end = local_day_bounds(date_from, date_to)
    accounts = LedgerAccount.objects.filter(kind=AccountKind.DRIVER_PAYABLE, owner_id__in=list(driver_ids))
    worked_at = Coalesce(Cast(KT("metadata__worked_at"), DateTimeField()), F("created_at"))
    entries = (
        JournalEntry.objects.filter(postings__account__in=accounts)
        .annotate(worked_at=worked_at)
        .filter(
            Q(kind__in=(TRIP_FARE, CANCELLATION_FEE), worked_at__gte=start, worked_at__lt=end)
            | Q(
                kind=WEEKLY_FLOOR_TOP_UP,
                metadata__week_end__gte=date_from.isoformat(),
                metadata__week_end__lte=date_to.isoformat(),
            )
        )
        .distinct()
    )
    return _credits(entries, accounts)


def driver_pay_for_period(
    *, driver_ids: Collection[uuid.UUID], date_from: date, date_to: date
) -> dict[uuid.UUID, DriverPay]:
    """Each driver's pay between two local dates (inclusive); every driver asked about is in the answer."""
    totals = {driver_id: DriverPay() for driver_id in driver_ids}
    for credit in driver_pay_credits(driver_ids=driver_ids, date_from=date_from, date_to=date_to):
        total = totals[credit.driver_id]
        totals[credit.driver_id] = DriverPay(
            pay_minor=total.pay_minor + credit.pay_minor,
            trips=total.trips + (credit.kind == TRIP_FARE),
            engaged_s=total.engaged_s + credit.engaged_s,
        )
    return totals


def trip_fare_pay(*, trip_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    """What each trip's fare entry credited its driver, net of reversals (a trip without one is absent)."""
    accounts = LedgerAccount.objects.filter(kind=AccountKind.DRIVER_PAYABLE)
    entries = JournalEntry.objects.filter(kind=TRIP_FARE, trip_id__in=list(trip_ids)).annotate(
        worked_at=Coalesce(Cast(KT("metadata__worked_at"), DateTimeField()), F("created_at"))
    )
    return {credit.trip_id: credit.pay_minor for credit in _credits(entries, accounts) if credit.trip_id}


def _credits(entries: QuerySet[JournalEntry], accounts: QuerySet[LedgerAccount]) -> list[PayCredit]:
    """The driver_payable movements of `entries` and of the reversals of them, per entry (two queries)."""
    originals = {entry.id: entry for entry in entries}
    if not originals:
        return []
    moved: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    currency_of: dict[uuid.UUID, str] = {}
    rows = (
        Posting.objects.filter(account__in=accounts)
        .filter(Q(entry_id__in=list(originals)) | Q(entry__reverses_id__in=list(originals)))
        .values_list(
            "entry_id",
            "entry__reverses_id",
            "account__owner_id",
            "account__currency",
            "credit_minor",
            "debit_minor",
        )
    )
    for entry_id, reverses_id, owner_id, currency, credit_minor, debit_minor in rows:
        # A reversal swaps the sides, so credits minus debits is negative there: the sign is built in.
        original = reverses_id or entry_id
        moved[(original, owner_id)] += credit_minor - debit_minor
        currency_of[original] = currency
    credits = []
    for (entry_id, driver_id), pay_minor in moved.items():
        entry = originals[entry_id]
        metadata = entry.metadata or {}
        weekly = entry.kind == WEEKLY_FLOOR_TOP_UP
        credits.append(
            PayCredit(
                entry_id=entry.id,
                kind=entry.kind,
                driver_id=driver_id,
                currency=currency_of[entry_id],
                pay_minor=pay_minor,
                trip_id=entry.trip_id,
                worked_at=None if weekly else entry.worked_at,
                week=metadata.get("week") if weekly else None,
                week_start=date.fromisoformat(metadata["week_start"]) if weekly else None,
                engaged_s=int(metadata.get("engaged_s", 0)) if entry.kind == TRIP_FARE else 0,
            )
        )
    return credits
