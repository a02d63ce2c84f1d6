"""Access cases for documents (mobile_api/urls_documents.py): a document's file link answers its driver
(and staff) only, a rejected document's as much as an approved one's; a rider or another driver gets the 404
of an id that does not exist. The review routes are staff's: everyone else is refused by the gate (403)
before the id is looked up.

The rows are made directly (no file is written: these routes never read one); tests/compliance/ uploads
real files through the service and follows the links to them."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.access_cases import AccessCase, Arranged, register
from tests.factories import DriverFactory, StaffFactory


def _document(status: str):
    from backend.compliance.models import Document

    driver = DriverFactory()
    staff = StaffFactory()
    reviewed = status != "pending"
    document = Document.objects.create(
        driver=driver.driver_profile,
        vehicle=driver.driver_profile.active_vehicle,
        subject="vehicle",
        kind="insurance",
        number="POL-1234",
        issuer="Insurer",
        expires_on=(timezone.now() + timedelta(days=200)).date(),
        file=f"documents/{driver.pk}/access.pdf",
        content_type="application/pdf",
        size_bytes=100,
        sha256="0" * 64,
        status=status,
        reviewed_by=staff if reviewed else None,
        reviewed_at=timezone.now() if reviewed else None,
        reason="The policy number is unreadable" if status == "rejected" else "",
    )
    return driver, document


def _rejected_file() -> Arranged:
    driver, document = _document("rejected")
    return Arranged(owner=driver, kwargs={"document_id": document.id})


def _approved_file() -> Arranged:
    driver, document = _document("approved")
    return Arranged(owner=driver, kwargs={"document_id": document.id})


def _review(body: dict | None = None):
    def arrange() -> Arranged:
        _, document = _document("pending")
        return Arranged(owner=StaffFactory(), kwargs={"document_id": document.id}, body=body)

    return arrange


register(
    "document-file",
    AccessCase(_rejected_file, label="a rejected document's file is not readable by other users"),
    AccessCase(_approved_file, label="an approved document's file"),
)
register("staff-document-approve", AccessCase(_review(), "post", 200, outsider_status=403))
register(
    "staff-document-reject",
    AccessCase(_review({"reason": "Expired policy"}), "post", 200, outsider_status=403),
)
