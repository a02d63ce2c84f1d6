"""Staff review documents in the admin as in the API: the same service, so every decision is recorded;
a rejection takes its reason from the action's box, and without one rejects nothing. Review rows cannot be
rewritten (the append-only trigger)."""

from __future__ import annotations

import pytest
from django.db import ProgrammingError, transaction

from backend.compliance.models import Document, DocumentReview, DocumentStatus
from tests.compliance.document_builders import upload
from tests.factories import DriverFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/compliance/document/"


@pytest.fixture
def staff_browser(client, staff_user):
    client.force_login(staff_user)
    return client


def test_staff_approve_documents_with_the_admin_action(nyc, staff_browser, staff_user):
    documents = [upload(DriverFactory(), "insurance") for _ in range(2)]
    response = staff_browser.post(
        CHANGELIST,
        {"action": "approve_documents", "_selected_action": [str(d.id) for d in documents], "reason": ""},
    )
    assert response.status_code == 302
    for document in documents:
        document.refresh_from_db()
        assert (document.status, document.reviewed_by_id) == (DocumentStatus.APPROVED, staff_user.pk)
    assert DocumentReview.objects.filter(decision="approved", reviewer=staff_user).count() == 2


def test_an_admin_rejection_needs_the_reason_box(nyc, staff_browser):
    document = upload(DriverFactory(), "insurance")
    selected = {"action": "reject_documents", "_selected_action": [str(document.id)]}
    page = staff_browser.post(CHANGELIST, {**selected, "reason": ""}, follow=True)
    assert "rejection says why" in page.content.decode()
    document.refresh_from_db()
    assert document.status == DocumentStatus.PENDING
    staff_browser.post(CHANGELIST, {**selected, "reason": "Policy number unreadable"})
    document.refresh_from_db()
    assert (document.status, document.reason) == (DocumentStatus.REJECTED, "Policy number unreadable")
    assert DocumentReview.objects.get(document=document).reason == "Policy number unreadable"


def test_the_document_page_opens_the_file_only_by_a_signed_link(nyc, staff_browser):
    document = upload(DriverFactory(), "insurance")
    page = staff_browser.get(f"{CHANGELIST}{document.id}/change/").content.decode()
    assert "/api/v1/documents/file?token=" in page
    assert document.file.name not in page
    assert staff_browser.get(f"{CHANGELIST}add/").status_code == 403


def test_review_rows_are_append_only(nyc, staff_user):
    from backend.compliance.services import document_review

    document = document_review(
        document_id=upload(DriverFactory(), "insurance").id, reviewer=staff_user, decision="approved"
    )
    review = DocumentReview.objects.get(document=document)
    for attempt in (
        lambda: DocumentReview.objects.filter(id=review.id).update(reason="edited"),
        lambda: DocumentReview.objects.filter(id=review.id).delete(),
    ):
        with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
            attempt()
    assert Document.objects.get(id=document.id).status == DocumentStatus.APPROVED
