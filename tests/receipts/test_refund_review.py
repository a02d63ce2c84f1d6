"""Review findings on staff refunds (issue 14): keys that must not collide, and the driver's part of many
small refunds rounded once over all of them, not once per refund."""

from __future__ import annotations

import pytest

from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry
from dispatch.money.refunds import refund_post, trip_refunds
from tests.factories import StaffFactory
from tests.fares.builders import assert_ledger_consistent
from tests.receipts.builders import policy_with, reference_trip

pytestmark = pytest.mark.django_db


def _driver_payable(trip) -> int:
    return ledger.balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=trip.driver_id, currency="USD")


def test_a_refund_without_a_key_after_one_whose_key_is_a_number_is_a_refund_of_its_own(seeded_policy):
    trip = reference_trip(policy=policy_with(driver_pay="kept"))
    staff = StaffFactory()
    keyed = refund_post(
        trip_id=trip.id, amount_minor=200, reason="detour", staff_id=staff.id, idempotency_key="2"
    )
    first = refund_post(trip_id=trip.id, amount_minor=300, reason="late", staff_id=staff.id)
    # The second refund would be numbered refund:{trip}:2, the key the keyed one took: it must be recorded
    # under a key of its own, not answered with the keyed refund (nor refused as a ledger conflict).
    second = refund_post(trip_id=trip.id, amount_minor=200, reason="dirty car", staff_id=staff.id)
    assert len({keyed.id, first.id, second.id}) == 3
    assert JournalEntry.objects.filter(trip_id=trip.id, kind="refund").count() == 3
    assert trip_refunds(trip_id=trip.id).refunded == 700
    assert_ledger_consistent()


def test_many_small_refunds_take_the_drivers_share_of_their_sum_rounded_once(seeded_policy):
    trip = reference_trip(policy=policy_with(driver_pay="shared_above_floor"))
    staff = StaffFactory()
    assert (trip.fare_minor, trip.driver_pay_minor) == (3850, 3273)  # 227 of pay above the 3046 floor
    pay_before = _driver_payable(trip)
    for _ in range(10):
        refund_post(trip_id=trip.id, amount_minor=1, reason="a cent back", staff_id=staff.id)
    # 0.10 of the fare refunded: the driver's share of it is 0.10 x 3273 / 3850 = 0.085 -> 0.09, not
    # ten cents (each cent's 0.85 rounded up on its own): the rider's refunds were all the driver's.
    assert pay_before - _driver_payable(trip) == 9
    assert sum(r.driver_part for r in trip_refunds(trip_id=trip.id).refunds) == 9
    assert_ledger_consistent()
