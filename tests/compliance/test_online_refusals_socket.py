"""Going online over the real driver socket under New York's profile: refused with the eligibility
problem's code and details (frames checked against docs/asyncapi.yaml), accepted once the documents are in."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.dispatch.conftest import connect, send

pytestmark = pytest.mark.django_db(transaction=True)

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _send_all(driver, staff, *, approve_all_but: str):
    """Every New York document sent through the upload service; all approved but one, left pending."""
    from backend.compliance.eligibility import local_day
    from backend.compliance.selectors import regulator_profile
    from backend.compliance.services import document_review, document_upload

    for requirement in regulator_profile().documents:
        if requirement.only_for:
            continue
        document = document_upload(
            driver=driver,
            kind=requirement.kind,
            number=f"N-{uuid.uuid4().hex[:8]}",
            issuer="",
            expires_on=local_day(timezone.now()) + timedelta(days=200),
            file=SimpleUploadedFile("scan.pdf", PDF_BYTES, content_type="application/pdf"),
        )
        if requirement.kind != approve_all_but:
            document_review(document_id=document.id, reviewer=staff, decision="approved")


def _approve_pending(staff):
    from backend.compliance.models import Document, DocumentStatus
    from backend.compliance.services import document_review

    for document_id in Document.objects.filter(status=DocumentStatus.PENDING).values_list("id", flat=True):
        document_review(document_id=document_id, reviewer=staff, decision="approved")


async def test_going_online_is_refused_until_every_document_is_approved(nyc, driver):
    from tests.factories import StaffFactory

    socket = await connect(driver, "/ws/driver/")
    missing = await send(socket, {"type": "online"}, ref="m")
    assert missing["type"] == "error" and missing["code"] == "document_missing" and missing["ref"] == "m"
    assert missing["details"]["kind"] == "tlc_driver_license" and missing["details"]["subject"] == "driver"
    assert len(missing["details"]["problems"]) == 7

    staff = await sync_to_async(StaffFactory)()
    await sync_to_async(_send_all)(driver, staff, approve_all_but="inspection")
    pending = await send(socket, {"type": "online"}, ref="p")
    assert pending["code"] == "document_pending" and pending["details"]["kind"] == "inspection"
    assert [problem["code"] for problem in pending["details"]["problems"]] == ["document_pending"]

    await sync_to_async(_approve_pending)(staff)
    assert (await send(socket, {"type": "online"}, ref="ok")) == {
        "type": "result",
        "ref": "ok",
        "ok": True,
        "online": True,
    }
    await socket.disconnect()


async def test_going_online_past_the_hours_limit_is_refused_with_when_time_is_left(nyc, driver, rider):
    from backend.fares.models import FarePolicyVersion
    from tests.factories import StaffFactory
    from tests.fares.builders import complete_trip, in_progress_trip

    staff = await sync_to_async(StaffFactory)()
    await sync_to_async(_send_all)(driver, staff, approve_all_but="")

    def ten_hours_ago() -> None:
        policy = FarePolicyVersion.objects.order_by("-version").first()
        started = timezone.now() - timedelta(hours=12)
        trip = in_progress_trip(rider=rider, driver=driver, policy_version=policy, started_at=started)
        complete_trip(trip, distance_m=400_000, duration_s=36_000, at=started + timedelta(hours=10))

    await sync_to_async(ten_hours_ago)()
    socket = await connect(driver, "/ws/driver/")
    refused = await send(socket, {"type": "online"}, ref="h")
    assert refused["code"] == "hours_limit_reached"
    details = refused["details"]
    assert (details["limit"], details["used_s"], details["max_s"]) == ("tlc_24h", 36_000, 36_000)
    assert details["available_at"].endswith("Z")
    await socket.disconnect()
