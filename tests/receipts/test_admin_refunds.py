"""The admin's "Refund selected trips" action: an amount (or all that is left) and a reason, staff only,
through the same `refund_post` as the API."""

from __future__ import annotations

import pytest

from backend.fares.models import JournalEntry
from dispatch.money.refunds import trip_refunds
from tests.factories import RiderFactory, StaffFactory
from tests.receipts.builders import policy_with, reference_trip

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_browser(client):
    staff = StaffFactory()
    client.force_login(staff)
    client.staff = staff
    return client


@pytest.fixture
def two_trips(seeded_policy):
    policy = policy_with()
    return reference_trip(policy=policy), reference_trip(policy=policy)


def _action(browser, trips, **form):
    return browser.post(
        "/admin/dispatch/trip/",
        {"action": "refund_trips", "_selected_action": [str(t.id) for t in trips], **form},
    )


def test_the_action_asks_for_an_amount_and_a_reason_then_refunds_each_trip(staff_browser, two_trips):
    first, second = two_trips
    page = _action(staff_browser, two_trips)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="amount"' in html and 'name="reason"' in html and 'name="everything_left"' in html
    assert "$38.50 left to refund" in html
    assert not JournalEntry.objects.filter(kind="refund").exists()  # nothing before confirming

    done = _action(staff_browser, two_trips, apply="1", amount="2.50", reason="Storm night goodwill")
    assert done.status_code == 302
    for trip in (first, second):
        (refund,) = trip_refunds(trip_id=trip.id).refunds
        assert refund.amount == 250 and refund.reason == "Storm night goodwill"
        assert refund.staff_id == staff_browser.staff.id

    everything = _action(staff_browser, [first], apply="1", everything_left="on", reason="Full refund")
    assert everything.status_code == 302
    assert trip_refunds(trip_id=first.id).refundable == 0
    assert trip_refunds(trip_id=second.id).refundable == 3850 - 250


def test_bad_forms_and_amounts_that_do_not_fit_are_refused(staff_browser, two_trips):
    first, second = two_trips
    for form in (
        {"amount": "", "reason": "x"},  # neither an amount nor everything
        {"amount": "1.00", "everything_left": "on", "reason": "x"},  # both
        {"amount": "1.00", "reason": " "},  # no reason
    ):
        page = _action(staff_browser, [first], apply="1", **form)
        assert page.status_code == 200, form  # the form again, with its errors
    assert not JournalEntry.objects.filter(kind="refund").exists()

    answer = _action(staff_browser, [first], apply="1", amount="1.005", reason="x")
    assert answer.status_code == 302
    messages = [str(m) for m in answer.wsgi_request._messages]
    assert any("not a whole amount of USD minor units" in m for m in messages), messages

    answer = _action(staff_browser, [first, second], apply="1", amount="40.00", reason="too much")
    messages = [str(m) for m in answer.wsgi_request._messages]
    assert sum("refund_exceeds_charge" in m for m in messages) == 2, messages
    assert not JournalEntry.objects.filter(kind="refund").exists()


def test_only_staff_reach_the_action(client, two_trips):
    rider = RiderFactory()
    client.force_login(rider)
    answer = _action(client, two_trips, apply="1", amount="1.00", reason="x")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    assert not JournalEntry.objects.filter(kind="refund").exists()
