"""The month's accessibility figures: wheelchair-accessible (WAV) requests and how fast they were served,
against standard requests.

A request belongs to the month it was made in (local dates in `TIME_ZONE`). For WAV requests and standard
ones apart: how many were made, matched (a driver assigned), matched in a wheelchair-accessible vehicle,
completed, cancelled and left unfulfilled; and two response times, from the request to the assignment and
from the request to the driver's arrival on scene, as the median and the 90th percentile (linear
interpolation between closest ranks, as numpy's default and the simulator's metrics), in seconds, over
the requests that reached that step. Read from the trip rows, never from the app's word.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import F

from backend.fares.pay import local_month_bounds, month_last_day
from dispatch.models import Trip
from dispatch.simulation.metrics import percentile
from dispatch.state import TripStatus


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """Seconds from the request to a step, over the `count` requests that reached it (None when none)."""

    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> ResponseTimes:
        if not seconds:
            return cls(count=0, median_s=None, p90_s=None)
        return cls(
            count=len(seconds),
            median_s=round(percentile(seconds, 50), 1),
            p90_s=round(percentile(seconds, 90), 1),
        )


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    requests: int
    matched: int
    matched_in_wav: int
    completed: int
    cancelled: int
    unfulfilled: int
    to_assigned: ResponseTimes
    to_on_scene: ResponseTimes


@dataclass(frozen=True, slots=True)
class AccessibilityFigures:
    month: date
    time_zone: str
    wav: ServiceFigures
    standard: ServiceFigures

    def as_document(self) -> dict[str, object]:
        return {
            "month": self.month.strftime("%Y-%m"),
            "from": self.month.isoformat(),
            "to": month_last_day(self.month).isoformat(),
            "time_zone": self.time_zone,
            "wav": asdict(self.wav),
            "standard": asdict(self.standard),
        }


def accessibility_figures(*, month: date) -> AccessibilityFigures:
    """WAV and standard figures for the requests made in `month` (its first day)."""
    start, end = local_month_bounds(month)
    rows = Trip.objects.filter(requested_at__gte=start, requested_at__lt=end).values(
        "wheelchair_accessible",
        "status",
        "requested_at",
        "assigned_at",
        "arrived_at",
        wav_vehicle=F("vehicle__wheelchair_accessible"),
    )
    grouped: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for row in rows:
        grouped[bool(row["wheelchair_accessible"])].append(row)
    return AccessibilityFigures(
        month=month,
        time_zone=settings.TIME_ZONE,
        wav=_figures(grouped[True]),
        standard=_figures(grouped[False]),
    )


def _figures(requests: list[dict[str, Any]]) -> ServiceFigures:
    assigned = [r for r in requests if r["assigned_at"] is not None]
    on_scene = [r for r in requests if r["arrived_at"] is not None]
    return ServiceFigures(
        requests=len(requests),
        matched=len(assigned),
        matched_in_wav=sum(1 for r in assigned if r["wav_vehicle"]),
        completed=sum(1 for r in requests if r["status"] == TripStatus.COMPLETED),
        cancelled=sum(1 for r in requests if r["status"] == TripStatus.CANCELLED),
        unfulfilled=sum(1 for r in requests if r["status"] == TripStatus.UNFULFILLED),
        to_assigned=ResponseTimes.of(
            [(r["assigned_at"] - r["requested_at"]).total_seconds() for r in assigned]
        ),
        to_on_scene=ResponseTimes.of(
            [(r["arrived_at"] - r["requested_at"]).total_seconds() for r in on_scene]
        ),
    )
