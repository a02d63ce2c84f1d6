"""The weekly pay floor: with `driver_minimum.period = "week"`, each driver's week is topped up once.

A week runs from Monday 00:00 to the next Monday 00:00 in `settings.TIME_ZONE`. For every driver with
completed week-mode trips in a finished week, the floor over the week (`pricing.period_top_up`: each trip's
floor from its own policy version, with the rider aboard) is compared with what the trips paid
(driver_payable on their fare entries, reversals netted: backend/fares/pay.py `trip_fare_pay`), and the
shortfall is posted once under `floor:{driver_id}:{iso-week}`: Dr floor_top_ups, Cr driver_payable(driver).
The key makes the job idempotent, so the hourly beat can run it as often as it likes and it pays once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry
from backend.fares.pay import local_zone, trip_fare_pay
from backend.fares.pricing import PeriodTrip, engaged_seconds, period_top_up
from backend.fares.selectors import policy_of
from dispatch.models import Offer, OfferStatus, Trip
from dispatch.state import TripStatus

WEEK = timedelta(days=7)
# Weeks looked back at on each run, so a worker outage of up to this long still pays every week.
DEFAULT_WEEKS_BACK = 4
# A completion committed a moment after midnight may carry a completed_at just before it: wait a little.
DEFAULT_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class DriverWeek:
    driver_id: uuid.UUID
    week_start: date
    floor: int
    received: int
    top_up: int
    trip_count: int
    currency: str
    posted: bool

    @property
    def key(self) -> str:
        return week_top_up_key(self.driver_id, self.week_start)


def week_start_of(moment: datetime) -> date:
    """The Monday (local date) of the week `moment` falls in."""
    local = timezone.localtime(moment, local_zone()).date()
    return local - timedelta(days=local.weekday())


def week_bounds(week_start: date) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) local, as aware datetimes (DST-safe: built from local dates)."""
    zone = local_zone()
    return (
        datetime.combine(week_start, time(0), tzinfo=zone),
        datetime.combine(week_start + WEEK, time(0), tzinfo=zone),
    )


def iso_week_label(week_start: date) -> str:
    year, week, _ = week_start.isocalendar()
    return f"{year}-W{week:02d}"


def week_top_up_key(driver_id: uuid.UUID | str, week_start: date) -> str:
    return f"floor:{driver_id}:{iso_week_label(week_start)}"


def _week_mode_trips(week_start: date, driver_id: uuid.UUID | None = None) -> QuerySet[Trip]:
    start, end = week_bounds(week_start)
    trips = Trip.objects.filter(
        status=TripStatus.COMPLETED,
        completed_at__gte=start,
        completed_at__lt=end,
        policy_version__document__driver_minimum__period="week",
    )
    return trips.filter(driver_id=driver_id) if driver_id is not None else trips


def driver_week_compute(*, driver_id: uuid.UUID, week_start: date) -> DriverWeek | None:
    """The week's floor, what the week-mode trips paid and the top-up due (None: no week-mode trips)."""
    trips = list(_week_mode_trips(week_start, driver_id).select_related("policy_version"))
    if not trips:
        return None
    received_by_trip = trip_fare_pay(trip_ids=[trip.id for trip in trips])
    offers = _accepted_pickup_distances([trip.id for trip in trips])
    by_version: dict[int, list[PeriodTrip]] = defaultdict(list)
    policies = {}
    for trip in trips:
        policies[trip.policy_version_id] = policy_of(trip.policy_version)
        distance = trip.measured_distance_m or 0
        by_version[trip.policy_version_id].append(
            PeriodTrip(
                distance_m=distance,
                duration_s=trip.measured_duration_s or 0,
                pay=max(received_by_trip.get(trip.id, 0), 0),
                wheelchair_accessible=trip.wheelchair_accessible,
                engaged_distance_m=distance + offers.get(trip.id, 0),
                engaged_s=engaged_seconds(
                    assigned_at=trip.assigned_at, started_at=trip.started_at, completed_at=trip.completed_at
                ),
            )
        )
    # A week normally has one policy; if the board changed it mid-week each trip keeps its own floor.
    results = [period_top_up(policies[version], period) for version, period in sorted(by_version.items())]
    currencies = {result.currency for result in results}
    if len(currencies) != 1:
        raise ValueError(
            f"driver {driver_id} has week-mode trips in several currencies: {sorted(currencies)}"
        )
    floor = sum(result.floor for result in results)
    received = sum(result.received for result in results)
    return DriverWeek(
        driver_id=driver_id,
        week_start=week_start,
        floor=floor,
        received=received,
        top_up=max(floor - received, 0),
        trip_count=len(trips),
        currency=currencies.pop(),
        posted=False,
    )


def _accepted_pickup_distances(trip_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    return dict(
        Offer.objects.filter(trip_id__in=trip_ids, status=OfferStatus.ACCEPTED).values_list(
            "trip_id", "pickup_distance_m"
        )
    )


def driver_week_top_up_post(*, driver_id: uuid.UUID, week_start: date) -> DriverWeek | None:
    """Compute one driver-week and post its top-up, once (`floor:{driver_id}:{iso-week}`)."""
    key = week_top_up_key(driver_id, week_start)
    if JournalEntry.objects.filter(key=key).exists():
        return None
    week = driver_week_compute(driver_id=driver_id, week_start=week_start)
    if week is None or week.top_up == 0:
        return week
    start, end = week_bounds(week_start)
    with transaction.atomic():
        _, created = ledger.post_entry(
            key=key,
            kind="weekly_floor_top_up",
            currency=week.currency,
            memo=f"Weekly pay floor {iso_week_label(week_start)} for driver {driver_id}",
            lines=[
                debit(AccountKind.FLOOR_TOP_UPS, None, week.top_up),
                credit(AccountKind.DRIVER_PAYABLE, driver_id, week.top_up),
            ],
            metadata={
                "driver_id": str(driver_id),
                "week": iso_week_label(week_start),
                "week_start": week_start.isoformat(),
                "week_end": (week_start + timedelta(days=6)).isoformat(),
                "starts_at": start.isoformat(),
                "ends_at": end.isoformat(),
                "floor": week.floor,
                "received": week.received,
                "trip_count": week.trip_count,
            },
        )
    return DriverWeek(**{**week.__dict__, "posted": created})


def weekly_top_ups_post(
    *, now: datetime | None = None, weeks_back: int = DEFAULT_WEEKS_BACK, grace: timedelta = DEFAULT_GRACE
) -> list[DriverWeek]:
    """Post the top-up of every driver-week that has finished (at least `grace` ago) in the last
    `weeks_back` weeks and not been topped up yet. Returns the driver-weeks that were posted now."""
    moment = (now or timezone.now()) - grace
    current = week_start_of(moment)
    posted: list[DriverWeek] = []
    for weeks_ago in range(weeks_back, 0, -1):
        week_start = current - WEEK * weeks_ago
        drivers = _week_mode_trips(week_start).values_list("driver_id", flat=True).distinct()
        for driver_id in sorted(drivers, key=str):
            week = driver_week_top_up_post(driver_id=driver_id, week_start=week_start)
            if week is not None and week.posted:
                posted.append(week)
    return posted
