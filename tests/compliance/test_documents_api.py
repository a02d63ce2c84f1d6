"""Documents through the API: a driver's multipart upload (kind, file type by content, size, expiry, whose
vehicle), their own list with what the profile still requires, staff's queue and review, and the files
behind short-lived signed links (their driver and staff only)."""

from __future__ import annotations

import uuid

import pytest
from django.core import signing
from django.urls import reverse

from backend.compliance.models import Document, DocumentReview, DocumentStatus
from tests.compliance.document_builders import (
    JPEG_BYTES,
    PDF_BYTES,
    PNG_BYTES,
    approve_everything,
    in_days,
    pdf_file,
)
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory, VehicleFactory

pytestmark = pytest.mark.django_db

UPLOAD = "/api/v1/driver/documents"


def send(client, **overrides):
    body = {
        "kind": "insurance",
        "number": "POL-778812",
        "issuer": "Hudson Mutual",
        "expires_on": in_days(200).isoformat(),
        "file": pdf_file(),
        **overrides,
    }
    return client.post(UPLOAD, {k: v for k, v in body.items() if v is not None}, format="multipart")


def error_code(response):
    return response.json()["error"]["code"]


def test_a_driver_uploads_a_vehicle_document_for_their_active_vehicle(nyc, document_storage):
    driver = DriverFactory()
    response = send(auth_client_for(driver))
    assert response.status_code == 201, response.content
    body = response.json()
    vehicle = driver.driver_profile.active_vehicle
    assert body["kind"] == "insurance" and body["subject"] == "vehicle"
    assert body["vehicle_id"] == str(vehicle.id)
    assert body["status"] == "pending" and body["label"] == "Commercial liability insurance"
    assert body["content_type"] == "application/pdf" and body["size_bytes"] == len(PDF_BYTES)
    document = Document.objects.get(id=body["id"])
    # Stored under ids only, whatever the client called the file.
    assert document.file.name == f"documents/{driver.pk}/{document.id}.pdf"
    assert (document_storage / document.file.name).read_bytes() == PDF_BYTES


@pytest.mark.parametrize(("content", "content_type"), [(JPEG_BYTES, "image/jpeg"), (PNG_BYTES, "image/png")])
def test_photos_are_taken_by_their_content(nyc, content, content_type):
    # The name and declared type say PDF; the bytes decide.
    response = send(auth_client_for(DriverFactory()), file=pdf_file(content, name="photo.pdf"))
    assert response.status_code == 201, response.content
    assert response.json()["content_type"] == content_type


def test_a_file_that_is_not_a_pdf_jpeg_or_png_is_refused(nyc):
    response = send(
        auth_client_for(DriverFactory()), file=pdf_file(b"MZ\x90\x00 an executable", name="x.pdf")
    )
    assert response.status_code == 400 and error_code(response) == "document_file_type"
    assert not Document.objects.exists()


def test_a_file_over_the_size_cap_is_refused_with_413(nyc, settings):
    settings.ROCHDALE_DOCUMENT_MAX_BYTES = 1000
    response = send(auth_client_for(DriverFactory()), file=pdf_file(PDF_BYTES + b"0" * 1000))
    assert response.status_code == 413 and error_code(response) == "document_too_large"
    assert response.json()["error"]["details"]["max_bytes"] == 1000


def test_an_expiry_date_that_is_not_in_the_future_is_refused(nyc):
    client = auth_client_for(DriverFactory())
    for day in (in_days(0), in_days(-3)):
        response = send(client, expires_on=day.isoformat())
        assert response.status_code == 400 and error_code(response) == "document_expiry_past"


def test_a_kind_the_profile_does_not_list_is_refused(nyc):
    response = send(auth_client_for(DriverFactory()), kind="pilot_licence")
    assert response.status_code == 400 and error_code(response) == "document_kind_unknown"


def test_with_no_regulator_profile_no_kind_is_taken(settings):
    response = send(auth_client_for(DriverFactory()))
    assert response.status_code == 400 and error_code(response) == "document_kind_unknown"


def test_a_driver_document_names_no_vehicle(nyc):
    driver = DriverFactory()
    vehicle = driver.driver_profile.active_vehicle
    response = send(auth_client_for(driver), kind="tlc_driver_license", vehicle_id=str(vehicle.id))
    assert response.status_code == 400 and error_code(response) == "document_kind_subject"
    ok = send(auth_client_for(driver), kind="tlc_driver_license")
    assert ok.status_code == 201 and ok.json()["subject"] == "driver" and ok.json()["vehicle_id"] is None


def test_a_driver_cannot_upload_for_another_drivers_vehicle(nyc):
    other = DriverFactory()
    response = send(auth_client_for(DriverFactory()), vehicle_id=str(other.driver_profile.active_vehicle.id))
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert not Document.objects.exists()


def test_a_driver_may_upload_for_their_other_vehicle(nyc):
    driver = DriverFactory()
    spare = VehicleFactory(driver=driver.driver_profile, is_active=False)
    response = send(auth_client_for(driver), vehicle_id=str(spare.id))
    assert response.status_code == 201 and response.json()["vehicle_id"] == str(spare.id)


def test_only_drivers_upload(nyc):
    rider = auth_client_for(RiderFactory())
    assert send(rider).status_code == 403
    assert error_code(send(rider)) == "driver_role_required"
    assert send(auth_client_for(StaffFactory())).status_code == 403


def test_missing_fields_are_named(nyc):
    response = auth_client_for(DriverFactory()).post(UPLOAD, {"kind": "insurance"}, format="multipart")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert {"number", "expires_on", "file"} <= set(details)


def test_a_newer_upload_supersedes_the_pending_one_and_the_queue_holds_only_the_newest(nyc):
    client = auth_client_for(DriverFactory())
    first = send(client).json()
    second = send(client, number="POL-2").json()
    assert Document.objects.get(id=first["id"]).status == DocumentStatus.SUPERSEDED
    assert str(Document.objects.get(id=first["id"]).superseded_by_id) == second["id"]
    queue = auth_client_for(StaffFactory()).get("/api/v1/staff/documents?status=pending").json()
    assert [item["id"] for item in queue["results"]] == [second["id"]]


def test_the_driver_sees_their_documents_and_what_is_still_required(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    client = auth_client_for(driver)
    pending = send(client, kind="tlc_driver_license").json()
    body = client.get(UPLOAD).json()
    assert [d["id"] for d in body["documents"]] == [pending["id"]]
    standings = {r["kind"]: r for r in body["requirements"]}
    assert "wav_certificate" not in standings  # not a wheelchair-accessible vehicle
    assert standings["tlc_driver_license"]["standing"] == "pending"
    assert standings["tlc_driver_license"]["document_id"] == pending["id"]
    assert standings["insurance"] == {
        "kind": "insurance",
        "label": "Commercial liability insurance",
        "subject": "vehicle",
        "issuer": "Insurer",
        "only_for": "",
        "standing": "missing",
        "expires_on": None,
        "document_id": None,
    }
    approve_everything(driver, staff)
    assert {r["standing"] for r in client.get(UPLOAD).json()["requirements"]} == {"ok"}
    # Another driver's documents never show.
    assert auth_client_for(DriverFactory()).get(UPLOAD).json()["documents"] == []


def test_a_wheelchair_accessible_vehicle_is_asked_for_its_certificate(nyc):
    driver = DriverFactory(profile__wheelchair_accessible=True)
    standings = {r["kind"]: r for r in auth_client_for(driver).get(UPLOAD).json()["requirements"]}
    assert standings["wav_certificate"]["only_for"] == "wheelchair_accessible"
    assert standings["wav_certificate"]["standing"] == "missing"


def test_staff_approve_from_the_queue_and_the_decision_is_recorded(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    document = send(auth_client_for(driver)).json()
    staff_client = auth_client_for(staff)
    queue = staff_client.get("/api/v1/staff/documents").json()
    assert queue["results"][0]["id"] == document["id"]
    assert queue["results"][0]["driver_id"] == str(driver.pk)
    assert queue["results"][0]["vehicle_plate"] == driver.driver_profile.active_vehicle.plate
    response = staff_client.post(f"/api/v1/staff/documents/{document['id']}/approve", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    review = DocumentReview.objects.get(document_id=document["id"])
    assert (review.decision, review.reviewer_id, review.reason) == ("approved", staff.pk, "")
    assert staff_client.get("/api/v1/staff/documents").json()["results"] == []
    approved_list = staff_client.get("/api/v1/staff/documents?status=approved").json()["results"]
    assert [d["id"] for d in approved_list] == [document["id"]]
    again = staff_client.post(f"/api/v1/staff/documents/{document['id']}/approve", {}, format="json")
    assert again.status_code == 409 and error_code(again) == "document_not_pending"


def test_a_rejection_needs_a_reason_which_the_driver_sees(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    document = send(auth_client_for(driver)).json()
    staff_client = auth_client_for(staff)
    url = f"/api/v1/staff/documents/{document['id']}/reject"
    for body in ({}, {"reason": "   "}):
        response = staff_client.post(url, body, format="json")
        assert response.status_code == 400 and error_code(response) == "reason_required"
    response = staff_client.post(url, {"reason": "The policy number is cut off"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    mine = auth_client_for(driver).get(UPLOAD).json()["documents"][0]
    assert (mine["status"], mine["reason"]) == ("rejected", "The policy number is cut off")


def test_the_queue_is_oldest_first_and_paged(nyc):
    drivers = [DriverFactory() for _ in range(3)]
    sent = [send(auth_client_for(driver)).json()["id"] for driver in drivers]
    staff_client = auth_client_for(StaffFactory())
    first = staff_client.get("/api/v1/staff/documents?status=pending&page_size=2").json()
    assert [d["id"] for d in first["results"]] == sent[:2]
    second = staff_client.get(first["next"]).json()
    assert [d["id"] for d in second["results"]] == sent[2:] and second["next"] is None
    bad = staff_client.get("/api/v1/staff/documents?status=whatever")
    assert bad.status_code == 400


def test_the_queue_and_the_review_are_staffs_only(nyc):
    document = send(auth_client_for(DriverFactory())).json()
    for outsider in (RiderFactory(), DriverFactory()):
        client = auth_client_for(outsider)
        assert client.get("/api/v1/staff/documents").status_code == 403
        assert client.post(f"/api/v1/staff/documents/{document['id']}/approve").status_code == 403
    assert Document.objects.get(id=document["id"]).status == DocumentStatus.PENDING


def test_reviewing_an_unknown_document_is_404(nyc):
    response = auth_client_for(StaffFactory()).post(f"/api/v1/staff/documents/{uuid.uuid4()}/approve")
    assert response.status_code == 404


class TestFileLinks:
    def link(self, client, document_id):
        return client.get(reverse("document-file", kwargs={"document_id": document_id}))

    def test_the_driver_and_staff_get_a_short_lived_link_that_streams_the_file(self, nyc, settings):
        driver = DriverFactory()
        document = send(auth_client_for(driver)).json()
        for reader in (driver, StaffFactory()):
            answer = self.link(auth_client_for(reader), document["id"])
            assert answer.status_code == 200, answer.content
            body = answer.json()
            assert body["url"].startswith("http://testserver/api/v1/documents/file?token=")
            assert body["expires_at"].endswith("Z")
            # The link works without any token: the signature is the authentication.
            from rest_framework.test import APIClient

            response = APIClient().get(body["url"])
            assert response.status_code == 200
            assert b"".join(response.streaming_content) == PDF_BYTES
            assert response["Content-Type"] == "application/pdf"
            assert response["Content-Disposition"].startswith("attachment;")
            assert f"insurance-{document['expires_on']}.pdf" in response["Content-Disposition"]
            assert "no-store" in response["Cache-Control"]

    def test_others_get_404_even_for_a_rejected_document(self, nyc):
        driver, staff = DriverFactory(), StaffFactory()
        document = send(auth_client_for(driver)).json()
        auth_client_for(staff).post(
            f"/api/v1/staff/documents/{document['id']}/reject", {"reason": "Blurred"}, format="json"
        )
        for outsider in (RiderFactory(), DriverFactory()):
            response = self.link(auth_client_for(outsider), document["id"])
            assert response.status_code == 404
            assert response.json() == self.link(auth_client_for(outsider), uuid.uuid4()).json()
        assert self.link(auth_client_for(driver), document["id"]).status_code == 200

    def test_an_expired_link_is_403_and_a_tampered_one_404(self, nyc, settings):
        driver = DriverFactory()
        document = send(auth_client_for(driver)).json()
        url = self.link(auth_client_for(driver), document["id"]).json()["url"]
        from rest_framework.test import APIClient

        settings.ROCHDALE_DOCUMENT_LINK_TTL_S = -1  # every link is past its time
        expired = APIClient().get(url)
        assert expired.status_code == 403 and error_code(expired) == "file_link_expired"
        settings.ROCHDALE_DOCUMENT_LINK_TTL_S = 300
        assert APIClient().get(url).status_code == 200
        token = url.split("token=", 1)[1]
        other = DriverFactory()
        other_document = send(auth_client_for(other)).json()
        # The id swapped for another document's, keeping the signature: refused.
        swapped = token.replace(document["id"], other_document["id"])
        assert APIClient().get(f"/api/v1/documents/file?token={swapped}").status_code == 404
        assert APIClient().get(f"/api/v1/documents/file?token={token[:-2]}xx").status_code == 404
        assert APIClient().get("/api/v1/documents/file").status_code == 404
        # A token signed with the right key for another purpose does not open a file.
        foreign = signing.TimestampSigner(salt="something.else").sign(document["id"])
        assert APIClient().get(f"/api/v1/documents/file?token={foreign}").status_code == 404
