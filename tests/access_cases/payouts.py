"""Access case for a driver's payout (mobile_api/urls_payouts.py, `driver-payout-detail`): only its driver
sees it; a rider and another driver get the 404 of an id that does not exist."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from tests.access_cases import AccessCase, Arranged, register
from tests.factories import DriverFactory


def _payout() -> Arranged:
    from dispatch.models import Payout

    driver = DriverFactory()
    monday = date(2026, 11, 16)
    payout = Payout.objects.create(
        driver=driver,
        week_start=monday,
        cut_off=timezone.now() - timedelta(days=7),
        method="ach",
        amount_minor=1234,
        payable_minor=1234,
        tips_minor=0,
        currency="USD",
        destination="****6789",
        idempotency_key=f"rochdale:payout:access:{driver.id}",
    )
    return Arranged(owner=driver, kwargs={"payout_id": payout.id})


register("driver-payout-detail", AccessCase(_payout))
