"""A trip an organisation pays for counts like any other in what drivers read: its fare is on the driver's
earnings line (it is posted to the organisation's receivable, which the earnings once did not read)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.money.earnings import driver_earnings
from tests.billing.builders import completed, organisation_with_people
from tests.factories import DriverFactory, RiderFactory

pytestmark = pytest.mark.django_db


def test_an_organisations_trip_shows_its_fare_on_the_drivers_earnings_like_a_riders_trip():
    organisation, _, coordinator, member = organisation_with_people()
    driver = DriverFactory()
    at = timezone.now() - timedelta(hours=2)
    billed = completed(rider=member, driver=driver, organisation=organisation, coordinator=coordinator, at=at)
    own = completed(rider=RiderFactory(), driver=driver, at=at + timedelta(minutes=50))
    day = timezone.localtime(at).date()
    earnings = driver_earnings(
        driver_id=driver.id, date_from=day - timedelta(days=1), date_to=day + timedelta(days=1)
    )
    lines = {line.trip_id: line for line in earnings.lines}
    assert lines[billed.id].fare == billed.fare_minor > 0
    assert lines[own.id].fare == own.fare_minor > 0
    assert lines[billed.id].pay == billed.driver_pay_minor and lines[own.id].pay == own.driver_pay_minor


def test_the_riders_receipt_of_an_organisations_trip_names_who_it_is_billed_to():
    from tests.conftest import auth_client_for

    organisation, _, coordinator, member = organisation_with_people()
    billed = completed(rider=member, organisation=organisation, coordinator=coordinator, at=timezone.now())
    receipt = auth_client_for(member).get(f"/api/v1/trips/{billed.id}/receipt").json()
    assert receipt["billed_to"] == organisation.name and receipt["payment"] is None
    own = completed(rider=RiderFactory(), at=timezone.now())
    assert auth_client_for(own.rider).get(f"/api/v1/trips/{own.id}/receipt").json()["billed_to"] is None


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555", "'+1 555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("Maria Lopez", "Maria Lopez"),
        ("CC-12", "CC-12"),
    ],
)
def test_free_text_in_the_invoice_csv_is_never_a_formula(text, cell):
    """A rider names themself; a coordinator types the reference: neither may run in the billing clerk's
    spreadsheet."""
    from dispatch.money.invoices import spreadsheet_text

    assert spreadsheet_text(text) == cell
