"""Access cases for recurring rides (mobile_api/urls_recurring.py): a series is seen and changed by its rider
and by the coordinators and admins of the organisation that booked it; for anyone else (another rider, a
driver) it answers the 404 of an id that does not exist."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from tests.access_cases import AccessCase, Arranged, register
from tests.factories import RiderFactory


def _tomorrow():
    return timezone.now().astimezone(ZoneInfo(settings.TIME_ZONE)).date() + timedelta(days=1)


def _own_series(body=None) -> Arranged:
    from tests.recurring.builders import series_row

    rider = RiderFactory()
    series = series_row(rider, starts_on=_tomorrow())
    return Arranged(owner=rider, kwargs={"series_id": series.id}, body=body)


def _clinic_series() -> Arranged:
    from tests.recurring.builders import guest_of, member_of, organisation, series_row

    clinic = organisation()
    coordinator = member_of(clinic)
    series = series_row(guest_of(clinic), starts_on=_tomorrow(), organisation=clinic, booked_by=coordinator)
    return Arranged(owner=coordinator, kwargs={"series_id": series.id})


def _skip() -> Arranged:
    return _own_series(body={"date": (_tomorrow() + timedelta(days=1)).isoformat()})


register(
    "recurring-ride-detail",
    AccessCase(_own_series, "get", 200, label="rider"),
    AccessCase(_clinic_series, "get", 200, label="coordinator"),
)
register("recurring-ride-occurrences", AccessCase(_own_series, "get", 200))
register("recurring-ride-skip", AccessCase(_skip, "post", 200))
register(
    "recurring-ride-cancel",
    AccessCase(_own_series, "post", 200, label="rider"),
    AccessCase(_clinic_series, "post", 200, label="coordinator"),
)
