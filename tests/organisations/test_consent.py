"""Nobody rides on an organisation's account, or joins it, without saying yes (the review of issue 16:
tests/organisations/ keeps its scenarios).

A coordinator or an API key that names a guest by a phone which already has somebody's own Rochdale account
gets the same answer as for a phone with none: the guest as the organisation gave it, never the account's
name or id. Nothing is booked onto that account, and its roles are not touched, until its holder accepts
(the booking is refused as for any rider not on the account, before anything about the account's own rides
could show); they are told, accept or decline. An admin adding a person by phone invites them, the same way
whether or not the phone has an account.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.utils import timezone

from backend.errors import Unprocessable
from backend.notifications.models import Notification
from backend.organisations import services as org_services
from backend.organisations.models import (
    OrganisationGuest,
    OrganisationInvitation,
    OrganisationMembership,
)
from dispatch.models import RecurringRide, Trip
from dispatch.services.estimates import Place
from dispatch.services.recurring import recurring_ride_create
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, UserFactory
from tests.mobile_api.builders import DROPOFF, PICKUP
from tests.organisations.builders import booking
from tests.organisations.test_api_keys import _make_key, _with_key

pytestmark = pytest.mark.django_db

NO_ACCOUNT = "+13475550101"
GUEST_KEYS = {"id", "name", "phone", "created_at"}
INVITATION_KEYS = {"id", "phone", "role", "status", "created_at"}


def _error(answer) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


def _guests_url(world) -> str:
    return f"/api/v1/organisations/{world.organisation.id}/guests"


def _me_url(world, action: str) -> str:
    return f"/api/v1/me/organisations/{world.organisation.id}/{action}"


def _without_ids(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in ("id", "created_at", "phone")}


def _leaks(answer, *accounts) -> list[str]:
    text = answer.content.decode()
    return [secret for user in accounts for secret in (user.name, str(user.id)) if secret in text]


def test_adding_a_guest_answers_the_same_whether_or_not_the_phone_has_an_account(clinic):
    stranger = RiderFactory(name="Real Secret Name")
    driver = DriverFactory(name="Driving Secret Name")
    closed = RiderFactory(name="Closed Secret Name", is_active=False)
    desk = clinic.client()
    phones = [NO_ACCOUNT, stranger.phone, driver.phone, closed.phone]
    answers = [
        desk.post(_guests_url(clinic), {"name": "Made Up", "phone": phone}, format="json") for phone in phones
    ]
    for answer, phone in zip(answers, phones, strict=True):
        assert answer.status_code == 201, answer.content  # an inactive account too: no 409
        assert set(answer.json()) == GUEST_KEYS and answer.json()["phone"] == phone
        assert _without_ids(answer.json()) == {"name": "Made Up"}
        assert _leaks(answer, stranger, driver, closed) == []
    listed = desk.get(_guests_url(clinic))
    assert sorted(row["phone"] for row in listed.json()["results"]) == sorted(phones)
    assert {frozenset(row) for row in listed.json()["results"]} == {frozenset(GUEST_KEYS)}
    assert _leaks(listed, stranger, driver, closed) == []

    # The accounts' roles are untouched; the holders of the active ones are asked, once however often.
    desk.post(_guests_url(clinic), {"name": "Made Up Again", "phone": stranger.phone}, format="json")
    driver.refresh_from_db()
    closed.refresh_from_db()
    assert not driver.is_rider and driver.is_driver and not closed.is_active
    for user in (stranger, driver):
        (invite,) = Notification.objects.filter(user=user, event="organisation_guest_invite")
        assert clinic.organisation.name in invite.body and "accept" in invite.body
    assert not Notification.objects.filter(user=closed).exists()
    # The guest with no account rides at once, on a new account nobody signs in to.
    made = OrganisationGuest.objects.get(organisation=clinic.organisation, phone=NO_ACCOUNT)
    assert made.confirmed_at is not None and not made.user.has_usable_password()
    pending = OrganisationGuest.objects.filter(organisation=clinic.organisation, confirmed_at__isnull=True)
    assert {guest.user_id for guest in pending} == {stranger.id, driver.id, closed.id}


def test_no_ride_is_booked_onto_an_existing_account_before_its_holder_accepts(clinic):
    riding_now, booked_ahead = RiderFactory(name="Rider Now"), RiderFactory(name="Rider Ahead")
    driver, closed = DriverFactory(name="A Driver"), RiderFactory(is_active=False)
    now = auth_client_for(riding_now).post(
        "/api/v1/trips", {"pickup": PICKUP, "dropoff": DROPOFF}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    when = (timezone.now() + timedelta(days=2)).isoformat()
    ahead = auth_client_for(booked_ahead).post(
        "/api/v1/trips",
        {"pickup": PICKUP, "dropoff": DROPOFF, "scheduled_for": when},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert now.status_code == 201 and ahead.status_code == 201, (now.content, ahead.content)
    _, key = _make_key(clinic)
    system = _with_key(key)
    attempts = [
        # Their own ride in progress or booked ahead would show as 409 trip_in_progress / reservation_overlaps
        # (with the private trip's id); a driver's account as 403 rider_role_required.
        (clinic.client(), booking(ahead=None, guest={"name": "x", "phone": riding_now.phone})),
        (clinic.client(), booking(ahead=timedelta(days=2), guest={"name": "x", "phone": booked_ahead.phone})),
        (system, booking(guest={"name": "x", "phone": driver.phone})),
        (system, booking(guest={"name": "x", "phone": closed.phone})),
    ]
    for client, body in attempts:
        refused = client.post(clinic.trips_url, body, format="json")
        assert _error(refused) == (422, "rider_not_in_organisation"), refused.content
        assert refused.json()["error"]["details"] == {}
        assert _leaks(refused, riding_now, booked_ahead, driver, closed) == []
    # ... and by the guest's id once known.
    guest = OrganisationGuest.objects.get(organisation=clinic.organisation, user=riding_now)
    by_id = clinic.client().post(clinic.trips_url, booking(guest_id=str(guest.id)), format="json")
    assert _error(by_id) == (422, "rider_not_in_organisation")

    assert not Trip.objects.filter(organisation=clinic.organisation).exists()
    mine = auth_client_for(riding_now).get("/api/v1/trips").json()["results"]
    assert [trip["id"] for trip in mine] == [now.json()["id"]]
    driver.refresh_from_db()
    assert not driver.is_rider


def test_a_series_for_a_guest_who_has_not_accepted_is_refused(clinic):
    stranger = RiderFactory()
    org_services.guest_add(
        organisation_id=clinic.organisation.id, name="x", phone=stranger.phone, by=clinic.coordinator
    )
    with pytest.raises(Unprocessable) as refused:
        recurring_ride_create(
            booked_by_id=clinic.coordinator.id,
            rider_id=stranger.id,
            organisation_id=clinic.organisation.id,
            pickup=Place(**PICKUP),
            dropoff=Place(**DROPOFF),
            weekdays=[1, 2, 3, 4, 5, 6, 7],
            pickup_time=time(12, 0),
            starts_on=timezone.localdate() + timedelta(days=2),
            count=2,
            reference="CC-1",
        )
    assert refused.value.code == "rider_not_in_organisation"
    assert not RecurringRide.objects.filter(rider=stranger).exists()


def test_the_holder_accepts_then_the_organisation_books_for_them_by_the_name_it_gave(clinic):
    driver = DriverFactory(name="Real Driver Name")
    desk = clinic.client()
    guest = desk.post(_guests_url(clinic), {"name": "Pat (dialysis)", "phone": driver.phone}, format="json")
    guest = guest.json()
    holder = auth_client_for(driver)
    mine = holder.get("/api/v1/me/organisations").json()["results"]
    assert [(row["id"], row["role"], row["guest"], row["invitations"]) for row in mine] == [
        (str(clinic.organisation.id), None, False, [{"kind": "guest", "role": None}])
    ]

    accepted = holder.post(_me_url(clinic, "guest/accept"))
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["guest"] is True and accepted.json()["invitations"] == []
    driver.refresh_from_db()
    assert driver.is_rider and driver.is_driver
    assert holder.post(_me_url(clinic, "guest/accept")).status_code == 200  # once is enough; again is fine

    booked = desk.post(clinic.trips_url, booking(guest_id=guest["id"]), format="json")
    assert booked.status_code == 201, booked.content
    assert booked.json()["rider"] == {"kind": "guest", "id": guest["id"], "name": "Pat (dialysis)"}
    again = desk.post(
        clinic.trips_url,
        booking(ahead=timedelta(days=2), guest={"name": "Pat", "phone": driver.phone}),
        format="json",
    )
    assert again.status_code == 201, again.content
    listed = desk.get(clinic.trips_url)
    assert {row["rider"]["name"] for row in listed.json()["results"]} == {"Pat"}  # the name it knows now
    assert _leaks(booked, driver) == _leaks(again, driver) == _leaks(listed, driver) == []
    assert Trip.objects.filter(rider=driver, organisation=clinic.organisation).count() == 2
    # Nothing is left to decline.
    assert _error(holder.post(_me_url(clinic, "guest/decline"))) == (404, "invitation_not_found")


def test_declining_removes_the_pending_guest_and_asks_no_more(clinic):
    stranger = RiderFactory()
    desk = clinic.client()
    guest = desk.post(_guests_url(clinic), {"name": "x", "phone": stranger.phone}, format="json").json()
    holder = auth_client_for(stranger)
    assert holder.post(_me_url(clinic, "guest/decline")).status_code == 204
    assert not OrganisationGuest.objects.filter(user=stranger).exists()
    assert holder.get("/api/v1/me/organisations").json()["results"] == []
    assert _error(desk.post(clinic.trips_url, booking(guest_id=guest["id"]), format="json")) == (
        404,
        "guest_not_found",
    )
    assert _error(holder.post(_me_url(clinic, "guest/decline"))) == (404, "invitation_not_found")
    assert _error(holder.post(_me_url(clinic, "guest/accept"))) == (404, "invitation_not_found")
    # Added again, the guest waits again, and the holder is not told twice.
    desk.post(_guests_url(clinic), {"name": "x", "phone": stranger.phone}, format="json")
    assert Notification.objects.filter(user=stranger, event="organisation_guest_invite").count() == 1
    assert OrganisationGuest.objects.get(user=stranger).confirmed_at is None


def test_a_guest_account_one_organisation_made_rides_for_another_at_once_by_its_own_name(clinic, agency):
    ours = clinic.client().post(
        clinic.trips_url, booking(guest={"name": "Maria Lopez", "phone": NO_ACCOUNT}), format="json"
    )
    theirs = agency.client().post(
        agency.trips_url,
        booking(ahead=timedelta(days=2), guest={"name": "M. L.", "phone": NO_ACCOUNT}),
        format="json",
    )
    assert ours.status_code == 201 and theirs.status_code == 201, (ours.content, theirs.content)
    assert theirs.json()["rider"]["name"] == "M. L." and "Maria" not in theirs.content.decode()


def test_an_admin_invites_by_phone_the_same_way_whether_or_not_it_has_an_account(clinic):
    someone = UserFactory(name="Real Secret Name")
    admin = clinic.client("admin")
    members_url = f"/api/v1/organisations/{clinic.organisation.id}/members"
    answers = [
        admin.post(members_url, {"phone": phone, "role": "coordinator"}, format="json")
        for phone in (someone.phone, NO_ACCOUNT)
    ]
    for answer in answers:
        assert answer.status_code == 201, answer.content
        assert set(answer.json()) == INVITATION_KEYS
        assert _without_ids(answer.json()) == {"role": "coordinator", "status": "invited"}
        assert _leaks(answer, someone) == []
    assert [answer.json()["phone"] for answer in answers] == [someone.phone, NO_ACCOUNT]
    assert not OrganisationMembership.objects.filter(user=someone).exists()
    assert len(admin.get(members_url).json()["results"]) == 3  # the world's three; nobody added yet
    (invite,) = Notification.objects.filter(user=someone, event="organisation_member_invite")
    assert clinic.organisation.name in invite.body and "coordinator" in invite.body

    invitee = auth_client_for(someone)
    assert _error(invitee.get(clinic.trips_url)) == (404, "organisation_not_found")
    mine = invitee.get("/api/v1/me/organisations").json()["results"]
    assert [(row["id"], row["role"], row["invitations"]) for row in mine] == [
        (str(clinic.organisation.id), None, [{"kind": "membership", "role": "coordinator"}])
    ]
    accepted = invitee.post(_me_url(clinic, "accept"))
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["role"] == "coordinator" and accepted.json()["invitations"] == []
    assert invitee.get(clinic.trips_url).status_code == 200
    assert str(someone.id) in {row["user"]["id"] for row in admin.get(members_url).json()["results"]}
    assert _error(invitee.post(_me_url(clinic, "accept"))) == (404, "invitation_not_found")

    # The phone with no account: whoever signs up with it later finds the invitation, and may decline it.
    later = UserFactory(phone=NO_ACCOUNT)
    newcomer = auth_client_for(later)
    assert [row["invitations"] for row in newcomer.get("/api/v1/me/organisations").json()["results"]] == [
        [{"kind": "membership", "role": "coordinator"}]
    ]
    assert newcomer.post(_me_url(clinic, "decline")).status_code == 204
    assert newcomer.get("/api/v1/me/organisations").json()["results"] == []
    assert not OrganisationInvitation.objects.exists()
    assert not OrganisationMembership.objects.filter(user=later).exists()


def test_a_driver_invited_as_a_rider_rides_once_they_accept(clinic):
    driver = DriverFactory()
    admin = clinic.client("admin")
    members_url = f"/api/v1/organisations/{clinic.organisation.id}/members"
    invited = admin.post(members_url, {"phone": driver.phone, "role": "rider"}, format="json")
    assert invited.status_code == 201 and invited.json()["status"] == "invited", invited.content
    driver.refresh_from_db()
    assert not driver.is_rider
    rider_body = booking(rider_id=str(driver.id))
    assert _error(clinic.client().post(clinic.trips_url, rider_body, format="json")) == (
        422,
        "rider_not_in_organisation",
    )
    assert auth_client_for(driver).post(_me_url(clinic, "accept")).status_code == 200
    driver.refresh_from_db()
    assert driver.is_rider
    assert clinic.client().post(clinic.trips_url, rider_body, format="json").status_code == 201
