"""Membership: joining by one share, instalments withheld from pay through the ledger, withdrawal, roles."""

from __future__ import annotations

import pytest
from django.test import override_settings

from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind, JournalEntry
from governance import selectors, services
from governance.models import Member
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.governance.conftest import client_for

pytestmark = pytest.mark.django_db


def test_an_approved_driver_joins_with_one_share_and_sees_it():
    driver = DriverFactory()
    client = client_for(driver)

    response = client.post("/api/v1/governance/membership")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"member_id", "status", "share_price", "paid", "joined_at"}
    assert body["status"] == "active"
    assert body["share_price"] == {"amount": 10000, "currency": "USD"}
    assert body["paid"] == {"amount": 0, "currency": "USD"}

    detail = client.get("/api/v1/governance/membership").json()
    assert detail["member_id"] == body["member_id"]
    assert detail["capital_account"] == {"amount": 0, "currency": "USD"}
    assert detail["patronage"]["trips"] == 0
    # The subscription is on the ledger: the co-op is owed the share, the member's equity holds it.
    assert balance_minor(kind=AccountKind.SHARE_SUBSCRIPTIONS, owner_id=driver.id, currency="USD") == 10000
    assert balance_minor(kind=AccountKind.MEMBER_EQUITY, owner_id=driver.id, currency="USD") == 10000


def test_joining_twice_is_a_conflict_and_non_drivers_cannot_join():
    driver = DriverFactory()
    assert client_for(driver).post("/api/v1/governance/membership").status_code == 201
    again = client_for(driver).post("/api/v1/governance/membership")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_member"

    pending = DriverFactory(profile__status="pending")
    refused = client_for(pending).post("/api/v1/governance/membership")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_an_approved_driver"
    assert client_for(RiderFactory()).post("/api/v1/governance/membership").status_code == 403
    assert client_for(RiderFactory()).get("/api/v1/governance/membership").status_code == 404


def test_instalments_are_withheld_from_pay_until_the_share_is_paid(make_member, complete_trip):
    member = make_member()
    driver = member.user
    complete_trip(driver, pay_minor=30000)  # 10% of $300.00 = $30.00
    assert selectors.share_paid_minor(member) == 3000
    complete_trip(driver, pay_minor=2005)  # 10% of 20.05 = 2.005 -> 201 (half up)
    assert selectors.share_paid_minor(member) == 3201
    for _ in range(3):
        complete_trip(driver, pay_minor=50000)  # capped at what remains
    assert selectors.share_paid_minor(member) == 10000
    assert balance_minor(kind=AccountKind.SHARE_SUBSCRIPTIONS, owner_id=driver.id, currency="USD") == 0
    instalments = JournalEntry.objects.filter(kind="share_instalment")
    assert instalments.count() == 4  # the fifth trip owed nothing
    # The driver's payable is what the trips paid less what was withheld.
    payable = balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD")
    assert payable == 30000 + 2005 + 3 * 50000 - 10000


def test_withholding_is_idempotent_per_trip(make_member, complete_trip):
    member = make_member()
    trip = complete_trip(member.user, pay_minor=10000)
    services.share_instalment_withhold(trip=trip)
    services.share_instalment_withhold(trip=trip)
    assert selectors.share_paid_minor(member) == 1000
    # A driver who is not a member has nothing withheld.
    outsider = DriverFactory()
    complete_trip(outsider, pay_minor=10000)
    assert balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=outsider.id, currency="USD") == 10000


@override_settings(ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL="paid")
def test_withdrawal_repays_what_was_paid_and_cancels_the_rest(make_director, complete_trip):
    member = make_director()
    driver = member.user
    complete_trip(driver, pay_minor=40000)  # $40 paid
    payable_before = balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD")

    response = client_for(driver).post("/api/v1/governance/membership/withdraw")
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    payable_after = balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD")
    assert payable_after - payable_before == 4000
    assert balance_minor(kind=AccountKind.SHARE_SUBSCRIPTIONS, owner_id=driver.id, currency="USD") == 0
    assert balance_minor(kind=AccountKind.MEMBER_EQUITY, owner_id=driver.id, currency="USD") == 0
    assert not selectors.is_director(Member.objects.get(id=member.id))
    assert selectors.user_governance_roles(driver) == []
    # A withdrawn member may join again, as a new membership.
    assert client_for(driver).post("/api/v1/governance/membership").status_code == 201


def test_roles_and_summary_for_me(make_member, make_director):
    member = make_member()
    director = make_director()
    assert selectors.user_governance_roles(member.user) == ["member"]
    assert selectors.user_governance_roles(director.user) == ["member", "director"]
    assert selectors.user_governance_roles(RiderFactory()) == []
    assert selectors.membership_summary(RiderFactory()) is None
    summary = selectors.membership_summary(director.user)
    assert summary["member_id"] == str(director.id) and summary["director"] is True

    me = client_for(director.user).get("/api/v1/me").json()
    assert "director" in me["roles"] and me["member"]["member_id"] == str(director.id)


def test_staff_seat_a_founding_director_and_members_see_the_board(make_member):
    staff = StaffFactory()
    member = make_member()
    response = client_for(staff).post(
        "/api/v1/staff/board/seats", {"member_id": str(member.id)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert set(response.json()) == {"seat_id", "member_id", "term_ends"}
    again = client_for(staff).post("/api/v1/staff/board/seats", {"member_id": str(member.id)}, format="json")
    assert again.status_code == 409
    assert (
        client_for(member.user)
        .post("/api/v1/staff/board/seats", {"member_id": str(member.id)}, format="json")
        .status_code
        == 403
    )

    board = client_for(member.user).get("/api/v1/governance/board").json()
    assert [seat["member_id"] for seat in board["seats"]] == [str(member.id)]
    assert client_for(RiderFactory()).get("/api/v1/governance/board").status_code == 403


def test_suspended_members_keep_membership_but_lose_good_standing(make_member):
    member = make_member()
    staff = StaffFactory()
    url = f"/api/v1/staff/members/{member.id}/status"
    assert client_for(staff).post(url, {"status": "suspended"}, format="json").status_code == 200
    assert Member.objects.get(id=member.id).in_good_standing is False
    assert client_for(staff).post(url, {"status": "active"}, format="json").json()["status"] == "active"
