"""The co-op's public fairness figures for one local calendar month (docs/figures.md).

Interface fixed for the members' portal and `GET /api/v1/coop/figures`; the computations follow.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models.functions import TruncMonth

from dispatch.models import Trip
from dispatch.state import TripStatus


def figures_months() -> list[datetime.date]:
    """The first day of every local month with a completed trip, newest first."""
    months = (
        Trip.objects.filter(status=TripStatus.COMPLETED, completed_at__isnull=False)
        .annotate(month=TruncMonth("completed_at"))
        .values_list("month", flat=True)
        .distinct()
        .order_by("-month")
    )
    return [month.date() if isinstance(month, datetime.datetime) else month for month in months]


def coop_figures(*, month: datetime.date) -> dict[str, object]:
    """The JSON body of the month's figures (placeholder shape; computations land next)."""
    first = month.replace(day=1)
    return {
        "month": first.strftime("%Y-%m"),
        "time_zone": settings.TIME_ZONE,
        "min_drivers": 5,
        "trips_completed": 0,
        "drivers_who_drove": 0,
        "currency": "",
        "commission_kept_minor": 0,
        "floor_top_ups_minor": 0,
        "trips_over_floor_share": None,
        "hourly_earnings_gini": {"gini": None, "band_hours": None, "drivers_included": 0, "suppressed": True},
        "offer_share_by_decile": {"shares": None, "drivers": 0, "offers": 0, "suppressed": True},
        "wav_response": {
            "requests": 0,
            "request_to_assignment_s": {"median": None, "p90": None, "count": 0},
            "request_to_pickup_s": {"median": None, "p90": None, "count": 0},
            "suppressed": True,
        },
    }
