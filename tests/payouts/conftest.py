"""Fixtures for the payout tests: a fare policy, drivers with trips this week, bank details, the ACH
settings of a co-op, a fake Stripe on a free port, and a clock past the week's cut-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

# Real ABA routing numbers (their check digits are right): the co-op's bank, and drivers' banks.
COOP_BANK_ROUTING = "021000021"
DRIVER_BANK_ROUTING = "026009593"
OTHER_BANK_ROUTING = "011000015"

ACH_SETTINGS = {
    "destination_routing_number": COOP_BANK_ROUTING,
    "destination_name": "JPMORGAN CHASE",
    "origin_id": "1123456789",
    "origin_name": "ROCHDALE DRIVERS COOP",
    "company_name": "ROCHDALE COOP",
    "company_id": "1123456789",
    "odfi": "02100002",
    "entry_description": "PAYOUT",
}


@pytest.fixture
def seeded_policy(db):
    from tests.fares.builders import ensure_seed_policy

    return ensure_seed_policy()


@pytest.fixture
def this_week():
    """This week's Monday, and a moment just after its cut-off (payouts are run for finished weeks; the
    trips are made now, so the ledger's own clock puts them inside the week)."""
    from dispatch.money.payouts import week_cut_off
    from dispatch.money.weekly import week_start_of

    monday = week_start_of(timezone.now() - timedelta(minutes=2))
    return monday, week_cut_off(monday) + timedelta(hours=1)


@pytest.fixture
def payout_files(tmp_path):
    with override_settings(ROCHDALE_ACH=ACH_SETTINGS, ROCHDALE_PAYOUT_FILES_DIR=tmp_path / "payouts"):
        yield tmp_path / "payouts"


@pytest.fixture
def fake_stripe():
    from tests.payouts.fake_stripe import FakeStripe, serve

    fake = FakeStripe()
    server = serve(fake)
    with override_settings(
        STRIPE_API_KEY="sk_test_payouts", STRIPE_API_BASE=fake.url, ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S=0.5
    ):
        yield fake
    server.shutdown()
    server.server_close()
