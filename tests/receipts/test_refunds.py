"""Staff refunds: `POST/GET /api/v1/staff/trips/{id}/refunds` over dispatch/money/refunds.py `refund_post`.

Full and partial refunds are new `refund` entries (never edits), bounded by what the trip charged; the
driver keeps the pay unless the board's policy says `refunds.driver_pay: shared_above_floor`, and then
never below the trip's floor; staff only (403 `staff_only` before the id is looked at)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry, PaymentCapture
from dispatch.money.refunds import refund_post, trip_refunds
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import assert_ledger_consistent
from tests.receipts.builders import (
    NEW_YORK_FEES,
    policy_with,
    postings_of,
    reference_trip,
    rider_receivable_net,
)

pytestmark = pytest.mark.django_db


def _url(trip_id) -> str:
    return reverse("staff-trip-refunds", kwargs={"trip_id": trip_id})


def _refund(client, trip, amount, reason="Driver took a longer route", **headers):
    body = {"amount": {"amount": amount, "currency": trip.currency}, "reason": reason}
    return client.post(_url(trip.id), body, format="json", **headers)


def _driver_payable(trip) -> int:
    return ledger.balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=trip.driver_id, currency="USD")


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def staff_api(staff):
    return auth_client_for(staff)


@pytest.fixture
def kept_trip(seeded_policy):
    return reference_trip(policy=policy_with(driver_pay="kept"))


@pytest.fixture
def shared_trip(seeded_policy):
    return reference_trip(policy=policy_with(driver_pay="shared_above_floor"))


def test_a_partial_then_the_rest_refunds_the_whole_charge_and_the_driver_keeps_the_pay(kept_trip, staff_api):
    trip = kept_trip
    assert trip.fare_minor == 3850 and trip.driver_pay_minor == 3273  # docs/fares.md's reference trip
    pay_before = _driver_payable(trip)

    first = _refund(staff_api, trip, 300)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["amount"] == {"amount": 300, "currency": "USD"}
    assert body["driver_part"] == {"amount": 0, "currency": "USD"}
    assert body["reason"] == "Driver took a longer route"
    entry = JournalEntry.objects.get(id=body["id"])
    assert entry.kind == "refund" and entry.key == f"refund:{trip.id}:1"
    assert postings_of(entry) == {
        ("refunds", ""): (300, 0),
        ("rider_receivable", str(trip.rider_id)): (0, 300),
    }

    rest = _refund(staff_api, trip, 3550, reason="Rider was overcharged")
    assert rest.status_code == 201, rest.content
    assert rider_receivable_net(trip.id) == 0  # charged 38.50, given back 38.50
    assert _driver_payable(trip) == pay_before  # the co-op bore it all
    # Before the capture ran, refunds reduce what is collected; refunded in full, nothing is.
    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    assert capture.amount_minor == 0 and capture.status == "voided"

    listing = staff_api.get(_url(trip.id))
    assert listing.status_code == 200
    page = listing.json()
    assert [r["amount"]["amount"] for r in page["results"]] == [3550, 300]  # newest first
    assert page["refunded"] == {"amount": 3850, "currency": "USD"}
    assert page["refundable"] == {"amount": 0, "currency": "USD"}
    assert all(r["payout_status"] is None for r in page["results"])
    assert_ledger_consistent()


def test_more_than_is_left_is_refused_with_what_may_still_be_refunded(kept_trip, staff_api):
    assert _refund(staff_api, kept_trip, 1000).status_code == 201
    too_much = _refund(staff_api, kept_trip, 2851)
    assert too_much.status_code == 422
    error = too_much.json()["error"]
    assert error["code"] == "refund_exceeds_charge"
    assert error["details"] == {"refundable": 2850, "currency": "USD"}
    assert JournalEntry.objects.filter(trip_id=kept_trip.id, kind="refund").count() == 1


def test_bad_input_and_a_foreign_currency_are_refused(kept_trip, staff_api):
    missing = staff_api.post(
        _url(kept_trip.id), {"amount": {"amount": 100, "currency": "USD"}}, format="json"
    )
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["details"]
    blank = _refund(staff_api, kept_trip, 100, reason="   ")
    assert blank.status_code == 400 and "reason" in blank.json()["error"]["details"]
    zero = _refund(staff_api, kept_trip, 0)
    assert zero.status_code == 400 and "amount" in zero.json()["error"]["details"]
    euros = staff_api.post(
        _url(kept_trip.id), {"amount": {"amount": 100, "currency": "EUR"}, "reason": "x"}, format="json"
    )
    assert euros.status_code == 422 and euros.json()["error"]["code"] == "currency_mismatch"
    assert not JournalEntry.objects.filter(trip_id=kept_trip.id, kind="refund").exists()


def test_an_unknown_trip_is_404_for_staff(staff_api):
    unknown = uuid.uuid4()
    response = staff_api.post(
        _url(unknown), {"amount": {"amount": 100, "currency": "USD"}, "reason": "x"}, format="json"
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "trip_not_found"
    listing = staff_api.get(_url(unknown))
    assert listing.status_code == 404 and listing.json()["error"]["code"] == "trip_not_found"


def test_only_staff_refund_and_everyone_else_is_refused_before_the_id_is_looked_at(kept_trip):
    trip = kept_trip
    for user in (trip.rider, trip.driver, RiderFactory(), DriverFactory()):
        client = auth_client_for(user)
        for trip_id in (trip.id, uuid.uuid4()):
            refused = client.post(
                _url(trip_id), {"amount": {"amount": 100, "currency": "USD"}, "reason": "x"}, format="json"
            )
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "staff_only"
            assert client.get(_url(trip_id)).json()["error"]["code"] == "staff_only"
    # The service holds the same line for callers that are not the API (the admin, a shell).
    with pytest.raises(Exception) as refused:
        refund_post(trip_id=trip.id, amount_minor=100, reason="x", staff_id=trip.rider_id)
    assert refused.value.code == "staff_only"
    assert not JournalEntry.objects.filter(trip_id=trip.id, kind="refund").exists()


def test_an_idempotency_key_refunds_once_and_replays_the_answer(kept_trip, staff_api):
    key = {"HTTP_IDEMPOTENCY_KEY": "refund-detour-1"}
    first = _refund(staff_api, kept_trip, 250, **key)
    again = _refund(staff_api, kept_trip, 250, **key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert JournalEntry.objects.filter(trip_id=kept_trip.id, kind="refund").count() == 1
    other_body = _refund(staff_api, kept_trip, 260, **key)
    assert other_body.status_code == 422 and other_body.json()["error"]["code"] == "idempotency_key_reused"
    # Without a key, a second refund is a second refund.
    assert _refund(staff_api, kept_trip, 250).status_code == 201
    assert JournalEntry.objects.filter(trip_id=kept_trip.id, kind="refund").count() == 2


def test_shared_above_floor_takes_the_drivers_share_but_never_below_the_trip_floor(shared_trip, staff):
    trip = shared_trip
    floor = trip.fare_breakdown["floor"]
    assert (trip.fare_minor, trip.driver_pay_minor, floor) == (3850, 3273, 3046)
    pay_before = _driver_payable(trip)

    # 10.00 of the fare: the driver's share of it is 10.00 x 3273 / 3850 = 8.50, more than the 2.27 of pay
    # above the floor, so the driver bears 2.27 and the co-op 7.73.
    entry = refund_post(trip_id=trip.id, amount_minor=1000, reason="late pickup", staff_id=staff.id)
    assert postings_of(entry) == {
        ("refunds", ""): (773, 0),
        ("driver_payable", str(trip.driver_id)): (227, 0),
        ("rider_receivable", str(trip.rider_id)): (0, 1000),
    }
    assert entry.metadata["driver_part"] == 227 and entry.metadata["fare_part"] == 1000
    assert _driver_payable(trip) == pay_before - 227 == trip.driver_pay_minor - 227
    assert trip.driver_pay_minor - 227 == floor  # down to the floor, not below

    # Once at the floor, the rest of the fare comes back from the co-op alone.
    rest = refund_post(trip_id=trip.id, amount_minor=2850, reason="whole fare", staff_id=staff.id)
    assert postings_of(rest)[("refunds", "")] == (2850, 0)
    assert ("driver_payable", str(trip.driver_id)) not in postings_of(rest)
    refunds = trip_refunds(trip_id=trip.id)
    assert [r.driver_part for r in refunds.refunds] == [0, 227]
    assert refunds.refunded == 3850 and refunds.refundable == 0
    assert_ledger_consistent()


def test_shared_above_floor_takes_the_proportional_share_of_a_small_refund(shared_trip, staff):
    entry = refund_post(trip_id=shared_trip.id, amount_minor=100, reason="dirty car", staff_id=staff.id)
    # 1.00 x 3273 / 3850 = 0.8501..., rounded once: 0.85 from the driver, 0.15 from the co-op.
    assert postings_of(entry)[("driver_payable", str(shared_trip.driver_id))] == (85, 0)
    assert postings_of(entry)[("refunds", "")] == (15, 0)


def test_a_trip_paid_at_its_floor_keeps_all_of_it_under_shared_above_floor(seeded_policy, staff):
    # 3 km in an hour of traffic under the contract's example rates: the floor beats 85 % of the fare.
    policy = policy_with(driver_pay="shared_above_floor", floor_binds=True)
    trip = reference_trip(policy=policy, distance_m=3000, duration_s=3600)
    assert trip.fare_breakdown["floor_applied"] and trip.driver_pay_minor == trip.fare_breakdown["floor"]
    entry = refund_post(trip_id=trip.id, amount_minor=trip.fare_minor, reason="all", staff_id=staff.id)
    assert ("driver_payable", str(trip.driver_id)) not in postings_of(entry)
    assert entry.metadata["driver_part"] == 0


def test_a_refund_gives_back_fees_in_step_with_the_fare_and_a_full_one_all_of_them(seeded_policy, staff):
    trip = reference_trip(policy=policy_with(fees=NEW_YORK_FEES))
    assert trip.fare_minor == 3850 and rider_receivable_net(trip.id) == 4288  # fare + 96 + 342

    # 10.00 of 42.88, in proportion: fare 897.85, Black Car Fund 22.39, sales tax 79.76 exactly; the two
    # units the floors leave go to the largest remainders (the fare's .85 and the tax's .76).
    partial = refund_post(trip_id=trip.id, amount_minor=1000, reason="detour", staff_id=staff.id)
    assert postings_of(partial) == {
        ("refunds", ""): (898, 0),
        ("pass_through", "black_car_fund"): (22, 0),
        ("pass_through", "sales_tax"): (80, 0),
        ("rider_receivable", str(trip.rider_id)): (0, 1000),
    }
    assert partial.metadata["fees"] == [
        {"code": "black_car_fund", "label": "NY Black Car Fund", "amount": 22},
        {"code": "sales_tax", "label": "NY sales tax", "amount": 80},
    ]

    # The rest gives back exactly what is left of each part: nothing is owed on for a refunded ride.
    refund_post(trip_id=trip.id, amount_minor=3288, reason="whole ride", staff_id=staff.id)
    for code in ("black_car_fund", "sales_tax"):
        assert (
            ledger.balance_minor(kind=AccountKind.PASS_THROUGH, owner_id=None, currency="USD", code=code) == 0
        )
    assert rider_receivable_net(trip.id) == 0
    refunds = trip_refunds(trip_id=trip.id)
    assert [r.fee_part for r in refunds.refunds] == [74 + 262, 22 + 80]
    assert refunds.refundable == 0
    assert_ledger_consistent()


def test_the_drivers_part_is_taken_from_the_fare_part_only(seeded_policy, staff):
    trip = reference_trip(policy=policy_with(driver_pay="shared_above_floor", fees=NEW_YORK_FEES))
    entry = refund_post(trip_id=trip.id, amount_minor=200, reason="detour", staff_id=staff.id)
    # 2.00 of 42.88: the fare's part is 179.57 -> 180 (largest remainder), the fees 4 and 16; the driver
    # bears 180 x 3273 / 3850 = 153.02 -> 153 of the fare's part, the co-op the other 27.
    postings = postings_of(entry)
    assert entry.metadata["fare_part"] == 180
    assert postings[("driver_payable", str(trip.driver_id))] == (153, 0)
    assert postings[("refunds", "")] == (27, 0)
    assert postings[("pass_through", "black_car_fund")][0] + postings[("pass_through", "sales_tax")][0] == 20
