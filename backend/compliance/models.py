"""Driver and vehicle documents the regulator profile requires, their review, and expiry reminders.

A document is one upload: a kind (a code of the profile in force, e.g. `insurance`), its number, issuer,
expiry date and file, for the driver (`subject` "driver") or one of the driver's vehicles ("vehicle"). It is
`pending` until staff approve or reject it. A newer upload of the same kind for the same driver or vehicle
supersedes the older pending or rejected one at once (the queue holds only the newest), and an approved
one when it is itself approved: until then the old approval keeps the driver working, so a renewal sent
early never interrupts a shift. The database holds the invariants: at most one pending and one approved
document per kind and subject (partial unique indexes), valid statuses and subjects (check constraints).

Every review decision is also a row in `DocumentReview`, which a trigger keeps append-only (as the ledger's
tables in backend/fares/models.py): the document row says where it stands, the reviews say who decided what
and when, and cannot be rewritten. Reminders sent before an expiry are rows too, one per document and day,
so the daily sweep is idempotent.

The file lives in the `documents` storage (settings `STORAGES["documents"]`: local disk under
`ROCHDALE_MEDIA_ROOT` by default, an S3-compatible bucket optionally; docs/compliance.md), under a name
made of ids only: nothing a client sent names a path.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.accounts.models import DriverProfile, User, Vehicle


class DocumentSubject(models.TextChoices):
    DRIVER = "driver", gettext_lazy("Driver")
    VEHICLE = "vehicle", gettext_lazy("Vehicle")


class DocumentStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending review")
    APPROVED = "approved", gettext_lazy("Approved")
    REJECTED = "rejected", gettext_lazy("Rejected")
    SUPERSEDED = "superseded", gettext_lazy("Superseded by a newer upload")


class ReviewDecision(models.TextChoices):
    APPROVED = "approved", gettext_lazy("Approved")
    REJECTED = "rejected", gettext_lazy("Rejected")


class DocumentStorage(Storage):
    """The `documents` storage of the settings, looked up at each use rather than once at import (Django
    binds a FileField's storage when the model class is made): a changed `STORAGES` (a test's temporary
    directory, a deployment's bucket) applies at once, and migrations never name a backend."""

    @property
    def configured(self) -> Storage:
        return storages["documents"]

    def open(self, name: str, mode: str = "rb") -> File:
        return self.configured.open(name, mode)

    def save(self, name: str | None, content: File, max_length: int | None = None) -> str:
        return self.configured.save(name, content, max_length=max_length)

    def generate_filename(self, filename: str) -> str:
        return self.configured.generate_filename(filename)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return self.configured.get_available_name(name, max_length=max_length)

    def delete(self, name: str) -> None:
        self.configured.delete(name)

    def exists(self, name: str) -> bool:
        return self.configured.exists(name)

    def size(self, name: str) -> int:
        return self.configured.size(name)

    def url(self, name: str | None) -> str:
        return self.configured.url(name)

    def path(self, name: str) -> str:
        return self.configured.path(name)


def document_storage() -> Storage:
    return DocumentStorage()


def document_file_name(instance: Document, filename: str) -> str:
    # Ids only: the client's file name never reaches the storage (no traversal, no personal data in keys).
    extension = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
    return f"documents/{instance.driver_id}/{instance.id}.{extension}"


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    driver = models.ForeignKey(DriverProfile, on_delete=models.PROTECT, related_name="documents")
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, null=True, blank=True, related_name="documents"
    )
    subject = models.CharField(max_length=8, choices=DocumentSubject.choices)
    kind = models.CharField(max_length=64, help_text="A document code of the regulator profile.")
    number = models.CharField(max_length=64)
    issuer = models.CharField(max_length=120)
    expires_on = models.DateField(help_text="Valid through this date (the co-op's local date).")
    file = models.FileField(upload_to=document_file_name, storage=document_storage, max_length=200)
    content_type = models.CharField(max_length=32)
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    reviewed_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, default="", help_text="Why it was rejected (shown to the driver).")
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="document_queue")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DocumentStatus.values), name="document_status_valid"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(subject=DocumentSubject.DRIVER, vehicle__isnull=True)
                    | models.Q(subject=DocumentSubject.VEHICLE, vehicle__isnull=False)
                ),
                name="document_subject_matches_vehicle",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=DocumentStatus.REJECTED) | ~models.Q(reason=""),
                name="document_rejection_has_reason",
            ),
            *(
                models.UniqueConstraint(
                    fields=[owner, "kind"],
                    condition=models.Q(subject=subject, status=status),
                    name=f"one_{status}_{subject}_document_per_kind",
                )
                for subject, owner in (("driver", "driver"), ("vehicle", "vehicle"))
                for status in (DocumentStatus.PENDING, DocumentStatus.APPROVED)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.subject} {self.vehicle_id or self.driver_id} ({self.status})"


class DocumentReview(models.Model):
    """One staff decision on a document, as it was made. Append-only (a trigger refuses UPDATE and
    DELETE): a later decision is a new row, never an edit."""

    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices)
    reason = models.TextField(blank=True, default="")
    reviewer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "id"]
        triggers = [
            pgtrigger.Protect(
                name="document_reviews_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decision__in=ReviewDecision.values), name="document_review_decision_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.document_id} by {self.reviewer_id} at {self.decided_at:%Y-%m-%d %H:%M}"


class ExpiryReminder(models.Model):
    """A reminder sent (to the notification hook, backend/compliance/notify.py) that a document expires in
    `days_before` days; unique per document and local day, so a rerun of the sweep sends nothing twice."""

    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="reminders")
    days_before = models.PositiveSmallIntegerField()
    reminded_on = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "reminded_on"], name="one_expiry_reminder_per_day"),
        ]

    def __str__(self) -> str:
        return f"reminder {self.days_before} days before · document {self.document_id} ({self.reminded_on})"
