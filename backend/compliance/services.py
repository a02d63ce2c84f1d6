"""Documents: a driver's upload, staff review, the signed link to a file, and reminders before expiry.

- `document_upload`: a driver sends a document for themself or one of their own vehicles. The kind must
  be one the profile in force lists (and for that subject), the file a PDF, JPEG or PNG by its content
  (backend/compliance/sniff.py) and at most `ROCHDALE_DOCUMENT_MAX_BYTES`, the expiry date after today.
  It supersedes the earlier pending or rejected upload of the same kind (backend/compliance/models.py).
- `document_review`: staff approve or reject a pending document (a rejection needs a reason). Approval
  supersedes the previous approved one of the kind. The decision is recorded in the append-only
  `DocumentReview` table in the same transaction.
- `document_file_link` / `document_file_from_token`: a link to the file that works for a few minutes,
  signed with the project's secret (django.core.signing) and bound to the document id; who may ask for one
  is the caller's concern (the owner and staff: mobile_api/views_documents.py).
- `expiry_reminders_send`: approved documents expiring in exactly one of the profile's
  `expiry_reminder_days`, each reminded once a day through backend/compliance/notify.py.

Lock order: the driver's profile row (serialises a driver's uploads and the reviews of their documents),
then the document rows.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backend.accounts.models import DriverProfile, User, Vehicle
from backend.compliance import notify
from backend.compliance.eligibility import local_day
from backend.compliance.models import (
    Document,
    DocumentReview,
    DocumentStatus,
    DocumentSubject,
    ExpiryReminder,
    ReviewDecision,
)
from backend.compliance.selectors import regulator_profile
from backend.compliance.sniff import ACCEPTED, SNIFF_BYTES, sniff_file_type
from backend.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied

logger = logging.getLogger("backend.compliance")

FILE_LINK_SALT = "rochdale.compliance.document-file"
MAX_NUMBER_LENGTH = 64
MAX_ISSUER_LENGTH = 120
MAX_REASON_LENGTH = 2000


class DocumentTooLarge(DomainError):
    code = "document_too_large"
    status = 413
    default_message = gettext_lazy("The file is larger than the co-op takes.")


class FileLinkExpired(DomainError):
    code = "file_link_expired"
    status = 403
    default_message = gettext_lazy("This link to the file has expired; ask for a new one.")


def document_upload(
    *,
    driver: User,
    kind: str,
    number: str,
    issuer: str,
    expires_on: date,
    file: UploadedFile,
    vehicle_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Document:
    """Store a driver's document (pending review) for themself, or for their vehicle (`vehicle_id`, or the
    active vehicle when not given).

    Raises PermissionDenied (`driver_role_required`), InvalidInput (`document_kind_unknown`,
    `document_kind_subject`, `document_file_type`, `document_expiry_past`, field errors), DocumentTooLarge
    (413 `document_too_large`), NotFound (a vehicle that is not the driver's) and Unprocessable-like
    InvalidInput `no_active_vehicle`.
    """
    now = now or timezone.now()
    if not driver.is_driver:
        raise PermissionDenied(_("Only a driver account can do this."), code="driver_role_required")
    profile = regulator_profile()
    requirement = profile.requirement(kind)
    if requirement is None:
        raise InvalidInput(
            _("%(kind)r is not a document the regulator profile asks for.") % {"kind": kind},
            code="document_kind_unknown",
            details={
                "kind": [
                    _("must be one of: %(kinds)s")
                    % {"kinds": ", ".join(d.kind for d in profile.documents) or "(none)"}
                ]
            },
        )
    number, issuer = number.strip(), (issuer.strip() or requirement.issuer)
    fields: dict[str, list[str]] = {}
    if not number or len(number) > MAX_NUMBER_LENGTH:
        fields["number"] = [
            _("required, at most %(max_number_length)s characters") % {"max_number_length": MAX_NUMBER_LENGTH}
        ]
    if not issuer or len(issuer) > MAX_ISSUER_LENGTH:
        fields["issuer"] = [
            _("required, at most %(max_issuer_length)s characters") % {"max_issuer_length": MAX_ISSUER_LENGTH}
        ]
    if fields:
        raise InvalidInput(details=fields)
    if expires_on <= local_day(now):
        raise InvalidInput(
            _("The document has expired or expires today; send a current one."),
            code="document_expiry_past",
            details={"expires_on": [_("must be after today")]},
        )
    limit = settings.ROCHDALE_DOCUMENT_MAX_BYTES
    if file.size is None or file.size > limit:
        raise DocumentTooLarge(details={"max_bytes": limit})
    file.seek(0)
    file_type = sniff_file_type(file.read(SNIFF_BYTES))
    if file_type is None:
        raise InvalidInput(
            _("The file must be a PDF, JPEG or PNG."),
            code="document_file_type",
            details={
                "file": [_("accepted: %(types)s") % {"types": ", ".join(t.content_type for t in ACCEPTED)}]
            },
        )
    digest = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)

    with transaction.atomic():
        profile_row = DriverProfile.objects.select_for_update().get(user_id=driver.pk)
        vehicle: Vehicle | None = None
        if requirement.subject == DocumentSubject.VEHICLE:
            vehicles = Vehicle.objects.filter(driver=profile_row)
            vehicle = (
                vehicles.filter(id=vehicle_id).first()
                if vehicle_id is not None
                else vehicles.filter(is_active=True).first()
            )
            if vehicle is None and vehicle_id is not None:
                raise NotFound(_("No such vehicle of yours."))
            if vehicle is None:
                raise InvalidInput(
                    _("You have no active vehicle to send this document for."), code="no_active_vehicle"
                )
        elif vehicle_id is not None:
            raise InvalidInput(
                _("%(label)s is a driver's document, not a vehicle's.") % {"label": requirement.label},
                code="document_kind_subject",
                details={"vehicle_id": [_("must be absent for a driver's document")]},
            )
        document = Document(
            driver=profile_row,
            vehicle=vehicle,
            subject=requirement.subject,
            kind=kind,
            number=number,
            issuer=issuer,
            expires_on=expires_on,
            content_type=file_type.content_type,
            size_bytes=file.size,
            sha256=digest.hexdigest(),
            created_at=now,
            updated_at=now,
        )
        earlier = _same_kind(document).filter(status__in=(DocumentStatus.PENDING, DocumentStatus.REJECTED))
        # The row first (the name of its file is made of its id), then the file, so a failed save leaves
        # no row pointing at nothing; a rolled-back transaction can leave an orphaned file, never the reverse.
        document.file.save(f"upload.{file_type.extension}", file, save=False)
        superseded = list(earlier.values_list("id", flat=True))
        Document.objects.filter(id__in=superseded).update(status=DocumentStatus.SUPERSEDED, updated_at=now)
        document.save(force_insert=True)
        Document.objects.filter(id__in=superseded).update(superseded_by=document)
    logger.info("document %s (%s) uploaded by driver %s", document.id, kind, driver.pk)
    return document


def _same_kind(document: Document) -> QuerySet[Document]:
    documents = Document.objects.filter(kind=document.kind, subject=document.subject)
    if document.subject == DocumentSubject.VEHICLE:
        return documents.filter(vehicle_id=document.vehicle_id)
    return documents.filter(driver_id=document.driver_id)


def document_review(
    *,
    document_id: uuid.UUID,
    reviewer: User,
    decision: Literal["approved", "rejected"],
    reason: str = "",
    now: datetime | None = None,
) -> Document:
    """Approve or reject a pending document, recording the decision (append-only) with who and when.

    Raises PermissionDenied (`staff_only`), NotFound, InvalidInput (`reason_required`, a decision that is
    neither) and Conflict (`document_not_pending`; `document_expired`, approving one already expired).
    """
    now = now or timezone.now()
    if not reviewer.is_staff:
        raise PermissionDenied(_("Only staff may review documents."), code="staff_only")
    if decision not in ReviewDecision.values:
        raise InvalidInput(details={"decision": [_('must be "approved" or "rejected"')]})
    reason = reason.strip()
    if decision == ReviewDecision.REJECTED and not reason:
        raise InvalidInput(
            _("A rejection says why, so the driver knows what to send."),
            code="reason_required",
            details={"reason": [_("required to reject")]},
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            details={
                "reason": [
                    _("at most %(max_reason_length)s characters") % {"max_reason_length": MAX_REASON_LENGTH}
                ]
            }
        )
    driver_id = Document.objects.filter(id=document_id).values_list("driver_id", flat=True).first()
    if driver_id is None:
        raise NotFound()
    with transaction.atomic():
        DriverProfile.objects.select_for_update().filter(user_id=driver_id).first()
        document = Document.objects.select_for_update().get(id=document_id)
        if document.status != DocumentStatus.PENDING:
            raise Conflict(
                _("This document is %(status)s, not waiting for review.") % {"status": document.status},
                code="document_not_pending",
                details={"status": document.status},
            )
        if decision == ReviewDecision.APPROVED and document.expires_on < local_day(now):
            raise Conflict(
                _(
                    "This document has expired since it was sent; reject it so the driver sends a current "
                    "one."
                ),
                code="document_expired",
                details={"expires_on": document.expires_on.isoformat()},
            )
        if decision == ReviewDecision.APPROVED:
            previous = _same_kind(document).filter(status=DocumentStatus.APPROVED)
            previous.update(status=DocumentStatus.SUPERSEDED, superseded_by=document, updated_at=now)
        document.status = decision
        document.reviewed_by = reviewer
        document.reviewed_at = now
        document.reason = reason
        document.updated_at = now
        document.save(update_fields=["status", "reviewed_by", "reviewed_at", "reason", "updated_at"])
        DocumentReview.objects.create(
            document=document, decision=decision, reason=reason, reviewer=reviewer, decided_at=now
        )
    logger.info("document %s %s by %s", document.id, decision, reviewer.pk)
    return document


@dataclass(frozen=True)
class FileLink:
    token: str
    expires_at: datetime


def document_file_link(*, document: Document, now: datetime | None = None) -> FileLink:
    """A token for the document's file, valid `ROCHDALE_DOCUMENT_LINK_TTL_S` seconds and for this document
    only. The caller has checked that the asker may read it."""
    now = now or timezone.now()
    token = signing.TimestampSigner(salt=FILE_LINK_SALT).sign(str(document.id))
    return FileLink(token=token, expires_at=now + timedelta(seconds=settings.ROCHDALE_DOCUMENT_LINK_TTL_S))


def document_file_from_token(*, token: str) -> Document:
    """The document a link's token names. Raises FileLinkExpired (403) for a genuine token past its time,
    NotFound for one that was tampered with or names no document (the same answer as for no file)."""
    signer = signing.TimestampSigner(salt=FILE_LINK_SALT)
    try:
        document_id = signer.unsign(token, max_age=timedelta(seconds=settings.ROCHDALE_DOCUMENT_LINK_TTL_S))
    except signing.SignatureExpired as exc:
        raise FileLinkExpired() from exc
    except signing.BadSignature as exc:
        raise NotFound() from exc
    try:
        return Document.objects.get(id=uuid.UUID(document_id))
    except (ValueError, Document.DoesNotExist) as exc:
        raise NotFound() from exc


def expiry_reminders_send(*, today: date | None = None) -> int:
    """Remind the driver of every approved document expiring in exactly one of the profile's
    `expiry_reminder_days` (30 and 7 for New York), once a document and day; returns how many were sent.
    A rerun the same day sends none: the reminder row is claimed (unique per document and day) before the
    hook is called, in the same transaction, so a hook that fails rolls its claim back for the next run;
    the sweep goes on with the other documents and raises the first failure at the end."""
    day = today or local_day(timezone.now())
    profile = regulator_profile()
    kinds = [doc.kind for doc in profile.documents]
    sent = 0
    failure: Exception | None = None
    for days_before in profile.expiry_reminder_days:
        expiring = (
            Document.objects.filter(
                status=DocumentStatus.APPROVED, kind__in=kinds, expires_on=day + timedelta(days=days_before)
            )
            .exclude(reminders__reminded_on=day)
            .select_related("driver__user", "vehicle")
        )
        for document in expiring:
            try:
                with transaction.atomic():
                    ExpiryReminder.objects.create(document=document, days_before=days_before, reminded_on=day)
                    requirement = profile.requirement(document.kind)
                    notify.document_expiry_reminder(
                        document=document,
                        label=requirement.label if requirement else document.kind,
                        days_before=days_before,
                    )
            except IntegrityError:
                continue  # another run claimed it first
            except Exception as exc:
                # Its claim rolled back: tried again at the next run. The others are not held back by it
                # (a delivery failing for one driver would otherwise starve every document after it).
                logger.exception("expiry reminder of document %s failed", document.id)
                failure = failure or exc
                continue
            sent += 1
    if failure is not None:
        raise failure  # the task fails visibly; what could be sent has been
    return sent
