"""`document_problems`: every required document approved and unexpired, for the driver and the active
vehicle; the WAV certificate only for a wheelchair-accessible trip; each code where it belongs."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from backend.compliance.eligibility import document_problems
from backend.compliance.services import document_review
from backend.fares.pay import local_zone
from tests.compliance.document_builders import approve_everything, approved, in_days, upload
from tests.factories import DriverFactory, StaffFactory

pytestmark = pytest.mark.django_db

NYC_DRIVER_KINDS = ["tlc_driver_license", "state_driver_license", "background_check"]
NYC_VEHICLE_KINDS = ["vehicle_registration", "insurance", "inspection", "tlc_vehicle_license"]


def problems(driver, *, wav: bool = False, at: datetime | None = None):
    vehicle = driver.driver_profile.active_vehicle
    return document_problems(
        driver_id=driver.pk,
        vehicle_id=vehicle.id if vehicle else None,
        wheelchair_accessible=wav,
        at=at or timezone.now(),
    )


def by_kind(found):
    return {problem.details["kind"]: problem for problem in found}


def test_with_no_regulator_profile_nothing_is_required():
    assert problems(DriverFactory()) == []
    assert problems(DriverFactory(), wav=True) == []


def test_a_new_driver_misses_every_document_of_the_profile_in_its_order(nyc):
    found = problems(DriverFactory())
    assert [p.details["kind"] for p in found] == NYC_DRIVER_KINDS + NYC_VEHICLE_KINDS
    assert {p.code for p in found} == {"document_missing"}
    insurance = by_kind(found)["insurance"]
    assert insurance.details == {
        "kind": "insurance",
        "label": "Commercial liability insurance",
        "subject": "vehicle",
    }
    assert "Commercial liability insurance" in insurance.message


def test_all_approved_and_current_means_no_problem(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    approve_everything(driver, staff)
    assert problems(driver) == []


def test_the_wav_certificate_is_required_only_for_a_wheelchair_accessible_trip(nyc):
    driver, staff = DriverFactory(profile__wheelchair_accessible=True), StaffFactory()
    approve_everything(driver, staff)
    assert problems(driver) == []
    wav = problems(driver, wav=True)
    assert [(p.code, p.details["kind"], p.details["subject"]) for p in wav] == [
        ("document_missing", "wav_certificate", "vehicle")
    ]
    approved(driver, "wav_certificate", staff)
    assert problems(driver, wav=True) == []


def test_only_a_pending_one_is_document_pending(nyc):
    driver = DriverFactory()
    pending = upload(driver, "background_check")
    found = by_kind(problems(driver))
    assert found["background_check"].code == "document_pending"
    assert found["background_check"].details["pending_document_id"] == str(pending.id)
    assert found["tlc_driver_license"].code == "document_missing"


def test_a_rejected_one_is_still_missing(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    rejected = upload(driver, "insurance")
    document_review(document_id=rejected.id, reviewer=staff, decision="rejected", reason="Unreadable scan")
    assert by_kind(problems(driver))["insurance"].code == "document_missing"


def test_the_newest_approved_expired_is_document_expired_from_the_day_after_its_expiry(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    approve_everything(driver, staff)
    insurance = approved(driver, "insurance", staff, expires_on=in_days(10))
    last_minute = timezone.make_aware(datetime.combine(insurance.expires_on, time(23, 59)), local_zone())
    assert problems(driver, at=last_minute) == []
    found = problems(driver, at=last_minute + timedelta(minutes=2))
    assert [(p.code, p.details["kind"]) for p in found] == [("document_expired", "insurance")]
    assert found[0].details["expires_on"] == insurance.expires_on.isoformat()
    assert "expired" in found[0].message


def test_an_expired_approval_with_a_renewal_waiting_is_still_expired(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    approve_everything(driver, staff)
    old = approved(driver, "insurance", staff, expires_on=in_days(3))
    renewal = upload(driver, "insurance", expires_on=in_days(400))
    later = timezone.now() + timedelta(days=5)
    found = by_kind(problems(driver, at=later))
    assert found["insurance"].code == "document_expired"
    assert found["insurance"].details["expires_on"] == old.expires_on.isoformat()
    assert found["insurance"].details["pending_document_id"] == str(renewal.id)
    # Until then the old approval keeps the driver working while the renewal waits.
    assert problems(driver) == []
    document_review(document_id=renewal.id, reviewer=staff, decision="approved")
    assert "insurance" not in by_kind(problems(driver, at=later))


def test_vehicle_documents_belong_to_the_vehicle_not_the_driver(nyc):
    from tests.factories import VehicleFactory

    driver, staff = DriverFactory(), StaffFactory()
    approve_everything(driver, staff)
    profile = driver.driver_profile
    profile.vehicles.update(is_active=False)
    VehicleFactory(driver=profile)
    found = problems(driver)
    assert [(p.code, p.details["kind"]) for p in found] == [
        ("document_missing", k) for k in NYC_VEHICLE_KINDS
    ]


def test_no_active_vehicle_misses_every_vehicle_document(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    approve_everything(driver, staff)
    driver.driver_profile.vehicles.update(is_active=False)
    assert [p.details["kind"] for p in problems(driver)] == NYC_VEHICLE_KINDS
