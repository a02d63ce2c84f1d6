"""Trip receipts: `GET /api/v1/trips/{id}/receipt` as JSON and as PDF, built from the ledger.

The receipt's amounts are the journal's (the rider's receivable postings for the trip's fare, fees, tips
and refunds), so receipt and ledger agree to the cent; the rider of the trip and staff may read it, and
for anyone else, its driver included, the trip does not exist."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backend.errors import Unprocessable
from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry
from dispatch.money.receipts import trip_receipt
from dispatch.money.refunds import refund_post, trip_refunds
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import cancel_by_rider, in_progress_trip, tip_trip
from tests.mobile_api.builders import completed_trip, requested_trip
from tests.receipts.builders import NEW_YORK_FEES, policy_with, reference_trip, rider_receivable_net
from tests.receipts.conftest import pdf_text

pytestmark = pytest.mark.django_db


def _url(trip_id) -> str:
    return reverse("trip-receipt", kwargs={"trip_id": trip_id})


@pytest.fixture
def tipped_and_refunded(seeded_policy):
    """The reference trip (38.50), a 4.25 tip, and a 3.00 refund."""
    trip = reference_trip(policy=policy_with())
    tip_trip(trip, 425)
    refund_post(trip_id=trip.id, amount_minor=300, reason="Longer route", staff_id=StaffFactory().id)
    return trip


def test_the_receipt_itemises_the_ledger_and_adds_up_to_the_riders_postings(tipped_and_refunded):
    trip = tipped_and_refunded
    response = auth_client_for(trip.rider).get(_url(trip.id))
    assert response.status_code == 200, response.content
    receipt = response.json()
    usd = lambda amount: {"amount": amount, "currency": "USD"}  # noqa: E731

    assert receipt["trip_id"] == str(trip.id) and receipt["status"] == "completed"
    assert receipt["fare"]["total"] == usd(3850)
    lines = receipt["fare"]["lines"]
    assert [line["label"] for line in lines] == [line["label"] for line in trip.fare_breakdown["lines"]]
    assert sum(line["amount"]["amount"] for line in lines) == 3850
    assert [tip["amount"] for tip in receipt["tips"]] == [usd(425)]
    assert [(r["amount"], r["reason"]) for r in receipt["refunds"]] == [(usd(300), "Longer route")]
    assert receipt["charged"] == usd(3850 + 425)
    assert receipt["refunded"] == usd(300)
    assert receipt["total"] == usd(3850 + 425 - 300)
    # The ledger, read independently: what the rider's receivable was debited for the trip, net.
    assert receipt["total"]["amount"] == rider_receivable_net(trip.id)
    assert receipt["payment"] == {"provider": "test", "status": "pending", "card": None}
    assert receipt["distance_m"] == trip.measured_distance_m and receipt["duration_s"] == 1800
    assert receipt["pickup"] == {"lat": trip.pickup.y, "lng": trip.pickup.x}
    assert receipt["completed_at"].endswith("Z") and receipt["driver"]["first_name"]
    assert receipt["cancellation_fee"] is None and receipt["fees"] == []


def test_the_pdf_reads_back_with_the_same_amounts(tipped_and_refunded):
    trip = tipped_and_refunded
    client = auth_client_for(trip.rider)
    by_query = client.get(_url(trip.id) + "?format=pdf")
    by_accept = client.get(_url(trip.id), HTTP_ACCEPT="application/pdf")
    for response in (by_query, by_accept):
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert f"receipt-{trip.id}.pdf" in response["Content-Disposition"]
    text = pdf_text(by_query.content)
    for amount in ("38.50 USD", "4.25 USD", "3.00 USD", "42.75 USD", "39.75 USD"):
        assert amount in text, (amount, text)
    for line in trip.fare_breakdown["lines"]:
        assert line["label"] in text
    assert "Longer route" in text and str(trip.id) in text
    # Without asking for a PDF, JSON.
    assert client.get(_url(trip.id)).json()["total"]["amount"] == 3975


def test_the_riders_receipt_is_for_the_rider_and_staff_only(seeded_policy):
    trip = completed_trip()
    assert auth_client_for(trip.rider).get(_url(trip.id)).status_code == 200
    assert auth_client_for(StaffFactory()).get(_url(trip.id)).status_code == 200
    unknown = auth_client_for(RiderFactory()).get(_url(uuid.uuid4()))
    assert unknown.status_code == 404
    # The trip's own driver sees the trip, not the rider's payment record: as if it did not exist.
    for outsider in (trip.driver, RiderFactory(), DriverFactory()):
        for query in ("", "?format=pdf"):
            response = auth_client_for(outsider).get(_url(trip.id) + query)
            assert response.status_code == 404 and response["Content-Type"] == "application/json"
            assert response.json() == unknown.json()
    assert (
        auth_client_for(trip.driver).get(reverse("trip-detail", kwargs={"trip_id": trip.id})).status_code
        == 200
    )


def test_a_trip_that_charged_nothing_has_no_receipt(seeded_policy):
    trip = requested_trip()
    response = auth_client_for(trip.rider).get(_url(trip.id) + "?format=pdf")
    assert response.status_code == 409 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == {
        "code": "receipt_not_available",
        "message": "This trip has charged nothing yet, so it has no receipt.",
        "details": {"status": "requested"},
    }


def test_a_late_cancellation_has_a_receipt_for_its_fee(seeded_policy):
    policy = policy_with()
    assigned = in_progress_trip(
        rider=RiderFactory(),
        driver=DriverFactory(),
        policy_version=policy,
        status="assigned",
        assigned_at=timezone.now() - timedelta(minutes=10),
    )
    cancelled = cancel_by_rider(assigned, at=timezone.now())
    receipt = auth_client_for(cancelled.rider).get(_url(cancelled.id)).json()
    assert receipt["status"] == "cancelled"
    assert receipt["cancellation_fee"] == {"amount": 500, "currency": "USD"}
    assert receipt["fare"] == {"lines": [], "total": {"amount": 0, "currency": "USD"}}
    assert receipt["total"]["amount"] == 500 == rider_receivable_net(cancelled.id)
    assert "5.00 USD" in pdf_text(
        auth_client_for(cancelled.rider).get(_url(cancelled.id) + "?format=pdf").content
    )


def test_a_corrected_fare_shows_what_the_ledger_kept(seeded_policy):
    """A reversed fare entry nets to nothing: the receipt follows the ledger, not the trip's columns."""
    trip = reference_trip(policy=policy_with())
    fare = JournalEntry.objects.get(key=f"trip:{trip.id}:fare")
    ledger.reverse_entry(entry_id=fare.id, key=f"correction:{trip.id}", memo="fare corrected")
    receipt = trip_receipt(trip_id=trip.id)
    assert trip.fare_minor == 3850  # the trip row still says what was first charged
    assert (
        receipt.fare == 0 and receipt.fare_lines == [] and receipt.total == 0 == rider_receivable_net(trip.id)
    )


def test_pass_through_fees_are_their_own_lines_and_the_total_is_what_the_rider_paid(seeded_policy):
    trip = reference_trip(policy=policy_with(fees=NEW_YORK_FEES))
    refund_post(trip_id=trip.id, amount_minor=1000, reason="detour", staff_id=StaffFactory().id)
    client = auth_client_for(trip.rider)
    receipt = client.get(_url(trip.id)).json()
    assert receipt["fare"]["total"]["amount"] == 3850
    assert [(f["code"], f["label"], f["amount"]["amount"]) for f in receipt["fees"]] == [
        ("black_car_fund", "NY Black Car Fund", 96),
        ("sales_tax", "NY sales tax", 342),
    ]
    assert receipt["charged"]["amount"] == 4288
    assert receipt["total"]["amount"] == 3288 == rider_receivable_net(trip.id)
    text = pdf_text(client.get(_url(trip.id) + "?format=pdf").content)
    for shown in ("NY Black Car Fund", "0.96 USD", "NY sales tax", "3.42 USD", "42.88 USD", "32.88 USD"):
        assert shown in text, (shown, text)


def test_a_refund_made_at_stripe_shows_on_the_receipt_and_lowers_what_is_left_to_refund(seeded_policy):
    """backend/cards/webhooks.py posts a refund made in the Stripe dashboard as `refund:stripe:{re}` (Dr
    refunds, Cr cash_clearing: the money left the co-op's balance at Stripe, the receivable was settled)."""
    trip = reference_trip(policy=policy_with())
    ledger.post_entry(
        key="refund:stripe:re_dashboard_1",
        kind="refund",
        currency="USD",
        trip_id=trip.id,
        memo=f"Refund made at Stripe on trip {trip.id}",
        lines=[
            ledger.debit(AccountKind.REFUNDS, None, 500),
            ledger.credit(AccountKind.CASH_CLEARING, None, 500),
        ],
        metadata={"stripe_refund": "re_dashboard_1", "charge": "ch_1", "made_at_stripe": True},
    )
    receipt = trip_receipt(trip_id=trip.id)
    assert [(r.amount, r.reason) for r in receipt.refunds] == [(500, "Refunded at Stripe")]
    assert receipt.total == 3850 - 500
    refunds = trip_refunds(trip_id=trip.id)
    assert refunds.refunded == 500 and refunds.refundable == 3850 - 500
    with pytest.raises(Unprocessable) as too_much:
        refund_post(trip_id=trip.id, amount_minor=3851 - 500, reason="x", staff_id=StaffFactory().id)
    assert too_much.value.details["refundable"] == 3350
