"""Drivers who earned this week, through the real settlement (tests/fares/builders.py), and bank details."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dispatch.models import DriverBankAccount, DriverStripeAccount
from dispatch.money.payouts import bank_account_add
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import complete_trip, in_progress_trip, tip_trip
from tests.payouts.conftest import DRIVER_BANK_ROUTING

SHORT = (1609, 240)  # about a mile, 4 minutes: the minimum fare


def earn(policy, driver, *, trips: int = 1, tip_minor: int = 0, distance_duration=(8047, 900)):
    """`trips` completed trips for the driver, just now, the last one tipped `tip_minor`."""
    distance_m, duration_s = distance_duration
    done = []
    for n in range(trips):
        at = timezone.now() - timedelta(seconds=30 - n)
        trip = in_progress_trip(
            rider=RiderFactory(),
            driver=driver,
            policy_version=policy,
            estimated_distance_m=distance_m,
            estimated_duration_s=duration_s,
            started_at=at - timedelta(seconds=duration_s),
        )
        done.append(complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=at))
    if tip_minor:
        tip_trip(done[-1], tip_minor)
    return done


def bank_account(
    driver, *, number: str = "000123456789", routing: str = DRIVER_BANK_ROUTING
) -> DriverBankAccount:
    return bank_account_add(
        driver_id=driver.id,
        holder_name=driver.name,
        routing_number=routing,
        account_number=number,
        account_type="checking",
        created_by_id=None,
    )


def stripe_account(driver, account_id: str = "acct_1DriverTest") -> DriverStripeAccount:
    return DriverStripeAccount.objects.create(driver=driver, account_id=account_id)


def driver_with_bank(**kwargs):
    driver = DriverFactory(**kwargs)
    bank_account(driver)
    return driver
