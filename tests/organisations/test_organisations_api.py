"""Staff set organisations and their policy up; admins manage their people; the policy's refusals reach a
booker through the API with their codes; each organisation's people see only its trips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.organisations.models import OrganisationMembership
from tests.conftest import auth_client_for
from tests.factories import RiderFactory, UserFactory
from tests.mobile_api.builders import OUTSIDE
from tests.organisations.builders import booking

pytestmark = pytest.mark.django_db

# A square in the Bronx: the test city's pickup and dropoff (Midtown, Lower Manhattan) are outside it.
BRONX = {
    "type": "Polygon",
    "coordinates": [[[-73.93, 40.83], [-73.85, 40.83], [-73.85, 40.88], [-73.93, 40.88], [-73.93, 40.83]]],
}


def _error(answer) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


def test_staff_create_an_organisation_and_set_its_policy(staff_client, service_area):
    made = staff_client.post(
        "/api/v1/staff/organisations",
        {"name": "Eastside Dialysis", "kind": "clinic", "max_fare": {"amount": 6000, "currency": "USD"}},
        format="json",
    )
    assert made.status_code == 201, made.content
    organisation = made.json()
    assert (
        organisation["max_fare"] == {"amount": 6000, "currency": "USD"}
        and organisation["allowed_area"] is None
    )
    url = f"/api/v1/staff/organisations/{organisation['id']}"
    changed = staff_client.patch(
        url,
        {
            "allowed_area": BRONX,
            "allowed_hours": [{"weekdays": [1, 2, 3, 4, 5], "from": "06:00", "to": "20:00"}],
            "reference_required": True,
            "booking_rule": "members",
            "id": "00000000-0000-0000-0000-000000000000",
            "currency": "EUR",
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content
    policy = changed.json()
    assert policy["id"] == organisation["id"] and policy["currency"] == "USD"  # never inputs
    assert policy["allowed_area"]["type"] == "MultiPolygon" and policy["reference_required"] is True
    assert staff_client.get(url).json() == policy

    bad_hours = staff_client.patch(url, {"allowed_hours": [{"weekdays": [8], "from": "6am", "to": "20:00"}]})
    assert _error(bad_hours) == (400, "allowed_hours_invalid")
    wrong_currency = staff_client.patch(url, {"max_fare": {"amount": 100, "currency": "EUR"}}, format="json")
    assert _error(wrong_currency) == (422, "currency_mismatch")
    taken = staff_client.post("/api/v1/staff/organisations", {"name": "Eastside Dialysis"}, format="json")
    assert _error(taken) == (409, "organisation_name_taken")
    assert [row["name"] for row in staff_client.get("/api/v1/staff/organisations").json()["results"]] == [
        "Eastside Dialysis"
    ]


def test_the_policy_refusals_reach_the_booker_with_their_codes(clinic, staff_client):
    org_url = f"/api/v1/staff/organisations/{clinic.organisation.id}"
    desk = clinic.client()
    rider = {"rider_id": str(clinic.rider.id)}

    def refused(patch, body=None):
        assert staff_client.patch(org_url, patch, format="json").status_code == 200
        return _error(desk.post(clinic.trips_url, body or booking(**rider), format="json"))

    pickup_at = timezone.localtime(timezone.now() + timedelta(days=1))
    other_day = pickup_at.isoweekday() % 7 + 1
    at_pickup = booking(**rider, ahead=None, scheduled_for=pickup_at.isoformat())
    assert refused(
        {"allowed_hours": [{"weekdays": [other_day], "from": "00:00", "to": "23:59"}]}, at_pickup
    ) == (
        422,
        "organisation_hours",
    )
    assert refused({"allowed_hours": [], "allowed_area": BRONX}) == (422, "organisation_area")
    assert refused({"allowed_area": None, "max_fare": {"amount": 1, "currency": "USD"}}) == (
        422,
        "organisation_max_fare",
    )
    assert refused(
        {"max_fare": None, "wav_allowed": False}, booking(**rider, wheelchair_accessible=True)
    ) == (
        422,
        "organisation_wav_not_allowed",
    )
    assert refused({"wav_allowed": True, "reference_required": True}, booking(**rider, reference="")) == (
        400,
        "reference_required",
    )
    assert _error(desk.post(clinic.trips_url, booking(rider_id=str(RiderFactory().id)), format="json")) == (
        422,
        "rider_not_in_organisation",
    )
    assert _error(desk.post(clinic.trips_url, booking(**rider, pickup=OUTSIDE), format="json")) == (
        422,
        "outside_service_area",
    )
    # Its riders book for themselves only when the organisation lets them.
    own = auth_client_for(clinic.rider)
    assert _error(own.post(clinic.trips_url, booking(), format="json")) == (
        403,
        "organisation_booking_not_allowed",
    )
    staff_client.patch(org_url, {"booking_rule": "members", "reference_required": False}, format="json")
    mine = own.post(clinic.trips_url, booking(), format="json")
    assert mine.status_code == 201, mine.content
    assert mine.json()["booked_by"]["kind"] == "rider"
    # Closed: it is no longer there for anyone who books.
    staff_client.patch(org_url, {"is_active": False}, format="json")
    assert _error(desk.post(clinic.trips_url, booking(**rider), format="json")) == (
        404,
        "organisation_not_found",
    )


def test_admins_manage_people_and_each_sees_what_their_role_allows(clinic, agency):
    members_url = f"/api/v1/organisations/{clinic.organisation.id}/members"
    admin, desk = clinic.client("admin"), clinic.client()
    newcomer = UserFactory(name="New Desk")
    added = admin.post(members_url, {"phone": newcomer.phone, "role": "coordinator"}, format="json")
    assert added.status_code == 201 and added.json()["status"] == "invited", added.content
    # Invited, not added: they join when they accept (tests/organisations/test_consent.py).
    assert (
        auth_client_for(newcomer)
        .post(f"/api/v1/me/organisations/{clinic.organisation.id}/accept")
        .status_code
        == 200
    )
    assert _error(admin.post(members_url, {"phone": "not a phone", "role": "rider"}, format="json")) == (
        400,
        "phone_invalid",
    )
    assert _error(desk.post(members_url, {"phone": newcomer.phone, "role": "admin"}, format="json")) == (
        403,
        "organisation_admin_required",
    )
    assert {row["user"]["id"] for row in desk.get(members_url).json()["results"]} == {
        str(clinic.admin.id),
        str(clinic.coordinator.id),
        str(clinic.rider.id),
        str(newcomer.id),
    }
    # The last admin stays; a removed coordinator's organisation is gone for them.
    assert _error(admin.delete(f"{members_url}/{clinic.admin.id}")) == (409, "last_admin")
    assert admin.delete(f"{members_url}/{newcomer.id}").status_code == 204
    assert not OrganisationMembership.objects.get(user=newcomer).is_active
    gone = auth_client_for(newcomer).get(clinic.trips_url)
    assert _error(gone) == (404, "organisation_not_found")

    # Each organisation's people see its trips alone; its riders their own only.
    ours = desk.post(clinic.trips_url, booking(rider_id=str(clinic.rider.id)), format="json").json()
    guest = desk.post(
        clinic.trips_url, booking(guest={"name": "Ana", "phone": "+12125550166"}), format="json"
    ).json()
    theirs = (
        agency.client().post(agency.trips_url, booking(rider_id=str(agency.rider.id)), format="json").json()
    )
    assert {row["id"] for row in desk.get(clinic.trips_url).json()["results"]} == {ours["id"], guest["id"]}
    assert [row["id"] for row in auth_client_for(clinic.rider).get(clinic.trips_url).json()["results"]] == [
        ours["id"]
    ]
    for path in (
        agency.trips_url,
        f"{agency.trips_url}/{theirs['id']}",
        f"{clinic.trips_url}/{theirs['id']}",
    ):
        assert desk.get(path).status_code == 404, path

    mine = auth_client_for(clinic.coordinator).get("/api/v1/me/organisations").json()["results"]
    assert [(row["name"], row["role"]) for row in mine] == [(clinic.organisation.name, "coordinator")]
    assert auth_client_for(RiderFactory()).get("/api/v1/me/organisations").json()["results"] == []


def test_staff_see_an_organisations_trips(clinic, staff_client):
    trip = (
        clinic.client().post(clinic.trips_url, booking(rider_id=str(clinic.rider.id)), format="json").json()
    )
    url = f"/api/v1/staff/organisations/{clinic.organisation.id}/trips"
    day = timezone.localdate(timezone.now() + timedelta(days=1)).isoformat()
    assert [row["id"] for row in staff_client.get(url, {"from": day, "to": day}).json()["results"]] == [
        trip["id"]
    ]
    assert staff_client.get(url, {"from": "2020-01-01", "to": "2020-01-02"}).json()["results"] == []
    assert _error(staff_client.get(url, {"status": "flying"})) == (400, "invalid_input")
    assert _error(clinic.client("admin").get(url)) == (403, "permission_denied")
