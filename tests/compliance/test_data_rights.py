"""Data rights (docs/compliance.md): the export holds the caller's data and nobody else's; erasure
pseudonymises the person, keeps what the law keeps (the ledger and the audit chain still verify, the trip
still reports), refuses with a code while something is pending, and the erased account cannot sign in."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from backend.accounts.erasure import phone_placeholder, pseudonym_name
from backend.accounts.models import ErasureRequest, ErasureStatus, User
from backend.fares.ledger import ledger_verify
from backend.fares.models import CaptureStatus, JournalEntry, PaymentCapture
from backend.fares.payments import capture_attempt
from dispatch.models import LocationFix, Rating, Trip
from dispatch.services.data_rights import location_history_erase
from dispatch.state import TripStatus
from governance.audit import audit_verify
from governance.models import AuditEntry
from tests.conftest import auth_client_for
from tests.factories import TEST_PASSWORD, DriverFactory, RiderFactory
from tests.mobile_api.builders import completed_trip, requested_trip

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/me/export"
ERASURE = "/api/v1/me/erasure"


def _export(user) -> dict:
    response = auth_client_for(user).get(EXPORT)
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/json"
    return json.loads(b"".join(response.streaming_content))


def _collect(rider) -> None:
    """Take the rider's pending charges as the capture worker would (the test provider accepts them)."""
    for capture_id in PaymentCapture.objects.filter(rider=rider, status=CaptureStatus.PENDING).values_list(
        "id", flat=True
    ):
        capture_attempt(capture_id=capture_id)
    assert not PaymentCapture.objects.filter(rider=rider).exclude(status=CaptureStatus.SUCCEEDED).exists()


def _fix(driver, trip=None, *, minutes_ago: int) -> LocationFix:
    return LocationFix.objects.create(
        driver=driver,
        trip=trip,
        point=Point(-73.98, 40.75, srid=4326),
        recorded_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


@pytest.fixture
def make_member():
    """``make_member()``: an approved driver who joined the co-op (one share subscribed)."""
    from governance.services import membership_join
    from tests.mobile_api.builders import ensure_fare_policy

    ensure_fare_policy()
    return lambda: membership_join(user=DriverFactory())


@pytest.fixture
def shared_trips():
    """Two riders driven by one driver; rider A rated the driver with a comment, the driver rated A."""
    driver = DriverFactory()
    ada, bea = RiderFactory(), RiderFactory()
    ada_trip = completed_trip(ada, driver)
    bea_trip = completed_trip(bea, driver)
    Rating.objects.create(trip=ada_trip, author=ada, author_role="rider", stars=5, comment="Ada: lovely ride")
    Rating.objects.create(trip=ada_trip, author=driver, author_role="driver", stars=4, comment="Ada was late")
    Rating.objects.create(trip=bea_trip, author=bea, author_role="rider", stars=3, comment="Bea: loud radio")
    return ada, bea, driver, ada_trip, bea_trip


def test_the_export_holds_the_callers_data_and_nobody_elses(shared_trips):
    ada, bea, driver, ada_trip, bea_trip = shared_trips
    _fix(driver, ada_trip, minutes_ago=30)
    document = _export(ada)

    assert document["account"] == {
        "id": str(ada.id),
        "phone": ada.phone,
        "name": ada.name,
        "email": ada.email,
        "roles": ["rider"],
        "is_active": True,
        "date_joined": document["account"]["date_joined"],
    }
    assert [trip["id"] for trip in document["trips_as_rider"]] == [str(ada_trip.id)]
    assert document["trips_as_driver"] == []
    trip = document["trips_as_rider"][0]
    assert trip["fare"] == {"amount": ada_trip.fare_minor, "currency": ada_trip.currency}
    assert trip["pickup"] and trip["dropoff"] and trip["completed_at"]
    # What the trip showed Ada of her driver, and nothing more (no id, no phone).
    assert trip["driver"]["name"] == driver.name and "phone" not in trip["driver"]
    assert [r["comment"] for r in document["ratings_given"]] == ["Ada: lovely ride"]
    assert document["ratings_received"] == [
        {
            "trip_id": str(ada_trip.id),
            "stars": 4,
            "comment": "Ada was late",
            "created_at": document["ratings_received"][0]["created_at"],
        }
    ]
    assert {entry["trip_id"] for entry in document["payments"]["ledger_entries"]} == {str(ada_trip.id)}
    assert {c["trip_id"] for c in document["payments"]["captures"]} == {str(ada_trip.id)}
    assert document["location_fixes"] == []  # the driver's positions are the driver's
    text = json.dumps(document)
    for foreign in (bea.phone, bea.name, str(bea.id), str(bea_trip.id), driver.phone, str(driver.id)):
        assert foreign not in text
    assert "Bea: loud radio" not in text


def test_the_drivers_export_has_both_trips_their_riders_names_and_their_location_history(shared_trips):
    ada, bea, driver, ada_trip, bea_trip = shared_trips
    _fix(driver, ada_trip, minutes_ago=30)
    _fix(driver, minutes_ago=5)
    document = _export(driver)

    assert {t["id"] for t in document["trips_as_driver"]} == {str(ada_trip.id), str(bea_trip.id)}
    assert {t["rider"]["name"] for t in document["trips_as_driver"]} == {ada.name, bea.name}
    assert document["driver"]["license_number"] == driver.driver_profile.license_number
    assert len(document["driver"]["vehicles"]) == 1
    assert sorted(r["stars"] for r in document["ratings_received"]) == [3, 5]
    assert len(document["location_fixes"]) == 2
    text = json.dumps(document)
    for foreign in (ada.phone, bea.phone, str(ada.id), str(bea.id)):
        assert foreign not in text


def test_a_members_export_lists_receipts_never_how_they_voted(make_member):
    from governance.models import VoteReceipt
    from governance.services import proposal_create, proposal_vote

    member = make_member()
    proposal = proposal_create(
        user=member.user,
        kind="general",
        title="Paint the office green",
        body="",
        payload={},
        closes_at=timezone.now() + timedelta(days=3),
    )
    proposal_vote(proposal_id=proposal.id, user=member.user, choice="yes")
    assert VoteReceipt.objects.filter(member=member).exists()

    governance = _export(member.user)["governance"]
    assert governance["memberships"][0]["member_id"] == str(member.id)
    assert [r["title"] for r in governance["vote_receipts"]] == ["Paint the office green"]
    assert "choice" not in governance["vote_receipts"][0] and governance["board_votes"] == []
    assert "yes" not in json.dumps(governance["vote_receipts"])


def test_the_export_needs_a_signed_in_caller():
    assert APIClient().get(EXPORT).status_code == 401


def test_a_rider_with_nothing_pending_is_erased_at_once_and_the_law_keeps_its_records(shared_trips):
    ada, bea, driver, ada_trip, _ = shared_trips
    _collect(ada)
    entries_before = JournalEntry.objects.count()
    refresh = RefreshToken.for_user(ada)
    old_phone = ada.phone

    response = auth_client_for(ada).post(ERASURE, {"password": TEST_PASSWORD}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "completed"
    erased = User.objects.get(id=ada.id)
    assert erased.name == pseudonym_name(ada.id) and erased.phone == phone_placeholder(ada.id)
    assert erased.email == "" and not erased.is_active and not erased.has_usable_password()
    # Free text on her trip goes, the stars stay; the other party's record of the trip stays whole.
    assert set(Rating.objects.filter(trip=ada_trip).values_list("comment", flat=True)) == {""}
    assert Rating.objects.filter(trip=ada_trip).count() == 2
    trip = Trip.objects.get(id=ada_trip.id)
    assert (trip.rider_id, trip.status, trip.fare_minor) == (
        ada.id,
        TripStatus.COMPLETED,
        ada_trip.fare_minor,
    )
    assert trip.pickup == ada_trip.pickup and trip.completed_at == ada_trip.completed_at
    # Bea is untouched.
    assert User.objects.get(id=bea.id).name == bea.name
    assert Rating.objects.get(author=bea).comment == "Bea: loud radio"
    # The ledger is whole and verifies, and the erasure is in the audit chain, which verifies.
    assert JournalEntry.objects.count() == entries_before
    assert ledger_verify().ok
    assert audit_verify().ok
    entry = AuditEntry.objects.get(kind="account.erased")
    assert entry.payload["user_id"] == str(ada.id) and old_phone not in json.dumps(entry.payload)
    assert ErasureRequest.objects.get(user=ada).status == ErasureStatus.COMPLETED
    # The driver's export of the trip now names the pseudonym.
    driver_trips = _export(driver)["trips_as_driver"]
    assert pseudonym_name(ada.id) in {t["rider"]["name"] for t in driver_trips}

    # Nobody signs in as her again: not with her old phone, nor the placeholder, nor her tokens.
    anonymous = APIClient()
    for phone in (old_phone, erased.phone):
        answer = anonymous.post(
            "/api/v1/auth/token", {"phone": phone, "password": TEST_PASSWORD}, format="json"
        )
        assert answer.status_code == 401
    assert (
        anonymous.post("/api/v1/auth/token/refresh", {"refresh": str(refresh)}, format="json").status_code
        == 401
    )
    assert auth_client_for(erased).get("/api/v1/me").status_code == 401


def test_erasure_deletes_location_history_but_each_trips_ends(shared_trips):
    _, _, driver, ada_trip, bea_trip = shared_trips
    first = _fix(driver, ada_trip, minutes_ago=40)
    middle = _fix(driver, ada_trip, minutes_ago=35)
    last = _fix(driver, ada_trip, minutes_ago=30)
    only = _fix(driver, bea_trip, minutes_ago=20)
    off_trip = _fix(driver, minutes_ago=5)
    other_driver = DriverFactory()
    someone_elses = _fix(other_driver, minutes_ago=5)

    deleted = location_history_erase(driver_id=driver.id)

    assert deleted == 2
    kept = set(LocationFix.objects.filter(driver=driver).values_list("id", flat=True))
    assert kept == {first.id, last.id, only.id}
    assert not LocationFix.objects.filter(id__in=[middle.id, off_trip.id]).exists()
    assert LocationFix.objects.filter(id=someone_elses.id).exists()


def test_a_driver_with_pay_not_paid_out_waits_with_a_reason(shared_trips):
    _, _, driver, _, _ = shared_trips
    response = auth_client_for(driver).post(ERASURE, {"password": TEST_PASSWORD}, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "erasure_money_outstanding"
    assert "driver_payable" in error["message"]
    request = ErasureRequest.objects.get(user=driver)
    assert request.status == ErasureStatus.REQUESTED
    assert [b["code"] for b in request.blockers] == ["erasure_money_outstanding"]
    assert User.objects.get(id=driver.id).is_active
    with pytest.raises(CommandError, match="erasure_money_outstanding"):
        call_command("account_erase", "--user", str(driver.id))


def test_an_open_trip_holds_the_erasure_back():
    trip = requested_trip()
    response = auth_client_for(trip.rider).post(ERASURE, {"password": TEST_PASSWORD}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "erasure_open_trip"
    assert User.objects.get(id=trip.rider_id).is_active


def test_a_ride_booked_ahead_holds_the_erasure_back_until_it_is_cancelled(service_area):
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.services.estimates import Place
    from dispatch.services.trips import trip_cancel, trip_request
    from tests.mobile_api.builders import DROPOFF, PICKUP

    rider = RiderFactory()
    booked = trip_request(
        rider_id=rider.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        scheduled_for=timezone.now() + timedelta(days=2),
    )
    response = auth_client_for(rider).post(ERASURE, {"password": TEST_PASSWORD}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "erasure_rides_booked"
    trip_cancel(trip_id=booked.id, actor_id=rider.id)
    response = auth_client_for(rider).post(ERASURE, {"password": TEST_PASSWORD}, format="json")
    assert response.status_code == 201, response.json()


def test_a_member_must_withdraw_first(make_member):
    member = make_member()
    response = auth_client_for(member.user).post(ERASURE, {"password": TEST_PASSWORD}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "erasure_member_share_capital"


def test_the_wrong_password_erases_nothing_and_records_nothing():
    rider = RiderFactory()
    response = auth_client_for(rider).post(ERASURE, {"password": "not the password"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "password_incorrect"
    assert not ErasureRequest.objects.filter(user=rider).exists()
    assert User.objects.get(id=rider.id).is_active


def test_a_driver_with_nothing_pending_waits_for_staff_who_erase_with_the_command():
    driver = DriverFactory()
    response = auth_client_for(driver).post(ERASURE, {"password": TEST_PASSWORD}, format="json")
    assert response.status_code == 202
    assert response.json()["status"] == "requested"
    assert User.objects.get(id=driver.id).is_active

    call_command("account_erase", "--user", str(driver.id))

    erased = User.objects.get(id=driver.id)
    assert erased.name == pseudonym_name(driver.id) and not erased.is_active
    assert ErasureRequest.objects.get(user=driver).status == ErasureStatus.COMPLETED
    with pytest.raises(CommandError, match="already_erased"):
        call_command("account_erase", "--user", str(driver.id))
    assert audit_verify().ok


def test_saved_cards_show_as_brand_and_last4_and_are_detached_at_stripe_on_erasure(localstripe):
    from backend.cards.models import StripeCustomer
    from backend.cards.stripe_api import stripe_client
    from tests.cards.localstripe import VISA
    from tests.cards.test_card_payments import save_card

    rider = RiderFactory()
    card = save_card(localstripe, rider)
    save_card(localstripe, rider, number=VISA)
    customer_id = StripeCustomer.objects.get(rider=rider).customer_id

    cards = _export(rider)["payments"]["saved_cards"]
    assert [(c["brand"], c["last4"]) for c in cards] == [(card.brand, card.last4)] * 2
    assert card.id not in json.dumps(cards) and customer_id not in json.dumps(_export(rider))

    response = auth_client_for(rider).post(ERASURE, {"password": TEST_PASSWORD}, format="json")

    assert response.status_code == 201, response.json()
    left = stripe_client().v1.payment_methods.list(params={"customer": customer_id, "type": "card"})
    assert list(left.data) == []
    assert not User.objects.get(id=rider.id).is_active


def test_a_drivers_documents_are_exported_as_metadata_and_only_their_own(nyc):
    from tests.compliance.document_builders import upload

    driver, other = DriverFactory(), DriverFactory()
    licence = upload(driver, "tlc_driver_license")
    upload(other, "tlc_driver_license")

    documents = _export(driver)["documents"]

    assert [(d["id"], d["kind"], d["number"], d["status"]) for d in documents] == [
        (str(licence.id), "tlc_driver_license", licence.number, "pending")
    ]
    assert "file" not in documents[0]
    assert _export(RiderFactory())["documents"] == []


def test_staff_carry_out_a_waiting_request_from_the_admin(client, staff_user):
    driver = DriverFactory()
    assert (
        auth_client_for(driver).post(ERASURE, {"password": TEST_PASSWORD}, format="json").status_code == 202
    )
    request = ErasureRequest.objects.get(user=driver)
    client.force_login(staff_user)

    page = client.get("/admin/accounts/erasurerequest/")
    assert page.status_code == 200
    answer = client.post(
        "/admin/accounts/erasurerequest/", {"action": "erase", "_selected_action": [str(request.id)]}
    )

    assert answer.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.completed_by_id) == (ErasureStatus.COMPLETED, staff_user.id)
    assert User.objects.get(id=driver.id).name == pseudonym_name(driver.id)
    entry = AuditEntry.objects.get(kind="account.erased")
    assert entry.payload["erased_by"] == str(staff_user.id)


def test_erasure_deactivates_the_drivers_bank_account_so_nothing_is_paid_to_it_afterwards():
    # docs/compliance.md: bank account rows are kept "deactivated, shown masked"; an active one would stay
    # the destination of any later payout run for an account nobody holds any more.
    from dispatch.models import DriverBankAccount
    from tests.payouts.builders import bank_account

    driver = DriverFactory()
    account = bank_account(driver)

    call_command("account_erase", "--user", str(driver.id))

    kept = DriverBankAccount.objects.get(id=account.id)
    assert not kept.is_active and kept.deactivated_at is not None
    assert kept.masked_account_number == account.masked_account_number


def test_a_guests_organisation_data_and_messages_are_exported_and_erased(service_area):
    """A guest has no password: staff erase them (manage.py account_erase). What the organisation knew of
    them (name, phone, the booking's reference) and what they were told go with the account; the trip and
    its money stay."""
    from backend.notifications.models import Notification
    from backend.organisations.models import Organisation, OrganisationGuest, OrganisationMembership
    from dispatch.services.data_rights import account_erase, account_export_document
    from dispatch.services.estimates import Place
    from dispatch.services.trips import trip_cancel, trip_request
    from tests.factories import UserFactory
    from tests.mobile_api.builders import DROPOFF, PICKUP

    clinic = Organisation.objects.create(name="Clinic")
    coordinator = UserFactory()
    OrganisationMembership.objects.create(organisation=clinic, user=coordinator, role="coordinator")
    guest = RiderFactory(name="Maria Lopez")
    OrganisationGuest.objects.create(organisation=clinic, user=guest, name="Maria L.", phone=guest.phone)
    trip = trip_request(
        rider_id=guest.id,
        pickup=Place(**PICKUP),
        dropoff=Place(**DROPOFF),
        organisation_id=clinic.id,
        booked_by_id=coordinator.id,
        reference="PATIENT-4471",
    )
    from dispatch.services.booking_notices import rider_told_of_booking

    rider_told_of_booking(trip=trip)
    trip_cancel(trip_id=trip.id, actor_id=coordinator.id, organisation_id=clinic.id)

    exported = account_export_document(user=User.objects.get(id=guest.id))
    assert exported["organisations"]["guest_of"][0]["name"] == "Maria L."
    assert exported["organisations"]["guest_of"][0]["organisation"] == "Clinic"
    assert [n["event"] for n in exported["notifications"]] == ["ride_booked_for_you_now"]
    assert exported["trips_as_rider"][0]["id"] == str(trip.id)

    from backend.organisations.models import OrganisationInvitation

    OrganisationInvitation.objects.create(organisation=clinic, phone=guest.phone, role="coordinator")
    assert account_export_document(user=guest)["organisations"]["invitations"][0]["role"] == "coordinator"
    account_erase(user_id=guest.id, erased_by=None)
    assert not OrganisationInvitation.objects.filter(phone=guest.phone).exists()
    assert not Notification.objects.filter(user_id=guest.id).exists()
    assert not OrganisationGuest.objects.filter(user_id=guest.id).exists()
    trip.refresh_from_db()
    assert trip.reference == "" and trip.organisation_id == clinic.id and trip.rider_id == guest.id
