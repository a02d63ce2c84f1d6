"""Documents for tests: real uploads through the service (a real file in a temporary storage), and the
small PDF, JPEG and PNG files a driver's phone would send."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from backend.accounts.models import User
from backend.compliance.eligibility import local_day
from backend.compliance.models import Document
from backend.compliance.selectors import regulator_profile
from backend.compliance.services import document_review, document_upload

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def pdf_file(content: bytes = PDF_BYTES, name: str = "scan.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def in_days(days: int) -> date:
    return local_day(timezone.now()) + timedelta(days=days)


def upload(
    driver: User, kind: str, *, expires_on: date | None = None, vehicle_id: uuid.UUID | None = None
) -> Document:
    return document_upload(
        driver=driver,
        kind=kind,
        number=f"N-{uuid.uuid4().hex[:8]}",
        issuer="",
        expires_on=expires_on or in_days(365),
        file=pdf_file(),
        vehicle_id=vehicle_id,
    )


def approved(driver: User, kind: str, reviewer: User, *, expires_on: date | None = None) -> Document:
    return document_review(
        document_id=upload(driver, kind, expires_on=expires_on).id, reviewer=reviewer, decision="approved"
    )


def approve_everything(
    driver: User, reviewer: User, *, wheelchair_accessible: bool = False
) -> list[Document]:
    """Every document the profile in force requires of the driver and their active vehicle, approved."""
    profile = regulator_profile()
    kinds = [
        kind
        for subject in ("driver", "vehicle")
        for kind in profile.required_documents(subject=subject, wheelchair_accessible=wheelchair_accessible)
    ]
    return [approved(driver, kind, reviewer) for kind in kinds]
