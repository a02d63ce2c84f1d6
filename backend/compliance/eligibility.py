"""Whether a driver's documents let them work now: the document half of eligibility (issue 15).

`document_problems` is the fixed interface dispatch calls when a driver goes online and at every offer round
(dispatch/services/hours.py adds the hours half with the same `EligibilityProblem`): for every document the
regulator profile requires of the driver and of the driver's active vehicle (the wheelchair-accessible
certificate only for a wheelchair-accessible trip), the newest approved one must not have expired at `at`.
An empty list means the documents are fine; with the profile `none` it is always empty.

A document is valid through its expiry date, a local date of the co-op's time zone (an insurance card
"expiring 2026-05-01" covers that whole day). Each missing piece is one problem, in the profile's order:
- `document_expired`: the newest approved one has expired (even when a renewal waits for review: the
  driver cannot work on it until staff approve it);
- `document_pending`: none approved, only one waiting for review;
- `document_missing`: none approved and none waiting (never sent, or only rejected ones).

`document_standing` gives the same answer per requirement, including those that are fine, for the
driver's own page (`GET /driver/documents`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from django.utils import timezone
from django.utils.translation import gettext as _

from backend.compliance.models import Document, DocumentStatus, DocumentSubject
from backend.compliance.profile import DocumentRequirement
from backend.compliance.selectors import regulator_profile
from backend.fares.pay import local_zone

Standing = Literal["ok", "expired", "pending", "missing"]
PROBLEM_CODES: dict[Standing, str] = {
    "expired": "document_expired",
    "pending": "document_pending",
    "missing": "document_missing",
}


@dataclass(frozen=True)
class EligibilityProblem:
    code: str
    message: str
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RequirementStanding:
    """Where one required document stands for a driver (or their vehicle) on a day."""

    requirement: DocumentRequirement
    standing: Standing
    approved: Document | None
    pending: Document | None

    @property
    def expires_on(self) -> date | None:
        return self.approved.expires_on if self.approved is not None else None

    def problem(self) -> EligibilityProblem | None:
        if self.standing == "ok":
            return None
        label = self.requirement.label
        # Whole sentences per case (not "your" spliced in), so each language can word them its own way.
        drivers = self.requirement.subject == "driver"
        texts = {
            "expired": (
                _("%(label)s: your approved document expired on %(expires_on)s; send a new one.")
                if drivers
                else _(
                    "%(label)s: your vehicle's approved document expired on %(expires_on)s; send a new one."
                )
            ),
            "pending": (
                _("%(label)s: your document is waiting for staff review.")
                if drivers
                else _("%(label)s: your vehicle's document is waiting for staff review.")
            ),
            "missing": _("%(label)s: no approved document; send one for review."),
        }
        message = texts[self.standing] % {"label": label, "expires_on": self.expires_on}
        details: dict[str, object] = {
            "kind": self.requirement.kind,
            "label": label,
            "subject": self.requirement.subject,
        }
        if self.expires_on is not None:
            details["expires_on"] = self.expires_on.isoformat()
        if self.pending is not None:
            details["pending_document_id"] = str(self.pending.id)
        return EligibilityProblem(code=PROBLEM_CODES[self.standing], message=message, details=details)


def local_day(at: datetime) -> date:
    """The co-op's local date at an aware moment: the day a document's validity is counted in."""
    return timezone.localtime(at, local_zone()).date()


def document_standing(
    *, driver_id: uuid.UUID, vehicle_id: uuid.UUID | None, wheelchair_accessible: bool, at: datetime
) -> list[RequirementStanding]:
    """Every document the profile requires for this driver and vehicle (the WAV certificate only when
    `wheelchair_accessible`), in the profile's order, with where it stands at `at`."""
    profile = regulator_profile()
    requirements = [
        requirement
        for subject in (DocumentSubject.DRIVER, DocumentSubject.VEHICLE)
        for kind in profile.required_documents(subject=subject, wheelchair_accessible=wheelchair_accessible)
        if (requirement := profile.requirement(kind)) is not None
    ]
    if not requirements:
        return []
    day = local_day(at)
    current = Document.objects.filter(
        status__in=(DocumentStatus.APPROVED, DocumentStatus.PENDING),
        kind__in=[requirement.kind for requirement in requirements],
    )
    driver_documents = current.filter(subject=DocumentSubject.DRIVER, driver_id=driver_id)
    vehicle_documents = (
        current.filter(subject=DocumentSubject.VEHICLE, vehicle_id=vehicle_id)
        if vehicle_id is not None
        else Document.objects.none()
    )
    found: dict[tuple[str, str, str], Document] = {}
    for document in [*driver_documents, *vehicle_documents]:
        found[(document.subject, document.kind, document.status)] = document
    standings = []
    for requirement in requirements:
        approved = found.get((requirement.subject, requirement.kind, DocumentStatus.APPROVED))
        pending = found.get((requirement.subject, requirement.kind, DocumentStatus.PENDING))
        if approved is not None and approved.expires_on >= day:
            standing: Standing = "ok"
        elif approved is not None:
            standing = "expired"
        elif pending is not None:
            standing = "pending"
        else:
            standing = "missing"
        standings.append(
            RequirementStanding(
                requirement=requirement, standing=standing, approved=approved, pending=pending
            )
        )
    return standings


def document_problems(
    *, driver_id: uuid.UUID, vehicle_id: uuid.UUID | None, wheelchair_accessible: bool, at: datetime
) -> list[EligibilityProblem]:
    """What keeps this driver (with this active vehicle, for a wheelchair-accessible trip or not) from
    working at `at` as far as documents go; empty when nothing does. No active vehicle: every vehicle
    document the profile requires is missing."""
    standings = document_standing(
        driver_id=driver_id, vehicle_id=vehicle_id, wheelchair_accessible=wheelchair_accessible, at=at
    )
    return [problem for standing in standings if (problem := standing.problem()) is not None]
