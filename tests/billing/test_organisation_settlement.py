"""Settling a trip an organisation pays for (dispatch/money/settlement.py, docs/billing.md): its fare and a
late-cancellation fee go to the organisation's receivable and no card is charged; driver pay, commission,
the floor and its top-up are exactly those of the same trip paid by a rider; a tip is the rider's own; a
refund goes back to the organisation; the rider's receipt says the trip is billed to the organisation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from backend.errors import Unprocessable
from backend.fares.ledger import balance_minor, ledger_verify
from backend.fares.models import AccountKind, CapturePurpose, JournalEntry, PaymentCapture
from backend.fares.pay import driver_pay_for_period
from dispatch.models import TripPayer
from dispatch.money.payer import PAYER_RECEIVABLE_KINDS
from dispatch.money.receipt_mail import ReceiptOccasion, receipt_email
from dispatch.money.receipts import receipt_text, trip_receipt
from dispatch.money.refunds import refund_post, trip_refunds
from dispatch.selectors import trip_load
from dispatch.services.driving import trip_arrive, trip_complete, trip_start
from dispatch.services.trips import trip_cancel, trip_tip
from tests.billing.builders import assign, book, completed, organisation_with_people
from tests.factories import DriverFactory, RiderFactory, StaffFactory

pytestmark = pytest.mark.django_db


def _org_receivable(organisation) -> int:
    return balance_minor(
        kind=AccountKind.ORGANISATION_RECEIVABLE, owner_id=None, currency="USD", code=str(organisation.id)
    )


def _rider_receivable(rider) -> int:
    return balance_minor(kind=AccountKind.RIDER_RECEIVABLE, owner_id=rider.id, currency="USD")


def _lines(entry: JournalEntry) -> dict[tuple[str, str], tuple[int, int]]:
    """The entry's postings by account, the payer's receivable and the driver's account named by role."""
    found = {}
    for posting in entry.postings.select_related("account"):
        account = posting.account
        if account.kind in PAYER_RECEIVABLE_KINDS:
            key = ("payer", "")
        elif account.kind == AccountKind.DRIVER_PAYABLE:
            key = ("driver_payable", "driver")
        else:
            key = (account.kind, account.code)
        found[key] = (posting.debit_minor, posting.credit_minor)
    return found


def _drive(trip, driver):
    """Through the driving services the driver's app calls (no trail: the route's estimate is measured)."""
    assign(trip, driver, at=timezone.now())
    trip_arrive(driver_id=driver.id, trip_id=trip.id)
    trip_start(driver_id=driver.id, trip_id=trip.id)
    return trip_complete(driver_id=driver.id, trip_id=trip.id)


@pytest.mark.parametrize("slow", [False, True], ids=["fare-pays-above-floor", "floor-binds"])
def test_an_organisations_trip_pays_its_driver_exactly_as_a_riders_trip(slow):
    organisation, _, coordinator, patient = organisation_with_people()
    rider = RiderFactory()
    org_driver, rider_driver = DriverFactory(), DriverFactory()
    if slow:
        # A crawl through traffic: the per-minute floor is above the driver's share of the fare.
        at = timezone.now() - timedelta(hours=1)
        kwargs = {"at": at, "distance_m": 1500, "duration_s": 3600}
        by_org = completed(
            rider=patient, driver=org_driver, organisation=organisation, coordinator=coordinator, **kwargs
        )
        by_rider = completed(rider=rider, driver=rider_driver, **kwargs)
    else:
        now = timezone.now()
        by_org = _drive(
            book(rider=patient, organisation=organisation, coordinator=coordinator, at=now), org_driver
        )
        by_rider = _drive(book(rider=rider, at=now), rider_driver)
    by_org, by_rider = trip_load(by_org.id), trip_load(by_rider.id)
    assert by_org.payer == TripPayer.ORGANISATION and by_rider.payer == TripPayer.RIDER

    for field in ("fare_minor", "driver_pay_minor", "commission_minor"):
        assert getattr(by_org, field) == getattr(by_rider, field), field
    money_keys = ("floor", "share", "floor_top_up", "floor_applied", "total", "fees")
    assert {k: by_org.fare_breakdown[k] for k in money_keys} == {
        k: by_rider.fare_breakdown[k] for k in money_keys
    }
    assert by_org.fare_breakdown["floor_applied"] is slow

    org_entry = JournalEntry.objects.get(key=f"trip:{by_org.id}:fare")
    rider_entry = JournalEntry.objects.get(key=f"trip:{by_rider.id}:fare")
    # The same lines, but for whose receivable the first one debits.
    assert _lines(org_entry) == _lines(rider_entry)
    assert org_entry.metadata["payer"] == "organisation" and org_entry.metadata["organisation"] == str(
        organisation.id
    )
    for key in ("pay", "share", "floor", "floor_top_up", "fare", "total", "engaged_s"):
        assert org_entry.metadata[key] == rider_entry.metadata[key], key
    day = timezone.localdate(by_org.completed_at)
    pays = driver_pay_for_period(driver_ids=[org_driver.id, rider_driver.id], date_from=day, date_to=day)
    assert pays[org_driver.id] == pays[rider_driver.id]

    total = by_org.fare_breakdown["total"]
    assert _org_receivable(organisation) == total and _rider_receivable(patient) == 0
    assert not PaymentCapture.objects.filter(trip_id=by_org.id).exists()
    assert PaymentCapture.objects.filter(trip_id=by_rider.id, purpose=CapturePurpose.FARE).exists()
    assert ledger_verify().ok


def test_a_late_cancellation_of_an_organisations_trip_bills_its_fee_to_the_organisation():
    organisation, _, coordinator, patient = organisation_with_people()
    driver = DriverFactory()
    trip = book(rider=patient, organisation=organisation, coordinator=coordinator, at=timezone.now())
    assign(trip, driver, at=timezone.now() - timedelta(minutes=10))  # well past the free period
    cancelled = trip_cancel(trip_id=trip.id, actor_id=coordinator.id, organisation_id=organisation.id)
    assert cancelled.cancelled_by == "rider" and cancelled.cancellation_fee_minor == 500
    entry = JournalEntry.objects.get(key=f"trip:{trip.id}:cancellation")
    assert _org_receivable(organisation) == 500 and _rider_receivable(patient) == 0
    assert entry.metadata["driver"] + entry.metadata["coop"] == 500
    assert (
        balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD")
        == entry.metadata["driver"]
    )
    assert not PaymentCapture.objects.filter(trip_id=trip.id).exists()


def test_a_tip_is_the_riders_own_and_a_refund_goes_back_to_the_organisation(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    organisation, _, coordinator, patient = organisation_with_people()
    patient.email = "patient@example.org"
    patient.save(update_fields=["email"])
    trip = completed(
        rider=patient,
        organisation=organisation,
        coordinator=coordinator,
        at=timezone.now() - timedelta(minutes=5),
    )
    total = trip.fare_breakdown["total"]

    trip_tip(trip_id=trip.id, rider_id=patient.id, amount_minor=200, currency="USD")
    assert _rider_receivable(patient) == 200 and _org_receivable(organisation) == total
    assert list(PaymentCapture.objects.filter(trip_id=trip.id).values_list("purpose", flat=True)) == [
        CapturePurpose.TIP
    ]

    staff = StaffFactory()
    refund = refund_post(trip_id=trip.id, amount_minor=400, reason="Detour", staff_id=staff.id)
    assert _org_receivable(organisation) == total - 400
    assert refund.metadata["organisation"] == str(organisation.id)
    # Nothing goes back through a card: no refund payout, and the tip's capture is untouched.
    assert not PaymentCapture.objects.filter(trip_id=trip.id, purpose=CapturePurpose.REFUND).exists()
    assert trip_refunds(trip_id=trip.id).refundable == total - 400
    with pytest.raises(Unprocessable) as too_much:
        refund_post(trip_id=trip.id, amount_minor=total - 400 + 1, reason="Too much", staff_id=staff.id)
    assert too_much.value.code == "refund_exceeds_charge"

    receipt = trip_receipt(trip_id=trip.id)
    assert receipt.billed_to == organisation.name and receipt.payment is None
    assert (
        receipt.fare + receipt.fees_total == total and receipt.tips_total == 200 and receipt.refunded == 400
    )
    text = receipt_text(receipt)
    assert (
        f"Billed to: {organisation.name}" in text and "no card was charged" in text and "Paid by" not in text
    )
    message = receipt_email(receipt, occasion=ReceiptOccasion.COMPLETED)
    assert message is not None and message.subject.endswith(f"billed to {organisation.name}")
    assert ledger_verify().ok
    assert mail.outbox == []  # rendering only; the task sends it after commit
