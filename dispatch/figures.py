"""The co-op's public fairness figures for one local calendar month (docs/figures.md).

`coop_figures(month=...)` is the JSON body of `GET /api/v1/coop/figures?month=YYYY-MM` and what the members'
portal shows; `figures_months()` lists the months there is something to show. A month is the local calendar
month of `settings.TIME_ZONE` (backend/fares/pay.py `local_month_bounds`). Every figure is an aggregate:
no driver is named, and a figure computed over fewer than `ROCHDALE_FIGURES_MIN_DRIVERS` drivers is
withheld (null, and named in `suppressed`), so that no driver of a small month can be picked out of it.

Where each figure comes from:
- trips completed and the drivers who drove them: the trips completed in the month (`completed_at`);
- commission kept and floor top-ups paid: the ledger, by backend/fares/pay.py's periods (fare and
  cancellation entries by when the work ended, weekly top-ups by the week's Sunday), reversals netted;
- the share of trips whose pay was over the floor: those trips' own pay against their own floor;
- the Gini of hourly earnings among drivers with comparable online hours: online time from the presence
  sessions overlapping the month, pay from the ledger (backend/fares/pay.py, tips not included), the
  arithmetic in dispatch/matching/fairness_figures.py, which the simulator's summary uses too;
- offer share by driver decile: the offers made in the month (`Offer.created_at`), over the drivers who
  were online or offered a trip in it;
- WAV response times: the wheelchair-accessible requests made in the month, timed as the regulator's
  accessibility figures time them (dispatch/compliance/accessibility.py).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from fractions import Fraction

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Greatest, Least
from django.utils import timezone

from backend.fares.models import AccountKind, JournalEntry, Posting
from backend.fares.money import money
from backend.fares.pay import (
    CANCELLATION_FEE,
    TRIP_FARE,
    WEEKLY_FLOOR_TOP_UP,
    driver_pay_for_period,
    local_month_bounds,
    local_zone,
    month_last_day,
)
from dispatch.compliance.accessibility import ResponseTimes, accessibility_figures
from dispatch.matching.fairness_figures import DriverTime, decile_shares, hourly_earnings_gini, rounded
from dispatch.models import Offer, OfferStatus, PresenceSession, Trip
from dispatch.state import TripStatus

# The figures that are withheld when computed over fewer drivers than the minimum, in the body's order.
SUPPRESSIBLE = (
    "commission_kept",
    "floor_top_ups_paid",
    "trips_over_floor_share",
    "hourly_earnings_gini",
    "offer_share_by_decile",
    "wav_response_times",
)


def current_month(now: datetime.datetime | None = None) -> datetime.date:
    """The first day of the local month `now` (default: this moment) falls in."""
    return timezone.localtime(now or timezone.now(), local_zone()).date().replace(day=1)


def last_complete_month(now: datetime.datetime | None = None) -> datetime.date:
    """The first day of the last local month that has ended."""
    return (current_month(now) - datetime.timedelta(days=1)).replace(day=1)


def figures_months() -> list[datetime.date]:
    """The first day of every local month in which a trip was requested, newest first (the current month
    included while it runs).

    One indexed range probe per month since the first request (`requested_at` is indexed), rather than
    grouping every trip the co-op ever had by month."""
    first = Trip.objects.order_by("requested_at").values_list("requested_at", flat=True).first()
    if first is None:
        return []
    month, newest = current_month(first), current_month()
    months: list[datetime.date] = []
    while month <= newest:
        start, end = local_month_bounds(month)
        if Trip.objects.filter(requested_at__gte=start, requested_at__lt=end).exists():
            months.append(month)
        month = month_last_day(month) + datetime.timedelta(days=1)
    return months[::-1]


def coop_figures(*, month: datetime.date) -> dict[str, object]:
    """The month's figures (`month` is any day of it) as the JSON body of the figures endpoint."""
    first = month.replace(day=1)
    last = month_last_day(first)
    start, end = local_month_bounds(first)
    now = timezone.now()
    min_drivers = settings.ROCHDALE_FIGURES_MIN_DRIVERS

    trips = list(
        Trip.objects.filter(
            status=TripStatus.COMPLETED, completed_at__gte=start, completed_at__lt=end
        ).values_list("driver_id", "driver_pay_minor", "fare_breakdown__floor")
    )
    drove = {driver_id for driver_id, _, _ in trips if driver_id is not None}
    floored = [(pay, floor) for _, pay, floor in trips if pay is not None and floor is not None]
    over_floor = sum(1 for pay, floor in floored if pay > floor)
    ledger = _ledger_money(date_from=first, date_to=last, start=start, end=end)

    online = _online_seconds(start=start, end=end, now=now)
    pay = driver_pay_for_period(driver_ids=list(online), date_from=first, date_to=last)
    earnings = hourly_earnings_gini(
        [
            DriverTime(online_s=seconds, earnings_minor=pay[driver_id].pay_minor)
            for driver_id, seconds in online.items()
        ]
    )

    offers = dict(
        Offer.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("driver_id")
        .annotate(received=Count("id"))
        .values_list("driver_id", "received")
    )
    ranked = [offers.get(driver_id, 0) for driver_id in set(online) | set(offers)]
    offer_total = sum(ranked)

    wav = accessibility_figures(month=first).wav
    wav_drivers = _wav_drivers(start=start, end=end)

    enough_drove = len(drove) >= min_drivers
    enough = {
        "commission_kept": enough_drove,
        "floor_top_ups_paid": enough_drove,
        "trips_over_floor_share": enough_drove,
        "hourly_earnings_gini": earnings.drivers_included >= min_drivers,
        "offer_share_by_decile": len(ranked) >= min_drivers,
        "wav_response_times": wav_drivers >= min_drivers,
    }
    band = earnings.band
    return {
        "month": first.strftime("%Y-%m"),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "complete": end <= now,
        "min_drivers": min_drivers,
        "trips_completed": len(trips),
        "drivers_who_drove": len(drove),
        "commission_kept": money(ledger.commission_minor, ledger.currency) if enough_drove else None,
        "floor_top_ups_paid": money(ledger.floor_top_ups_minor, ledger.currency) if enough_drove else None,
        "trips_over_floor_share": rounded(Fraction(over_floor, len(floored)))
        if enough_drove and floored
        else None,
        "hourly_earnings_gini": {
            "gini": rounded(earnings.gini)
            if enough["hourly_earnings_gini"] and earnings.gini is not None
            else None,
            "band_hours": {"from": rounded(band.low_s / 3600, 1), "to": rounded(band.high_s / 3600, 1)}
            if enough["hourly_earnings_gini"] and band is not None
            else None,
            "drivers_online": earnings.drivers_online,
            "drivers_included": earnings.drivers_included,
        },
        "offer_share_by_decile": {
            "shares": [rounded(share) for share in decile_shares(ranked)]
            if enough["offer_share_by_decile"] and offer_total
            else None,
            "drivers": len(ranked),
            "offers": offer_total,
        },
        "wav_response_times": {
            "requests": wav.requests,
            "drivers": wav_drivers,
            "request_to_assignment_s": _times(wav.to_assigned, shown=enough["wav_response_times"]),
            "request_to_pickup_s": _times(wav.to_on_scene, shown=enough["wav_response_times"]),
        },
        "suppressed": [name for name in SUPPRESSIBLE if not enough[name]],
    }


def _times(times: ResponseTimes, *, shown: bool) -> dict[str, object]:
    return {
        "count": times.count,
        "median": times.median_s if shown else None,
        "p90": times.p90_s if shown else None,
    }


@dataclass(frozen=True, slots=True)
class _LedgerMonth:
    currency: str
    commission_minor: int
    floor_top_ups_minor: int


def _ledger_money(
    *, date_from: datetime.date, date_to: datetime.date, start: datetime.datetime, end: datetime.datetime
) -> _LedgerMonth:
    """What the co-op kept (coop_revenue on fare and cancellation entries) and what the floor added to
    drivers' pay (each non-reversed fare entry's `floor_top_up`, pay over the driver's share, plus the weekly
    top-ups' credits), for the month's work. The entries are the periods of backend/fares/pay.py
    `driver_pay_credits`: the same filter, without the restriction to some drivers."""
    worked_at = Coalesce(Cast(KT("metadata__worked_at"), DateTimeField()), F("created_at"))
    entries = JournalEntry.objects.annotate(worked_at=worked_at).filter(
        Q(kind__in=(TRIP_FARE, CANCELLATION_FEE), worked_at__gte=start, worked_at__lt=end)
        | Q(
            kind=WEEKLY_FLOOR_TOP_UP,
            metadata__week_end__gte=date_from.isoformat(),
            metadata__week_end__lte=date_to.isoformat(),
        )
    )
    entry_ids = entries.values("id")
    moved = (
        Posting.objects.filter(Q(entry_id__in=entry_ids) | Q(entry__reverses_id__in=entry_ids))
        .filter(
            Q(account__kind=AccountKind.COOP_REVENUE)
            | Q(account__kind=AccountKind.FLOOR_TOP_UPS, entry__kind=WEEKLY_FLOOR_TOP_UP)
            | Q(account__kind=AccountKind.FLOOR_TOP_UPS, entry__reverses__kind=WEEKLY_FLOOR_TOP_UP)
        )
        .values("account__kind", "account__currency")
        .annotate(credits=Sum("credit_minor"), debits=Sum("debit_minor"))
    )
    currencies: set[str] = set()
    commission = weekly_top_ups = 0
    for row in moved:
        currencies.add(row["account__currency"])
        if row["account__kind"] == AccountKind.COOP_REVENUE:
            commission += row["credits"] - row["debits"]  # income grows by credits
        else:
            weekly_top_ups += row["debits"] - row["credits"]  # an expense grows by debits
    per_trip = (
        entries.filter(kind=TRIP_FARE)
        .exclude(Exists(JournalEntry.objects.filter(reverses_id=OuterRef("pk"))))
        .aggregate(top_ups=Sum(Cast(KT("metadata__floor_top_up"), IntegerField())))
    )
    if len(currencies) > 1:
        raise ValueError(f"the month's ledger holds several currencies: {sorted(currencies)}")
    return _LedgerMonth(
        currency=currencies.pop() if currencies else settings.ROCHDALE_CURRENCY,
        commission_minor=commission,
        floor_top_ups_minor=(per_trip["top_ups"] or 0) + weekly_top_ups,
    )


def _online_seconds(
    *, start: datetime.datetime, end: datetime.datetime, now: datetime.datetime
) -> dict[uuid.UUID, int]:
    """Each driver's online seconds in [start, end): their presence sessions' overlap with it, a session
    still open counted up to now (dispatch/money/earnings.py counts a driver's online time the same way)."""
    stop = min(end, max(now, start))
    overlap = ExpressionWrapper(
        Least(Coalesce("ended_at", Value(now)), Value(stop)) - Greatest("started_at", Value(start)),
        output_field=DurationField(),
    )
    rows = (
        PresenceSession.objects.filter(started_at__lt=stop)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .values("driver_id")
        .annotate(online=Sum(overlap))
        .values_list("driver_id", "online")
    )
    seconds = {driver_id: int(online.total_seconds()) for driver_id, online in rows if online is not None}
    return {driver_id: online for driver_id, online in seconds.items() if online > 0}


def _wav_drivers(*, start: datetime.datetime, end: datetime.datetime) -> int:
    """How many drivers took the month's wheelchair-accessible requests: the trip's driver, or whoever
    accepted an offer of it (a trip a driver gave back may name nobody now)."""
    requests = Trip.objects.filter(wheelchair_accessible=True, requested_at__gte=start, requested_at__lt=end)
    assigned = set(
        requests.filter(assigned_at__isnull=False, driver_id__isnull=False).values_list(
            "driver_id", flat=True
        )
    )
    accepted = set(
        Offer.objects.filter(trip__in=requests, status=OfferStatus.ACCEPTED).values_list(
            "driver_id", flat=True
        )
    )
    return len(assigned | accepted)
